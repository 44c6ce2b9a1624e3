"""The scikit-learn estimator behind :func:`mgm_analysis.analysis.projection.project` (imports scikit-learn).

Import it as ``mgm_analysis.analysis.projection.JointProjection``; it lives here so that reading a cached
projection never imports scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

METHODS = ("pca", "umap")

__all__ = ["JointProjection"]


def _umap_call(fn, *args):
    """``fn(*args)`` with the process's OpenMP thread count put back after: umap-learn's numba code leaves it
    at the machine's core count, which a caller's torch then uses (in a process that set 1 thread,
    two processes on two cores each spinning two threads ran torch ~30 times slower)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=None, user_api="openmp"):
        return fn(*args)


class JointProjection(TransformerMixin, BaseEstimator):
    """PCA or UMAP behind the scikit-learn estimator contract.

    Parameters are stored unchanged and validated in :meth:`fit`, which returns
    ``self``; fitted state lives in attributes ending in ``_`` (``model_``,
    ``n_features_in_``, and ``explained_variance_ratio_`` for PCA).  When there
    are fewer samples or features than ``n_components`` the missing
    coordinates are 0.

    Args:
        method: "pca" or "umap".
        n_components: 2 or 3.
        random_state: seed (PCA's randomised solver, UMAP).
        n_neighbors: UMAP neighbourhood size (capped at n_samples − 1).
        min_dist: UMAP minimum distance between embedded points.
        metric: UMAP input metric.
    """

    def __init__(self, method: str = "pca", n_components: int = 2, random_state: int | None = 0,
                 n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean"):
        self.method = method
        self.n_components = n_components
        self.random_state = random_state
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric

    def _validate(self, X) -> np.ndarray:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.n_components not in (2, 3):
            raise ValueError(f"n_components must be 2 or 3, got {self.n_components!r}")
        X = np.asarray(X, np.float32 if self.method == "umap" else np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"expected X [n_samples, n_features] with n_samples >= 1, got {list(X.shape)}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or inf; leave out runs with non-finite latents")
        if self.method == "umap" and len(X) < self.n_components + 2:
            raise ValueError(f"UMAP needs at least {self.n_components + 2} samples, got {len(X)}; use method='pca'")
        return X

    def _pad(self, Y) -> np.ndarray:
        Y = np.asarray(Y, np.float64)
        return np.pad(Y, ((0, 0), (0, self.n_components - Y.shape[1]))) if Y.shape[1] < self.n_components else Y

    def fit(self, X, y=None):
        X = self._validate(X)
        self.n_features_in_ = X.shape[1]
        if self.method == "pca":
            from sklearn.decomposition import PCA

            k = min(self.n_components, *X.shape)
            self.model_ = PCA(n_components=k, random_state=self.random_state).fit(X)
            self.explained_variance_ratio_ = self.model_.explained_variance_ratio_
        else:
            import umap  # slow import and first-fit compilation: only here

            self.model_ = umap.UMAP(n_components=self.n_components, n_neighbors=max(2, min(self.n_neighbors, len(X) - 1)),
                                    min_dist=self.min_dist, metric=self.metric, random_state=self.random_state,
                                    n_jobs=1 if self.random_state is not None else -1)
            self.embedding_ = self._pad(_umap_call(self.model_.fit_transform, X))
        return self

    def transform(self, X):
        if not hasattr(self, "model_"):
            raise ValueError("this JointProjection is not fitted yet; call fit(X) first")
        X = np.asarray(X, np.float32 if self.method == "umap" else np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected X with {self.n_features_in_} features, got {list(X.shape)}")
        return self._pad(_umap_call(self.model_.transform, X) if self.method == "umap" else self.model_.transform(X))

    def fit_transform(self, X, y=None, **fit_params):
        self.fit(X)
        return self.embedding_ if self.method == "umap" else self._pad(self.model_.transform(self._validate(X)))
