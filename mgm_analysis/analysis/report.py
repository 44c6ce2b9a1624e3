"""``mgm analyze``: metrics table, projections, region comparison and a self-contained HTML report.

Figures are built by plain functions (``fig_*``) that the dashboard reuses.
"""

from __future__ import annotations

import base64
import io
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import catalog, iter_runs, to_uint8
from .compare import layer_profiles, overlap_matrix, region_overlap_summary
from .projection import project

__all__ = ["analyze", "load_runs", "fig_projection", "fig_metric_bars", "fig_layer_heatmap", "fig_overlap",
           "SUMMARY_METRICS"]

SUMMARY_METRICS = ["locality", "semantic_locality", "inside_rms", "outside_change", "jump_ratio", "step_cv",
                   "image_step_cv", "curvature", "perceptual_straightness", "intrinsic_dim_90"]


def load_runs(root) -> pd.DataFrame:
    """The run catalog of a store: one row per run (see :func:`mgm_analysis.store.catalog`)."""
    return catalog(root)


# ------------------------------------------------------------------ figures
def fig_projection(df: pd.DataFrame, title: str = "Joint projection", highlight: str | None = None):
    """One line per run in frame order, coloured by region; 3-D when the frame has a ``z`` column."""
    import plotly.express as px
    import plotly.graph_objects as go

    fig = go.Figure()
    if df.empty:
        fig.update_layout(title="no runs to project")
        return fig
    palette = px.colors.qualitative.Plotly
    colours = {r: palette[i % len(palette)] for i, r in enumerate(sorted(df.region.unique()))}
    three_d = "z" in df.columns
    shown = set()
    for run_id, g in df.groupby("run_id", sort=False):
        g = g.sort_values("frame")
        region = g.region.iloc[0]
        common = dict(mode="lines+markers", name=region, legendgroup=region, showlegend=region not in shown,
                      customdata=np.stack([g.run_id, g.frame], axis=1),
                      hovertemplate=f"{run_id}<br>frame %{{customdata[1]}}<extra>{region}</extra>",
                      line=dict(color=colours[region], width=4 if run_id == highlight else 2),
                      marker=dict(size=3 if three_d else 5))
        shown.add(region)
        if three_d:
            fig.add_trace(go.Scatter3d(x=g.x, y=g.y, z=g.z, **common))
        else:
            fig.add_trace(go.Scatter(x=g.x, y=g.y, **common))
    fig.update_layout(title=title, legend_title="region", margin=dict(l=10, r=10, t=40, b=10))
    return fig


