"""Cross-region geometry: subspace overlap from principal angles, its random baseline, layer profiles."""

import doctest

import numpy as np
import pandas as pd
import pytest
from _fake_runs import fake_meta, make_run

from mgm_analysis import store
from mgm_analysis.analysis import compare
from mgm_analysis.analysis.compare import (
    basis_overlap,
    layer_profiles,
    overlap_matrix,
    principal_subspace,
    random_overlap,
    region_average,
    region_overlap_summary,
    subspace_overlap,
)


def test_docstring_examples():
    assert doctest.testmod(compare).failed == 0


def test_orthogonal_subspaces_overlap_zero_and_identical_one():
    e = np.eye(6)
    assert basis_overlap(e[:, :3], e[:, 3:]) == 0.0
    assert basis_overlap(e[:, :3], e[:, :3] @ np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]) \
        == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(12, 3)) @ e[:3]  # deltas in span(e0, e1, e2)
    B = rng.normal(size=(12, 3)) @ e[3:]  # deltas in span(e3, e4, e5)
    assert subspace_overlap(A, B, k=3) == pytest.approx(0.0, abs=1e-12)
    assert subspace_overlap(A, 2 * A[::-1], k=3) == pytest.approx(1.0)


def test_one_shared_direction_of_two():
    e = np.eye(5)
    assert basis_overlap(e[:, [0, 1]], e[:, [0, 2]]) == pytest.approx(0.5)
    c, s = np.cos(np.pi / 3), np.sin(np.pi / 3)
    assert basis_overlap(e[:, [0]], (c * e[0] + s * e[1])[:, None]) == pytest.approx(c**2)


def test_random_baseline_is_k_over_d():
    assert random_overlap(3, 60) == 0.05
    rng = np.random.default_rng(0)
    d, k = 40, 4
    sims = [basis_overlap(rng.normal(size=(d, k)), rng.normal(size=(d, k))) for _ in range(400)]
    assert np.mean(sims) == pytest.approx(k / d, rel=0.1)
    with pytest.raises(ValueError):
        random_overlap(5, 3)


def test_principal_subspace_rank_and_width_check():
    t = np.linspace(0, 1, 8)[:, None]
    line = t * np.array([[1.0, 2.0, 0.0, 0.0]])
    assert principal_subspace(line, k=3).shape == (4, 1)  # a straight path has one direction
    assert principal_subspace(np.zeros((5, 4)), k=2).shape == (4, 0)
    assert np.isnan(basis_overlap(principal_subspace(np.zeros((5, 4))), np.eye(4)[:, :1]))
    with pytest.raises(ValueError, match="same width"):
        subspace_overlap(np.zeros((3, 4)), np.zeros((3, 5)))


def test_overlap_matrix_same_region_vs_other(tmp_path):
    rng = np.random.default_rng(0)
    d1 = rng.normal(size=(2, 5))
    d2 = rng.normal(size=(2, 5))
    d2 -= (d2 * d1).sum() / (d1**2).sum() * d1  # orthogonal to d1 (flattened)
    a = store.load_run(make_run(tmp_path, "mouth", 0, direction=d1))
    b = store.load_run(make_run(tmp_path, "mouth", 1, direction=2 * d1))
    c = store.load_run(make_run(tmp_path, "eyes", 0, direction=d2, meta=fake_meta("eyes", 0)))
    M = overlap_matrix([a, b, c], k=2)
    assert list(M.index) == list(M.columns) == [a.run_id, b.run_id, c.run_id]
    assert np.allclose(np.diag(M), 1.0) and np.allclose(M, M.T)
    assert M.loc[a.run_id, b.run_id] == pytest.approx(1.0)
    assert M.loc[a.run_id, c.run_id] == pytest.approx(0.0, abs=1e-9)
    assert M.attrs["random_baseline"] == pytest.approx(2 / 10)  # k / (2 free layers x w_dim 5)
    summary = region_overlap_summary(M)
    by = summary.set_index("pair")["mean"]
    assert by["same region, other reference"] == pytest.approx(1.0)
    assert by["different regions, same reference"] == pytest.approx(0.0, abs=1e-9)
    assert by["different regions, other reference"] == pytest.approx(0.0, abs=1e-9)
    assert list(summary.columns) == ["pair", "mean", "std", "count", "random_baseline"]


def test_runs_of_another_shape_are_left_out(tmp_path):
    a = store.load_run(make_run(tmp_path, "mouth", 0))
    b = store.load_run(make_run(tmp_path, "eyes", 1))
    odd = store.load_run(make_run(tmp_path, "brows", 2, w_dim=7))
    M = overlap_matrix([a, b, odd])
    assert list(M.index) == [a.run_id, b.run_id]
    assert overlap_matrix([]).empty and region_overlap_summary([]).empty


