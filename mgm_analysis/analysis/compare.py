"""Comparing regions: how much two runs' trajectories share directions, and which W+ layers carry them.

A run's *deltas* are ``w_i − w*`` [n, num_ws·w_dim].  Their top-k principal
directions span a subspace; two runs overlap by the mean cos² of the principal
angles between their subspaces — 0 when they move in orthogonal directions
(independent regions), 1 when they span the same directions.  Two random
k-dimensional subspaces of R^d overlap by k/d on average (the baseline).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ..metrics import layer_profile

__all__ = ["principal_subspace", "principal_bases", "basis_overlap", "subspace_overlap", "random_overlap",
           "overlap_matrix", "region_average", "region_overlap_summary", "layer_profiles", "reference_label"]


def principal_subspace(deltas, k: int = 3, center: bool = True) -> np.ndarray:
    """Orthonormal basis [d, k'] of the top-k principal directions of the rows of ``deltas`` [n, ...].

    k' = min(k, rank): a straight path has one direction however large k is.
    ``center`` subtracts the mean row first (PCA); without it the mean offset
    from the reference counts as a direction too.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    X = np.asarray(deltas, np.float64)
    X = X.reshape(len(X), -1)
    if center:
        X = X - X.mean(0)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    # directions with under 1e-4 of the top singular value are float32 round-off, not motion
    rank = int((s > s.max() * 1e-4).sum()) if s.size and s.max() > 0 else 0
    return vt[:min(k, rank)].T


def basis_overlap(A, B) -> float:
    """Mean cos² of the principal angles between span(A) and span(B), for bases A [d, ka], B [d, kb].

    ``‖Qa^T Qb‖_F² / min(ka, kb)`` with Qa, Qb orthonormal: the cosines of the
    principal angles are the singular values of Qa^T Qb.  NaN when a basis is empty.

    >>> import numpy as np
    >>> e = np.eye(4)
    >>> basis_overlap(e[:, :2], e[:, 2:]), basis_overlap(e[:, :2], e[:, 1:3])
    (0.0, 0.5)
    """
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise ValueError(f"expected bases [d, k] in the same space, got {list(A.shape)} and {list(B.shape)}")
    if A.shape[1] == 0 or B.shape[1] == 0:
        return float("nan")
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    cos = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0, 1)
    return float((cos**2).sum() / min(qa.shape[1], qb.shape[1]))


def subspace_overlap(A, B, k: int = 3, center: bool = True) -> float:
    """Overlap of the top-k principal subspaces of two sets of deltas A [n_a, d] and B [n_b, d].

    ``mean_j cos² θ_j`` over the principal angles θ_j between the subspaces: 0 =
    orthogonal, 1 = the same directions; :func:`random_overlap` (k/d) is the
    expectation for random directions.

    >>> import numpy as np
    >>> t = np.linspace(0, 1, 5)[:, None]
    >>> e = np.eye(6)
    >>> round(subspace_overlap(t * e[0] + t**2 * e[1], t * e[2] + t**2 * e[3], k=2), 12)
    0.0
    """
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    A, B = A.reshape(len(A), -1), B.reshape(len(B), -1)
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"expected deltas of the same width, got {A.shape[1]} and {B.shape[1]} (another generator?)")
    return basis_overlap(principal_subspace(A, k, center), principal_subspace(B, k, center))


def random_overlap(k: int, d: int) -> float:
    """Expected overlap of two uniformly random k-dimensional subspaces of R^d: ``E‖Qa^T Qb‖_F² / k = k/d``."""
    if not 0 < k <= d:
        raise ValueError(f"need 0 < k <= d, got k={k}, d={d}")
    return k / d


def reference_label(run) -> str:
    """A short label of a run's reference: ``seed N``, the file name, or a hash of w*."""
    ref = run.meta.get("reference") or {}
    if ref.get("seed") is not None:
        return f"seed {ref['seed']}"
    if ref.get("file"):
        return str(ref["file"]).replace("\\", "/").rsplit("/", 1)[-1]
    return "w " + hashlib.sha1(np.ascontiguousarray(run.reference).tobytes()).hexdigest()[:8]


