"""The method table: discovered manifolds beside the baselines, method × region × strength (pandas only, no torch).

A run's *method* is ``discovery`` for a discovered run, ``provenance.method``
for a baseline, and its source's method for a transfer run (whose
``transfer_locality`` then counts for that method).  Its *strength* is the
multiple K of the region's target offset c it was made at
(:func:`mgm_analysis.store.run_strength`; a transfer run has its source's; a run
without one recorded — made by ``mgm discover``, or before strengths existed —
counts as 1).  ``seconds`` is the wall time of making one run:
``timings.total_s`` of a discovery, ``timings.baseline_s`` of a baseline (search,
oracle choice, scaling, rendering, writing); ``cpu_seconds`` the process CPU
time of making it (``timings.cpu_s``, written by ``mgm compare-methods``), which
a machine shared with other work inflates less.
"""

from __future__ import annotations

import pandas as pd

from ..catalog import metas_of, run_extras
from ..finders.registry import method_order
from ..metrics import metric_names
from ..store import run_kind, run_method, run_strength

# TABLE_METRICS, METHOD_ORDER: read from the registries at each use (the module's __getattr__, below)
__all__ = ["TABLE_METRICS", "table_metrics", "TABLE_NOTES", "run_methods", "method_table",  # noqa: F822
           "fig_methods", "fig_frontier", "METHOD_ORDER"]

#: TABLE_METRICS, the columns of the table in order (mean over the runs of each method × region × strength), is the
#: metric registry's "table" view (:func:`mgm_analysis.metrics.metric_names`: locality in pixels and in factors,
#: then extent — spread, inside path: a point-like method shows here — and realism, then the rest, then any metric
#: registered since), and the time it took to make a run
TIMING_COLUMNS = ["seconds", "cpu_seconds"]


def table_metrics() -> list[str]:
    """The method table's metric columns, in order: the registry's table view, then seconds and CPU seconds."""
    return [*metric_names("table"), *TIMING_COLUMNS]

#: what the table's rows compare, for its readers (the report's methods section, the dashboard)
TABLE_NOTES = (
    "Mean per method, region and strength K. Equal strength: every path's mean inside distance on the frames as "
    "saved (clamped to the display range) is K·c, c the region's target offset. Baselines are straight lines "
    "through the reference (unsupervised methods keep the best-locality component of their top 10: an oracle); "
    "jacobian_loop is the ellipse in the plane of the two best masked-Jacobian directions. Equal extent: "
    "jacobian_loop is cut to the arc whose inside path equals the discovered run's of the same face, region and "
    "K (the whole loop when there is none or it is longer); the lines' extent is fixed by their shape (spread "
    "≈ 2, inside path ≈ 4). spread: largest distance between two frames inside the region / largest distance "
    "to the reference (0 = one edit, 2 = opposite edits); inside_path: the chain's length inside the region / "
    "its mean distance to the reference; realism: worst frame's realism error / the generator's own 95th "
    "percentile (≤ 1 good). semantic_locality: independent second reader; _shipped: the regressor the generator "
    "was tuned against. seconds: wall time per run; cpu_seconds: process CPU time.")


def run_methods(cat: pd.DataFrame) -> pd.DataFrame:
    """The catalog with ``method``, ``source``, ``seconds``, ``cpu_seconds`` and ``strength`` columns, from each
    run's metadata as the store's catalog holds it (:mod:`mgm_analysis.catalog`: run.json is not read again)."""
    cat = cat.copy()
    if cat.empty:
        return cat.assign(method=[], source=[], seconds=[], cpu_seconds=[], strength=[])
    by_path = metas_of(cat.path)
    metas = {r: by_path.get(str(p), {}) for r, p in zip(cat.run_id, cat.path, strict=True)}
    by_name = {r: run_method(m) for r, m in metas.items()}
    strength_of = {r: run_strength(m) or 1.0 for r, m in metas.items()}
    method, source, seconds, cpu, strength = [], [], [], [], []
    for r in cat.run_id:
        m = metas[r]
        extra = run_extras(m)
        if run_kind(m) == "transfer":
            src_id = extra["source"]
            method.append(by_name.get(src_id))
            source.append(src_id)
            strength.append(strength_of.get(src_id, 1.0))
        else:
            method.append(by_name.get(r))
            source.append(None)
            strength.append(strength_of[r])
        seconds.append(extra["seconds"])
        cpu.append(extra["cpu_seconds"])
    return cat.assign(method=method, source=source, seconds=seconds, cpu_seconds=cpu, strength=strength)


