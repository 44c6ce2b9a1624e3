"""Plotly figures of the dashboard, built by plain functions of DataFrames and arrays.

Nothing here knows about Dash, callbacks or files: each function takes data and
returns a ``plotly.graph_objects.Figure`` (or a small value), so it can be
called and checked directly in tests.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from mgm_analysis.presets import region_colors
from mgm_analysis.store import png_data_uri

__all__ = ["region_colors", "message_figure", "projection_figure", "point_run", "current_point", "frame_figure", "metric_bars", "with_current",
           "layer_heatmap", "overlap_figure", "derived_figure", "frontier_figure", "png_data_uri", "CURRENT"]

_MARGIN = dict(l=40, r=10, t=40, b=40)
CURRENT = "current frame"  # name of the ring on the frame on show: a layout shape in 2-D, the last trace in 3-D
MAX_IMAGE_SIDE = 256  # frames are sent at most this many pixels wide
MAX_HEATMAP_SIDE = 128  # the difference heat-map is sent at most this many cells wide
MASK_COLOR = "#00e5ff"  # the mask outline
MAX_MARKED_POINTS = 2000  # a projection with more points draws lines without frame markers (browser time)
MAX_SENT_POINTS = 40_000  # a projection with more frames sends every k-th frame of each run (and its first and last)
MAX_DRAWN_RUNS = 2_000  # a projection of more runs draws every k-th run of each region (the browser's drawing time)
MAX_START_DOTS = 500  # a projection drawing more runs leaves out their frame-0 dots (one SVG element each)


def message_figure(text: str, title: str = "") -> go.Figure:
    """An empty figure that says ``text`` in the middle (for "nothing selected" and errors)."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#666"))
    fig.update_layout(title=title or None, xaxis_visible=False, yaxis_visible=False, margin=_MARGIN,
                      plot_bgcolor="white", height=320)
    return fig


