"""``mgm analyze`` at scale: the per-run work in chunks of runs (in this process or on Dask), the projections
streamed, the subspace overlap by group, and a memory guard before each step.

Nothing here holds every run's latents or an N × N matrix:

* one pass over the runs, a chunk at a time (:data:`CHUNK_RUNS`), loads each run's arrays once: it checks them,
  measures the metrics a run lacks, its layer profile, its top-k principal basis (k × d, kept) and, for a
  projection too large to fit at once, the sums of the features and of their outer products;
* PCA is scikit-learn's (today's results) while the feature matrix has at most :data:`EXACT_PCA_MAX_VALUES`
  values; above, the exact covariance is accumulated over the chunks (float32 products, float64 sums, around a
  provisional mean) and its top eigenvectors project a second pass over the chunks;
* UMAP is fitted on a seeded sample of at most :data:`UMAP_FIT_POINTS` frames and places the others with
  umap-learn's ``transform``;
* the overlap summary comes from :mod:`.overlap_groups`; the run × run matrix only for a seeded sample of at most
  ``matrix_runs`` runs.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import store_catalog
from ..errors import MGMError, RunReadError
from ..measure import fill_metrics
from ..metrics import layer_profile
from ..store import Run, RunSkippedWarning, check_run_data, npy_header, run_kind, unreadable_reason
from . import overlap_groups
from .compare import layer_profiles, overlap_matrix, principal_bases, random_overlap, reference_label
from .overlap_groups import group_overlap_summary
from .projection import _cache_key, project

__all__ = ["measure", "memory_limit", "memory_guard", "Measured", "CHUNK_RUNS", "EXACT_PCA_MAX_VALUES",
           "UMAP_FIT_POINTS", "MATRIX_RUNS"]

CHUNK_RUNS = 200
#: up to this many feature values (frames × free layers × w_dim over every run) PCA is scikit-learn's on the whole
#: matrix (2 000 runs × 36 frames × 6 layers × 256); above, the streamed exact covariance
EXACT_PCA_MAX_VALUES = 120_000_000
#: UMAP is fitted on at most this many frames (a seeded sample of runs), the others placed with ``transform``
UMAP_FIT_POINTS = 20_000
#: the run × run overlap matrix (overlap.csv, its figure) holds at most this many runs (a seeded sample)
MATRIX_RUNS = 500
VIEWS = (("deltas", True), ("positions", False))


# ------------------------------------------------------------------ reading, Dask, memory
def read_runs(root, data: bool = True, shapes: dict | None = None) -> list[Run]:
    """The readable runs of a store through its catalog (:func:`mgm_analysis.catalog.store_catalog`: only the
    run.json that changed are read), sorted by folder name; every unreadable folder is one
    :class:`~mgm_analysis.store.RunSkippedWarning`.  ``data``: also load the arrays and leave out non-finite ones.
    ``shapes``, when given, is filled with run_id -> latents.npy's shape (from the catalog: no file read)."""
    cat = store_catalog(root)
    if shapes is not None and len(cat.table):
        ok = cat.table[cat.table["ok"].astype(bool)]
        shapes.update({r: (int(n), int(w), int(d)) for r, n, w, d in
                       zip(ok["run_id"], ok["n_latents"], ok["num_ws"], ok["w_dim"], strict=True)})
    problems = dict(cat.problems())
    runs = []
    for run in cat.runs():
        if data:
            try:
                check_run_data(run)
            except (RunReadError, ValueError, OSError) as exc:
                problems[run.path] = unreadable_reason(run.path, exc)
                continue
        runs.append(run)
    for p in sorted(problems, key=lambda p: p.name):
        warnings.warn(f"skipping {p}: {problems[p]}", RunSkippedWarning, stacklevel=2)
    return runs


def _dask(workers: int | None, scheduler: str | None):
    """(client, local cluster or None): the sweep's own connection (a LocalCluster of ``workers`` processes, or
    the scheduler at ``scheduler``)."""
    from ..sweep.cluster import connect, probe_scheduler

    if scheduler:
        probe_scheduler(scheduler)
    client, cluster, _ = connect(workers=max(1, int(workers or 1)), scheduler=scheduler)
    return client, cluster