KEYS = ["method", "region", "strength"]


def __getattr__(name):
    if name == "METHOD_ORDER":  # the rows' order: discovery, then every registered method by its declared order
        return method_order()
    if name == "TABLE_METRICS":
        return table_metrics()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _method_rank(m) -> tuple:
    order = method_order()
    return (order.index(m) if m in order else len(order), str(m))


def method_table(cat: pd.DataFrame) -> pd.DataFrame:
    """One row per method × region × strength: the mean of :func:`table_metrics` over its runs, with the run count.

    Rows are the discovered and baseline runs (regions of single presets); ``transfer_locality`` is the mean over
    the transfer runs made from that method's runs (at their strength).  Sorted by region, strength, then method
    (:data:`METHOD_ORDER`: discovery, then the method registry's order; a method no longer registered last).
    Empty when the store has no baseline run.
    """
    metrics = table_metrics()
    if cat.empty or "kind" not in cat or not (cat.kind == "baseline").any():
        return pd.DataFrame(columns=[*KEYS, "runs", *metrics])
    c = run_methods(cat)
    own = c[c.kind.isin(["discover", "baseline"]) & c.method.notna() & (c.status == "complete")]
    cols = [m for m in metrics if m in own.columns and m != "transfer_locality"]
    g = own.groupby(KEYS)
    out = g[cols].mean()
    out.insert(0, "runs", g.size())
    tr = c[(c.kind == "transfer") & c.method.notna()]
    if not tr.empty and "transfer_locality" in tr:
        out["transfer_locality"] = tr.groupby(KEYS)["transfer_locality"].mean()
    out = out.reset_index()
    order = {m: i for i, m in enumerate(method_order())}
    out["_o"] = out.method.map(lambda m: order.get(m, len(order)))
    out = out.sort_values(["region", "strength", "_o", "method"]).drop(columns="_o").reset_index(drop=True)
    return out[[*KEYS, "runs", *[m for m in metrics if m in out.columns]]]


