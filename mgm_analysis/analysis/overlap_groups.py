"""The subspace-overlap summary by group of pairs (same/different region × same/other reference) without the run ×
run matrix.

Run i has an orthonormal basis A_i [k, d] (rows beyond its rank r_i are zero) and two runs overlap by
``v_ij = ‖A_i A_j^T‖_F² / min(r_i, r_j)`` (:func:`mgm_analysis.analysis.compare.overlap_matrix`).  Since
``‖A_i A_j^T‖_F² = <A_i^T A_i, A_j^T A_j>_F``, the sum of v over every pair of two sets of runs of ranks r, r' is
``<P, P'>_F / min(r, r')`` with ``P = Σ_i A_i^T A_i`` (d × d): the mean over all pairs of a group costs one d × d
matrix per rank, not N².  Pairs on the same reference are few and are measured one by one (in blocks); the other
reference's sums are then all pairs less those.  Up to :data:`EXACT_RUNS` runs every pair is measured in blocks
(mean, standard deviation and count exact); above it the means and counts stay exact, the same-reference standard
deviations too, and the other-reference standard deviations are those of the pairs of a seeded sample of
:data:`EXACT_RUNS` runs (said in the note).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["group_overlap_summary", "EXACT_RUNS", "GROUPS"]

#: up to this many runs every pair is measured (in blocks: memory ~ (block·k)², never N²)
EXACT_RUNS = 2000
BLOCK = 400
#: the groups in the order the summary lists them (pandas' sorted group names, as region_overlap_summary has them)
GROUPS = ["different regions, other reference", "different regions, same reference", "same region, other reference",
          "same region, same reference"]
COLUMNS = ["pair", "mean", "std", "count", "random_baseline"]


def _code(same_region, same_ref) -> np.ndarray:
    """Index into :data:`GROUPS`."""
    return 2 * np.asarray(same_region, int) + np.asarray(same_ref, int)


def _pairs(bases, ranks, reg, ref, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j of the runs ``idx``, in blocks: per group (pairs, count, sum, sum of squares), count over
    the pairs with a value (a run that does not move has none)."""
    pairs, cnt, s1, s2 = (np.zeros(4) for _ in range(4))
    idx = np.asarray(idx)
    k, d = bases.shape[1], bases.shape[2]
    for a in range(0, len(idx), BLOCK):
        ia = idx[a:a + BLOCK]
        fa = bases[ia].reshape(-1, d).astype(np.float64)
        for b in range(a, len(idx), BLOCK):
            ib = idx[b:b + BLOCK]
            fb = fa if b == a else bases[ib].reshape(-1, d).astype(np.float64)
            energy = ((fa @ fb.T).reshape(len(ia), k, len(ib), k) ** 2).sum((1, 3))
            denom = np.minimum(ranks[ia][:, None], ranks[ib][None, :]).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                vals = np.where(denom > 0, np.clip(energy / denom, 0, 1), np.nan)
            keep = np.triu(np.ones(vals.shape, bool), 1) if b == a else np.ones(vals.shape, bool)
            code = _code(reg[ia][:, None] == reg[ib][None, :], ref[ia][:, None] == ref[ib][None, :])[keep]
            v = vals[keep]
            ok = np.isfinite(v)
            pairs += np.bincount(code, minlength=4)
            cnt += np.bincount(code[ok], minlength=4)
            s1 += np.bincount(code[ok], v[ok], minlength=4)
            s2 += np.bincount(code[ok], v[ok] ** 2, minlength=4)
    return pairs, cnt, s1, s2


def _frame(pairs, cnt, s1, s2, baseline, std=None) -> pd.DataFrame:
    rows = []
    for g, name in enumerate(GROUPS):
        if pairs[g] == 0:
            continue
        n = cnt[g]
        mean = s1[g] / n if n else np.nan
        if std is not None and g in std:
            sd = std[g]
        else:
            sd = np.sqrt(max(s2[g] - n * mean**2, 0.0) / (n - 1)) if n > 1 else np.nan
        rows.append({"pair": name, "mean": mean, "std": sd, "count": int(n), "random_baseline": baseline})
    return pd.DataFrame(rows, columns=COLUMNS)


def _projector_sums(bases, ranks, reg) -> tuple[float, float]:
    """(Σ over ordered pairs (i, j), i = j included, of v_ij; the same over pairs of one region), from one d × d
    matrix P = Σ A_i^T A_i per rank (and per region, one region at a time)."""
    d = bases.shape[2]
    total_p: dict[int, np.ndarray] = {}
    same = 0.0
    for region in np.unique(reg):
        mine: dict[int, np.ndarray] = {}
        for r in np.unique(ranks[(reg == region) & (ranks > 0)]):
            sel = np.flatnonzero((reg == region) & (ranks == r))
            p = np.zeros((d, d))
            for a in range(0, len(sel), BLOCK):
                f = bases[sel[a:a + BLOCK], :r].reshape(-1, d).astype(np.float64)
                p += f.T @ f
            mine[int(r)] = p
        same += sum((mine[r1] * mine[r2]).sum() / min(r1, r2) for r1 in mine for r2 in mine)
        for r, p in mine.items():
            if r in total_p:
                total_p[r] += p
            else:
                total_p[r] = p
    total = sum((total_p[r1] * total_p[r2]).sum() / min(r1, r2) for r1 in total_p for r2 in total_p)
    return float(total), float(same)