def _comparable(runs):
    """The runs sharing the most common W+ shape and the union of their free layers."""
    runs = list(runs)
    if not runs:
        return [], (0, 0)
    shapes = [r.reference.shape for r in runs]
    common = max(set(shapes), key=shapes.count)
    kept = [r for r, s in zip(runs, shapes, strict=True) if s == common]
    return kept, (min(r.layers[0] for r in kept), max(r.layers[1] for r in kept))


def _moving(runs) -> slice:
    """The W+ layers where some run moves: the union of the free layers when every run is pinned outside it
    (the other layers hold zeros for every run and add nothing to an overlap), else all layers."""
    a, b = min(r.layers[0] for r in runs), max(r.layers[1] for r in runs)
    pinned = all(np.array_equal(r.latents[:, :a], np.broadcast_to(r.reference[:a], r.latents[:, :a].shape))
                 and np.array_equal(r.latents[:, b:], np.broadcast_to(r.reference[b:], r.latents[:, b:].shape))
                 for r in runs)
    return slice(a, b) if pinned else slice(None)


def principal_bases(runs, k: int = 3, center: bool = True, moving: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k principal directions of each run's deltas ``w_i − w*`` at once: ([R, k, D] orthonormal rows, ranks [R]).

    The subspaces :func:`principal_subspace` finds (same rank rule), from the small n × n Gram matrices of a
    batch of runs instead of one n × D SVD per run: milliseconds for hundreds of runs.  D covers the layers
    where some run moves (:func:`_moving`; ``moving`` gives it instead, for a batch of a larger set of runs); rows
    beyond a run's rank are zero.  Runs share one W+ shape.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    runs = list(runs)
    if not runs:
        return np.zeros((0, k, 0), np.float32), np.zeros(0, int)
    moving = _moving(runs) if moving is None else moving
    dim = int(np.prod(runs[0].latents[:, moving].shape[1:]))
    bases, ranks = np.zeros((len(runs), k, dim), np.float32), np.zeros(len(runs), int)
    for start in range(0, len(runs), 32):  # a batch at a time keeps memory small for big W+ spaces
        batch = runs[start:start + 32]
        for n in sorted({len(r.latents) for r in batch}):
            idx = [i for i, r in enumerate(batch) if len(r.latents) == n]
            x = np.stack([(batch[i].latents[:, moving] - batch[i].reference[None, moving]).reshape(n, -1)
                          for i in idx]).astype(np.float64)
            if center:
                x -= x.mean(1, keepdims=True)
            lam, u = np.linalg.eigh(x @ x.transpose(0, 2, 1))  # ascending
            lam, u = lam[:, ::-1][:, :k], u[:, :, ::-1][:, :, :k]
            sv = np.sqrt(np.clip(lam, 0, None))  # singular values of x
            keep = sv > sv[:, :1] * 1e-4  # principal_subspace's rule: the rest is round-off
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.where(keep[..., None], (u.transpose(0, 2, 1) @ x) / sv[..., None], 0.0)
            for j, i in enumerate(idx):
                bases[start + i, : v.shape[1]] = v[j]
                ranks[start + i] = int(keep[j].sum())
    return bases, ranks


def overlap_matrix(runs, k: int = 3, center: bool = True) -> pd.DataFrame:
    """Square DataFrame (index and columns = run ids) of subspace overlaps between the runs' deltas.

    All W+ layers are compared (pinned layers have zero deltas), so runs with
    different free layers stay comparable; runs with another W+ shape are left
    out.  Every pair at once: with orthonormal bases Qa, Qb (:func:`principal_bases`),
    Σ cos² of the principal angles is ‖Qa^T Qb‖_F², so no SVD per pair.  ``df.attrs``:
    ``random_baseline`` (k/d with d = the union of free layers × w_dim), ``k``,
    ``regions`` and ``references`` (run id -> label).
    """
    kept, (a, b) = _comparable(runs)
    ids = [r.run_id for r in kept]
    M = np.full((len(ids), len(ids)), np.nan)
    if ids:
        stack, ranks = principal_bases(kept, k, center)
        flat = stack.reshape(-1, stack.shape[-1]).astype(np.float64)
        gram = (flat @ flat.T).reshape(len(ids), k, len(ids), k)  # blocks Qa^T Qb
        energy = (gram**2).sum((1, 3))
        denom = np.minimum(ranks[:, None], ranks[None, :]).astype(float)
        with np.errstate(invalid="ignore"):  # 0/0 for a run that does not move (its rows are zero)
            M = np.where(denom > 0, np.clip(energy / denom, 0, 1), np.nan)
    df = pd.DataFrame(M, index=pd.Index(ids, name="run_id"), columns=ids)
    d_eff = (b - a) * kept[0].reference.shape[1] if kept else 0
    df.attrs = {"k": k, "random_baseline": random_overlap(min(k, d_eff), d_eff) if d_eff else float("nan"),
                "regions": {r.run_id: r.region for r in kept},
                "references": {r.run_id: reference_label(r) for r in kept}}
    return df


def region_average(mat: pd.DataFrame, region_of: dict) -> pd.DataFrame:
    """Average a run × run matrix into region × region; a run's entry with itself is left out."""
    if not len(mat):
        return mat
    regions = sorted({region_of[r] for r in mat.index})
    lab = np.array([region_of[r] for r in mat.index])
    vals = mat.to_numpy(dtype=float).copy()
    np.fill_diagonal(vals, np.nan)
    out = pd.DataFrame(np.nan, index=regions, columns=regions)
    for x in regions:
        for y in regions:
            block = vals[np.ix_(lab == x, lab == y)]
            if np.isfinite(block).any():
                out.loc[x, y] = float(np.nanmean(block))
    return out


def region_overlap_summary(runs_or_matrix, k: int = 3) -> pd.DataFrame:
    """Mean overlap of run pairs grouped as same/different region × same/other reference.

    The claim to check: two references of the same region overlap more than
    different regions do.  Accepts runs or an :func:`overlap_matrix`.  Columns:
    ``pair, mean, std, count, random_baseline``.
    """
    M = runs_or_matrix if isinstance(runs_or_matrix, pd.DataFrame) else overlap_matrix(runs_or_matrix, k)
    regions, refs = M.attrs.get("regions", {}), M.attrs.get("references", {})
    cols = ["pair", "mean", "std", "count", "random_baseline"]
    ids = list(M.index)
    i, j = np.triu_indices(len(ids), k=1)  # every pair once (2 000 runs: 2 million pairs, vectorised)
    if not len(i):
        return pd.DataFrame(columns=cols)
    reg = np.array([str(regions.get(x)) for x in ids], dtype=object)
    ref = np.array([str(refs.get(x)) for x in ids], dtype=object)
    same_region = np.where(reg[i] == reg[j], "same region", "different regions")
    same_ref = np.where(ref[i] == ref[j], "same reference", "other reference")
    pair = np.char.add(np.char.add(same_region.astype(str), ", "), same_ref.astype(str))
    vals = M.to_numpy(dtype=float)[i, j]
    df = pd.DataFrame({"pair": pair, "overlap": vals}).groupby("pair")["overlap"].agg(["mean", "std", "count"])
    df = df.reset_index()
    df["random_baseline"] = M.attrs.get("random_baseline", float("nan"))
    return df[cols]


def layer_profiles(runs) -> pd.DataFrame:
    """Tidy ``run_id, region, layer, share``: each W+ layer's share of the run's total change ``Σ_i ‖w_i − w*‖²``."""
    rows = []
    for r in runs:
        for layer, share in enumerate(layer_profile(r.latents, r.reference)):
            rows.append({"run_id": r.run_id, "region": r.region, "layer": layer, "share": share})
    return pd.DataFrame(rows, columns=["run_id", "region", "layer", "share"])
