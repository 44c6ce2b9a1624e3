"""Tables, figures and the self-contained HTML report of ``mgm analyze`` (no torch unless transfer is asked for).

Notebook use::

    from mgm_analysis.analysis import load_runs, project, overlap_matrix, report
    cat = load_runs("runs/")                               # one row per run, metrics as columns
    report.fig_projection(project("runs/")).show()         # joint PCA, one line per run
    report.fig_overlap(overlap_matrix(report.runs_of("runs/"))).show()

Every ``fig_*`` function takes a DataFrame and returns a plotly figure;
:func:`analyze` writes all of them, plus CSV/Parquet tables, to a folder.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__, store
from ..catalog import column_of
from ..errors import MGMError
from ..finders.registry import method_problems
from ..metrics import metric_names, metric_problems, registered_metrics
from ..presets import region_colors
from ..render import draw_outline
from ..store import (
    Run,
    RunSkippedWarning,
    catalog,
    catalog_of,
    iter_runs,
    png_data_uri,
    run_kind,
)
from .compare import reference_label
from .scale import MATRIX_RUNS, _dask, measure, read_runs

__all__ = ["analyze", "load_runs", "runs_of", "region_summary", "transfer_table", "combine_table", "headline",  # noqa: F822
           "fig_projection", "fig_metric_bars", "fig_layer_heatmap", "fig_overlap", "frame_strip",
           "SUMMARY_METRICS"]  # SUMMARY_METRICS: read from the metric registry at each use (__getattr__, below)

#: SUMMARY_METRICS (the metrics shown in summaries, in order; those a store lacks are left out) and BAR_METRICS (the
#: bar figure's) are the metric registry's "summary" and "bars" views (:func:`mgm_analysis.metrics.metric_names`),
#: read at each use: a metric registered later (a plugin, a notebook) is in them
_VIEWS = {"SUMMARY_METRICS": "summary", "BAR_METRICS": "bars"}


def __getattr__(name):
    if name in _VIEWS:
        return metric_names(_VIEWS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: the names of the files :func:`analyze` writes (tables as CSV and Parquet, the HTML); an earlier report's files
#: of these names are replaced, any other file in the folder (the user's) is kept
REPORT_FILE = re.compile(r"(report\.html|(metrics|regions|projection_\w+|layer_profiles|overlap|overlap_summary|"
                         r"transfer|combine|methods)\.(csv|parquet))")


# -------------------------------------------------------------------- tables
def load_runs(root) -> pd.DataFrame:
    """The run catalog of a store: one row per run, every scalar metric a column (:func:`mgm_analysis.store.catalog`)."""
    return catalog(root)


def runs_of(root, kind: str | None = "discover") -> list[Run]:
    """The readable runs of a store (only those of provenance ``kind`` unless None), sorted by id."""
    return [r for r in iter_runs(root, warn=False) if kind is None or run_kind(r.meta) == kind]


def region_summary(cat: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """Mean of each metric (default: the registry's summary metrics) per region over the discovered runs, with the
    run count."""
    metrics = metric_names("summary") if metrics is None else metrics
    if cat.empty:
        return pd.DataFrame(columns=["region", "runs"])
    d = cat[cat.kind == "discover"] if "kind" in cat else cat
    cols = [m for m in metrics if m in d.columns]
    g = d.groupby("region")
    out = g[cols].mean() if cols else pd.DataFrame(index=g.size().index)
    out.insert(0, "runs", g.size())
    return out.reset_index()


def transfer_table(cat: pd.DataFrame) -> pd.DataFrame:
    """One row per transfer run: source region and run, target reference, locality there and on the source."""
    cols = ["run_id", "region", "reference", "transfer_locality", "source_locality", "semantic_locality",
            "outside_change", "inside_rms", "source"]
    t = cat[cat.kind == "transfer"].copy() if "kind" in cat and not cat.empty else pd.DataFrame()
    if t.empty:
        return pd.DataFrame(columns=cols)
    t["source"] = t.run_id.map(_sources(t))
    return t[[c for c in cols if c in t.columns]].reset_index(drop=True)


def combine_table(cat: pd.DataFrame) -> pd.DataFrame:
    """One row per combined pair: locality on the union of masks, cross-region change, interference."""
    cols = ["run_id", "region", "reference", "combined_locality", "semantic_locality", "a_change_in_a",
            "a_change_in_b", "b_change_in_b", "b_change_in_a", "interference_a", "interference_b", "source"]
    t = cat[cat.kind == "combine"].copy() if "kind" in cat and not cat.empty else pd.DataFrame()
    if t.empty:
        return pd.DataFrame(columns=cols)
    t["source"] = t.run_id.map(_sources(t))
    return t[[c for c in cols if c in t.columns]].reset_index(drop=True)


def _sources(t: pd.DataFrame) -> dict:
    """run_id -> its sources, " + "-joined, from the store's catalog (run.json is not read again)."""
    got = column_of(t.path, "sources")
    return {r: got.get(str(p)) or "" for r, p in zip(t.run_id, t.path, strict=True)}


# ------------------------------------------------------------------- figures
HTML_RUNS = 2000  # the report's runs table lists at most this many (metrics.csv has every run)
#: the projection figures draw at most this many runs (a seeded sample, said in the title); the tables hold all
FIGURE_RUNS = 1000


def fig_projection(df: pd.DataFrame, title: str = "Joint projection of all runs"):
    """One line per run through its frames in order, coloured by region; 3-D when ``df`` has a ``z`` column.

    The first frame of each run is drawn as a diamond.  One trace per region (runs apart by gaps), and at most
    :data:`FIGURE_RUNS` runs (a seeded sample, said in the title), so that a store of 10 000 runs draws at once.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    if df.empty:
        return fig.update_layout(title="no runs to project")
    colours, evr = region_colors(df.region), df.attrs.get("explained_variance_ratio")
    three_d = "z" in df.columns
    ids = pd.unique(df.run_id)
    if len(ids) > FIGURE_RUNS:
        keep = set(ids[np.sort(np.random.default_rng(0).choice(len(ids), FIGURE_RUNS, replace=False))])
        df = df[df.run_id.isin(keep)]
        title += f" — {FIGURE_RUNS} of {len(ids)} runs drawn"
    df = df.sort_values(["run_id", "frame"], kind="stable")
    for region, g in df.groupby("region", sort=True):
        region = str(region)
        first = g.frame.to_numpy() == g.groupby("run_id").frame.transform("min").to_numpy()
        gap = np.r_[first[1:], True]  # a gap (None) after each run's last frame
        def col(c, g=g, gap=gap):
            return np.insert(g[c].to_numpy(dtype=float), np.flatnonzero(gap) + 1, np.nan)
        text = np.insert(np.array([f"{r}<br>frame {f}" for r, f in zip(g.run_id, g.frame, strict=True)],
                                  dtype=object), np.flatnonzero(gap) + 1, "")
        size = np.insert(np.where(first, 7, 4), np.flatnonzero(gap) + 1, 0)
        symbol = np.insert(np.where(first, "diamond", "circle").astype(object), np.flatnonzero(gap) + 1, "circle")
        common = dict(mode="lines+markers", name=region, legendgroup=region, text=text,
                      hovertemplate="%{text}<extra>" + region + "</extra>", line=dict(color=colours[region], width=2),
                      marker=dict(size=size if not three_d else 3, symbol=symbol), connectgaps=False)
        if three_d:
            common.pop("connectgaps")
            fig.add_trace(go.Scatter3d(x=col("x"), y=col("y"), z=col("z"), **common))
        else:
            fig.add_trace(go.Scatter(x=col("x"), y=col("y"), **common))
    if evr:
        title += f" (explained variance {', '.join(f'{v:.0%}' for v in evr)})"
    fig.update_layout(title=title, legend_title="region", margin=dict(l=10, r=10, t=50, b=10), height=520)
    return fig


def fig_metric_bars(cat: pd.DataFrame, metrics=None):
    """Mean of each metric (default: the registry's bar metrics) per region (discovered runs), error bars = std
    across runs; one panel per metric."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = metric_names("bars") if metrics is None else metrics
    d = cat[cat.kind == "discover"] if "kind" in cat and not cat.empty else cat
    metrics = [m for m in metrics if m in d.columns and d[m].notna().any()]
    if d.empty or not metrics:
        return go.Figure().update_layout(title="no metrics to show")
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=metrics)
    colours = region_colors(d.region)
    for k, m in enumerate(metrics):
        g = d.groupby("region")[m].agg(["mean", "std"]).reset_index()
        fig.add_trace(go.Bar(x=g.region, y=g["mean"], error_y=dict(type="data", array=g["std"].fillna(0)),
                             marker_color=[colours[r] for r in g.region], showlegend=False,
                             hovertemplate="%{x}: %{y:.3f}<extra>" + m + "</extra>"),
                      row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(title="Metrics by region (mean ± std over runs)", height=280 * rows,
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def fig_layer_heatmap(lp: pd.DataFrame):
    """Regions × W+ layers: the mean share of each layer in the runs' change (from :func:`layer_profiles`)."""
    import plotly.graph_objects as go

    if lp.empty:
        return go.Figure().update_layout(title="no layer profiles")
    piv = lp.groupby(["region", "layer"])["share"].mean().unstack("layer").fillna(0)
    fig = go.Figure(go.Heatmap(z=piv.values, x=[f"L{c}" for c in piv.columns], y=list(piv.index), zmin=0,
                               colorscale="Viridis", colorbar=dict(title="share"),
                               hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title="Which W+ layers carry each region (share of Σ‖w_i − w*‖²)",
                      margin=dict(l=10, r=10, t=50, b=10), height=120 + 40 * len(piv))
    return fig


#: above this many runs the overlap figure shows the region x region means (the run x run matrix stays in the CSV)
MAX_OVERLAP_FIGURE_RUNS = 300


def fig_overlap(M: pd.DataFrame):
    """Subspace-overlap matrix between runs (0 = orthogonal, 1 = the same directions), labelled region · reference."""
    import plotly.graph_objects as go

    if M.empty:
        return go.Figure().update_layout(title="no runs to compare")
    regions, refs = M.attrs.get("regions", {}), M.attrs.get("references", {})
    if len(M) > MAX_OVERLAP_FIGURE_RUNS:  # a run x run heat-map of thousands of runs is unreadable (and huge)
        from .compare import region_average

        R = region_average(M, {i: str(regions.get(i, "?")) for i in M.index})
        fig = go.Figure(go.Heatmap(z=R.values, x=list(R.columns), y=list(R.index), zmin=0, zmax=1,
                                   colorscale="Magma", colorbar=dict(title="overlap"),
                                   hovertemplate="%{y} · %{x}<br>mean overlap %{z:.3f}<extra></extra>"))
        fig.update_layout(title=f"Mean subspace overlap per pair of regions ({len(M)} runs; the run x run "
                                f"matrix is in overlap.csv)", margin=dict(l=10, r=10, t=50, b=10),
                          height=200 + 28 * len(R))
        return fig
    order = sorted(M.index, key=lambda i: (str(regions.get(i, "")), str(refs.get(i, "")), i))
    M = M.loc[order, order]
    names = [f"{regions.get(i, '?')} · {refs.get(i, '?')} · {i[-4:]}" for i in M.index]
    fig = go.Figure(go.Heatmap(z=M.values, x=names, y=names, zmin=0, zmax=1, colorscale="Magma",
                               colorbar=dict(title="overlap"), customdata=np.array([[f"{a}<br>{b}" for b in M.columns]
                                                                                    for a in M.index]),
                               hovertemplate="%{customdata}<br>overlap %{z:.3f}<extra></extra>"))
    base = M.attrs.get("random_baseline")
    title = f"Subspace overlap of the runs' top-{M.attrs.get('k', '?')} directions"
    if base is not None and np.isfinite(base):
        title += f" (random baseline {base:.3g})"
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=50, b=10), height=200 + 28 * len(M))
    return fig


def frame_strip(run: Run, k: int = 8, min_height: int = 64) -> np.ndarray:
    """[H', W', 3] in [0, 1]: the reference with the mask outlined, then ``k`` frames spread over the run."""
    frames = run.frames
    idx = np.unique(np.linspace(0, len(frames) - 1, min(k, len(frames))).round().astype(int))
    gap = np.ones((frames.shape[1], max(1, frames.shape[2] // 16), 3))
    tiles = [draw_outline(run.reference_img, run.mask, (1.0, 0.1, 0.1)), gap]
    for i in idx:
        tiles += [frames[i]]
    strip = np.concatenate(tiles, axis=1)
    scale = max(1, -(-min_height // strip.shape[0]))
    return np.kron(strip, np.ones((scale, scale, 1)))


# ------------------------------------------------------------------- analyze
def analyze(root, out, *, umap: bool = False, k: int = 3, transfer: int = 0, combine: bool = False,
            generator=None, device: str = "cpu", recompute: bool = False, max_strips: int = 60,
            quiet: bool = False, overlap: bool = True, overlap_runs: int = MATRIX_RUNS, workers: int | None = None,
            scheduler: str | None = None) -> dict:
    """Measure and compare the runs of a store; write tables and ``report.html`` under ``out``.

    Args:
        root: the run store.
        out: output folder (created).
        umap: also fit a joint UMAP (its first fit in a process compiles for ~20 s); PCA is always fitted.
        k: subspace dimension for the overlaps.
        transfer: apply each discovered run's deltas to this many other references (seeds 1000, …) first.
        combine: add the deltas of every pair of regions found on the same reference first.
        generator: the generator for transfer/combination (default: each run's own, from run.json).
        device: torch device for transfer/combination.
        recompute: recompute the stored metrics of every run from its arrays first.
        max_strips: at most this many frame strips in the HTML.
        quiet: print nothing.
        overlap: measure the subspace overlaps (the summary over every pair, the matrix of a sample).
        overlap_runs: the run x run matrix (overlap.csv, its figure) holds at most this many runs (a seeded sample).
        workers: run the per-run work on a local Dask cluster of this many worker processes.
        scheduler: run it on the Dask scheduler at this address (tcp://HOST:PORT) or scheduler file instead.

    Returns:
        {name: path} of everything written: metrics (CSV, Parquet), regions, projection_pca
        [, projection_umap], layer_profiles, overlap, overlap_summary, transfer, combine, report.
    """
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    if out.is_symlink():  # the report replaces the folder the link points to, not the link
        out = out.resolve()
    timings = {}
    staging = _staging(out)  # before any work: an unwritable --out costs nothing
    client = cluster = None
    try:
        if workers or scheduler:
            client, cluster = _dask(workers, scheduler)
        paths, notes, lines, n_runs = _analyze(root, staging, umap=umap, k=k, transfer=transfer, combine=combine, generator=generator,
                         device=device, recompute=recompute, max_strips=max_strips, quiet=quiet, timings=timings,
                         overlap=overlap, overlap_runs=overlap_runs, client=client)
        _publish(staging, out)
    except OSError as exc:  # a full disk or a file-size limit: one line; the earlier report stays as it was
        written = store.folder_bytes(staging)
        shutil.rmtree(staging, ignore_errors=True)
        raise store.no_space(exc, out, "the report", written, at_least=True) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        for c in (client, cluster):
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()
    paths = {name: out / p.name for name, p in paths.items()}
    timings["total"] = time.perf_counter() - t0
    if n_runs == 0:  # said even with --quiet: an empty report is rarely what was meant
        print(f"warning: {root} holds no readable runs, so the report is empty; make some with "
              f"`mgm discover --out {root}` or `mgm demo`", file=sys.stderr)
    if not quiet:
        for msg in notes:
            print(f"warning: {msg}", file=sys.stderr)
        for line in lines:
            print(line)
        print(f"analysed {n_runs} runs in {timings['total']:.1f} s -> {paths['report']}")
    return paths


def _staging(out: Path) -> Path:
    """An empty temporary folder next to ``out`` for the report; MGMError (nothing written) when ``out``
    cannot take a report: a file, a folder of other things, or not writable."""
    if out.exists() and not out.is_dir():
        raise MGMError(f"--out {out} is a file; give a folder for the report (nothing was written)")
    try:
        other = out.is_dir() and any(out.iterdir()) and not (out / "report.html").is_file()
    except OSError as exc:
        raise MGMError(f"--out {out} cannot be read ({exc.strerror or exc}); give a writable folder") from None
    if other:
        raise MGMError(f"--out {out} holds other files and no report.html; give a new or empty folder "
                       "(nothing was written)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.parent / f".tmp-{out.name}-{os.getpid()}-{os.urandom(3).hex()}"
        staging.mkdir()  # (not mkdtemp: its mode 0700 would make the report private; this follows the umask)
        return staging
    except OSError as exc:
        raise MGMError(f"cannot write the report to {out} ({exc.strerror or exc}); give a writable --out "
                       "(nothing was written)") from None


def _publish(staging: Path, out: Path) -> None:
    """Put the finished report in ``staging`` at ``out`` by renaming: a reader sees the old report or the
    new one, never a part.  Files of the old report that are not report files (the user's) move along."""
    if not out.is_dir():
        os.rename(staging, out)
        return
    old = out.parent / f".old-{out.name}-{os.getpid()}"
    os.rename(out, old)
    os.rename(staging, out)  # between the two renames, the old report is complete under .old-*
    for p in old.iterdir():
        if not REPORT_FILE.fullmatch(p.name) and not (out / p.name).exists():
            os.replace(p, out / p.name)
    shutil.rmtree(old, ignore_errors=True)


def _analyze(root: Path, out: Path, *, umap, k, transfer, combine, generator, device, recompute, max_strips,
             quiet, timings, overlap=True, overlap_runs=MATRIX_RUNS, client=None) -> tuple[dict, list[str], list[str], int]:
    """The work of :func:`analyze`, written into ``out`` (the staging folder): (paths, warnings, summary
    lines, number of runs)."""
    lines: list[str] = []
    notes: list[str] = []
    if recompute:
        from ..measure import recompute_metrics

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            n = recompute_metrics(root)
        notes += [str(w.message) for w in caught if "skipping" not in str(w.message)]
        lines.append(f"recomputed the metrics of {n} runs")
    if transfer or combine:
        from ..derive import derive_runs

        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            new = derive_runs(root, transfer_k=transfer, combine_pairs=combine, G=generator, device=device,
                              quiet=quiet)
        notes += [str(w.message) for w in caught if "skipping" not in str(w.message)]
        timings["transfer/combine"] = time.perf_counter() - t
        lines.append(f"wrote {len(new)} transfer/combination runs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = read_runs(root, data=False, shapes=(shapes := {}))  # bad folders: one warning each, left out
        # one pass over the runs, a chunk at a time (here or on Dask): arrays checked, every registered metric a
        # run lacks measured and saved, then projections, layer profiles and overlaps of the discovered runs
        found = measure(runs, root, k=k, umap=umap, overlap=overlap, matrix_runs=overlap_runs, client=client,
                        timings=timings, shapes=shapes)
        for p, reason in found.problems.items():
            warnings.warn(f"skipping {p}: {reason}", RunSkippedWarning, stacklevel=2)
        runs = [r for r in runs if str(r.path) not in found.problems]
        cat = catalog_of(runs)
    notes += [str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
    notes += found.notes
    notes = list(dict.fromkeys([*notes, *metric_problems().values(), *method_problems().values()]))  # plugins left out
    if found.filled:
        lines.append(f"measured {found.filled} runs for the metrics they lacked")
    paths: dict[str, Path] = {}

    def save(name, df, index=False, parquet=False):
        p = out / f"{name}.csv"
        df.to_csv(p, index=index)
        paths[name] = p
        if parquet:
            df.to_parquet(out / f"{name}.parquet", index=index)
            paths[f"{name}_parquet"] = out / f"{name}.parquet"

    save("metrics", cat, parquet=True)
    regions = region_summary(cat)
    save("regions", regions)
    figs, sections = [], []
    overlap_summary = pd.DataFrame()
    if any(run_kind(r.meta) == "discover" for r in runs):
        for name, (proj, (title, fig_title)) in found.projections.items():
            save(name, proj, parquet=True)
            figs.append((title, fig_projection(proj, fig_title)))
        figs.append(("Metrics by region", fig_metric_bars(cat)))
        save("layer_profiles", found.layer_profiles)
        figs.append(("Layer profiles", fig_layer_heatmap(found.layer_profiles)))
        if found.matrix is not None:
            save("overlap", found.matrix, index=True)
            figs.append(("Subspace overlap", fig_overlap(found.matrix)))
        if overlap:
            overlap_summary = found.summary
            save("overlap_summary", overlap_summary)
            sections.append(("Subspace overlap by pair of runs", overlap_summary,
                             "Mean overlap of the runs' top-k delta subspaces over every pair of runs. Independent "
                             "regions overlap little; the same region on two references should overlap more."))
        else:
            notes.append("subspace overlap not measured (--no-overlap)")
    tt, ct = transfer_table(cat), combine_table(cat)
    if not tt.empty:
        save("transfer", tt)
        sections.append(("Transfer: a run's deltas applied to other references", tt,
                         "transfer_locality = locality on the source's mask around the new reference."))
    if not ct.empty:
        save("combine", ct)
        sections.append(("Combination: the deltas of two regions added", ct,
                         "combined_locality on the union of masks; x_change_in_y = RMS change run x alone causes "
                         "inside region y; interference = how much the other run disturbs each edit (0 = none)."))
    from .table import TABLE_NOTES, fig_frontier, fig_methods, method_table, run_methods

    mt = method_table(cat)
    if not mt.empty:  # a store with baseline runs (mgm baselines, mgm compare-methods)
        save("methods", mt)
        figs.append(("Methods at equal strength", fig_methods(mt, run_methods(cat))))
        figs.append(("Methods: locality against strength", fig_frontier(mt)))
        sections.append(("Methods: discovered manifolds beside the baselines at equal strength and extent", mt,
                         TABLE_NOTES))
    title = f"mgm_analysis report: {root}"
    html_text = _html(title, cat, regions, figs, sections, runs[:max_strips], notes, len(runs))
    (out / "report.html").write_text(html_text, encoding="utf-8")
    paths["report"] = out / "report.html"
    lines.append(summary_text(cat, regions, overlap_summary, tt, ct))
    return paths, notes, lines, len(runs)


def _fmt(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.3f}", max_colwidth=48)


def headline(cat: pd.DataFrame) -> str:
    """One sentence on the discovered runs: how many are good by :func:`~.metrics.quality_failures` (local, on
    target, smooth, exploring) and what the others miss most often."""
    from ..metrics import quality_failures

    d = cat[cat.kind == "discover"] if "kind" in cat else cat
    if d.empty:
        return ""
    offsets = _offsets(d)
    missed = [quality_failures(row, offsets.get(row.get("run_id"))) for row in d.to_dict("records")]
    good = sum(not m for m in missed)
    counts: dict[str, int] = {}
    for m in missed:
        for phrase in m:
            name = re.split(r" [\d.n-]", phrase, maxsplit=1)[0]
            counts[name] = counts.get(name, 0) + 1
    worst = ", ".join(f"{k} ({v})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    text = (f"{good} of {len(d)} discovered runs are good (locality ≥ 0.95, on target, jump ratio ≤ 2.5, spread ≥ 1, "
            f"inside path ≥ 3: local, smooth and exploring)" + (f"; missed: {worst}" if worst else ""))
    if "realism" in d and d["realism"].notna().any():
        real = d["realism"].dropna()
        text += (f". Every frame as real as the generator's own samples (realism ≤ 1) in {int((real <= 1).sum())} of "
                 f"{len(real)}")
    return text


def _offsets(cat: pd.DataFrame) -> dict:
    """run_id -> the run's target c (config.offset), from the store's catalog (the catalog frame holds no config)."""
    got = column_of(cat.get("path", []), "offset")
    return {rid: (None if got.get(str(p)) is None or pd.isna(got.get(str(p))) else float(got[str(p)]))
            for rid, p in zip(cat.get("run_id", []), cat.get("path", []), strict=False)}


def _with_spans(cat: pd.DataFrame) -> pd.DataFrame:
    """The catalog with a ``spans`` column: the states each run covers, in words (toyfaces)."""
    from ..metrics import describe_extent

    if cat.empty:
        return cat
    spans = [describe_extent(row).removeprefix("spans ") for row in cat.to_dict("records")]
    return cat.assign(spans=spans) if any(spans) else cat


def summary_text(cat, regions, overlap_summary, tt, ct, max_runs: int = 30) -> str:
    """The terminal summary: per-run metrics (when few), per-region means, overlaps, transfer and combination."""
    if cat.empty:
        return "no runs: make some with `mgm discover` or `mgm demo`"
    head = headline(cat)
    parts = [head] if head else []
    cols = [c for c in ["run_id", "kind", "region", *metric_names("terminal")] if c in cat.columns]
    if len(cat) <= max_runs:
        parts += ["runs:", _fmt(cat[cols])]
    rcols = [c for c in ["region", "runs", *metric_names("terminal")] if c in regions.columns]
    if not regions.empty:
        parts += ["", "by region (discovered runs):", _fmt(regions[rcols])]
    if not overlap_summary.empty:
        parts += ["", "subspace overlap:", _fmt(overlap_summary)]
    if not tt.empty:
        g = tt.groupby("region")[[c for c in ["transfer_locality", "source_locality"] if c in tt]].mean().reset_index()
        parts += ["", "transfer (mean over target references):", _fmt(g)]
    if not ct.empty:
        parts += ["", "combination:", _fmt(ct.drop(columns=["run_id", "source"], errors="ignore"))]
    return "\n".join(parts)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="–", border=0, classes="t")


def _html(title, cat, regions, figs, sections, runs, notes, n_runs) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222} h2{margin-top:1.6em}"
        "table.t{border-collapse:collapse;font-size:12px} table.t td,table.t th{border:1px solid #ddd;padding:2px 6px;"
        "text-align:right} table.t th{background:#f4f4f4} .note{color:#666;font-size:13px} "
        "img{image-rendering:pixelated} .strip{margin:6px 0} .warn{color:#a40}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>{n_runs} runs · written {now} by mgm_analysis {__version__} · "
        "figures are interactive (hover, zoom; click legend entries to hide regions)</p>",
    ]
    if notes:
        parts.append("<p class='warn'>" + "<br>".join(html.escape(n) for n in notes) + "</p>")
    if cat.empty:
        parts.append("<p>No runs in this store. Make some with <code>mgm discover</code> or <code>mgm demo</code>.</p>")
    else:
        line = headline(cat)
        if line:
            parts.append(f"<p><b>{html.escape(line)}</b></p>")
        parts.append("<h2>Regions</h2>" + _table(regions))
        spans = _with_spans(cat.head(HTML_RUNS))
        cols = [c for c in ["run_id", "kind", "region", "reference", "status"] + metric_names("summary") + ["spans"]
                if c in spans.columns]
        parts.append("<h2>Runs</h2><p class='note'>spread: how far apart the frames are inside the region against "
                     "their distance from the reference (0: every frame is the same edit); inside_path: the chain's "
                     "length inside the region in units of that distance (≥ 3 for a chain that explores); realism "
                     "(toyfaces): the worst frame's distance to the face the renderer draws from the factors read "
                     "off it, against the 95th percentile of the generator's own samples (≤ 1: as real as those); "
                     "spans: the range each of the region's factors covers along the chain.</p>"
                     + (f"<p class='note'>the first {HTML_RUNS} of {len(cat)} runs; every run is in metrics.csv</p>"
                        if len(cat) > HTML_RUNS else "") + _table(spans[cols]))
        known = [m for m in sorted(registered_metrics(), key=lambda m: m.order) if m.name in cat.columns]
        if known:  # every registered metric the store has, with what it says (a plugin's too)
            rows = [{"metric": m.name, "better": {True: "higher", False: "lower"}.get(m.higher_is_better, "–"),
                     "what": m.description, "from": m.measured_by or ("" if m.builtin else m.source)} for m in known]
            parts.append("<details><summary>What the metrics mean</summary>" + _table(pd.DataFrame(rows))
                         + "</details>")
    first = True
    for name, fig in figs:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if first else False))
        first = False
    for name, df, note in sections:
        parts.append(f"<h2>{html.escape(name)}</h2><p class='note'>{html.escape(note)}</p>" + _table(df))
    if runs:
        parts.append("<h2>Frame strips</h2><p class='note'>reference (mask outlined in red), then frames spread "
                     "over each run</p>")
        for r in runs:
            label = f"{r.run_id} · {r.region} · {reference_label(r)} · {run_kind(r.meta)}"
            try:
                parts.append(f"<div class='strip'>{html.escape(label)}<br>"
                             f"<img src='{png_data_uri(frame_strip(r))}'></div>")
            except Exception as exc:  # a run without frames still has its rows above
                parts.append(f"<p class='note'>{html.escape(label)}: no frames ({html.escape(str(exc))})</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