def memory_limit() -> int:
    """Bytes the analysis may use: ``MGM_MEMORY_LIMIT`` when set, else the memory available now."""
    env = os.environ.get("MGM_MEMORY_LIMIT")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise MGMError(f"MGM_MEMORY_LIMIT={env!r}: give a number of bytes") from None
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is a dependency of distributed
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def memory_guard(step: str, need: float, how: str) -> None:
    """MGMError (one line) when ``step`` would need more than :func:`memory_limit`."""
    limit = memory_limit()
    if need > limit:
        raise MGMError(f"mgm analyze: {step} would need about {need / 2**30:.2f} GiB and {limit / 2**30:.2f} GiB "
                       f"is available; {how} (nothing was written)")


# ------------------------------------------------------------------ the work of one chunk (here or on a worker)
def _drop(run: Run) -> None:
    for name in ("latents", "reference", "frames", "mask", "reference_img"):
        run.__dict__.pop(name, None)


def _views(lat, ref, free) -> dict:
    a, b = free
    x = lat[:, a:b].reshape(len(lat), -1)
    return {"deltas": x - ref[a:b].reshape(1, -1), "positions": x}


def _blas(threads: int | None, managed: bool = False):
    """At most ``threads`` BLAS threads inside (None: as many as it likes; ``managed``: left as the caller set
    them).  The per-run algebra works on 36 × 36 and 36 × 1 536 matrices, which two BLAS threads on a busy machine
    make 20 times slower."""
    if managed:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(threads)


def _scan_chunk(items: list, job: dict) -> dict:
    """Pass 1 over a chunk: ``items`` = [(run, analysed)]; see the module docstring."""
    managed = job.get("blas_managed", False)
    with _blas(1, managed):
        out, xs = _scan_runs(items, job)
    with _blas(1 if job.get("dask") else None, managed):  # one product per chunk: float32 on the BLAS, summed in float64
        for view, parts in xs.items():
            x = np.concatenate(parts)
            out["cov"][view] = (len(x), x.sum(0, dtype=np.float64), (x.T @ x).astype(np.float64))
    return out


def _scan_runs(items: list, job: dict) -> tuple[dict, dict]:
    out = {"problems": {}, "filled": {}, "missed": [], "ids": [], "profiles": [], "labels": [], "pinned": True,
           "cov": {}, "bases": None, "ranks": None, "pid": os.getpid()}
    kept, xs = [], {}
    for run, analysed in items:
        try:
            check_run_data(run)
        except (RunReadError, ValueError, OSError) as exc:
            out["problems"][str(run.path)] = unreadable_reason(run.path, exc)
            _drop(run)
            continue
        if not job.get("bases_only"):
            n, missed = fill_metrics([run])
            out["missed"] += missed
            if n:
                out["filled"][run.run_id] = {k: run.meta[k] for k in ("metrics", "metrics_errors") if k in run.meta}
        if analysed:
            kept.append(run)
            out["ids"].append(run.run_id)
            if not job.get("bases_only"):
                out["profiles"].append(layer_profile(run.latents, run.reference))
                out["labels"].append(reference_label(run))
                a, b = job["moving"]
                lat, ref = run.latents, run.reference
                out["pinned"] &= bool(np.array_equal(lat[:, :a], np.broadcast_to(ref[:a], lat[:, :a].shape))
                                      and np.array_equal(lat[:, b:], np.broadcast_to(ref[b:], lat[:, b:].shape)))
                if job.get("cov_views"):
                    feats = _views(lat, ref, job["free"])
                    for view in job["cov_views"]:
                        xs.setdefault(view, []).append(feats[view].astype(np.float32) - job["shift"][view])
    if kept and job.get("k"):
        moving = slice(*job["moving"]) if job["moving"] is not None else slice(None)
        out["bases"], out["ranks"] = principal_bases(kept, job["k"], moving=moving)
    for run, _ in items:
        _drop(run)
    return out, xs


def _project_chunk(items: list, job: dict) -> dict:
    """Pass 2 over a chunk: each analysed run's frames in the fitted PCA coordinates of every view asked for."""
    with _blas(1, job.get("blas_managed", False)):
        return _project_runs(items, job)