# ------------------------------------------------------------ projection
def projection_figure(df: pd.DataFrame, *, dims: int = 2, method: str = "pca", colors: dict | None = None,
                      current: tuple[str, int] | None = None, space: str = "") -> dict:
    """Trajectories in a joint projection: one line per run in frame order, coloured by region.

    Returns a plain figure dict ({"data": [...], "layout": {...}}, what ``go.Figure(...).to_dict()`` gives;
    ``go.Figure(fig)`` to inspect it), because figure objects are slow to build for thousands of points.

    Args:
        df: columns run_id, region, frame, x, y (and z when ``dims`` is 3), one row per frame.
        colors: region -> colour (default :func:`region_colors` of the regions in ``df``).
        current: (run_id, frame) to ring: in 2-D the layout shape named :data:`CURRENT` (a fixed-size circle, so
            moving it redraws no trace), in 3-D the last trace, also named so.

    The runs of one region share one trace, separated by gaps, and draw scalar-styled
    markers (only when there are at most :data:`MAX_MARKED_POINTS` points; lines
    alone beyond), so hundreds of runs stay quick to draw; frame 0 of each run is a
    larger dot in a second trace per region.  Every point of both carries
    ``customdata = [run index, frame]``, the index into its trace's ``meta``: the ids of the
    trace's runs (:func:`point_run` reads it), so thousands of runs do not repeat their ids in
    every point; the gaps carry ``None``.  (Not in the layout: dcc.Graph copies the layout on
    every update, and plotly would then redraw every trace to move the ring.)  Coordinates are
    rounded to 1/10 000 of the axis span (:func:`_decimals`), well below a pixel.  Beyond
    :data:`MAX_SENT_POINTS` frames, every k-th frame of each run is sent (with its first and last; the title
    says k): 2 000 runs × 36 frames were 600 KB to send and draw, 10 000 runs 3 MB; the points sent keep their
    real frame numbers, so hover and click show the frame under the pointer.  Beyond :data:`MAX_DRAWN_RUNS` runs,
    every k-th run of each region (in the order of their ids) is drawn, and the title says so: plotly draws each
    run as an SVG path and a dot, and 10 000 runs took 0.8-1.2 s of the browser's main thread (2 000: 0.25 s).
    Beyond :data:`MAX_START_DOTS` runs drawn, the frame-0 dots are left out (the title says so): 2 000 dots were
    almost half of plotly's drawing time, and in the deltas w − w* every run starts at the origin, so they
    were one blob there.
    """
    if df is None or not len(df):
        return message_figure("Select runs in the table to see their trajectories.").to_dict()
    cols = list("xyz"[:dims])
    if any(c not in df for c in cols):
        raise ValueError(f"a {dims}-D projection needs columns {cols}, got {list(df.columns)}")
    n_runs = df["run_id"].nunique()
    every_run = math.ceil(n_runs / MAX_DRAWN_RUNS)
    if every_run > 1:  # every every_run-th run of each region, in the order of their ids
        runs = df.drop_duplicates("run_id")[["run_id", "region"]].sort_values(["region", "run_id"], kind="stable")
        drawn = runs["run_id"][runs.groupby("region", sort=False).cumcount().to_numpy() % every_run == 0]
        df = df[df["run_id"].isin(drawn)]
    n_points, step = len(df), math.ceil(len(df) / MAX_SENT_POINTS)
    if step > 1:  # every step-th frame of each run, and its last
        last = df.groupby("run_id", sort=False)["frame"].transform("max").to_numpy(int)
        frame_no = df["frame"].to_numpy(int)
        df = df[(frame_no % step == 0) | (frame_no == last)]
    colors = colors or region_colors(df["region"].unique())
    kind = "scatter3d" if dims == 3 else "scatter"
    big, small = (7, 4) if dims == 2 else (4, 2)
    mode = "lines+markers" if len(df) <= MAX_MARKED_POINTS else "lines"
    df = df.sort_values(["region", "run_id", "frame"], kind="stable")
    run_ids = df["run_id"].to_numpy(dtype=object)
    frames = df["frame"].to_numpy(int)
    decimals = {c: _decimals(df[c].to_numpy(float)) for c in cols}
    regions = df["region"].to_numpy(dtype=object)
    drawn_runs = df["run_id"].nunique()
    lines, starts = [], []
    for region in pd.unique(regions):  # in sorted order: df is sorted by region
        rows = np.flatnonzero(regions == region)
        ids, frm = run_ids[rows], frames[rows]
        first = np.r_[True, ids[1:] != ids[:-1]]  # frame 0 of each run
        gaps = np.flatnonzero(first[1:]) + 1  # a gap before each run but the first, and one at the end
        names = [str(r) for r in ids[first]]  # the trace's runs, in the order of their index
        custom = np.stack([np.cumsum(first) - 1, frm], 1).tolist()
        color = colors.get(region, "#444")
        coords = {c: df[c].to_numpy(float)[rows] for c in cols}
        lines.append(dict(type=kind, **{c: _with_gaps(v, gaps, decimals[c]) for c, v in coords.items()}, mode=mode,
                          name=str(region), legendgroup=str(region), customdata=_with_gaps(custom, gaps), meta=names,
                          connectgaps=False, hoverinfo="none", hovertemplate=None,
                          line=dict(color=color, width=1.5 if dims == 2 else 3), marker=dict(color=color, size=small)))
        if drawn_runs <= MAX_START_DOTS:
            starts.append(dict(type=kind, **{c: np.round(v[first], decimals[c]).tolist() for c, v in coords.items()},
                               mode="markers", name=f"{region}, frame 0", legendgroup=str(region),
                               showlegend=False, customdata=[c for c, f in zip(custom, first, strict=True) if f],
                               meta=names, hoverinfo="none", hovertemplate=None, marker=dict(color=color, size=big)))
    traces = lines + starts
    point = {c: [] for c in cols}  # the ring: placed by with_current
    if dims == 3:
        traces.append(dict(type=kind, **point, mode="markers", name=CURRENT, hoverinfo="skip", showlegend=False,
                           marker=dict(size=8, color="rgba(0,0,0,0)", line=dict(color="black", width=2))))
    label = method.upper()
    axes = {f"{c}axis": dict(title=dict(text=f"{label} {i + 1}")) for i, c in enumerate(cols)}
    if dims == 3:
        frame = dict(scene=axes)
    else:
        grid = dict(showgrid=True, gridcolor="#eee", zeroline=False)
        ring = dict(type="circle", name=CURRENT, xref="x", yref="y", xsizemode="pixel", ysizemode="pixel",
                    xanchor=0, yanchor=0, x0=-8, x1=8, y0=-8, y1=8, line=dict(color="black", width=2), visible=False)
        frame = {k: {**v, **grid} for k, v in axes.items()} | dict(plot_bgcolor="white", shapes=[ring])
    some_runs = f"; 1 run in {every_run} drawn ({drawn_runs:,} of {n_runs:,})" if every_run > 1 else ""
    every = some_runs + (f"; 1 frame in {step} drawn ({len(df):,} of {n_points:,} points)" if step > 1 else "")
    dots = "big dot = frame 0" if drawn_runs <= MAX_START_DOTS else f"no frame-0 dots above {MAX_START_DOTS} runs"
    layout = dict(title=dict(text=f"{label} of {n_runs} run{'s' * (n_runs != 1)}{', ' + space if space else ''}"
                                  f"<br><sup>one joint fit; {dots}{every}</sup>", x=0.01),
                  legend=dict(title=dict(text="region")), hovermode="closest", clickmode="event", margin=_MARGIN,
                  height=480, uirevision=f"{method}-{dims}-{space}", **frame)
    # A plain figure dict: plotly's figure objects validate and deep-copy every point, which costs seconds
    # for hundreds of runs; tests check that go.Figure accepts it.
    return with_current({"data": traces, "layout": layout}, df, current, dims)


