"""Figures of the dashboard: plain functions of data, unit-testable without a browser."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mgm_analysis.analysis.report import fig_layer_heatmap, fig_metric_bars, fig_overlap, fig_projection

__all__ = ["fig_projection", "fig_metric_bars", "fig_layer_heatmap", "fig_overlap", "fig_frame_viewer", "empty_figure"]


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(xaxis_visible=False, yaxis_visible=False, height=250,
                      annotations=[dict(text=message, showarrow=False, font=dict(size=14))])
    return fig


def _outline(mask: np.ndarray) -> np.ndarray:
    m = mask > 0.5
    e = np.zeros_like(m)
    e[1:, :] |= m[1:, :] != m[:-1, :]
    e[:, 1:] |= m[:, 1:] != m[:, :-1]
    return e


def fig_frame_viewer(reference: np.ndarray, frame: np.ndarray, mask: np.ndarray, title: str = "") -> go.Figure:
    """Reference | frame (mask outlined in yellow) | |frame − reference| heat-map."""
    edge = _outline(mask)[..., None]
    yellow = np.array([1.0, 0.9, 0.0])
    ref_o = np.where(edge, yellow, reference)
    frame_o = np.where(edge, yellow, frame)
    diff = np.abs(frame - reference).mean(-1)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("reference", "frame", "difference"), horizontal_spacing=0.03)
    fig.add_trace(go.Image(z=(ref_o * 255).astype(np.uint8), hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Image(z=(frame_o * 255).astype(np.uint8), hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Heatmap(z=diff, colorscale="Inferno", zmin=0, zmax=max(0.05, float(diff.max())),
                             showscale=True, colorbar=dict(len=0.8, thickness=10),
                             hovertemplate="|Δ| %{z:.3f}<extra></extra>"), row=1, col=3)
    fig.update_yaxes(autorange="reversed", row=1, col=3)
    for c in (1, 2, 3):
        fig.update_xaxes(visible=False, row=1, col=c)
        fig.update_yaxes(visible=False, scaleanchor=f"x{c if c > 1 else ''}", row=1, col=c)
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=60, b=10))
    return fig
