"""Joint PCA / UMAP projections of many runs in shared coordinates.

One projection is fitted over the frames of all selected runs, so the
trajectories of different regions and references land in the same plane and
can be compared; the result is a tidy DataFrame ``run_id, region, frame, x,
y[, z]`` with one row per frame (``df.attrs`` holds the method, the space and,
for PCA, the explained variance ratio).

What is projected (``space``):

* ``"w_free"`` — the W+ layers the runs optimised (the union of their
  ``layer_start:layer_end``), flattened: [n, layers × w_dim];
* ``"w_all"`` — every W+ layer;
* ``"frames"`` — the rendered frames' pixels.

With ``relative=True`` the deltas ``w_i − w*`` are projected instead, so runs
on different references start from the same origin.

Results are cached as Parquet under ``<root>/.mgm_cache/`` (or ``cache_dir``),
keyed by a hash of the inputs: run ids, the size and modification time of each
run's latents (and frames for ``space="frames"``), the method, its parameters
and the library version.  ``umap`` is imported only when ``method="umap"``:
its first fit in a process costs ~20 s of numba compilation.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import Run, iter_runs

__all__ = ["JointProjection", "Projector", "project", "features", "SPACES", "METHODS"]  # noqa: F822 (lazy, below)

SPACES = ("w_free", "w_all", "frames")
METHODS = ("pca", "umap")


def __getattr__(name):
    # JointProjection subclasses scikit-learn's BaseEstimator; importing scikit-learn costs ~1.5 s, which
    # a cached projection (the dashboard's usual case) never needs, so it loads on first use only.
    if name in ("JointProjection", "Projector"):
        from ._estimator import JointProjection

        return JointProjection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")




# ---------------------------------------------------------------- features
def _free_range(runs: list[Run]) -> tuple[int, int]:
    layers = [r.layers for r in runs]
    return min(a for a, _ in layers), max(b for _, b in layers)


def features(run: Run, space: str = "w_free", layers: tuple[int, int] | None = None,
             relative: bool = False) -> np.ndarray:
    """Rows to project for one run: [n, d] (the free W+ layers, all layers, or the frames' pixels).

    ``layers`` overrides the run's own free range (the joint projection uses
    the union over runs); ``relative`` subtracts the reference latent.
    """
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; use one of {', '.join(SPACES)}")
    if space == "frames":
        f = run.frames
        if relative:
            f = f - run.reference_img[None]
        return f.reshape(len(f), -1)
    lat = run.latents - run.reference[None] if relative else run.latents
    if space == "w_free":
        a, b = layers or run.layers
        lat = lat[:, a:b]
    return lat.reshape(len(lat), -1)


def _runs(runs_or_root) -> list[Run]:
    if isinstance(runs_or_root, (str, Path)):
        return list(iter_runs(runs_or_root))
    return list(runs_or_root)


def _shape_key(run: Run, space: str):
    if space == "frames":
        return tuple(run.mask.shape)
    return tuple(np.load(run.path / "latents.npy", mmap_mode="r").shape[1:])


def _stat(path) -> list:
    try:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [0, 0]


def _cache_key(runs, space, **params) -> str:
    """The cache file's key: the runs (id, folder, size and mtime of latents.npy and reference.npy; the frames'
    names, sizes and mtimes for ``space="frames"``), the space, the library's version and the parameters.

    Plain strings and ``os.stat`` instead of Path objects: the same key in about half the time (0.1 s for
    10 000 runs; the dashboard's first view computes it before it can read the cached projection)."""
    parts = []
    for r in runs:
        folder = str(r.path)
        part = [r.run_id, folder, *_stat(folder + "/latents.npy"), *_stat(folder + "/reference.npy")]
        if space == "frames":
            part += [p.name + ":" + ":".join(map(str, _stat(p))) for p in r.frame_paths]
        parts.append(part)
    blob = json.dumps([parts, space, _library_version(params.get("method")), sorted(params.items())], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@lru_cache(maxsize=4)
def _library_version(method) -> str:
    """The version of the library that fits ``method`` (part of the cache key), looked up once per process."""
    try:
        from importlib.metadata import version

        return version("umap-learn" if method == "umap" else "scikit-learn")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "sklearn"


def project(runs_or_root, method: str = "pca", space: str = "w_free", n_components: int = 2,
            cache_dir: str | Path | None = None, random_state: int | None = 0, relative: bool = False,
            fit: bool = True, **params) -> pd.DataFrame | None:
    """Fit one projection over every frame of the runs; return ``run_id, region, frame, x, y[, z]``.

    Args:
        runs_or_root: a store folder or a list of :class:`~mgm_analysis.store.Run`.
        method: "pca" or "umap" (UMAP's first fit in a process compiles for ~20 s).
        space: "w_free", "w_all" or "frames" (see the module docstring).
        n_components: 2 or 3 (adds a ``z`` column).
        cache_dir: where to cache the result; defaults to ``<root>/.mgm_cache`` when a
            root is given, no cache for a list of runs unless given.
        random_state: seed.
        relative: project deltas from each run's reference instead of absolute positions.
        fit: False returns None instead of fitting when the projection is not in the cache (nothing is
            loaded then: a caller that must answer at once can leave the fit to another).
        **params: more :class:`JointProjection` parameters (``n_neighbors``, ``min_dist``, ``metric``).

    Runs that cannot share the projection (another generator's W+ shape or
    another resolution than most runs, frames missing) are left out with one
    warning each.  ``df.attrs`` holds ``method``, ``space``, ``runs_left_out``
    and, for PCA, ``explained_variance_ratio``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; use one of {', '.join(SPACES)}")
    runs = _runs(runs_or_root)
    cols = ["run_id", "region", "frame", "x", "y"] + (["z"] if n_components == 3 else [])
    if not runs:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("run_id", "region") else "float64") for c in cols})
    if cache_dir is None and isinstance(runs_or_root, (str, Path)):
        cache_dir = Path(runs_or_root) / ".mgm_cache"
    est_params = {"method": method, "n_components": n_components, "random_state": random_state, **params}
    key = _cache_key(runs, space, relative=relative, **est_params)
    cache = Path(cache_dir) / f"projection-{method}-{space}-{key}.parquet" if cache_dir else None
    if cache is not None and cache.exists():
        try:
            return pd.read_parquet(cache)
        except Exception:  # a damaged cache file is recomputed
            pass
    if not fit:
        return None

    # keep the runs that share the most common shape; say which were left out
    shapes = {}
    left_out = []
    for r in runs:
        try:
            shapes[r.run_id] = _shape_key(r, space)
        except (OSError, ValueError) as exc:
            left_out.append(r.run_id)
            warnings.warn(f"projection: leaving out {r.run_id}: {exc}", stacklevel=2)
    if not shapes:
        return pd.DataFrame(columns=cols)
    common = Counter(shapes.values()).most_common(1)[0][0]
    kept = []
    for r in runs:
        if r.run_id not in shapes:
            continue
        if shapes[r.run_id] != common:
            left_out.append(r.run_id)
            warnings.warn(f"projection: leaving out {r.run_id}: shape {list(shapes[r.run_id])} differs from the "
                          f"other runs' {list(common)} (another generator?)", stacklevel=2)
            continue
        kept.append(r)
    layers = _free_range(kept) if space == "w_free" else None
    feats, ok = [], []
    for r in kept:
        try:
            feats.append(features(r, space, layers, relative))
            ok.append(r)
        except Exception as exc:  # e.g. a run without rendered frames
            left_out.append(r.run_id)
            warnings.warn(f"projection: leaving out {r.run_id}: {exc}", stacklevel=2)
    if not ok:
        return pd.DataFrame(columns=cols)
    from ._estimator import JointProjection

    est = JointProjection(**est_params)
    Y = est.fit_transform(np.concatenate(feats))
    lengths = [len(f) for f in feats]
    df = pd.DataFrame({
        "run_id": np.repeat([r.run_id for r in ok], lengths),
        "region": np.repeat([r.region for r in ok], lengths),
        "frame": np.concatenate([np.arange(n) for n in lengths]),
    })
    for j, c in enumerate(cols[3:]):
        df[c] = Y[:, j]
    df.attrs = {"method": method, "space": space, "relative": relative, "runs_left_out": left_out}
    if layers is not None:
        df.attrs["layers"] = list(layers)
    if method == "pca":
        df.attrs["explained_variance_ratio"] = [float(v) for v in est.explained_variance_ratio_]
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".tmp")
            df.to_parquet(tmp, index=False)
            tmp.replace(cache)
        except OSError as exc:  # a read-only store still gets its projection
            warnings.warn(f"projection: could not cache in {cache.parent}: {exc}", stacklevel=2)
    return df