def with_current(fig: dict, df: pd.DataFrame, current: tuple[str, int] | None, dims: int = 2) -> dict:
    """A :func:`projection_figure` of ``df`` with its ring on ``current`` (run_id, frame; None: no ring): a new dict
    that shares the traces, so a figure kept for a selection is not rebuilt to move the ring (the browser moves
    it the same way, ``clientside.MARK_FRAME``)."""
    point = current_point(df, current, dims)
    if dims == 3:
        return {"data": fig["data"][:-1] + [{**fig["data"][-1], **point}], "layout": fig["layout"]}
    shapes = [{**sh, "xanchor": (point["x"] or [0])[0], "yanchor": (point["y"] or [0])[0],
               "visible": bool(point["x"])} if sh.get("name") == CURRENT else sh
              for sh in fig["layout"].get("shapes", [])]
    return {"data": fig["data"], "layout": {**fig["layout"], "shapes": shapes}}


def point_run(fig: dict, curve: int, custom) -> tuple[str, int] | None:
    """(run_id, frame) of the point of trace number ``curve`` with ``customdata`` in a :func:`projection_figure`,
    or None (a gap, or not a point of that figure).  The browser does the same in dashboards.callbacks' event
    translation."""
    traces = fig.get("data") or []
    runs = traces[curve].get("meta") if isinstance(curve, int) and 0 <= curve < len(traces) else None
    if not isinstance(runs, list) or not isinstance(custom, list) or len(custom) != 2 \
            or not all(type(v) is int for v in custom):
        return None
    return (runs[custom[0]], custom[1]) if 0 <= custom[0] < len(runs) else None


def _decimals(values: np.ndarray) -> int:
    """Decimals that keep 1/10 000 of the span of ``values`` (at least 0, at most 12)."""
    span = float(np.nanmax(values) - np.nanmin(values)) if len(values) else 0.0
    if not np.isfinite(span) or span <= 0:
        span = float(np.nanmax(np.abs(values))) if len(values) and np.isfinite(values).any() else 1.0
    return int(min(12, max(0, math.ceil(-math.log10(max(span, 1e-12) / 1e4)))))