def _project_runs(items: list, job: dict) -> dict:
    out = {v: [] for v in job["views"]}
    for run, _ in items:  # checked in pass 1: read as they are
        lat = np.load(run.path / "latents.npy", mmap_mode="r", allow_pickle=False)
        ref = np.load(run.path / "reference.npy", allow_pickle=False)
        feats = _views(np.asarray(lat[:, job["free"][0]:job["free"][1]]), ref[job["free"][0]:job["free"][1]],
                       (0, job["free"][1] - job["free"][0]))
        del lat
        for view in job["views"]:
            mean, comps = job["fit"][view]
            out[view].append((feats[view].astype(np.float64) - mean) @ comps.T)
    return out


def _umap_chunk(items: list, job: dict) -> list:
    out = []
    for run, _ in items:
        try:
            x = _views(run.latents, run.reference, job["free"])[job["view"]]
        finally:
            _drop(run)
        out.append(np.asarray(job["model"].transform(x), np.float64))
    return out


def _chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


#: chunks worked on at once in this process without Dask (threads: reading and numpy release the GIL)
LOCAL_THREADS = 2


def _map(client, fn, chunks, job):
    """Each chunk's result in order: on the Dask client's workers, or here on :data:`LOCAL_THREADS` threads (each
    on one BLAS thread), never more than a few chunks ahead of the consumer."""
    if client is None:
        from concurrent.futures import ThreadPoolExecutor

        job = dict(job, blas_managed=True)
        with _blas(1), ThreadPoolExecutor(LOCAL_THREADS) as pool:
            pending = []
            for c in chunks:
                pending.append(pool.submit(fn, c, job))
                if len(pending) > LOCAL_THREADS:
                    yield pending.pop(0).result()
            for f in pending:
                yield f.result()
        return
    job_future = client.scatter([job], broadcast=True)[0]
    # a window of chunks in flight: a worker's finished results (a chunk's covariance is 2 × d² floats) wait in
    # its memory until read, so the workers may not run far ahead of this loop
    window = 2 * max(1, len(client.scheduler_info().get("workers", {}))) + 1
    pending = []
    for c in chunks:
        pending.append(client.submit(fn, c, job=job_future, pure=False))
        if len(pending) > window:
            f = pending.pop(0)
            yield f.result()
            f.release()
    for f in pending:
        yield f.result()
        f.release()


# ------------------------------------------------------------------ the driver
@dataclass
class Measured:
    """What :func:`measure` found: projections by file name, layer profiles, overlap matrix and summary, notes."""

    projections: dict = field(default_factory=dict)  # name -> (DataFrame, title)
    layer_profiles: pd.DataFrame | None = None
    matrix: pd.DataFrame | None = None
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    problems: dict = field(default_factory=dict)
    filled: int = 0
    notes: list = field(default_factory=list)
    pids: set = field(default_factory=set)  # the processes that did the per-run pass


def _layers(run: Run, num_ws: int) -> tuple[int, int]:
    cfg = run.meta.get("config") or {}
    a, b = cfg.get("layer_start"), cfg.get("layer_end")
    return (0 if a is None else int(a)), (num_ws if b is None else int(b))


def _fit_pca(n, s, c, shift, n_components=2):
    """Mean and the top components of the covariance accumulated around ``shift`` (scikit-learn's signs), and the
    explained variance ratios (of the total variance, the covariance's trace)."""
    from scipy.linalg import eigh

    mu = s / n
    cov = (c - n * np.outer(mu, mu)) / max(n - 1, 1)
    d = len(cov)
    k = min(n_components, d)
    lam, vec = eigh(cov, subset_by_index=[d - k, d - 1])  # the top k only: ascending
    lam, vec = lam[::-1], vec[:, ::-1]
    comps = vec.T.copy()
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(1)])
    comps *= np.where(signs == 0, 1, signs)[:, None]
    total = float(np.trace(cov))
    evr = lam / total if total > 0 else np.zeros(k)
    return mu + shift, comps, [float(v) for v in evr]


def _frame(ids, regions, coords, cols=("x", "y")):
    lengths = [len(c) for c in coords]
    df = pd.DataFrame({"run_id": np.repeat(ids, lengths), "region": np.repeat(regions, lengths),
                       "frame": np.concatenate([np.arange(n) for n in lengths]) if lengths else []})
    Y = np.concatenate(coords) if coords else np.zeros((0, len(cols)))
    for j, c in enumerate(cols):
        df[c] = Y[:, j] if Y.shape[1] > j else 0.0
    return df