def fig_metric_bars(cat: pd.DataFrame, metrics=("locality", "semantic_locality", "jump_ratio", "step_cv")):
    """Mean of each metric per region with the spread (std) across runs as error bars."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    metrics = [m for m in metrics if m in cat.columns]
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=metrics)
    if cat.empty or not metrics:
        fig.update_layout(title="no metrics")
        return fig
    for k, m in enumerate(metrics):
        g = cat.groupby("region")[m].agg(["mean", "std", "count"]).reset_index()
        fig.add_trace(go.Bar(x=g.region, y=g["mean"], error_y=dict(type="data", array=g["std"].fillna(0)),
                             name=m, showlegend=False, hovertemplate="%{x}: %{y:.3f}<extra>" + m + "</extra>"),
                      row=1, col=k + 1)
    fig.update_layout(title="Metrics by region (mean ± std across runs)", margin=dict(l=10, r=10, t=60, b=10))
    return fig


def fig_layer_heatmap(lp: pd.DataFrame):
    """Regions × W+ layers: mean share of the change energy per layer."""
    import plotly.graph_objects as go

    if lp.empty:
        return go.Figure().update_layout(title="no layer profiles")
    piv = lp.groupby(["region", "layer"])["share"].mean().unstack("layer").fillna(0)
    fig = go.Figure(go.Heatmap(z=piv.values, x=[f"L{c}" for c in piv.columns], y=list(piv.index),
                               colorscale="Viridis", colorbar=dict(title="share"),
                               hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title="Which W+ layers carry each region", margin=dict(l=10, r=10, t=40, b=10))
    return fig


def fig_overlap(M: pd.DataFrame, labels: dict | None = None):
    """Subspace-overlap matrix between runs (0 = orthogonal, 1 = the same directions)."""
    import plotly.graph_objects as go

    if M.empty:
        return go.Figure().update_layout(title="no runs to compare")
    names = [labels.get(i, i) if labels else i for i in M.index]
    fig = go.Figure(go.Heatmap(z=M.values, x=names, y=names, zmin=0, zmax=1, colorscale="Magma",
                               colorbar=dict(title="overlap"), hovertemplate="%{y}<br>%{x}<br>%{z:.3f}<extra></extra>"))
    base = M.attrs.get("random_baseline")
    fig.update_layout(title=f"Subspace overlap (random baseline {base:.3g})" if base is not None else "Subspace overlap",
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _png_b64(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _frame_strip(run, k: int = 8, scale: int = 2) -> str:
    frames = run.frames
    idx = np.unique(np.linspace(0, len(frames) - 1, min(k, len(frames))).round().astype(int))
    strip = np.concatenate([run.reference_img] + [frames[i] for i in idx], axis=1)
    strip = np.kron(strip, np.ones((scale, scale, 1)))
    return f'<div><b>{run.run_id}</b> ({run.region})<br><img src="data:image/png;base64,{_png_b64(strip)}"></div>'


# ------------------------------------------------------------------ analyze
def analyze(root, out, *, umap: bool = False, k: int = 3, quiet: bool = False) -> dict:
    """Write metrics (CSV + Parquet), projections, comparisons and ``report.html`` for a store; return the paths."""
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list(iter_runs(root))
    for w in caught:
        print(f"warning: {w.message}")
    cat = catalog(root, warn=False)
    paths = {}
    cat.to_csv(out / "metrics.csv", index=False)
    cat.to_parquet(out / "metrics.parquet", index=False)
    paths["metrics"] = out / "metrics.csv"
    discovered = [r for r in runs if (r.meta.get("provenance") or {}).get("kind", "discover") == "discover"]
    figs, tables = [], []
    if discovered:
        proj = project(discovered, "pca", "w_free", cache_dir=root / ".mgm_cache")
        proj.to_csv(out / "projection_pca.csv", index=False)
        paths["projection_pca"] = out / "projection_pca.csv"
        figs.append(fig_projection(proj, "PCA of the free W+ layers, all runs fitted jointly"))
        if umap:
            pu = project(discovered, "umap", "w_free", cache_dir=root / ".mgm_cache")
            pu.to_csv(out / "projection_umap.csv", index=False)
            paths["projection_umap"] = out / "projection_umap.csv"
            figs.append(fig_projection(pu, "UMAP of the free W+ layers"))
        dcat = cat[cat.kind == "discover"]
        figs.append(fig_metric_bars(dcat))
        lp = layer_profiles(discovered)
        lp.to_csv(out / "layer_profiles.csv", index=False)
        figs.append(fig_layer_heatmap(lp))
        M = overlap_matrix(discovered, k)
        M.to_csv(out / "overlap.csv")
        paths["overlap"] = out / "overlap.csv"
        figs.append(fig_overlap(M, {r.run_id: f"{r.region} · {r.meta.get('reference', {}).get('seed')}" for r in discovered}))
        summ = region_overlap_summary(discovered, k)
        summ.to_csv(out / "overlap_by_pair.csv", index=False)
        tables.append(("Subspace overlap: same region vs different regions "
                       f"(random baseline {M.attrs.get('random_baseline', float('nan')):.3g})", summ))
    others = cat[cat.kind != "discover"] if not cat.empty else cat
    if not others.empty:
        cols = [c for c in ["run_id", "kind", "region", "reference", "locality", "union_locality", "a_change_in_b",
                            "b_change_in_a", "a_alone_inside_a", "b_alone_inside_b"] if c in others.columns]
        tables.append(("Transfer and combination runs", others[cols]))
    summary_cols = [c for c in ["run_id", "kind", "region", "reference", "status"] + SUMMARY_METRICS if c in cat.columns]
    html = _html(cat[summary_cols] if not cat.empty else cat, figs, tables, runs[:60])
    (out / "report.html").write_text(html)
    paths["report"] = out / "report.html"
    if not quiet:
        print(_terminal_table(cat[summary_cols] if not cat.empty else cat))
        print(f"analysed {len(runs)} runs in {time.perf_counter() - t0:.1f} s -> {out}/report.html")
    return paths


def _terminal_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "no runs: make some with `mgm discover` or `mgm demo`"
    cols = [c for c in ["run_id", "region", "locality", "semantic_locality", "inside_rms", "jump_ratio", "step_cv"]
            if c in df.columns]
    return df[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}", max_colwidth=44)


def _html(summary: pd.DataFrame, figs, tables, runs) -> str:
    parts = ["<html><head><meta charset='utf-8'><title>mgm_analysis report</title>",
             "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px} img{image-rendering:pixelated}</style></head><body>",
             "<h1>mgm_analysis report</h1>"]
    if summary.empty:
        parts.append("<p>No runs in this store. Make some with <code>mgm discover</code> or <code>mgm demo</code>.</p>")
    else:
        parts.append("<h2>Runs and metrics</h2>" + summary.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    for title, df in tables:
        parts.append(f"<h2>{title}</h2>" + df.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
    if runs:
        parts.append("<h2>Frame strips (reference, then frames)</h2>")
        for r in runs:
            try:
                parts.append(_frame_strip(r))
            except Exception as exc:  # a run without frames still gets its row above
                parts.append(f"<p>{r.run_id}: no frames ({json.dumps(str(exc))})</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