def _with_gaps(values, gaps: np.ndarray, decimals: int | None = None) -> list:
    """``values`` as a JSON-ready list with None inserted at ``gaps`` and at the end (line breaks between runs);
    numbers are rounded to ``decimals`` when given, other items (customdata pairs) are kept."""
    if decimals is not None:
        out = np.insert(np.round(np.asarray(values, float), decimals), gaps, np.nan).tolist() + [None]
        return [None if v != v else v for v in out]
    out = [None] * (len(values) + len(gaps) + 1)
    keep = np.ones(len(out), bool)
    keep[gaps + np.arange(len(gaps))] = False
    keep[-1] = False
    for k, v in zip(np.flatnonzero(keep).tolist(), values, strict=True):
        out[k] = v
    return out


def current_point(df: pd.DataFrame, current, dims: int = 2) -> dict:
    """Coordinates of (run_id, frame) in ``df`` as {"x": [x], "y": [y](, "z": [z])}; empty lists if absent."""
    cols = list("xyz"[:dims])
    if current and df is not None and len(df):
        run_id, frame = current
        hit = df[(df["run_id"] == run_id) & (df["frame"] == int(frame))]
        if len(hit):
            return {c: [float(hit.iloc[0][c])] for c in cols}
    return {c: [] for c in cols}


# ------------------------------------------------------------ frame viewer
def _stride(side: int, limit: int) -> int:
    return max(1, math.ceil(side / limit))


def frame_figure(ref: np.ndarray, frame: np.ndarray, mask: np.ndarray, *, title: str = "") -> dict:
    """Reference, frame and RMS |frame − reference| heat-map side by side, the mask outlined on all three.

    Args:
        ref, frame: [H, W, 3] in [0, 1]; mask: [H, W] in [0, 1] (1 = region).
    Large images are subsampled (at most 256 px per image, 128 cells per heat-map side).  Returns a plain
    figure dict (``go.Figure(fig)`` to inspect it): the viewer draws one per frame while playing, and building
    it with plotly's figure objects (subplots, validation) took 40 ms of the server's time for each.
    """
    ref, frame, mask = np.asarray(ref, np.float32), np.asarray(frame, np.float32), np.asarray(mask, np.float32)
    if ref.shape != frame.shape or ref.ndim != 3 or mask.shape != ref.shape[:2]:
        raise ValueError(f"expected reference and frame [H, W, 3] and mask [H, W], got {ref.shape}, "
                         f"{frame.shape}, {mask.shape}")
    h, w = mask.shape
    s_img, s_map = _stride(max(h, w), MAX_IMAGE_SIDE), _stride(max(h, w), MAX_HEATMAP_SIDE)
    diff = np.sqrt(((frame - ref) ** 2).mean(-1))[::s_map, ::s_map]
    m = mask[::s_map, ::s_map]
    cx = (np.arange(m.shape[1]) * s_map + (s_map - 1) / 2).tolist()
    cy = (np.arange(m.shape[0]) * s_map + (s_map - 1) / 2).tolist()
    traces = [dict(type="image", source=png_data_uri(img[::s_img, ::s_img]), x0=(s_img - 1) / 2,
                   y0=(s_img - 1) / 2, dx=s_img, dy=s_img, hoverinfo="skip", name=name, xaxis=xa, yaxis=ya)
              for img, name, xa, ya in ((ref, "reference", "x", "y"), (frame, "frame", "x2", "y2"))]
    traces.append(dict(type="heatmap", z=np.round(diff, 4).tolist(), x=cx, y=cy, colorscale="Inferno", zmin=0,
                       zmax=max(float(diff.max()), 1e-6), name="difference", colorbar=dict(thickness=10, len=0.8),
                       hovertemplate="x %{x:.0f}, y %{y:.0f}: %{z:.3f}<extra></extra>", xaxis="x3", yaxis="y3"))
    outline = m.tolist()
    for col in ("", "2", "3"):
        traces.append(dict(type="contour", z=outline, x=cx, y=cy, showscale=False, hoverinfo="skip", name="mask",
                           contours=dict(start=0.5, end=0.5, size=1, coloring="lines"),
                           colorscale=[[0, MASK_COLOR], [1, MASK_COLOR]],  # "lines" colours by the scale
                           line=dict(color=MASK_COLOR, width=1.5), xaxis=f"x{col}", yaxis=f"y{col}"))
    layout = _frame_layout(h, w)
    layout.update(title=dict(text=title) if title else None, margin=dict(l=10, r=10, t=50 if title else 30, b=10))
    return {"data": traces, "layout": layout}