def measure(runs: list[Run], root: Path, *, k: int = 3, umap: bool = False, overlap: bool = True,
            matrix_runs: int = MATRIX_RUNS, client=None, timings: dict | None = None,
            shapes: dict | None = None) -> Measured:
    """The per-run work of ``mgm analyze`` over ``runs`` (every run: checked, metrics filled) and, over the
    discovered ones, projections, layer profiles and overlaps.  ``runs`` left out (arrays that do not load) are
    in ``problems``; the others' metadata is updated in place with the metrics measured.  ``shapes``: run_id ->
    latents.npy's shape, known already (:func:`read_runs`); the others' are read from the .npy headers."""
    import time

    timings = {} if timings is None else timings
    res = Measured()
    cache_dir = root / ".mgm_cache"
    discovered = [r for r in runs if run_kind(r.meta) == "discover"]
    known, shapes = shapes or {}, {}
    for r in discovered:
        try:
            shapes[r.run_id] = known.get(r.run_id) or npy_header(r.path / "latents.npy")[0]
        except (OSError, ValueError, EOFError):
            pass
    frames = {rid: s[0] for rid, s in shapes.items()}
    shapes = {rid: s[1:] for rid, s in shapes.items()}
    common = Counter(shapes.values()).most_common(1)[0][0] if shapes else None
    for r in discovered:
        if r.run_id in shapes and shapes[r.run_id] != common:
            warnings.warn(f"projection: leaving out {r.run_id}: shape {list(shapes[r.run_id])} differs from the "
                          f"other runs' {list(common)} (another generator?)", stacklevel=2)
    analysed = {r.run_id for r in discovered if shapes.get(r.run_id) == common}
    ana = [r for r in discovered if r.run_id in analysed]
    num_ws, w_dim = common if common else (0, 0)
    lays = [_layers(r, num_ws) for r in ana]
    free = (min(a for a, _ in lays), max(b for _, b in lays)) if lays else (0, 0)
    d_free = (free[1] - free[0]) * w_dim
    rows = sum(frames[r.run_id] for r in ana)
    exact_pca = rows * d_free <= EXACT_PCA_MAX_VALUES
    n_ana = len(ana)
    reduce = "analyse a selection of the runs (a smaller store), or pass --no-overlap"
    memory_guard(f"keeping the top-{k} directions of {n_ana} runs", n_ana * k * d_free * 4 * 2 if overlap else 0,
                 reduce)
    memory_guard(f"the layer profiles of {n_ana} runs", n_ana * num_ws * 120, "analyse a selection of the runs")
    if exact_pca:
        memory_guard(f"a PCA of {rows} frames × {d_free} features", rows * d_free * 28,
                     "analyse a selection of the runs")
    else:
        memory_guard(f"the streamed PCA of {rows} frames × {d_free} features",
                     2 * rows * 120 + 6 * d_free**2 * 8, "analyse a selection of the runs")

    # PCA views cached on disk are read, not fitted again
    est = {"method": "pca", "n_components": 2, "random_state": 0}
    cached, keys = {}, {}
    if not exact_pca and ana:
        for view, relative in VIEWS:
            keys[view] = _cache_key(ana, "w_free", relative=relative, streamed="covariance", **est)
            p = cache_dir / f"projection-pca-w_free-{keys[view]}.parquet"
            if p.exists():
                try:
                    cached[view] = pd.read_parquet(p)
                except Exception:  # noqa: BLE001 - a damaged cache is recomputed
                    pass
    cov_views = [v for v, _ in VIEWS if not exact_pca and v not in cached]
    shift = {}
    if cov_views:
        first = Run(ana[0].run_id, ana[0].path, ana[0].meta)
        f = _views(first.latents, first.reference, free)
        shift = {v: f[v].mean(0).astype(np.float32) for v in cov_views}
    job = {"k": k if overlap else 0, "moving": free, "free": free, "cov_views": cov_views, "shift": shift,
           "dask": client is not None}
    items = [(r, r.run_id in analysed) for r in runs]
    chunks = _chunks(items, CHUNK_RUNS)
    t = time.perf_counter()
    ids, profiles, labels, ranks, pinned, cov = [], [], [], [], True, {}
    # every run's basis lands in one array made for all of them: the chunks are not copied again at the end
    bases = [np.zeros((len(ana), k, d_free), np.float32) if overlap and ana else None, 0]
    by_id = {r.run_id: r for r in runs}
    for out in _map(client, _scan_chunk, chunks, job):
        res.problems.update(out["problems"])
        res.pids.add(out["pid"])
        res.notes += out["missed"]
        for rid, patch in out["filled"].items():
            by_id[rid].meta.update(patch)
        res.filled += len(out["filled"])
        ids += out["ids"]
        profiles += out["profiles"]
        labels += out["labels"]
        pinned &= out["pinned"]
        if out["bases"] is not None:
            _put(bases, out["bases"])
            ranks.append(out["ranks"])
        for view, (n, s, c) in out["cov"].items():
            n0, s0, c0 = cov.get(view, (0, 0.0, 0.0))
            cov[view] = (n0 + n, s0 + s, c0 + c)
    timings["scan"] = time.perf_counter() - t
    ana = [by_id[i] for i in ids]  # the analysed runs whose arrays loaded, in order
    regions = [r.region for r in ana]
    if overlap and ana and not pinned:  # some run moves outside the free layers: bases over every layer
        bases, ranks = [None, 0], []  # (rare: grown chunk by chunk)
        for out in _map(client, _scan_chunk, _chunks([(r, True) for r in ana], CHUNK_RUNS),
                        {"k": k, "moving": None, "bases_only": True}):
            _put(bases, out["bases"])
            ranks.append(out["ranks"])

    # projections
    for method, title in [("pca", "Joint projection"), *([("umap", "UMAP")] if umap else [])]:
        for view, relative in VIEWS:
            name = f"projection_{method}" + ("" if relative else "_positions")
            label = "deltas w − w*" if relative else "positions"
            fig_title = (f"{title} of the {label}", f"{method.upper()} of the free W+ layers' {label}, all runs "
                                                    "fitted jointly")
            t = time.perf_counter()
            if not ana:
                continue
            if method == "pca" and exact_pca:
                df = project(ana, "pca", "w_free", cache_dir=cache_dir, relative=relative)
                for r in ana:
                    _drop(r)
            elif method == "pca":
                df = cached.get(view)
            else:
                df = _umap(ana, regions, free, view, relative, rows, client, res)
            res.projections[name] = (df, fig_title)
            timings[name] = time.perf_counter() - t
    if not exact_pca and ana and cov_views:
        t = time.perf_counter()
        fits = {v: _fit_pca(*cov[v], shift[v]) for v in cov_views}
        coords = {v: [] for v in cov_views}
        pjob = {"free": free, "views": cov_views, "fit": {v: (fits[v][0], fits[v][1]) for v in cov_views}}
        for out in _map(client, _project_chunk, _chunks([(r, True) for r in ana], CHUNK_RUNS), pjob):
            for v in cov_views:
                coords[v] += out[v]
        for view, relative in VIEWS:
            if view not in cov_views:
                continue
            df = _frame([r.run_id for r in ana], regions, coords[view])
            df.attrs = {"method": "pca", "space": "w_free", "relative": relative, "runs_left_out": [],
                        "layers": list(free), "explained_variance_ratio": fits[view][2],
                        "solver": "streamed covariance"}
            _cache(df, cache_dir / f"projection-pca-w_free-{keys[view]}.parquet")
            name = "projection_pca" + ("" if relative else "_positions")
            res.projections[name] = (df, res.projections[name][1])
        timings["pca_streamed"] = time.perf_counter() - t
        res.notes.append(f"PCA of {rows} frames of {len(ana)} runs: exact covariance accumulated over chunks of "
                         f"{CHUNK_RUNS} runs (more than {EXACT_PCA_MAX_VALUES:,} feature values at once)")

    res.layer_profiles = (layer_profiles([]) if not ana else pd.DataFrame({
        "run_id": np.repeat([r.run_id for r in ana], num_ws), "region": np.repeat(regions, num_ws),
        "layer": np.tile(np.arange(num_ws), len(ana)), "share": np.concatenate(profiles)}))

    if overlap and ana:
        t = time.perf_counter()
        B, R = _stacked(bases), np.concatenate(ranks)
        d_eff = d_free
        baseline = random_overlap(min(k, d_eff), d_eff) if d_eff else float("nan")
        memory_guard(f"the overlap summary of {len(ana)} runs", 2 * k * B.shape[2] ** 2 * 8 + B.nbytes * 2,
                     "pass --no-overlap or analyse a selection of the runs")
        res.summary, note = group_overlap_summary(B, R, regions, labels, baseline, exact_runs=overlap_groups.EXACT_RUNS)
        if note:
            res.notes.append(note)
        timings["overlap_summary"] = time.perf_counter() - t
        pick = list(range(len(ana)))
        if len(ana) > matrix_runs:
            pick = sorted(np.random.default_rng(0).choice(len(ana), matrix_runs, replace=False).tolist())
            res.notes.append(f"overlap.csv and its figure: a seeded sample of {matrix_runs} of the {len(ana)} runs "
                             f"(--overlap-runs); the summary covers every pair")
        sample = [Run(ana[i].run_id, ana[i].path, ana[i].meta) for i in pick]
        with _blas(1):
            res.matrix = overlap_matrix(sample, k) if matrix_runs else None
        for r in sample:
            _drop(r)
    return res