def group_overlap_summary(bases, ranks, regions, references, random_baseline: float = float("nan"),
                          exact_runs: int = EXACT_RUNS, seed: int = 0) -> tuple[pd.DataFrame, str | None]:
    """(``pair, mean, std, count, random_baseline``, a note or None) over every pair of the runs, as
    :func:`mgm_analysis.analysis.compare.region_overlap_summary` has it from the full matrix.

    Args:
        bases: [N, k, d] orthonormal rows per run (:func:`~mgm_analysis.analysis.compare.principal_bases`).
        ranks: [N] the number of meaningful rows of each basis.
        regions, references: [N] labels.
        random_baseline: the value of the column of that name.
        exact_runs: up to this many runs every pair is measured; above, see the module docstring.
        seed: of the sample for the other-reference standard deviations.
    """
    bases = np.asarray(bases)
    ranks = np.asarray(ranks, int)
    reg = np.asarray([str(x) for x in regions], dtype=object)
    ref = np.asarray([str(x) for x in references], dtype=object)
    n = len(bases)
    if n < 2:
        return pd.DataFrame(columns=COLUMNS), None
    if n <= exact_runs:
        return _frame(*_pairs(bases, ranks, reg, ref, np.arange(n)), random_baseline), None
    # the pairs on one reference, one by one
    pairs, cnt, s1, s2 = (np.zeros(4) for _ in range(4))
    order = np.argsort(ref, kind="stable")
    bounds = np.flatnonzero(np.r_[True, ref[order][1:] != ref[order][:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b - a > 1:
            p, c, x1, x2 = _pairs(bases, ranks, reg, ref, order[a:b])
            pairs, cnt, s1, s2 = pairs + p, cnt + c, s1 + x1, s2 + x2
    # every pair through the projector sums, less the runs' pairs with themselves
    valid = ranks > 0
    k = bases.shape[1]
    diag = np.zeros(n)
    for a in range(0, n, BLOCK):
        blk = bases[a:a + BLOCK].astype(np.float64)
        g = blk @ blk.transpose(0, 2, 1)
        diag[a:a + BLOCK] = (g**2).sum((1, 2))
    diag = np.where(valid, diag / np.maximum(ranks, 1), 0.0)
    total, same_region = _projector_sums(bases, ranks, reg)
    total, same_region = (total - diag.sum()) / 2, (same_region - diag.sum()) / 2
    _, per_region = np.unique(reg, return_counts=True)
    _, valid_per_region = np.unique(reg[valid], return_counts=True)
    all_pairs = np.array([0, 0, 0, 0], float)
    all_cnt = np.zeros(4)
    same_pairs = (per_region * (per_region - 1) / 2).sum()
    same_cnt = (valid_per_region * (valid_per_region - 1) / 2).sum()
    nv = valid.sum()
    # other reference = all pairs of that region relation less those on one reference
    all_pairs[0] = n * (n - 1) / 2 - same_pairs - pairs[1]
    all_pairs[2] = same_pairs - pairs[3]
    all_cnt[0] = nv * (nv - 1) / 2 - same_cnt - cnt[1]
    all_cnt[2] = same_cnt - cnt[3]
    pairs[[0, 2]], cnt[[0, 2]] = all_pairs[[0, 2]], all_cnt[[0, 2]]
    s1[0] = (total - same_region) - s1[1]
    s1[2] = same_region - s1[3]
    # the other-reference spreads from a seeded sample's pairs
    pick = np.sort(np.random.default_rng(seed).choice(n, exact_runs, replace=False))
    _, sc, sx1, sx2 = _pairs(bases, ranks, reg, ref, pick)
    std = {}
    for g in (0, 2):
        std[g] = np.sqrt(max(sx2[g] - sx1[g] ** 2 / sc[g], 0.0) / (sc[g] - 1)) if sc[g] > 1 else np.nan
    note = (f"subspace overlap of all {n} runs by group: means and counts over every pair, exact (summed through "
            f"one {bases.shape[2]}×{bases.shape[2]} projector per rank, k = {k}); the standard deviations of the "
            f"other-reference pairs are those of a seeded sample of {exact_runs} runs")
    return _frame(pairs, cnt, s1, s2, random_baseline, std), note
