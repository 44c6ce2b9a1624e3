"""What the dashboard reads from a run store, memoised by (store root, store signature).

Every function here is pure given the files on disk: results are cached with
``functools.lru_cache`` keyed by the resolved store root and a signature of the
store (names, sizes and modification times of every ``run.json``), so a new,
rewritten or deleted run invalidates them and nothing else does.  Callbacks
call these functions and keep no state of their own.

Projections come from :func:`mgm_analysis.analysis.projection.project` (cached
on disk under ``<root>/.mgm_cache`` unless told otherwise; imported on first
use, as it brings in scikit-learn); layer profiles and subspaces from
:mod:`mgm_analysis.analysis.compare`.  No torch.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from mgm_analysis import store
from mgm_analysis.analysis import compare
from mgm_analysis.catalog import store_catalog
from mgm_analysis.errors import RunReadError
from mgm_analysis.kinds import DERIVED_KINDS

__all__ = ["Snapshot", "snapshot", "empty_snapshot", "preload", "store_signature", "selected_runs", "projection", "frame_images", "n_frames",
           "metric_columns", "metric_frame", "layer_profiles", "per_region_sample", "overlap", "overlap_baseline", "derived_runs",
           "method_table", "has_methods", "method_options", "safe_run_file", "TABLE_COLUMNS", "SPACES"]

# Catalog columns shown first in the run table, in this order; metric columns follow.
TABLE_COLUMNS = ["run_id", "region", "generator", "reference", "status", "kind", "method", "strength", "layers",
                 "n_frames", "distance"]
_NOT_METRICS = {"seed", "n_frames"}
SPACES = {"w_free": "free W+ layers", "w_all": "all W+ layers", "frames": "frame pixels"}


# ------------------------------------------------------------------ the store
def preload() -> None:
    """Import what reading a cached projection needs (pyarrow), so a server can do it while a page loads.

    scikit-learn (a projection that is not cached yet) loads only when a fit needs it: importing it here
    would compete with the first paint for the CPU."""
    import pyarrow.parquet  # noqa: F401

    import mgm_analysis.analysis.projection  # noqa: F401


def store_signature(root) -> str:
    """A short hash of the store's state: every run folder's name and its run.json size and mtime.

    One ``stat`` per folder, relative to the store's open folder (no path is built or resolved per run), and
    Python's own tuple hash instead of a digest of the listing's text: 10 000 runs in about 35 ms instead of
    75 ms, so every callback can still afford it.  The hash is for this process only (Python salts string
    hashes per process): it keys in-memory caches, never anything written.  Temporary folders (``.tmp-*``)
    are ignored; a broken folder counts, so that fixing it is noticed.
    """
    entries = []
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        return "0" * 16
    try:
        with os.scandir(fd) as it:
            for e in it:
                if e.name.startswith(".") or not e.is_dir():
                    continue
                try:
                    st = os.stat(e.name + "/run.json", dir_fd=fd)
                    entries.append((e.name, st.st_mtime_ns, st.st_size))
                except OSError:
                    entries.append((e.name, 0, 0))
    except OSError:
        pass
    finally:
        os.close(fd)
    entries.sort()
    return f"{hash(tuple(entries)) & (2**64 - 1):016x}"


@dataclass(frozen=True)
class Snapshot:
    """The store as one signature saw it: the catalog, the runs by id, and one line per unreadable folder."""

    root: Path
    signature: str
    catalog: pd.DataFrame = field(repr=False)
    runs: dict = field(repr=False)  # run_id -> store.Run
    problems: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.runs


_SNAPSHOT_LOCK = threading.Lock()  # one reader of a new store state at a time; the others wait for its result


def snapshot(root) -> Snapshot:
    """The current :class:`Snapshot` of ``root`` (re-read only when the store changes).

    Thread-safe: while one request reads a new state of the store (seconds for thousands of runs), the others
    wait for it instead of reading it again."""
    root = Path(root).resolve()
    signature = store_signature(root)
    with _SNAPSHOT_LOCK:
        return _snapshot(str(root), signature)


def empty_snapshot(root) -> Snapshot:
    """A :class:`Snapshot` of ``root`` with no runs (what the page's structure is checked against)."""
    return Snapshot(root=Path(root).resolve(), signature="", catalog=store.catalog_of([]), runs={})


@lru_cache(maxsize=4)
def _snapshot(root: str, signature: str) -> Snapshot:
    path = Path(root)
    # through the store's catalog (mgm_analysis.catalog): only the run.json that changed since it was last
    # brought up to date are read; the reasons (duplicate run_ids too) go to the warning banner
    sc = store_catalog(path)
    problems = [f"{p.name}: {reason}" for p, reason in sc.problems()]
    # the runs' metadata is parsed when a run is first asked for, and the table's columns come from the catalog
    # as they are: a page of 10 000 runs needs neither 10 000 parsed run.json nor store.catalog_of over them
    runs = {run.run_id: run for run in sc.runs()}
    return Snapshot(root=path, signature=signature, catalog=sc.frame(), runs=runs, problems=tuple(problems))


def selected_runs(snap: Snapshot, run_ids) -> list:
    """The :class:`store.Run` objects for ``run_ids`` that exist, in the given order."""
    return [snap.runs[r] for r in (run_ids or []) if r in snap.runs]


def usable_runs(runs) -> tuple[list, list[str]]:
    """(runs whose latents and reference load and are finite, one line per run that is left out).

    The snapshot checks only run.json and the arrays' headers (fast for hundreds of runs); the data
    is checked here, when a view first needs it (the arrays stay cached on the run)."""
    ok, bad = [], []
    for r in runs:
        try:
            store.check_run_data(r)
        except RunReadError as exc:
            bad.append(f"{r.run_id}: {str(exc).split(': ', 1)[-1]}")
            continue
        ok.append(r)
    return ok, bad


def _ids(snap: Snapshot, run_ids) -> tuple:
    return tuple(sorted({r for r in (run_ids or []) if r in snap.runs}))


def metric_columns(cat: pd.DataFrame) -> list[str]:
    """Numeric catalog columns that hold metrics, most telling first (the metric registry's dashboard view:
    :func:`mgm_analysis.metrics.metric_names`), then the others."""
    from mgm_analysis.metrics import metric_names

    cols = [c for c in cat.columns if c not in _NOT_METRICS and c not in TABLE_COLUMNS
            and pd.api.types.is_numeric_dtype(cat[c])]
    first = metric_names("dashboard")
    return [c for c in first if c in cols] + [c for c in cols if c not in first]


def metric_frame(snap: Snapshot, run_ids) -> pd.DataFrame:
    """Catalog rows of the selected runs (run_id, region, reference, kind and every metric)."""
    cat = snap.catalog
    if not len(cat):
        return cat
    return cat[cat["run_id"].isin(list(run_ids or []))].reset_index(drop=True)


def derived_runs(snap: Snapshot, run_ids=None) -> pd.DataFrame:
    """Transfer and combination runs (provenance kind transfer|combine), with their sources.

    Catalog columns plus ``sources`` (", "-joined ids) and ``source_regions``
    (" + "-joined); only runs in ``run_ids`` when given.
    """
    cat = snap.catalog
    if not len(cat) or "kind" not in cat:
        return pd.DataFrame(columns=["run_id", "kind", "region", "sources", "source_regions", "locality"])
    rows = cat[cat["kind"].isin(list(DERIVED_KINDS))]
    if run_ids is not None:
        rows = rows[rows["run_id"].isin(list(run_ids))]
    rows = rows.copy()
    srcs = [list((snap.runs[r].meta.get("provenance") or {}).get("sources") or []) for r in rows["run_id"]]
    rows["sources"] = [", ".join(s) for s in srcs]
    rows["source_regions"] = [" + ".join(snap.runs[s].region if s in snap.runs else "?" for s in ss) for ss in srcs]
    return rows.reset_index(drop=True)


def has_methods(snap: Snapshot) -> bool:
    """Whether the store holds baseline runs (``mgm baselines``, ``mgm compare-methods``): the methods view shows."""
    cat = snap.catalog
    return bool(len(cat)) and "kind" in cat and bool((cat["kind"] == "baseline").any())


def method_options(snap: Snapshot) -> list[str]:
    """What the methods card filters on: ``discovery``, every registered method (built in, an installed plugin or
    registered at run time; the method table's order), then any other method the store's runs name (a plugin no
    longer installed)."""
    from mgm_analysis.finders.registry import method_order

    known = method_order()
    cat = snap.catalog
    found = {m for m in cat["method"] if isinstance(m, str)} if len(cat) and "method" in cat else set()
    return known + sorted(found - set(known))


def method_table(snap: Snapshot, run_ids) -> pd.DataFrame:
    """The method table (:func:`mgm_analysis.analysis.table.method_table`: method × region × strength) of the
    selected runs; a transfer run counts when it is selected.  Empty without a selected baseline run."""
    return _method_table(str(snap.root), snap.signature, _ids(snap, run_ids))


@lru_cache(maxsize=32)
def _method_table(root, signature, ids) -> pd.DataFrame:
    from mgm_analysis.analysis.table import method_table as table

    cat = _snapshot(root, signature).catalog
    return table(cat[cat["run_id"].isin(list(ids))].reset_index(drop=True) if len(cat) else cat)


# --------------------------------------------------------------- projections
def projection(snap: Snapshot, run_ids, method: str = "pca", dims: int = 2, space: str = "w_free",
               cache_dir=None, relative: bool = False, fit: bool = True) -> pd.DataFrame | None:
    """Joint projection of the selected runs: DataFrame run_id, region, frame, x, y[, z] (one row per frame).

    Fitted once on all selected runs so they share coordinates, by
    :func:`mgm_analysis.analysis.projection.project` (cached on disk in
    ``cache_dir``, default ``<root>/.mgm_cache``), and memoised here.  With
    ``relative`` the deltas w_i − w* are projected.  Runs that cannot share the
    projection (another generator's shape) are left out; ``df.attrs["note"]`` says so.

    With ``fit=False`` a projection that is neither in memory nor in the analysis cache is not fitted (None), and
    one being fitted is not waited for: the page holds the first view's figure when it can have it at once.
    """
    ids = _ids(snap, run_ids)
    if not ids:
        return pd.DataFrame(columns=["run_id", "region", "frame", "x", "y"] + (["z"] if dims == 3 else []))
    cache_dir = Path(cache_dir) if cache_dir is not None else snap.root / ".mgm_cache"
    key = (str(snap.root), snap.signature, ids, method, int(dims), space, str(cache_dir), bool(relative))
    with _PROJECTIONS_GUARD:  # one read or fit per projection: a second request for it waits for the first
        lock = _PROJECTION_LOCKS.setdefault(hash(key), threading.Lock())
    for fitting in (False, True):  # read from the analysis cache, else fit (the lock released in between)
        if fitting and not fit:
            return None
        with _PROJECTIONS_GUARD:
            if not fit and key in _FITTING:  # being fitted (or waiting to): not waited for
                return None
            if fitting:
                _FITTING[key] = _FITTING.get(key, 0) + 1
        try:
            with lock:
                with _PROJECTIONS_GUARD:
                    if key in _PROJECTIONS:  # done meanwhile
                        _PROJECTIONS.move_to_end(key)
                        return _PROJECTIONS[key]
                    if not fit and key in _FITTING:  # being fitted (or waiting to): not waited for
                        return None
                df = _projection(*key, fit=fitting)
                if df is not None:
                    with _PROJECTIONS_GUARD:
                        _PROJECTIONS[key] = df
                        while len(_PROJECTIONS) > MAX_PROJECTIONS:
                            _PROJECTIONS.popitem(last=False)
                    return df
        finally:
            if fitting:
                with _PROJECTIONS_GUARD:
                    _FITTING[key] -= 1
                    if not _FITTING[key]:
                        del _FITTING[key]
    raise AssertionError("a fit returns a projection")  # pragma: no cover


_PROJECTION_LOCKS: dict[int, threading.Lock] = {}
_PROJECTIONS_GUARD = threading.Lock()
_PROJECTIONS: OrderedDict = OrderedDict()  # key -> projection, the MAX_PROJECTIONS used last
_FITTING: dict = {}  # key -> how many requests fit it now (or wait to)
MAX_PROJECTIONS = 32


def clear_projections() -> None:
    """Forget the projections kept in memory (tests: a fresh process)."""
    with _PROJECTIONS_GUARD:
        _PROJECTIONS.clear()


def _projection(root, signature, ids, method, dims, space, cache_dir, relative, fit=True) -> pd.DataFrame | None:
    from mgm_analysis.analysis.projection import project  # imports scikit-learn: seconds, so not at start-up

    # Every selected run goes to project(): a cached projection is then read without loading any run's arrays
    # (seconds for thousands of runs), and a fit leaves out the runs whose arrays do not load.  Only those runs
    # are loaded again here, to say why.
    snap = _snapshot(root, signature)
    df = project(selected_runs(snap, ids), method=method, space=space, n_components=dims, cache_dir=cache_dir,
                 relative=relative, fit=fit)
    if df is None:
        return None
    left_out = sorted(set(ids).difference(df["run_id"].unique()))  # unique() first: 360 000 rows, 10 000 ids
    unusable = usable_runs(selected_runs(snap, left_out))[1]
    df = df.sort_values(["run_id", "frame"], kind="stable").reset_index(drop=True)
    if left_out:
        df.attrs["note"] = (f"left out {len(left_out)} run(s) that cannot share this projection (another generator, "
                            f"no frames, or unreadable arrays): {', '.join(left_out[:5])}"
                            f"{' …' if len(left_out) > 5 else ''}")
    if unusable:
        df.attrs["note"] = df.attrs.get("note", "") + f" ({'; '.join(unusable[:3])})"
    return df


# ------------------------------------------------------------- comparisons
LAYER_RUNS_PER_REGION = 500  # the layer heat-map's region means use at most this many runs of each region
OVERLAP_RUNS_PER_REGION = 50  # the region × region means use at most this many runs of each region


def per_region_sample(runs: list, cap: int) -> tuple[list, bool]:
    """The runs of each region cut to ``cap``, evenly spread over their order (the first and last kept), and
    whether any region was cut.  A region mean over ``cap`` runs spread so is what the whole region gives, to
    well within what the figures show, without loading and checking every run's arrays (10 000 runs: 5 s)."""
    by_region: dict[str, list] = {}
    for r in runs:
        by_region.setdefault(r.region, []).append(r)
    used = [rs if len(rs) <= cap else [rs[int(i)] for i in np.linspace(0, len(rs) - 1, cap).round()]
            for rs in by_region.values()]
    return [r for rs in used for r in rs], any(len(rs) > cap for rs in by_region.values())


def _note_sample(out: pd.DataFrame, runs, cap: int | None) -> pd.DataFrame:
    """``out`` with ``attrs["runs_per_region"]`` (the runs used) and, when ``cap`` cut a region, a ``note``."""
    out.attrs["runs_per_region"] = dict(Counter(r.region for r in runs))
    if cap is not None:
        out.attrs["note"] = f"at most {cap} runs per region"
    return out


def layer_profiles(snap: Snapshot, run_ids) -> pd.DataFrame:
    """Long DataFrame run_id, region, layer, share: each run's share of Σ‖w_i[l] − w*[l]‖² per W+ layer, for at
    most :data:`LAYER_RUNS_PER_REGION` runs of each region (:func:`per_region_sample`; ``df.attrs``:
    ``runs_per_region``, and a ``note`` when a region was cut)."""
    return _layer_profiles(str(snap.root), snap.signature, _ids(snap, run_ids))


@lru_cache(maxsize=32)
def _layer_profiles(root, signature, ids) -> pd.DataFrame:
    runs, cut = per_region_sample(selected_runs(_snapshot(root, signature), ids), LAYER_RUNS_PER_REGION)
    runs = usable_runs(runs)[0]
    return _note_sample(compare.layer_profiles(runs), runs, LAYER_RUNS_PER_REGION if cut else None)


def overlap(snap: Snapshot, run_ids, k: int = 3) -> pd.DataFrame:
    """Region × region subspace overlap of the runs' deltas w_i − w*, in [0, 1].

    The run × run matrix is :func:`compare.overlap_matrix` (mean cos² of the principal
    angles of the top-k subspaces), averaged per pair of regions by
    :func:`compare.region_average` (a run's overlap with itself left out).  Regions with more
    than :data:`OVERLAP_RUNS_PER_REGION` selected runs are represented by that many,
    evenly spread over their ids; ``df.attrs["runs_per_region"]`` says how many were used.
    """
    return _overlap(str(snap.root), snap.signature, _ids(snap, run_ids), int(k))


@lru_cache(maxsize=32)
def _overlap_runs(root, signature, ids) -> tuple[tuple, bool]:
    """(the runs the overlap compares, whether a region was cut): at most :data:`OVERLAP_RUNS_PER_REGION` of each
    region, those whose arrays load, of the most common latent shape."""
    runs, cut = per_region_sample(selected_runs(_snapshot(root, signature), ids), OVERLAP_RUNS_PER_REGION)
    runs = usable_runs(runs)[0]
    if runs:
        shape = Counter(r.latents.shape[1:] for r in runs).most_common(1)[0][0]
        runs = [r for r in runs if r.latents.shape[1:] == shape]
    return tuple(runs), cut


@lru_cache(maxsize=32)
def _overlap(root, signature, ids, k) -> pd.DataFrame:
    runs, cut = _overlap_runs(root, signature, ids)
    out = compare.region_average(compare.overlap_matrix(list(runs), k), {r.run_id: r.region for r in runs})
    return _note_sample(out, runs, OVERLAP_RUNS_PER_REGION if cut else None)


def overlap_baseline(snap: Snapshot, run_ids, k: int) -> float | None:
    """Expected overlap of two random k-dimensional subspaces of the free latent space: k / d, with d the union
    of the free layers × w_dim of the runs :func:`overlap` compares (as :func:`compare.overlap_matrix` has it)."""
    runs, _ = _overlap_runs(str(snap.root), snap.signature, _ids(snap, run_ids))
    if not runs:
        return None
    a, b = min(r.layers[0] for r in runs), max(r.layers[1] for r in runs)
    d = (b - a) * int(runs[0].reference.shape[-1])
    return compare.random_overlap(min(k, d), d) if d else None


# ------------------------------------------------------------------ frames
def n_frames(snap: Snapshot, run_id: str) -> int:
    """Number of rendered frames on disk (0 when the run has none)."""
    run = snap.runs.get(run_id)
    return len(run.frame_paths) if run is not None else 0


@lru_cache(maxsize=256)
def _read(path: str, mtime_ns: int, gray: bool) -> np.ndarray:
    return store.read_png(Path(path), gray=gray)


def _png(path: Path, gray: bool = False) -> np.ndarray:
    return _read(str(path), path.stat().st_mtime_ns, gray)


def frame_images(snap: Snapshot, run_id: str, frame: int):
    """(reference [H,W,3], frame [H,W,3], mask [H,W]) in [0, 1] for one frame of a run.

    Raises MGMError when the run has no frames; ``frame`` is clipped to the frames there are.
    """
    from mgm_analysis.errors import MGMError

    run = snap.runs.get(run_id)
    if run is None:
        raise MGMError(f"run {run_id} is not in {snap.root} (any more); reload the page")
    paths = run.frame_paths
    if not paths:
        raise MGMError(f"run {run_id} has no rendered frames; make them with `mgm render {run.path}`")
    frame = int(np.clip(frame, 0, len(paths) - 1))
    img = _png(paths[frame])
    ref_png = run.path / "reference.png"
    ref = _png(ref_png) if ref_png.exists() else np.zeros_like(img)
    return ref, img, _png(run.path / "mask.png", gray=True)


# ------------------------------------------------------------- file access
def safe_run_file(root, run_id: str, relpath: str) -> Path | None:
    """The file ``<root>/<run_id>/<relpath>`` if it is a regular file inside that run folder, else None.

    Both parts are resolved (following links) and must stay inside the store root
    and a run folder (one with a run.json): ``..``, absolute paths, hidden
    (``.tmp-*``, ``.mgm_cache``) folders and links that lead out answer None.
    """
    if not run_id or not relpath or run_id.startswith(".") or any(c in run_id for c in "/\\\x00") \
            or "\x00" in relpath:
        return None
    try:  # a name too long for the file system, a loop of links, an unreadable folder: not a file in a run
        root = Path(root).resolve()
        run_dir = (root / run_id).resolve()
        target = (run_dir / relpath).resolve()
        if run_dir.parent != root or not (run_dir / "run.json").is_file() or not target.is_relative_to(run_dir) \
                or not target.is_file():
            return None
    except (OSError, ValueError, RuntimeError):
        return None
    return target