def _frame_layout(h: int, w: int) -> dict:
    """The frame viewer's layout for [h, w] images: three square panels with their titles (a fresh dict)."""
    import copy

    return copy.deepcopy(_frame_layout_cached(h, w))


@lru_cache(maxsize=16)
def _frame_layout_cached(h: int, w: int) -> dict:
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.04, subplot_titles=("reference", "frame",
                                                                                 "RMS difference"))
    for col in (1, 2, 3):
        fig.update_xaxes(visible=False, range=[-0.5, w - 0.5], row=1, col=col)
        fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor=f"x{'' if col == 1 else col}",
                         row=1, col=col)
    fig.update_layout(height=300, plot_bgcolor="white", showlegend=False, uirevision="frame")
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)  # plotly.js's own defaults, as the projection has them (8 KB less per frame)
    return layout


# -------------------------------------------------------- region comparison
def metric_bars(df: pd.DataFrame, metrics: list[str], colors: dict | None = None) -> dict | go.Figure:
    """Per region: mean of each metric over its runs (bar), std across references (error bar), runs (dots).

    Args:
        df: one row per run with columns run_id, region, reference and each metric.
    """
    metrics = [m for m in metrics if m in df.columns and df[m].notna().any()] if len(df) else []
    if not metrics:
        return message_figure("No metrics to compare: select runs that have metrics.", "Metrics by region")
    colors = colors or region_colors(df["region"].unique())
    traces = []
    for col, metric in enumerate(metrics, start=1):
        axes = dict(xaxis=f"x{col if col > 1 else ''}", yaxis=f"y{col if col > 1 else ''}")
        sub = df[df[metric].notna()]
        g = sub.groupby("region")[metric]
        st = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.count()})
        regions = list(st.index)
        traces.append(dict(type="bar", x=regions, y=st["mean"].tolist(), **axes, opacity=0.6, showlegend=False,
                           name=metric, marker=dict(color=[colors.get(r, "#888") for r in regions]),
                           error_y=dict(type="data", array=st["std"].tolist(), visible=True, color="#333"),
                           customdata=np.stack([st["std"], st["n"]], -1).tolist(),
                           hovertemplate="%{x}: %{y:.3f} ± %{customdata[0]:.3f} (%{customdata[1]} runs)"
                                         "<extra></extra>"))
        text = [f"{r}<br>{ref}" for r, ref in zip(sub["run_id"], sub["reference"], strict=True)] \
            if "reference" in sub else sub["run_id"].tolist()
        traces.append(dict(type="scatter", x=sub["region"].tolist(), y=sub[metric].tolist(), **axes, mode="markers",
                           showlegend=False, name="runs", marker=dict(color="#222", size=5), text=text,
                           hovertemplate="%{text}: %{y:.3f}<extra></extra>"))
    # A plain figure dict (figure objects validate and copy every point: 100 ms for 2 000 runs); tests check that
    # go.Figure accepts it.
    return {"data": traces, "layout": _bars_layout(tuple(metrics))}


def _bars_layout(metrics: tuple[str, ...]) -> dict:
    import copy

    return copy.deepcopy(_bars_layout_cached(metrics))


@lru_cache(maxsize=64)
def _bars_layout_cached(metrics: tuple[str, ...]) -> dict:
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics, horizontal_spacing=0.06)
    fig.update_layout(title="Metrics by region (bar: mean, error bar: std across references, dots: runs)",
                      margin=_MARGIN, height=340, plot_bgcolor="white", bargap=0.3)
    fig.update_yaxes(gridcolor="#eee")
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)  # plotly.js's own defaults, as the other figures of the page
    return layout