def test_layer_profiles_table(tmp_path):
    a = store.load_run(make_run(tmp_path, "mouth", 0))
    lp = layer_profiles([a])
    assert list(lp.columns) == ["run_id", "region", "layer", "share"] and len(lp) == 4
    assert lp.share.sum() == pytest.approx(1.0)
    assert lp.set_index("layer").share[[0, 3]].sum() == 0  # only the free layers 1:3 move


# ---------------------------------------------------------- asymmetric inputs (found by mutation testing)
def _by_hand_overlap(da, db, k):
    """mean cos² of the principal angles between the top-k centred principal subspaces, one SVD each."""
    def basis(d):
        x = d - d.mean(0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        r = int((s > s[0] * 1e-4).sum())
        return vt[:min(k, r)]

    qa, qb = basis(da), basis(db)
    return float((np.linalg.svd(qa @ qb.T, compute_uv=False) ** 2).sum() / min(len(qa), len(qb)))


def test_overlap_of_subspaces_of_different_rank():
    e = np.eye(6)
    t = np.linspace(-1, 2, 7)[:, None]
    plane = 3.0 + t * e[0] + t**2 * e[1]  # rank 2 after centring, off the origin
    tilted = t * (e[0] + e[2]) / np.sqrt(2)  # rank 1, half inside the plane
    assert principal_subspace(plane, k=3).shape == (6, 2) and principal_subspace(tilted, k=3).shape == (6, 1)
    assert subspace_overlap(plane, tilted, k=3) == pytest.approx(0.5)  # cos² 45° over min(2, 1)
    assert subspace_overlap(tilted, plane, k=3) == pytest.approx(0.5)
    assert basis_overlap(e[:, :2], e[:, [0]]) == pytest.approx(1.0)
    assert basis_overlap(e[:, :3], e[:, [0, 4]]) == pytest.approx(0.5)
    # without centring the offset 3·(1, …) of `plane` from the reference is a direction of its own
    assert principal_subspace(plane, k=3, center=False).shape == (6, 3)


def test_overlap_matrix_and_summary_counts(tmp_path):
    rng = np.random.default_rng(3)
    runs, deltas = [], []
    for i, (region, seed, n) in enumerate([("mouth", 0, 6), ("mouth", 1, 5), ("eyes", 0, 7), ("eyes", 1, 6),
                                           ("brows", 0, 4)]):
        d = rng.normal(size=(2, 5)) if i != 4 else np.outer([1.0, -0.5], rng.normal(size=5))  # brows: rank 1
        run = store.load_run(make_run(tmp_path, region, seed, n=n, direction=d, meta=fake_meta(region, seed)))
        runs.append(run)
        deltas.append((run.latents - run.reference[None]).reshape(n, -1))
    M = overlap_matrix(runs, k=2)
    for a in range(5):
        for b in range(5):
            assert M.iloc[a, b] == pytest.approx(_by_hand_overlap(deltas[a], deltas[b], 2), abs=1e-5), (a, b)
    assert 0.05 < M.iloc[0, 2] < 0.95  # not a trivial 0 or 1
    summary = region_overlap_summary(M).set_index("pair")
    pairs = {"same region, other reference": [(0, 1), (2, 3)],
             "different regions, same reference": [(0, 2), (0, 4), (2, 4), (1, 3)],
             "different regions, other reference": [(0, 3), (1, 2), (1, 4), (3, 4)]}
    assert set(summary.index) == set(pairs)
    for pair, members in pairs.items():
        vals = [M.iloc[a, b] for a, b in members]
        assert summary.loc[pair, "count"] == len(members)
        assert summary.loc[pair, "mean"] == pytest.approx(np.mean(vals))
        assert summary.loc[pair, "std"] == pytest.approx(np.std(vals, ddof=1))
    assert np.allclose(summary["random_baseline"], 2 / 10)
    avg = region_average(M, {r.run_id: r.region for r in runs})
    assert list(avg.index) == ["brows", "eyes", "mouth"]
    assert avg.loc["mouth", "eyes"] == pytest.approx(np.mean([M.iloc[a, b] for a in (0, 1) for b in (2, 3)]))
    assert avg.loc["mouth", "mouth"] == pytest.approx(M.iloc[0, 1])  # a run with itself is left out
    assert np.isnan(avg.loc["brows", "brows"])  # one run: no pair


def test_principal_bases_in_batches_match_one_svd_per_run(tmp_path):
    rng = np.random.default_rng(5)
    runs = [store.load_run(make_run(tmp_path, "mouth", s, n=4 + s % 3, direction=rng.normal(size=(2, 5))))
            for s in range(34)]  # more than one batch of 32, three chain lengths
    bases, ranks = compare.principal_bases(runs, k=3)
    assert bases.shape == (34, 3, 10)  # only the moving layers 1:3 (2 x w_dim 5)
    for run, b, r in zip(runs, bases, ranks, strict=True):
        d = (run.latents - run.reference[None])[:, 1:3].reshape(len(run.latents), -1)
        q = principal_subspace(d, k=3)
        assert r == q.shape[1]
        assert np.allclose(b[:r].T @ b[:r], q @ q.T, atol=1e-5) and not b[r:].any()


def test_tables_carry_their_labels_and_empty_inputs(tmp_path):
    a = store.load_run(make_run(tmp_path, "mouth", 0))
    b = store.load_run(make_run(tmp_path, "eyes", 1, meta=fake_meta("eyes", 1)))
    lp = layer_profiles([a, b])
    assert set(lp.run_id) == {a.run_id, b.run_id} and set(lp.region) == {"mouth", "eyes"}
    assert list(lp.layer[:4]) == [0, 1, 2, 3]
    M = overlap_matrix([a, b], k=2)
    assert M.index.name == "run_id" and M.attrs["k"] == 2
    assert M.attrs["regions"] == {a.run_id: "mouth", b.run_id: "eyes"}
    assert M.attrs["references"] == {a.run_id: "seed 0", b.run_id: "seed 1"}
    empty = overlap_matrix([])
    assert empty.empty and np.isnan(empty.attrs["random_baseline"])
    bases, ranks = compare.principal_bases([], k=2)
    assert bases.shape == (0, 2, 0) and bases.dtype == np.float32 and ranks.shape == (0,)
    one, r1 = compare.principal_bases([a], k=1)
    assert one.shape == (1, 1, 10) and list(r1) == [1]
    with pytest.raises(ValueError, match="k must be"):
        compare.principal_bases([a], k=0)
    with pytest.raises(ValueError, match="expected bases"):
        basis_overlap(np.eye(4)[:, :2], np.eye(5)[:, :2])
    with pytest.raises(ValueError, match="expected bases"):
        basis_overlap(np.eye(4)[0], np.eye(4)[:, :2])
    assert np.isnan(basis_overlap(np.zeros((4, 0)), np.eye(4)[:, :1]))
    assert np.isnan(basis_overlap(np.eye(4)[:, :1], np.zeros((4, 0))))


def test_reference_labels_random_overlap_bounds_and_k(tmp_path):
    import hashlib

    from mgm_analysis.analysis.compare import reference_label

    class R:
        def __init__(self, ref, w):
            self.meta, self.reference = {"reference": ref}, w

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert reference_label(R({"seed": 0, "file": "x.npy"}, w)) == "seed 0"  # seed 0 is a seed, not "none"
    assert reference_label(R({"seed": None, "file": "C:\\refs\\faces\\w7.npy"}, w)) == "w7.npy"
    assert reference_label(R({"seed": None, "file": "/data/a/b.npy"}, w)) == "b.npy"
    assert reference_label(R({"seed": None, "file": None}, w)) == "w " + hashlib.sha1(w.tobytes()).hexdigest()[:8]
    assert reference_label(R({}, w)).startswith("w ") and len(reference_label(R({}, w))) == 10
    assert random_overlap(5, 5) == 1.0 and random_overlap(1, 4) == 0.25
    for k, d in ((0, 4), (5, 4)):
        with pytest.raises(ValueError, match="need 0 < k <= d"):
            random_overlap(k, d)
    with pytest.raises(ValueError, match="k must be >= 1"):
        principal_subspace(np.eye(3), k=0)
    assert principal_subspace(np.eye(3), k=1).shape == (3, 1)
    assert principal_subspace(np.zeros((4, 3))).shape == (3, 0)
    # the summary from runs uses the k it is given
    rng = np.random.default_rng(2)
    runs = [store.load_run(make_run(tmp_path, r, s, direction=rng.normal(size=(2, 5)), meta=fake_meta(r, s)))
            for r, s in (("mouth", 0), ("eyes", 0), ("mouth", 1))]
    for k in (1, 2):
        direct = region_overlap_summary(runs, k=k).set_index("pair")["mean"]
        via = region_overlap_summary(overlap_matrix(runs, k=k)).set_index("pair")["mean"]
        assert np.allclose(direct.sort_index(), via.sort_index())
    assert np.isnan(region_overlap_summary(pd.DataFrame(np.eye(2), index=["a", "b"], columns=["a", "b"]))
                    ["random_baseline"]).all()
    plain = pd.DataFrame([[1.0, 0.3], [0.3, 1.0]], index=["a", "b"], columns=["a", "b"])  # no attrs
    assert region_overlap_summary(plain)["pair"].tolist() == ["same region, same reference"]
