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
    assert bases.shape == (0, 2, 0) and bases.dtype == np.float32 and ranks.shape == (0,) and ranks.dtype.kind == "i"
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


# ---------------------------------------------- curved runs of rank >= 2 (found by mutation testing)
def _chain_run(root, region, seed, deltas, run_id=None):
    """A stored run that moves a random w* by ``deltas``: [n, 10] on the free W+ layers 1:3, or [n, 4, 5] anywhere."""
    rng = np.random.default_rng(1000 + seed)
    ref = rng.normal(size=(4, 5)).astype(np.float32)
    deltas = np.asarray(deltas, np.float64)
    lat = np.repeat(ref[None], len(deltas), 0)
    if deltas.ndim == 2:
        lat[:, 1:3] += deltas.reshape(len(deltas), 2, 5).astype(np.float32)
    else:
        lat += deltas.astype(np.float32)
    mask = np.zeros((8, 8), np.float32)
    mask[2:5, 2:6] = 1
    return store.load_run(store.write_run(root, meta=fake_meta(region, seed), latents=lat, reference=ref,
                                          reference_img=np.full((8, 8, 3), 0.5, np.float32), mask=mask,
                                          run_id=run_id or f"{region}-{seed}"))


def _curve(rng, n, rank, d=10, scale=1.0):
    """n points of a chain from w* that bends, Σ_m a_m (1 − cos(mπt)) u_m (m = 1..rank, random u_m, falling a_m):
    rank ``rank`` after centring, principal directions with clearly different energies, a mean offset from w*."""
    t = np.linspace(0, 1, n)[:, None]
    out = np.zeros((n, d))
    for m in range(1, rank + 1):
        out += scale * 3.0 / m * (1 - np.cos(m * np.pi * t)) * rng.normal(size=d)
    return out


def _deltas(run):
    return (run.latents.astype(np.float64) - run.reference[None]).reshape(len(run.latents), -1)


def _svd_basis(x, k, center=True):
    """Top-k right singular vectors [d, k'] of x (rows centred first), one SVD, k' = min(k, rank); the chains here
    have singular values either of order one or at float32 round-off, the rank is the count above 1e-3 of the top."""
    x = x - x.mean(0) if center else x
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    rank = int((s > 1e-3 * s[0]).sum()) if s.size and s[0] > 0 else 0
    return vt[:min(k, rank)].T


def _angle_overlap(qa, qb):
    """mean cos² of the principal angles (scipy's own algorithm); NaN when a basis is empty."""
    from scipy.linalg import subspace_angles

    if qa.shape[1] == 0 or qb.shape[1] == 0:
        return np.nan
    return float(np.mean(np.cos(subspace_angles(qa, qb)) ** 2))


def _quietly(fn, *args, **kw):
    """fn(*args, **kw) with every warning an error: NaN for a still run is an answer, not a RuntimeWarning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kw)


#: (region, reference seed, frames, rank after centring): ranks 0..5 around the default k = 3, 2 to 9 frames
CURVED = [("mouth", 0, 9, 4), ("mouth", 1, 8, 2), ("eyes", 0, 7, 3), ("eyes", 1, 2, 1), ("brows", 0, 6, 5),
          ("brows", 1, 8, 1), ("nose", 0, 5, 0)]


def _curved_runs(root):
    rng = np.random.default_rng(11)
    return [_chain_run(root, region, seed, _curve(rng, n, rank)) for region, seed, n, rank in CURVED]


def test_overlap_matrix_of_curved_runs_is_the_principal_angles(tmp_path):
    runs = _curved_runs(tmp_path)
    ranks = [rank for *_, rank in CURVED]
    bases = [_svd_basis(_deltas(r), k=3) for r in runs]
    assert [q.shape[1] for q in bases] == [min(3, rank) for rank in ranks]  # the chains are as built
    M = _quietly(overlap_matrix, runs)  # the defaults: k = 3, centred
    for a in range(len(runs)):
        for b in range(len(runs)):
            want = _angle_overlap(bases[a], bases[b])
            if np.isnan(want):  # the still run: no direction, no overlap
                assert np.isnan(M.iloc[a, b]), (a, b)
            else:
                assert M.iloc[a, b] == pytest.approx(want, abs=1e-5), (a, b)
    vals = M.to_numpy()
    assert np.isfinite(vals).sum() == 6 * 6  # every pair of moving runs
    assert 0.01 < np.nanmin(vals) and np.nanmax(vals[~np.eye(7, dtype=bool)]) < 0.95  # none trivially 0 or 1
    assert ((vals[np.isfinite(vals)] >= 0) & (vals[np.isfinite(vals)] <= 1)).all()  # an overlap is in [0, 1], exactly
    assert M.attrs["random_baseline"] == pytest.approx(3 / 10)
    # without centring the mean offset of each chain from w* is a direction too
    plain = overlap_matrix(runs, k=3, center=False)
    loose = [_svd_basis(_deltas(r), k=3, center=False) for r in runs]
    for a, b in ((0, 1), (0, 4), (1, 3), (2, 5)):
        assert plain.iloc[a, b] == pytest.approx(_angle_overlap(loose[a], loose[b]), abs=1e-5), (a, b)
    assert np.abs(plain.to_numpy() - vals)[:6, :6].max() > 0.01  # and that is another answer
    # one run alone: overlap 1 with itself, and the baseline of its free layers
    one = overlap_matrix(runs[:1], k=2)
    assert one.shape == (1, 1) and one.iloc[0, 0] == pytest.approx(1.0) and one.attrs["random_baseline"] == 0.2


def test_summary_and_region_average_of_curved_runs(tmp_path):
    runs = _curved_runs(tmp_path)[:-1]  # the moving ones
    bases = [_svd_basis(_deltas(r), k=3) for r in runs]
    groups = {}
    for a in range(len(runs)):
        for b in range(a + 1, len(runs)):
            (ra, sa, *_), (rb, sb, *_) = CURVED[a], CURVED[b]
            pair = ("same region" if ra == rb else "different regions") + ", " + \
                   ("same reference" if sa == sb else "other reference")
            groups.setdefault(pair, []).append(_angle_overlap(bases[a], bases[b]))
    summary = region_overlap_summary(runs).set_index("pair")  # default k = 3
    assert sorted(summary.index) == sorted(groups)
    for pair, vals in groups.items():
        assert summary.loc[pair, "count"] == len(vals)
        assert summary.loc[pair, "mean"] == pytest.approx(np.mean(vals), abs=1e-5)
        assert summary.loc[pair, "std"] == pytest.approx(np.std(vals, ddof=1), abs=1e-5)
    k1 = region_overlap_summary(runs, k=1).set_index("pair")  # top direction only
    top = [_svd_basis(_deltas(r), k=1) for r in runs]
    assert k1.loc["same region, other reference", "mean"] == pytest.approx(
        np.mean([_angle_overlap(top[0], top[1]), _angle_overlap(top[2], top[3]), _angle_overlap(top[4], top[5])]),
        abs=1e-5)
    M = overlap_matrix(runs)
    avg = region_average(M, {r.run_id: r.region for r in runs})
    assert (avg.dtypes == np.float64).all()
    assert avg.loc["brows", "mouth"] == pytest.approx(np.mean([_angle_overlap(bases[a], bases[b])
                                                               for a in (4, 5) for b in (0, 1)]), abs=1e-5)


def test_principal_bases_of_curved_runs_and_the_moving_layers(tmp_path):
    runs = _curved_runs(tmp_path)
    bases, ranks = _quietly(compare.principal_bases, runs)  # defaults: k = 3, centred
    assert bases.shape == (7, 3, 10) and bases.dtype == np.float32 and ranks.dtype.kind == "i"
    assert list(ranks) == [min(3, rank) for *_, rank in CURVED]
    for run, b, r in zip(runs, bases, ranks, strict=True):
        q = _svd_basis(_deltas(run)[:, 5:15], k=3)
        assert np.allclose(b[:r].T @ b[:r], q @ q.T, atol=1e-5) and not b[r:].any()
    # uncentred: the subspace of the deltas themselves, mean offset included
    plain, pranks = compare.principal_bases(runs[:3], k=2, center=False)
    for run, b, r in zip(runs[:3], plain, pranks, strict=True):
        q = _svd_basis(_deltas(run)[:, 5:15], k=2, center=False)
        assert r == 2 and np.allclose(b.T @ b, q @ q.T, atol=1e-5)
    # a run that also moves W+ layer 3, outside its free layers 1:3: every layer counts for every run
    rng = np.random.default_rng(4)
    full = np.zeros((6, 4, 5))
    full[:, 1:] = _curve(rng, 6, 2, d=15).reshape(6, 3, 5)
    wide = _chain_run(tmp_path, "jaw", 0, full)
    wb, wr = compare.principal_bases([runs[0], wide], k=2)
    assert wb.shape == (2, 2, 20) and list(wr) == [2, 2]
    for run, b in zip([runs[0], wide], wb, strict=True):
        q = _svd_basis(_deltas(run), k=2)
        assert np.allclose(b.T @ b, q @ q.T, atol=1e-5)
    below = np.zeros((6, 4, 5))
    below[:, :3] = _curve(rng, 6, 2, d=15).reshape(6, 3, 5)  # moves layer 0, below the free layers
    assert compare.principal_bases([_chain_run(tmp_path, "chin", 0, below)], k=2)[0].shape == (1, 2, 20)


def test_principal_bases_of_straight_runs_quietly(tmp_path):
    # a line has one direction; the Gram matrix's other eigenvalues are round-off, with three frames often below 0
    runs = [store.load_run(make_run(tmp_path, "mouth", s, n=2 + s % 2)) for s in range(12)]
    bases, ranks = _quietly(compare.principal_bases, runs, k=3)
    assert list(ranks) == [1] * 12
    for run, b in zip(runs, bases, strict=True):
        line = _deltas(run)[-1, 5:15]
        assert np.allclose(np.abs(b[0] @ line), np.linalg.norm(line), rtol=1e-5) and not b[1:].any()


def test_principal_bases_of_many_runs_in_batches(tmp_path):
    rng = np.random.default_rng(6)
    spec = [(3 + i % 4, 1 + i % 3) for i in range(70)]  # more than two batches of 32, four chain lengths
    runs = [_chain_run(tmp_path, "mouth", i, _curve(rng, n, rank)) for i, (n, rank) in enumerate(spec)]
    bases, ranks = compare.principal_bases(runs, k=2)
    assert list(ranks) == [min(2, rank) for _, rank in spec]
    for run, b, r in zip(runs, bases, ranks, strict=True):
        q = _svd_basis(_deltas(run)[:, 5:15], k=2)
        assert np.allclose(b[:r].T @ b[:r], q @ q.T, atol=1e-5), run.run_id


def test_subspaces_of_rank_above_k_small_steps_and_float32(tmp_path):
    rng = np.random.default_rng(8)
    A, B = _curve(rng, 9, 5), _curve(rng, 8, 4)
    qa, qb = _svd_basis(A, k=3), _svd_basis(B, k=3)
    assert principal_subspace(A).shape == (10, 3)  # default k = 3 of rank 5
    assert subspace_overlap(A, B) == pytest.approx(_angle_overlap(qa, qb), abs=1e-12)
    assert subspace_overlap(A, B, k=2, center=False) == pytest.approx(
        _angle_overlap(_svd_basis(A, k=2, center=False), _svd_basis(B, k=2, center=False)), abs=1e-12)
    # a search's steps are small: scale does not change the directions
    tiny = principal_subspace(A * 1e-3, k=3)
    assert tiny.shape == (10, 3) and np.allclose(tiny @ tiny.T, qa @ qa.T, atol=1e-10)
    # float32 deltas (as runs store them) are analysed in float64
    A32 = A.astype(np.float32)
    exact = _svd_basis(A32.astype(np.float64), k=3)
    q32 = principal_subspace(A32, k=3)
    assert q32.dtype == np.float64 and np.allclose(q32 @ q32.T, exact @ exact.T, atol=1e-10)
    Qa, Qb = rng.normal(size=(10, 3)).astype(np.float32), rng.normal(size=(10, 2)).astype(np.float32)
    want = _angle_overlap(np.linalg.qr(Qa.astype(np.float64))[0], np.linalg.qr(Qb.astype(np.float64))[0])
    assert basis_overlap(Qa, Qb) == pytest.approx(want, abs=1e-12)
    assert basis_overlap(Qb, Qa) == pytest.approx(want, abs=1e-12)
    # a block of no layers at all has no direction
    assert principal_subspace(np.zeros((3, 0))).shape == (0, 0)


def test_basis_overlap_stays_in_0_1_and_empty_bases_are_quiet():
    rng = np.random.default_rng(9)
    for _ in range(50):
        q = rng.normal(size=(12, 4))
        rot = np.linalg.qr(rng.normal(size=(4, 4)))[0]
        ov = basis_overlap(q, q @ rot)  # the same subspace
        assert 0 <= ov <= 1 and ov == pytest.approx(1.0)
    assert np.isnan(_quietly(basis_overlap, np.zeros((4, 0)), np.eye(4)[:, :2]))
    assert np.isnan(_quietly(basis_overlap, np.eye(4)[:, :2], np.zeros((4, 0))))


def test_principal_subspace_memory_grows_with_n_times_d():
    import tracemalloc

    x = np.random.default_rng(0).normal(size=(5, 3000))  # 5 frames in a 3 000-d W+ block: 120 kB
    tracemalloc.start()
    try:
        q = principal_subspace(x, k=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert q.shape == (3000, 3)
    assert peak < 5e6  # a full d x d SVD would hold 72 MB (680 MB for StyleGAN2's 18 x 512)


def test_empty_tables_keep_their_columns_and_odd_inputs():
    assert list(layer_profiles([]).columns) == ["run_id", "region", "layer", "share"]
    assert list(region_overlap_summary([]).columns) == ["pair", "mean", "std", "count", "random_baseline"]
    ints = pd.DataFrame([[1, 0, 1], [0, 1, 1], [1, 1, 1]], index=list("abc"), columns=list("abc"))
    avg = region_average(ints, {"a": "x", "b": "x", "c": "y"})
    assert avg.loc["x", "x"] == 0 and avg.loc["x", "y"] == 1 and np.isnan(avg.loc["y", "y"])
    from mgm_analysis.analysis.compare import reference_label

    class R:
        meta, reference = {"reference": {"seed": None, "file": "w7.npy"}}, np.zeros((2, 3), np.float32)

    assert reference_label(R()) == "w7.npy"  # a bare file name, no folder
