"""Comparing regions: subspace overlap of their trajectories and their W+ layer profiles (DESIGN §5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import layer_profile

__all__ = ["principal_subspace", "subspace_overlap", "random_overlap", "overlap_matrix", "layer_profiles"]


def principal_subspace(deltas, k: int = 3) -> np.ndarray:
    """Orthonormal basis [d, k'] (k' ≤ k) of the top-k principal directions of the rows of ``deltas`` [n, d]."""
    X = np.asarray(deltas, np.float64).reshape(len(deltas), -1)
    X = X - X.mean(0)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    k = min(k, int((s > s.max() * 1e-9).sum()) if s.size and s.max() > 0 else 0)
    return vt[:k].T


def subspace_overlap(A, B) -> float:
    """Mean cos² of the principal angles between the spans of bases A [d, k] and B [d, k] (0 = orthogonal, 1 = same).

    >>> import numpy as np
    >>> e = np.eye(4)
    >>> subspace_overlap(e[:, :2], e[:, 2:])
    0.0
    """
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"expected bases in the same space, got {A.shape[0]} and {B.shape[0]} dimensions")
    if A.shape[1] == 0 or B.shape[1] == 0:
        return float("nan")
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    cos = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0, 1)
    return float((cos**2).sum() / min(qa.shape[1], qb.shape[1]))


def random_overlap(k: int, d: int) -> float:
    """Expected overlap of two random k-dimensional subspaces of R^d: k/d."""
    return k / d


def _deltas(run, space="w_free"):
    lat = run.latents
    if space == "w_free":
        a, b = run.layers
        return (lat[:, a:b] - run.reference[None, a:b]).reshape(len(lat), -1), (a, b)
    return (lat - run.reference[None]).reshape(len(lat), -1), (0, lat.shape[1])


def overlap_matrix(runs, k: int = 3, space: str = "w_all") -> pd.DataFrame:
    """Square DataFrame (index and columns = run ids) of subspace overlaps between runs' deltas w_i − w*.

    ``space="w_all"`` compares all W+ layers, so runs with different free layers are comparable.
    ``df.attrs["random_baseline"]`` holds k/d.
    """
    runs = list(runs)
    bases, ids = [], []
    for r in runs:
        d, _ = _deltas(r, space)
        if bases and d.shape[1] != bases[0].shape[0]:
            continue
        bases.append(principal_subspace(d, k))
        ids.append(r.run_id)
    M = np.full((len(ids), len(ids)), np.nan)
    for i in range(len(ids)):
        for j in range(i, len(ids)):
            M[i, j] = M[j, i] = subspace_overlap(bases[i], bases[j])
    df = pd.DataFrame(M, index=ids, columns=ids)
    df.attrs["random_baseline"] = random_overlap(k, bases[0].shape[0]) if bases else float("nan")
    return df


def region_overlap_summary(runs, k: int = 3) -> pd.DataFrame:
    """Mean overlap between runs of the same region (different references) and of different regions."""
    runs = list(runs)
    M = overlap_matrix(runs, k)
    region = {r.run_id: r.region for r in runs}
    rows = []
    ids = list(M.index)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            rows.append({"region_a": region[a], "region_b": region[b], "overlap": M.loc[a, b]})
    df = pd.DataFrame(rows, columns=["region_a", "region_b", "overlap"])
    if df.empty:
        return df
    df["pair"] = np.where(df.region_a == df.region_b, "same region", "different regions")
    return df.groupby("pair")["overlap"].agg(["mean", "std", "count"]).reset_index()


def layer_profiles(runs) -> pd.DataFrame:
    """Tidy ``run_id, region, layer, share``: the share of each W+ layer in the run's total change."""
    rows = []
    for r in runs:
        for layer, share in enumerate(layer_profile(r.latents, r.reference)):
            rows.append({"run_id": r.run_id, "region": r.region, "layer": layer, "share": share})
    return pd.DataFrame(rows, columns=["run_id", "region", "layer", "share"])