def fig_methods(table: pd.DataFrame, runs: pd.DataFrame | None = None):
    """Locality against semantic locality, one marker per run (colour = method, symbol = region), the
    method × region means as large markers: the upper-right corner is local in pixels and in factors."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if table.empty:
        return fig.update_layout(title="no baseline runs in this store")
    import plotly.express as px

    palette = px.colors.qualitative.D3
    methods = sorted(table.method.unique(), key=_method_rank)
    colour = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
    symbols = ["circle", "square", "diamond", "triangle-up", "cross", "x"]
    regions = sorted(table.region.unique())
    sym = {r: symbols[i % len(symbols)] for i, r in enumerate(regions)}
    ycol = "semantic_locality" if "semantic_locality" in table and table.semantic_locality.notna().any() else None
    if runs is not None and not runs.empty:
        d = runs[runs.kind.isin(["discover", "baseline"]) & runs.method.isin(methods)]
        for m in methods:
            dm = d[d.method == m]
            if dm.empty:
                continue
            fig.add_trace(go.Scatter(
                x=dm.locality, y=dm[ycol] if ycol else dm.locality * 0, mode="markers", name=m, legendgroup=m,
                showlegend=False, opacity=0.45,
                marker=dict(color=colour[m], size=7, symbol=[sym.get(r, "circle") for r in dm.region]),
                text=[f"{r} · {rid}" for r, rid in zip(dm.region, dm.run_id, strict=True)],
                hovertemplate="%{text}<br>locality %{x:.3f}<br>semantic %{y:.3f}<extra>" + m + "</extra>"))
    several = "strength" in table and table.strength.nunique() > 1
    for m in methods:
        tm = table[table.method == m]
        label = [f"{r} ×{k:g}" for r, k in zip(tm.region, tm.strength, strict=True)] if several else list(tm.region)
        fig.add_trace(go.Scatter(
            x=tm.locality, y=tm[ycol] if ycol else tm.locality * 0, mode="markers+text", name=m, legendgroup=m,
            marker=dict(color=colour[m], size=16, symbol=[sym.get(r, "circle") for r in tm.region],
                        line=dict(color="black", width=1)),
            text=label, textposition="top center",
            hovertemplate="%{text}: locality %{x:.3f}, semantic %{y:.3f}<extra>" + m + " (mean)</extra>"))
    fig.update_layout(title="Methods at equal strength: locality (pixels) vs semantic locality (factors); "
                            "large = mean per region" + (" and strength" if several else "") + ", small = runs",
                      xaxis_title="locality (share of change inside the region)",
                      yaxis_title="semantic locality (independent reader)" if ycol else "",
                      legend_title="method", height=520, margin=dict(l=10, r=10, t=60, b=10))
    return fig


#: the frontier figure's panels: (column, axis title)
FRONTIER_METRICS = [("locality", "locality (pixels)"), ("semantic_locality", "semantic locality (factors)")]


def fig_frontier(table: pd.DataFrame):
    """Locality and semantic locality against strength K (log₂ axis), one line per method and region (colour =
    method, dash and marker = region; hover: spread and inside path too): how each method's locality holds up as
    the edit grows.  A panel whose column the table lacks (no semantic reader) is left out."""
    import plotly.express as px
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = [(c, t) for c, t in FRONTIER_METRICS if c in table and table[c].notna().any()] if len(table) else []
    if not panels or "strength" not in table:
        return go.Figure().update_layout(title="no method runs to draw against strength")
    palette = px.colors.qualitative.D3
    methods = sorted(table.method.unique(), key=_method_rank)
    colour = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
    regions = sorted(table.region.unique())
    dashes, symbols = ["solid", "dash", "dot", "dashdot", "longdash"], ["circle", "square", "diamond", "triangle-up"]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t in panels], horizontal_spacing=0.08)
    extra = [c for c in ("spread", "inside_path") if c in table]
    for col, (metric, _) in enumerate(panels, start=1):
        for m in methods:
            for i, r in enumerate(regions):
                d = table[(table.method == m) & (table.region == r)].sort_values("strength")
                d = d[d[metric].notna()]
                if d.empty:
                    continue
                fig.add_trace(go.Scatter(
                    x=d.strength.tolist(), y=d[metric].tolist(), mode="lines+markers", name=f"{m} · {r}",
                    legendgroup=f"{m} · {r}", showlegend=col == 1,
                    line=dict(color=colour[m], dash=dashes[i % len(dashes)], width=2),
                    marker=dict(color=colour[m], symbol=symbols[i % len(symbols)], size=8),
                    customdata=d[extra].to_numpy().tolist() if extra else None,
                    hovertemplate=f"{m} · {r}<br>strength ×%{{x:g}}: {metric} %{{y:.3f}}"
                                  + "".join(f"<br>{c} %{{customdata[{j}]:.2f}}" for j, c in enumerate(extra))
                                  + "<extra></extra>"),
                    row=1, col=col)
        fig.update_xaxes(type="log", title_text="strength K (target K·c)", tickvals=sorted(table.strength.unique()),
                         ticktext=[f"×{k:g}" for k in sorted(table.strength.unique())], row=1, col=col)
        fig.update_yaxes(title_text=panels[col - 1][1], row=1, col=col)
    fig.update_layout(title="Locality against strength: one line per method and region (equal strength K·c at "
                            "every point)", legend_title="method · region", height=460,
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig
