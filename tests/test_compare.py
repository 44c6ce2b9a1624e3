"""Cross-region geometry: subspace overlap from principal angles, its random baseline, layer profiles."""

import doctest

import numpy as np
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
