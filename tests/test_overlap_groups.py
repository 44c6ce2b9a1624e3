"""The overlap summary by group without the N x N matrix, against plain loops over every pair."""

import itertools

import numpy as np
import pandas as pd
import pytest

from mgm_analysis.analysis import overlap_groups
from mgm_analysis.analysis.overlap_groups import GROUPS, group_overlap_summary


def _bases(rng, n, k, d, ranks):
    out = np.zeros((n, k, d), np.float32)
    for i, r in enumerate(ranks):
        if r:
            q, _ = np.linalg.qr(rng.normal(size=(d, r)) + 2.0 * np.eye(d, r))  # correlated: overlaps well above k/d
            out[i, :r] = q.T
    return out


def _loop(bases, ranks, reg, ref, pairs=None):
    """Every pair by the principal angles (SVD of Qa^T Qb), grouped as the summary has them."""
    vals = {g: [] for g in GROUPS}
    seen = {g: 0 for g in GROUPS}
    n = len(bases)
    for i, j in pairs if pairs is not None else itertools.combinations(range(n), 2):
        g = f"{'same region' if reg[i] == reg[j] else 'different regions'}, " \
            f"{'same reference' if ref[i] == ref[j] else 'other reference'}"
        seen[g] += 1
        if ranks[i] == 0 or ranks[j] == 0:
            continue
        qa, qb = bases[i, :ranks[i]].T.astype(np.float64), bases[j, :ranks[j]].T.astype(np.float64)
        cos = np.linalg.svd(qa.T @ qb, compute_uv=False)
        vals[g].append(min(1.0, float((cos**2).sum()) / min(ranks[i], ranks[j])))
    return vals, seen


def _store_like(seed=0, n=40, k=3, d=12):
    rng = np.random.default_rng(seed)
    ranks = rng.choice([0, 1, 2, 3, 3, 3], size=n)
    reg = np.array(rng.choice(["mouth", "eyes", "brows"], size=n), dtype=object)
    ref = np.array([f"seed {s}" for s in rng.integers(0, 6, size=n)], dtype=object)
    return _bases(rng, n, k, d, ranks), ranks, reg, ref


@pytest.mark.parametrize("exact_runs", [1000, 10])
def test_summary_matches_every_pair_by_a_loop(exact_runs, monkeypatch):
    """Both ways (every pair in blocks; projector sums above exact_runs) against the loop: means and counts exact,
    standard deviations exact where every pair is measured, else those of the seeded sample's pairs."""
    monkeypatch.setattr(overlap_groups, "BLOCK", 7)  # several blocks, a ragged last one
    bases, ranks, reg, ref = _store_like()
    got, note = group_overlap_summary(bases, ranks, reg, ref, random_baseline=0.25, exact_runs=exact_runs)
    vals, seen = _loop(bases, ranks, reg, ref)
    assert list(got.pair) == [g for g in GROUPS if seen[g]]
    pick = np.sort(np.random.default_rng(0).choice(len(bases), exact_runs, replace=False)) if note else None
    sample_vals = _loop(bases, ranks, reg, ref, itertools.combinations(pick, 2))[0] if note else None
    for row in got.itertuples():
        v = np.array(vals[row.pair])
        assert row.count == len(v)
        assert row.mean == pytest.approx(v.mean(), rel=1e-6, abs=1e-7)
        sampled = note is not None and "other reference" in row.pair
        expect_sd = np.std(sample_vals[row.pair], ddof=1) if sampled else np.std(v, ddof=1)
        assert row.std == pytest.approx(expect_sd, rel=1e-5, abs=1e-7)
        assert row.random_baseline == 0.25
    assert (note is None) == (exact_runs >= len(bases))


@pytest.mark.parametrize("pinned", [True, False])
def test_analyze_summary_equals_the_full_matrix_by_a_loop(tmp_path, pinned):
    """mgm analyze's overlap_summary.csv: every pair of runs, each run's subspace by its own SVD here (also when
    a run moves outside its free layers, so that every layer counts)."""
    from dashboards.synthetic import make_store
    from mgm_analysis import store
    from mgm_analysis.analysis import analyze

    root = tmp_path / "runs"
    ids = make_store(root, 12)
    if not pinned:
        lat = np.load(root / ids[4] / "latents.npy")
        lat[:, 0] += np.linspace(0, 1, len(lat))[:, None] * np.random.default_rng(5).normal(size=lat.shape[2])
        np.save(root / ids[4] / "latents.npy", lat.astype(np.float32))
    paths = analyze(root, tmp_path / "rep", quiet=True)
    got = pd.read_csv(paths["overlap_summary"])
    runs = sorted(store.iter_runs(root), key=lambda r: r.path.name)
    subspaces = []
    for r in runs:
        x = (r.latents - r.reference[None]).reshape(len(r.latents), -1).astype(np.float64)
        x -= x.mean(0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        subspaces.append(vt[:min(3, int((s > s.max() * 1e-4).sum()))])
    by = {}
    for i, j in itertools.combinations(range(len(runs)), 2):
        a, b = runs[i], runs[j]
        g = (f"{'same region' if a.region == b.region else 'different regions'}, "
             f"{'same reference' if a.meta['reference']['seed'] == b.meta['reference']['seed'] else 'other reference'}")
        cos = np.linalg.svd(subspaces[i] @ subspaces[j].T, compute_uv=False)
        by.setdefault(g, []).append((cos**2).sum() / min(len(subspaces[i]), len(subspaces[j])))
    assert sorted(got.pair) == sorted(by)
    for row in got.itertuples():
        assert row.count == len(by[row.pair])
        assert row.mean == pytest.approx(np.mean(by[row.pair]), abs=1e-6)
        assert row.std == pytest.approx(np.std(by[row.pair], ddof=1), abs=1e-6)
