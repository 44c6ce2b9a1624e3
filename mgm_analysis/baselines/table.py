"""The method table: discovered manifolds beside the baselines, method × region (pandas only, no torch).

A run's *method* is ``discovery`` for a discovered run, ``provenance.method``
for a baseline, and its source's method for a transfer run (whose
``transfer_locality`` then counts for that method).  ``seconds`` is the wall
time of making one run: ``timings.total_s`` of a discovery, ``timings.baseline_s``
of a baseline (search, oracle choice, scaling, rendering, writing);
``cpu_seconds`` the process CPU time of making it (``timings.cpu_s``, written by
``mgm compare-methods``), which a machine shared with other work inflates less.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import run_kind, run_method

__all__ = ["TABLE_METRICS", "run_methods", "method_table", "fig_methods", "METHOD_ORDER"]

#: the columns of the table, in order (mean over the runs of each method × region)
TABLE_METRICS = ["locality", "semantic_locality", "semantic_locality_shipped", "outside_change", "inside_rms",
                 "jump_ratio", "image_step_cv", "transfer_locality", "seconds", "cpu_seconds"]
METHOD_ORDER = ["discovery", "jacobian", "interfacegan", "interfacegan_cond", "ganspace", "sefa"]


def _meta(path) -> dict:
    try:
        return json.loads((Path(path) / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def run_methods(cat: pd.DataFrame) -> pd.DataFrame:
    """The catalog with ``method``, ``source`` and ``seconds`` columns (read from each run's run.json)."""
    cat = cat.copy()
    if cat.empty:
        return cat.assign(method=[], source=[], seconds=[], cpu_seconds=[])
    metas = {r: _meta(p) for r, p in zip(cat.run_id, cat.path, strict=True)}
    by_name = {}
    for r, m in metas.items():
        by_name[r] = run_method(m)
    method, source, seconds, cpu = [], [], [], []
    for r in cat.run_id:
        m = metas[r]
        prov = m.get("provenance") or {}
        kind = run_kind(m)
        t = m.get("timings") or {}
        if kind == "transfer":
            src = (prov.get("sources") or [None])[0]
            src_id = Path(src).name if src else None
            method.append(by_name.get(src_id))
            source.append(src_id)
            seconds.append(np.nan)
            cpu.append(np.nan)
        else:
            method.append(by_name.get(r))
            source.append(None)
            s = t.get("baseline_s") if kind == "baseline" else t.get("total_s")
            seconds.append(float(s) if isinstance(s, (int, float)) else np.nan)
            cpu.append(float(t["cpu_s"]) if isinstance(t.get("cpu_s"), (int, float)) else np.nan)
    return cat.assign(method=method, source=source, seconds=seconds, cpu_seconds=cpu)


def method_table(cat: pd.DataFrame) -> pd.DataFrame:
    """One row per method × region: the mean of :data:`TABLE_METRICS` over its runs, with the run count.

    Rows are the discovered and baseline runs (regions of single presets); ``transfer_locality`` is the mean over
    the transfer runs made from that method's runs.  Empty when the store has no baseline run.
    """
    if cat.empty or "kind" not in cat or not (cat.kind == "baseline").any():
        return pd.DataFrame(columns=["method", "region", "runs", *TABLE_METRICS])
    c = run_methods(cat)
    own = c[c.kind.isin(["discover", "baseline"]) & c.method.notna() & (c.status == "complete")]
    cols = [m for m in TABLE_METRICS if m in own.columns and m != "transfer_locality"]
    g = own.groupby(["method", "region"])
    out = g[cols].mean()
    out.insert(0, "runs", g.size())
    tr = c[(c.kind == "transfer") & c.method.notna()]
    if not tr.empty and "transfer_locality" in tr:
        out["transfer_locality"] = tr.groupby(["method", "region"])["transfer_locality"].mean()
    out = out.reset_index()
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    out["_o"] = out.method.map(lambda m: order.get(m, len(order)))
    out = out.sort_values(["region", "_o", "method"]).drop(columns="_o").reset_index(drop=True)
    return out[["method", "region", "runs", *[m for m in TABLE_METRICS if m in out.columns]]]


def fig_methods(table: pd.DataFrame, runs: pd.DataFrame | None = None):
    """Locality against semantic locality, one marker per run (colour = method, symbol = region), the
    method × region means as large markers: the upper-right corner is local in pixels and in factors."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if table.empty:
        return fig.update_layout(title="no baseline runs in this store")
    import plotly.express as px

    palette = px.colors.qualitative.D3
    methods = sorted(table.method.unique(), key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))
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
    for m in methods:
        tm = table[table.method == m]
        fig.add_trace(go.Scatter(
            x=tm.locality, y=tm[ycol] if ycol else tm.locality * 0, mode="markers+text", name=m, legendgroup=m,
            marker=dict(color=colour[m], size=16, symbol=[sym.get(r, "circle") for r in tm.region],
                        line=dict(color="black", width=1)),
            text=list(tm.region), textposition="top center",
            hovertemplate="%{text}: locality %{x:.3f}, semantic %{y:.3f}<extra>" + m + " (mean)</extra>"))
    fig.update_layout(title="Methods at equal strength: locality (pixels) vs semantic locality (factors); "
                            "large = mean per region, small = runs",
                      xaxis_title="locality (share of change inside the region)",
                      yaxis_title="semantic locality (independent reader)" if ycol else "",
                      legend_title="method", height=520, margin=dict(l=10, r=10, t=60, b=10))
    return fig