def _put(bases: list, chunk: np.ndarray) -> None:
    """Append a chunk's bases to ``bases`` = [array made ahead or None, rows filled, *chunks that did not fit]."""
    arr, n = bases[0], bases[1]
    if arr is not None and len(bases) == 2 and chunk.shape[1:] == arr.shape[1:] and n + len(chunk) <= len(arr):
        arr[n:n + len(chunk)] = chunk
        bases[1] = n + len(chunk)
    else:
        bases.append(chunk)


def _stacked(bases: list) -> np.ndarray:
    arr, n = bases[0], bases[1]
    if len(bases) == 2 and arr is not None:
        return arr[:n]
    return np.concatenate(([arr[:n]] if arr is not None and n else []) + bases[2:])


def _cache(df: pd.DataFrame, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        df.to_parquet(tmp, index=False)
        tmp.replace(path)
    except OSError:  # a read-only store still gets its projection
        pass


def _umap(ana, regions, free, view, relative, rows, client, res) -> pd.DataFrame:
    """UMAP of one view: fitted on every frame up to :data:`UMAP_FIT_POINTS`, else on a seeded sample of runs
    holding at most that many frames, the others placed with ``transform``."""
    if rows <= UMAP_FIT_POINTS:
        df = project(ana, "umap", "w_free", cache_dir=ana[0].path.parent / ".mgm_cache", relative=relative)
        for r in ana:
            _drop(r)
        return df
    from ._estimator import JointProjection

    per_run = max(1, rows // len(ana))
    n_fit = max(2, UMAP_FIT_POINTS // per_run)
    fit_idx = np.sort(np.random.default_rng(0).choice(len(ana), min(n_fit, len(ana)), replace=False))
    feats = []
    for i in fit_idx:
        r = Run(ana[i].run_id, ana[i].path, ana[i].meta)
        feats.append(_views(r.latents, r.reference, free)[view])
    X = np.concatenate(feats)
    est = JointProjection(method="umap", n_components=2, random_state=0).fit(X)
    coords: list = [None] * len(ana)
    for i, Y in zip(fit_idx, np.split(est.embedding_, np.cumsum([len(f) for f in feats])[:-1]), strict=True):
        coords[i] = Y
    rest = [i for i in range(len(ana)) if coords[i] is None]
    job = {"free": free, "view": view, "model": est}
    for chunk_ids, out in zip(_chunks(rest, CHUNK_RUNS),
                              _map(client, _umap_chunk, _chunks([(ana[i], True) for i in rest], CHUNK_RUNS), job),
                              strict=True):
        for i, Y in zip(chunk_ids, out, strict=True):
            coords[i] = Y
    df = _frame([r.run_id for r in ana], regions, coords)
    df.attrs = {"method": "umap", "space": "w_free", "relative": relative, "runs_left_out": [],
                "layers": list(free), "umap_fit_points": int(len(X)), "umap_fit_runs": int(len(fit_idx))}
    res.notes.append(f"UMAP of the {'deltas' if relative else 'positions'}: fitted on {len(X)} frames of a seeded "
                     f"sample of {len(fit_idx)} of the {len(ana)} runs, the other frames placed with umap's transform")
    return df