def layer_heatmap(profiles: pd.DataFrame) -> go.Figure:
    """Region × W+ layer heat-map of the mean share of change per layer.

    Args:
        profiles: long DataFrame run_id, region, layer, share (the shares of one run sum to 1); its
            ``attrs["note"]`` (a sample of runs, :func:`dashboards.data.layer_profiles`) goes into the title.
    """
    if profiles is None or not len(profiles):
        return message_figure("Select runs to see which layers carry each region.", "Layer profile")
    table = profiles.groupby(["region", "layer"])["share"].mean().unstack("layer").sort_index()
    fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=[str(c) for c in table.columns], y=list(table.index),
                               colorscale="Viridis", zmin=0, colorbar=dict(title="share", thickness=10),
                               hovertemplate="%{y}, layer %{x}: %{z:.1%}<extra></extra>"))
    note = f"; {profiles.attrs['note']}" if profiles.attrs.get("note") else ""
    fig.update_layout(title=dict(text=f"Layer profile<br><sup>share of Σ‖w_i[l] − w*[l]‖² per W+ layer{note}</sup>",
                                 x=0.01),
                      xaxis_title="W+ layer", margin=_MARGIN, height=320)
    return fig


def overlap_figure(mat: pd.DataFrame, k: int, baseline: float | None = None) -> go.Figure:
    """Square heat-map of subspace overlap in [0, 1] (0 = orthogonal), with the random baseline in the title."""
    if mat is None or not len(mat):
        return message_figure("Select runs to compare their subspaces.", "Subspace overlap")
    fig = go.Figure(go.Heatmap(z=mat.to_numpy(dtype=float), x=[str(c) for c in mat.columns],
                               y=[str(i) for i in mat.index], colorscale="Blues", zmin=0, zmax=1,
                               texttemplate="%{z:.2f}", colorbar=dict(thickness=10),
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    notes = [f"top-{k} PCA of w − w*"] + ([f"random ≈ {baseline:.3f}"] if baseline is not None else []) + (
        [mat.attrs["note"]] if mat.attrs.get("note") else [])
    fig.update_layout(title=dict(text=f"Subspace overlap (mean cos² of principal angles)<br><sup>{'; '.join(notes)}"
                                      "</sup>", x=0.01),
                      margin=_MARGIN, height=320, yaxis_autorange="reversed")
    return fig


def derived_figure(df: pd.DataFrame, metric: str = "locality") -> go.Figure:
    """Bars of ``metric`` for transfer and combination runs, labelled by kind and their sources' regions."""
    if df is None or not len(df) or metric not in df:
        return message_figure("No transfer or combination runs in the selection.", "Transfer and combination")
    colors = {"transfer": qualitative.D3[0], "combine": qualitative.D3[1]}
    fig = go.Figure()
    for kind, sub in df.groupby("kind", sort=True):
        label = [f"{k}: {s or r}" for k, s, r in zip(sub["kind"], sub["source_regions"], sub["region"], strict=True)]
        fig.add_trace(go.Bar(x=sub["run_id"], y=sub[metric], name=str(kind), marker_color=colors.get(kind),
                             text=label, hovertemplate="%{x}<br>%{text}: %{y:.3f}<extra></extra>"))
    fig.update_layout(title=f"Transfer and combination runs: {metric}", margin=_MARGIN, height=320,
                      plot_bgcolor="white", xaxis_showticklabels=len(df) <= 12, yaxis_gridcolor="#eee")
    return fig


# ------------------------------------------------------------- methods
def frontier_figure(table: pd.DataFrame) -> go.Figure:
    """Locality and semantic locality against strength, one line per method and region, from a method table
    (:func:`mgm_analysis.analysis.table.method_table`): the report's figure
    (:func:`mgm_analysis.analysis.table.fig_frontier`), or a message when the selection has no method runs."""
    from mgm_analysis.analysis.table import fig_frontier

    if table is None or not len(table) or "strength" not in table:
        return message_figure("Select discovered and baseline runs (mgm compare-methods) to compare methods.",
                              "Locality against strength")
    fig = fig_frontier(table)
    fig.update_layout(margin=_MARGIN, plot_bgcolor="white")
    return fig
