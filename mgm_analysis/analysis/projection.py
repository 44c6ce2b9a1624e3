"""Joint PCA / UMAP projections of many runs in shared coordinates (DESIGN §5).

Projections are fitted once over all selected runs, so trajectories of
different regions and references are comparable, and returned as tidy
DataFrames ``run_id, region, frame, x, y[, z]``.  Results are cached on disk
(Parquet) keyed by the inputs: the run ids, their latents files' sizes and
modification times, the method and its parameters.  ``umap`` is imported only
when asked for: its first fit in a process costs ~20 s of numba compilation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import Run, iter_runs

__all__ = ["Projector", "project", "features"]

SPACES = ("w_free", "w_all", "frames")
METHODS = ("pca", "umap")


def features(run: Run, space: str = "w_free") -> np.ndarray:
    """Rows to project for one run: [n, d] (free W+ layers, all layers, or frame pixels)."""
    if space == "w_all":
        return run.latents.reshape(len(run.latents), -1)
    if space == "w_free":
        a, b = run.layers
        return run.latents[:, a:b].reshape(len(run.latents), -1)
    if space == "frames":
        return run.frames.reshape(len(run.frame_paths), -1)
    raise ValueError(f"unknown space {space!r}; use one of {', '.join(SPACES)}")


class Projector:
    """scikit-learn-style joint projection: ``fit(X)`` then ``transform(X)``; fitted state in ``*_`` attributes.

    Args:
        method: "pca" or "umap".
        n_components: 2 or 3.
        random_state: seed (UMAP).
        n_neighbors, min_dist: UMAP parameters.
    """

    def __init__(self, method: str = "pca", n_components: int = 2, random_state: int = 0, n_neighbors: int = 15,
                 min_dist: float = 0.1):
        self.method = method
        self.n_components = n_components
        self.random_state = random_state
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist

    def fit(self, X, y=None):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use pca or umap")
        if self.n_components not in (2, 3):
            raise ValueError(f"n_components must be 2 or 3, got {self.n_components}")
        X = np.asarray(X, np.float64)
        if self.method == "pca":
            from sklearn.decomposition import PCA

            self.model_ = PCA(n_components=min(self.n_components, *X.shape), random_state=self.random_state).fit(X)
            self.explained_variance_ratio_ = self.model_.explained_variance_ratio_
        else:
            import umap  # noqa: PLC0415  (slow import, only here)

            self.model_ = umap.UMAP(n_components=self.n_components, n_neighbors=min(self.n_neighbors, len(X) - 1),
                                    min_dist=self.min_dist, random_state=self.random_state).fit(X)
        return self

    def transform(self, X):
        Y = self.model_.transform(np.asarray(X, np.float64))
        if Y.shape[1] < self.n_components:  # fewer samples or dims than components
            Y = np.pad(Y, ((0, 0), (0, self.n_components - Y.shape[1])))
        return Y

    def fit_transform(self, X, y=None):
        if self.method == "umap":
            self.fit(X)
            Y = self.model_.embedding_
            return np.pad(Y, ((0, 0), (0, self.n_components - Y.shape[1]))) if Y.shape[1] < self.n_components else Y
        return self.fit(X).transform(X)


def _runs(runs_or_root) -> list[Run]:
    if isinstance(runs_or_root, (str, Path)):
        return list(iter_runs(runs_or_root))
    return list(runs_or_root)


def _cache_key(runs, method, space, n_components, params) -> str:
    parts = []
    for r in runs:
        st = (r.path / "latents.npy").stat()
        parts.append([r.run_id, st.st_size, st.st_mtime_ns])
    blob = json.dumps([parts, method, space, n_components, sorted(params.items())], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def project(runs_or_root, method: str = "pca", space: str = "w_free", n_components: int = 2,
            cache_dir: str | Path | None = None, random_state: int = 0, **params) -> pd.DataFrame:
    """Fit one projection over all runs and return ``run_id, region, frame, x, y[, z]`` (one row per frame).

    Runs whose feature width differs from the first run's (another generator or layer range) are left out with a
    warning.  ``cache_dir`` defaults to ``<root>/.mgm_cache`` when a root is given.
    """
    runs = _runs(runs_or_root)
    cols = ["run_id", "region", "frame", "x", "y"] + (["z"] if n_components == 3 else [])
    if not runs:
        return pd.DataFrame(columns=cols)
    if cache_dir is None and isinstance(runs_or_root, (str, Path)):
        cache_dir = Path(runs_or_root) / ".mgm_cache"
    key = _cache_key(runs, method, space, n_components, {"random_state": random_state, **params})
    cache = Path(cache_dir) / f"projection-{key}.parquet" if cache_dir else None
    if cache is not None and cache.exists():
        return pd.read_parquet(cache)
    feats, kept = [], []
    for r in runs:
        try:
            f = features(r, space)
        except Exception as exc:  # unreadable frames etc.
            import warnings

            warnings.warn(f"projection: skipping {r.run_id}: {exc}", stacklevel=2)
            continue
        if feats and f.shape[1] != feats[0].shape[1]:
            import warnings

            warnings.warn(f"projection: skipping {r.run_id}: {f.shape[1]} features, others have {feats[0].shape[1]}",
                          stacklevel=2)
            continue
        feats.append(f)
        kept.append(r)
    X = np.concatenate(feats)
    Y = Projector(method, n_components, random_state, **params).fit_transform(X)
    rows = []
    i = 0
    for r, f in zip(kept, feats):
        for k in range(len(f)):
            rows.append([r.run_id, r.region, k, *Y[i, :n_components]])
            i += 1
    df = pd.DataFrame(rows, columns=cols)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        df.to_parquet(tmp)
        tmp.replace(cache)
    return df
