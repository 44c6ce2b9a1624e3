"""Metrics with known answers, plus the docstring examples."""

import doctest
import warnings

import numpy as np
import pytest
from _fake_runs import make_run

from mgm_analysis import metrics as M
from mgm_analysis import store
from mgm_analysis.measure import recompute_metrics


def _mask():
    mask = np.zeros((4, 4))
    mask[:2] = 1  # area share 0.5
    return mask


def test_docstring_examples():
    import mgm_analysis.metrics.measures as measures

    result = doctest.testmod(measures, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0
    assert doctest.testmod(M, optionflags=doctest.ELLIPSIS).failed == 0  # the package's own example


def test_change_only_inside_the_mask_is_perfectly_local():
    mask, ref = _mask(), np.zeros((4, 4, 3))
    frames = np.zeros((3, 4, 4, 3))
    frames[:, :2] = np.linspace(0.1, 0.3, 3)[:, None, None, None]
    assert M.locality(frames, ref, mask) == 1.0
    assert M.locality_gain(frames, ref, mask) == 2.0
    assert M.outside_change(frames, ref, mask) == 0.0
    assert M.change_f1(frames, ref, mask) == 1.0


def test_uniform_change_gives_the_area_share():
    ref = np.zeros((8, 8, 3))
    mask = np.zeros((8, 8))
    mask[1:4, 2:7] = 1  # 15 of 64 pixels
    frames = np.full((5, 8, 8, 3), 0.2)
    assert M.locality(frames, ref, mask) == pytest.approx(15 / 64)
    assert M.locality_gain(frames, ref, mask) == pytest.approx(1.0)
    assert M.outside_change(frames, ref, mask) == pytest.approx(0.2)


def test_soft_mask_weights_pixels():
    ref, frames = np.zeros((1, 2, 3)), np.ones((1, 1, 2, 3))
    assert M.locality(frames, ref, np.array([[0.5, 0.0]])) == pytest.approx(0.25)


def test_no_change_is_nan_not_an_error():
    z = np.zeros((3, 4, 4, 3))
    assert np.isnan(M.locality(z, z[0], _mask()))
    assert np.isnan(M.change_f1(z, z[0], _mask()))
    assert np.isnan(M.jump_ratio(z))


def test_inside_change_and_gap_to_c():
    ref, mask = np.zeros((4, 4, 3)), _mask()
    frames = np.zeros((2, 4, 4, 3))
    frames[:, :2] = 0.1  # inside MSE 0.01 in [0, 1] units -> D_in 0.04 in [-1, 1] units
    frames[:, 2:] = 0.5  # outside change must not count
    r = M.inside_change(frames, ref, mask, offset=0.03)
    assert r["rms"] == pytest.approx(0.1) and r["mse"] == pytest.approx(0.01)
    assert r["d_in"] == pytest.approx(0.04) and r["gap"] == pytest.approx(0.01)
    assert "gap" not in M.inside_change(frames, ref, mask, offset=0.03, distance="lpips")
    ramp = M.inside_change(frames, ref, mask, offset=np.array([0.0, 0.08]))
    assert ramp["gap"] == pytest.approx(0.0)


def test_change_f1_is_low_when_the_change_misses_the_mask():
    mask, ref = _mask(), np.zeros((4, 4, 3))
    frames = np.zeros((1, 4, 4, 3))
    frames[:, 2:] = 0.3
    assert M.change_f1(frames, ref, mask) == 0.0


def test_straight_constant_speed_path():
    w = np.linspace(0, 1, 10)[:, None, None] * np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])[None]
    assert M.step_cv(w) == pytest.approx(0, abs=1e-12)
    assert M.curvature(w) == pytest.approx(0, abs=1e-12)
    assert M.turning_angle(w) == pytest.approx(0, abs=1e-5)
    assert M.intrinsic_dim(w) == {"n90": 1, "participation_ratio": pytest.approx(1.0)}


def test_accelerating_path_has_positive_step_cv():
    w = (np.linspace(0, 1, 6) ** 2)[:, None]
    assert M.step_cv(w) > 0.3 and M.curvature(w) > 0


def test_planar_circle_has_intrinsic_dim_two():
    k = 40
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 2)))[0]
    w = np.stack([np.cos(t), np.sin(t)], 1) @ basis.T
    d = M.intrinsic_dim(w)
    assert d["n90"] == 2 and d["participation_ratio"] == pytest.approx(2.0, rel=1e-9)
    assert M.step_cv(w, closed=True) == pytest.approx(0, abs=1e-9)
    assert M.curvature(w, closed=True) == pytest.approx(2 * np.sin(np.pi / k))
    assert M.turning_angle(w, closed=True) == pytest.approx(360 / k)


def test_image_steps_jump_ratio_straightness_and_loop_closure():
    f = np.zeros((5, 2, 2, 3))
    f[:] = np.array([0, 0.1, 0.2, 0.3, 0.4])[:, None, None, None]
    assert M.image_steps(f) == pytest.approx([0.1] * 4)
    assert M.image_step_cv(f) == pytest.approx(0, abs=1e-9)
    assert M.jump_ratio(f) == pytest.approx(1.0)
    assert M.perceptual_straightness(f) == pytest.approx(1.0)
    assert M.path_length(f) == pytest.approx(0.4)
    assert M.loop_closure(f) == pytest.approx(4.0)  # the way back is four ordinary steps
    f[4] = 0.9
    assert M.jump_ratio(f) == pytest.approx(6.0)
    back = np.zeros((3, 1, 1, 3))
    back[1] = 0.5  # there and back again
    assert M.perceptual_straightness(back) == pytest.approx(0.0)
    corner = np.zeros((3, 1, 2, 1))
    corner[1, 0, 0] = corner[2, 0, 0] = corner[2, 0, 1] = 1.0  # a right angle
    assert M.perceptual_straightness(corner) == pytest.approx(np.sqrt(2) / 2)


def test_layer_profile_and_semantic_locality():
    ref = np.zeros((3, 2))
    w = np.zeros((4, 3, 2))
    w[:, 1] = 1.0
    w[:, 2] = 1.0
    assert M.layer_profile(w, ref) == [0.0, 0.5, 0.5]
    assert M.layer_profile(np.zeros((2, 3, 2)), ref) == [0.0, 0.0, 0.0]
    f = np.array([[0.5, 0.5, 0.5], [0.9, 0.5, 0.5]])
    assert M.semantic_locality(f, [0.5, 0.5, 0.5], [0]) == 1.0
    assert M.semantic_locality(f, [0.5, 0.5, 0.4], [1, 2]) == pytest.approx(0.02 / (0.16 + 0.02))
    assert M.semantic_locality(f, [0.5, 0.5, 0.4], [0], scale=[2.0, 1.0, 1.0]) == pytest.approx(0.04 / (0.04 + 0.02))


def test_shape_checks_name_the_shapes():
    with pytest.raises(ValueError, match="expected the same shape"):
        M.locality(np.zeros((2, 4, 4, 3)), np.zeros((5, 5, 3)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"expected a mask of \(4, 4\)"):
        M.locality(np.zeros((2, 4, 4, 3)), np.zeros((4, 4, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="w_ref"):
        M.layer_profile(np.zeros((2, 3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="region_factor_idx"):
        M.semantic_locality([[0.1, 0.2]], [0.1, 0.2], [2])


def test_run_metrics_is_json_ready_and_consistent():
    import json

    rng = np.random.default_rng(0)
    lat = rng.normal(size=(6, 4, 5))
    ref_img = rng.uniform(size=(8, 8, 3))
    mask = np.zeros((8, 8))
    mask[2:5, 2:6] = 1
    frames = np.repeat(ref_img[None], 6, 0)
    frames[:, 2:5, 2:6] += np.linspace(0, 0.1, 6)[:, None, None, None]
    m = M.run_metrics(lat, lat[0], frames, ref_img, mask, layers=(1, 3), offset=0.03, closed=True)
    json.dumps(m, allow_nan=True)
    assert m["locality"] == pytest.approx(1.0) and m["area_share"] == pytest.approx(12 / 64)
    assert m["step_cv"] == pytest.approx(M.step_cv(lat[:, 1:3], closed=True))
    assert len(m["layer_profile"]) == 4 and {"inside_gap", "loop_closure"} <= set(m)
    m2 = M.run_metrics(lat, lat[0], frames, ref_img, mask, distance="lpips", offset=0.3)
    assert "inside_gap" not in m2 and "loop_closure" not in m2


def test_recompute_metrics_for_a_store(tmp_path):
    p = make_run(tmp_path, seed=0)
    store.update_run_meta(p, {"metrics": {"semantic_locality": 0.7}})
    no_frames = make_run(tmp_path, seed=1)
    for q in (no_frames / "frames").iterdir():
        q.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert recompute_metrics(tmp_path) == 1
    assert len(caught) == 1 and "not recomputed" in str(caught[0].message)
    m = store.load_run(p).meta["metrics"]
    assert m["semantic_locality"] == 0.7  # kept: needs a model
    assert m["locality"] == pytest.approx(1.0) and m["step_cv"] == pytest.approx(0, abs=1e-5)
    assert m["inside_gap"] >= 0


# ---------------------------------------------------------- asymmetric, non-zero inputs (found by mutation testing)
def test_outside_change_against_a_nonzero_reference_and_soft_mask():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.2, 0.8, (6, 5, 3))
    frames = ref[None] + rng.normal(0, 0.1, (4, 6, 5, 3))  # changes of both signs
    mask = np.zeros((6, 5))
    mask[1:3, 1:4] = 1.0
    mask[4, 0] = 0.25
    expected = []
    for f in frames:  # mean_c |x − x*| per pixel, weighted by 1 − M
        num = den = 0.0
        for y in range(6):
            for x in range(5):
                num += (1 - mask[y, x]) * np.abs(f[y, x] - ref[y, x]).mean()
                den += 1 - mask[y, x]
        expected.append(num / den)
    assert M.outside_change(frames, ref, mask) == pytest.approx(np.mean(expected), rel=1e-12)


def test_change_f1_on_darkening_changes():
    ref = np.full((4, 4, 3), 0.6)
    mask = np.zeros((4, 4))
    mask[0, :] = 1  # 4 region pixels
    frames = np.repeat(ref[None], 2, 0)
    frames[0, 0, 0] -= 0.5  # strong darkening on two region pixels ...
    frames[1, 0, 1] -= 0.45
    frames[0, 3, 3] -= 0.4  # ... and on two pixels outside, stronger than the weak ones inside
    frames[1, 2, 1] -= 0.35
    frames[0, 0, 2] -= 0.05
    frames[1, 0, 3] -= 0.02
    # top 4 of Σ_i Σ_c (x − x*)²: (0,0), (0,1), (3,3), (2,1) -> 2 of them in the region: F1 = 2·2 / (4 + 4)
    assert M.change_f1(frames, ref, mask) == pytest.approx(0.5)
    frames[0, 0, 2] -= 0.5  # now three region pixels lead
    assert M.change_f1(frames, ref, mask) == pytest.approx(2 * 3 / 8)


def test_intrinsic_dim_off_the_origin():
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    centre = np.array([5.0, -3.0, 2.0, 7.0])
    circle = centre + np.stack([np.cos(t), 0.5 * np.sin(t), 0 * t, 0 * t], 1)
    out = M.intrinsic_dim(circle)
    # the centred spectrum: variances 1/2 and 1/8 -> participation (5/8)² / (1/4 + 1/64) = 25/17
    assert out["n90"] == 2 and out["participation_ratio"] == pytest.approx(25 / 17)
    line = centre + np.linspace(-1, 2, 9)[:, None] * np.array([1.0, 2.0, 0.0, -1.0])
    out = M.intrinsic_dim(line)
    assert out["n90"] == 1 and out["participation_ratio"] == pytest.approx(1.0)
    assert M.intrinsic_dim(line, var=0.5)["n90"] == 1
    assert M.intrinsic_dim(np.repeat(centre[None], 5, 0)) == {"n90": 0, "participation_ratio": 0.0}


def test_path_metrics_against_loops_written_here():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(6, 2, 3)) + np.array([3.0, -1.0, 2.0])  # off the origin, uneven steps
    flat = w.reshape(6, -1)
    f = rng.uniform(0, 1, size=(5, 4, 3, 3))

    def norm(v):
        return float(np.sqrt((v**2).sum()))

    def rms(v):
        return float(np.sqrt((v**2).mean()))

    for closed in (False, True):
        idx = list(range(6)) + ([0] if closed else [])
        steps = [norm(flat[b] - flat[a]) for a, b in zip(idx[:-1], idx[1:], strict=True)]
        assert np.allclose(M.step_sizes(w, closed), steps)
        assert M.step_cv(w, closed) == pytest.approx(np.std(steps) / np.mean(steps))
        trip = [(i - 1, i, i + 1) for i in range(1, 5)] if not closed else [((i - 1) % 6, i, (i + 1) % 6)
                                                                            for i in range(6)]
        second = [norm(flat[c] - 2 * flat[b] + flat[a]) for a, b, c in trip]
        assert M.curvature(w, closed) == pytest.approx(np.mean(second) / np.mean(steps))
        angles = []
        for a, b, c in trip:
            u, v = flat[b] - flat[a], flat[c] - flat[b]
            angles.append(np.degrees(np.arccos(np.dot(u, v) / (norm(u) * norm(v)))))
        assert M.turning_angle(w, closed) == pytest.approx(np.mean(angles))
    d = [rms(f[i + 1] - f[i]) for i in range(4)]
    assert np.allclose(M.image_steps(f), d)
    assert M.image_step_cv(f) == pytest.approx(np.std(d) / np.mean(d))
    assert M.jump_ratio(f) == pytest.approx(max(d) / np.median(d))
    assert M.path_length(f) == pytest.approx(sum(d))
    assert M.loop_closure(f) == pytest.approx(rms(f[4] - f[0]) / np.median(d))
    straight = [rms(f[i + 1] - f[i - 1]) / (d[i - 1] + d[i]) for i in range(1, 4)]
    assert M.perceptual_straightness(f) == pytest.approx(np.mean(straight))
    # too short or not moving: NaN, not an error
    assert np.isnan(M.curvature(w[:2])) and np.isnan(M.perceptual_straightness(f[:2]))
    assert np.isnan(M.turning_angle(np.zeros((4, 2)))) and np.isnan(M.jump_ratio(f[:1]))
    assert np.isnan(M.loop_closure(np.zeros((3, 2, 2, 3)))) and np.isnan(M.step_cv(np.zeros((3, 2))))


def test_metric_options_from_a_config():
    lat = np.zeros((5, 6, 2))
    assert M.metric_options({"layer_start": 2, "layer_end": 5, "offset": 0.2, "closed_loop": True,
                             "distance": "lpips"}, lat) == {"layers": (2, 5), "offset": 0.2, "closed": True,
                                                           "distance": "lpips"}
    ramp = M.metric_options({"offset": 0.4, "offset_ramp": True}, lat)
    assert np.allclose(ramp["offset"], [0.0, 0.1, 0.2, 0.3, 0.4])
    assert ramp["layers"] == (0, 6) and ramp["closed"] is False and ramp["distance"] == "l2"  # the defaults
    assert M.metric_options({"offset_ramp": True}, lat)["offset"] is None


def test_run_metrics_wires_each_metric_to_its_inputs():
    rng = np.random.default_rng(11)
    lat = rng.normal(size=(5, 4, 3))  # every layer moves, so the free layers 1:3 make a difference
    w_ref = rng.normal(size=(4, 3))
    ref = rng.uniform(0.2, 0.8, (6, 6, 3))
    frames = np.clip(ref + rng.normal(0, 0.1, (5, 6, 6, 3)), 0, 1)
    mask = np.zeros((6, 6))
    mask[1:4, 2:5] = 1
    m = M.run_metrics(lat, w_ref, frames, ref, mask, layers=(1, 3), offset=0.05, closed=True)
    free = lat[:, 1:3]
    inside = M.inside_change(frames, ref, mask, 0.05)
    expected = {"locality": M.locality(frames, ref, mask), "locality_gain": M.locality_gain(frames, ref, mask),
                "area_share": 9 / 36, "outside_change": M.outside_change(frames, ref, mask),
                "inside_rms": inside["rms"], "inside_mse": inside["mse"], "inside_d": inside["d_in"],
                "inside_gap": inside["gap"], "change_f1": M.change_f1(frames, ref, mask),
                "step_cv": M.step_cv(free, True), "image_step_cv": M.image_step_cv(frames),
                "jump_ratio": M.jump_ratio(frames), "curvature": M.curvature(free, True),
                "turning_angle": M.turning_angle(free, True),
                "perceptual_straightness": M.perceptual_straightness(frames), "path_length": M.path_length(frames),
                "intrinsic_dim_90": M.intrinsic_dim(free)["n90"],
                "participation_ratio": M.intrinsic_dim(free)["participation_ratio"],
                "layer_profile": M.layer_profile(lat, w_ref), "loop_closure": M.loop_closure(frames),
                "spread": M.spread(frames, ref, mask), "inside_path": M.inside_path(frames, ref, mask, True)}
    assert set(m) == set(expected)
    assert m["inside_path"] > M.inside_path(frames, ref, mask, False)  # the loop's closing step is counted
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    assert m["step_cv"] != pytest.approx(M.step_cv(lat, True))  # the free layers are what counts
    assert m["step_cv"] != pytest.approx(M.step_cv(free, False))  # and the closing step
    open_run = M.run_metrics(lat, w_ref, frames, ref, mask)
    assert "loop_closure" not in open_run and "inside_gap" not in open_run
    assert open_run["step_cv"] == pytest.approx(M.step_cv(lat))
    with pytest.raises(ValueError, match="one frame per latent"):
        M.run_metrics(lat[:4], w_ref, frames, ref, mask)


def test_inside_change_layer_profile_against_nonzero_references():
    rng = np.random.default_rng(12)
    ref = rng.uniform(0.2, 0.8, (5, 4, 3))
    frames = np.clip(ref[None] + rng.normal(0, 0.1, (3, 5, 4, 3)), 0, 1)
    mask = np.zeros((5, 4))
    mask[1:3, 1:3] = 1
    mask[4, 3] = 0.5
    mse = []
    for f in frames:  # per frame: Σ_p M_p mean_c (x − x*)² / Σ_p M_p
        num = sum(mask[y, x] * ((f[y, x] - ref[y, x]) ** 2).mean() for y in range(5) for x in range(4))
        mse.append(num / mask.sum())
    c = np.array([0.01, 0.02, 0.06])
    out = M.inside_change(frames, ref, mask, offset=c)
    assert out["rms"] == pytest.approx(np.mean(np.sqrt(mse))) and out["mse"] == pytest.approx(np.mean(mse))
    assert out["d_in"] == pytest.approx(4 * np.mean(mse)) and out["gap"] == pytest.approx(abs(4 * np.mean(mse) - c.mean()))
    assert "gap" not in M.inside_change(frames, ref, mask, offset=0.1, distance="lpips")
    empty = M.inside_change(frames, ref, np.zeros((5, 4)), offset=0.1)
    assert set(empty) == {"rms", "mse", "d_in", "gap"} and all(np.isnan(v) for v in empty.values())
    assert set(M.inside_change(frames[:0], ref, mask)) == {"rms", "mse", "d_in"}
    # layer_profile: each layer's share of Σ_i ‖w_i − w*‖², deltas of both signs around a non-zero w*
    w_ref = rng.normal(size=(4, 3)) + 2.0
    lat = w_ref[None] + rng.normal(size=(5, 4, 3)) * np.array([0.0, 1.0, -2.0, 0.5])[None, :, None]
    e = [sum(((lat[i, j] - w_ref[j]) ** 2).sum() for i in range(5)) for j in range(4)]
    assert M.layer_profile(lat, w_ref) == pytest.approx([v / sum(e) for v in e])


def test_intrinsic_dim_edges():
    assert M.intrinsic_dim(np.array([[1.0, np.nan], [0.0, 1.0]])).keys() == {"n90", "participation_ratio"}
    assert all(np.isnan(v) for v in M.intrinsic_dim(np.zeros((0, 3))).values())
    line = np.outer(np.arange(5.0), [1.0, 2.0]) + 1.0
    assert M.intrinsic_dim(line, var=1.0)["n90"] == 1
    plane = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 0.5]], float) + 4.0
    assert M.intrinsic_dim(plane, var=1.0)["n90"] == 2
    small = np.outer(np.arange(4.0), [1e-6, 0.0])  # a tiny but real motion is not "constant"
    assert M.intrinsic_dim(small) == {"n90": 1, "participation_ratio": pytest.approx(1.0)}
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="var must be in"):
            M.intrinsic_dim(line, var=bad)


def test_semantic_locality_layer_profile_and_shape_errors_in_detail():
    f = np.array([[0.5, 0.9, 0.2], [0.1, 0.7, 0.2]])
    ref = np.array([0.5, 0.5, 0.4])
    d = (f - ref) ** 2 / np.array([0.5, 2.0, 1.0]) ** 2
    assert M.semantic_locality(f, ref, [1], scale=[0.5, 2.0, 1.0]) == pytest.approx(d[:, 1].sum() / d.sum())
    assert M.semantic_locality(f, ref, [0, 2]) == pytest.approx(
        (((f - ref) ** 2)[:, [0, 2]]).sum() / ((f - ref) ** 2).sum())
    assert np.isnan(M.semantic_locality(np.tile(ref, (2, 1)), ref, [0]))
    with pytest.raises(ValueError, match=r"region_factor_idx \[3\] outside 0..2"):
        M.semantic_locality(f, ref, [3])
    with pytest.raises(ValueError, match=r"got \[2, 3\] and \[2\]"):
        M.semantic_locality(f, ref[:2], [0])
    with pytest.raises(ValueError, match=r"got \[3\] and \[3\]"):
        M.semantic_locality(ref, ref, [0])
    # small changes (Σ below 1) still give shares; no change gives zeros; non-finite latents NaN per layer
    w_ref = np.ones((3, 2))
    lat = w_ref[None] + np.array([0.0, 0.01, 0.02])[None, :, None]
    assert M.layer_profile(lat, w_ref) == pytest.approx([0.0, 0.2, 0.8])
    assert M.layer_profile(np.repeat(w_ref[None], 2, 0), w_ref) == [0.0, 0.0, 0.0]
    bad = lat.copy()
    bad[0, 0, 0] = np.nan
    assert len(M.layer_profile(bad, w_ref)) == 3 and all(np.isnan(M.layer_profile(bad, w_ref)))
    with pytest.raises(ValueError, match=r"got \[2, 2, 3\] and \[2, 3\]"):
        M.locality(np.zeros((2, 2, 3)), np.zeros((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"got \(3, 3, 3\) and \(2, 2, 3\)"):
        M.locality(np.zeros((1, 3, 3, 3)), np.zeros((2, 2, 3)), np.ones((2, 2)))


def test_locality_squares_changes_of_both_signs():
    rng = np.random.default_rng(21)
    ref = rng.uniform(0.2, 0.8, (5, 6, 3))
    frames = ref[None] + rng.normal(0, 0.1, (3, 5, 6, 3))  # brightening and darkening, uneven sizes
    mask = np.zeros((5, 6))
    mask[1:3, 2:5] = 1.0
    mask[4, 0] = 0.3
    num = den = 0.0
    for f in frames:
        for y in range(5):
            for x in range(6):
                e = sum((f[y, x, c] - ref[y, x, c]) ** 2 for c in range(3))
                num += mask[y, x] * e
                den += e
    assert M.locality(frames, ref, mask) == pytest.approx(num / den, rel=1e-12)
    assert M.locality_gain(frames, ref, mask) == pytest.approx(num / den / (6.3 / 30), rel=1e-12)


def test_one_frame_one_pixel_regions():
    """The smallest cases are defined: one frame, a one-pixel region, an outside of half a pixel."""
    rng = np.random.default_rng(22)
    ref = rng.uniform(0.2, 0.8, (3, 3, 3))
    frame = ref + rng.normal(0, 0.1, (3, 3, 3))
    one = np.zeros((3, 3))
    one[2, 1] = 1.0
    r = M.inside_change(frame[None], ref, one, offset=0.01)
    mse = np.mean((frame[2, 1] - ref[2, 1]) ** 2)
    assert r["mse"] == pytest.approx(mse, rel=1e-12) and r["rms"] == pytest.approx(np.sqrt(mse), rel=1e-12)
    assert r["gap"] == pytest.approx(abs(4 * mse - 0.01), rel=1e-12)
    almost_all = np.ones((3, 3))
    almost_all[0, 2] = 0.5  # the outside is half of one pixel
    assert M.outside_change(frame[None], ref, almost_all) == pytest.approx(np.mean(np.abs(frame[0, 2] - ref[0, 2])),
                                                                            rel=1e-12)
    change = np.zeros((1, 3, 3, 3))
    change[0, 2, 1] = 0.4  # the strongest change on the region's one pixel ...
    change[0, 0, 0] = 0.2
    assert M.change_f1(ref + change, ref, one) == 1.0
    change[0, 2, 1] = 0.1  # ... or not
    assert M.change_f1(ref + change, ref, one) == 0.0


def test_change_f1_counts_region_pixels_above_one_half():
    ref = np.full((4, 4, 3), 0.5)
    mask = np.zeros((4, 4))
    mask[0, 0] = 1.0
    mask[0, 1] = 0.5  # an edge pixel at exactly 0.5 is not part of the region
    frames = np.repeat(ref[None], 2, 0)
    frames[0, 0, 0] += 0.4
    frames[1, 3, 3] -= 0.3  # second-strongest change, outside
    assert M.change_f1(frames, ref, mask) == 1.0  # |M| = 1: the top pixel is (0, 0)
    mask[0, 1] = 0.51  # now |M| = 2 and the top two are (0, 0) and (3, 3): F1 = 2·1 / (2 + 2)
    assert M.change_f1(frames, ref, mask) == 0.5


def test_change_f1_breaks_ties_in_raster_order():
    """Equal changes at the cut: the earlier pixels (row by row) count, on every platform."""
    rng = np.random.default_rng(0)
    level = rng.integers(1, 3, size=(5, 4)).astype(float)  # many ties at two levels
    ref = np.zeros((5, 4, 3))
    frames = np.sqrt(level / 3)[None, :, :, None] * np.ones((1, 1, 1, 3))  # Σ_c (x − x*)² = level
    mask = np.zeros((5, 4))
    mask.ravel()[rng.permutation(20)[:9]] = 1.0
    k = 9
    order = sorted(range(20), key=lambda p: (-level.ravel()[p], p))  # strongest first, then raster order
    tp = sum(mask.ravel()[p] > 0.5 for p in order[:k])
    assert level.ravel()[order[k - 1]] == level.ravel()[order[k]]  # the cut falls among ties
    assert M.change_f1(frames, ref, mask) == pytest.approx(2 * tp / (2 * k), rel=1e-12)


def test_change_f1_of_non_finite_frames_is_nan():
    frames = np.zeros((2, 4, 4, 3))
    frames[0, 0, 0, 0] = np.nan
    frames[1, 0, 1] = 0.5
    assert np.isnan(M.change_f1(frames, np.zeros((4, 4, 3)), _mask()))


def test_short_paths_have_their_values():
    two = np.array([[0.5, 1.0], [2.0, -1.0]])
    assert M.step_cv(two) == 0.0  # one step: no spread
    f2 = np.zeros((2, 2, 2, 3))
    f2[1] = 0.3
    assert M.jump_ratio(f2) == pytest.approx(1.0) and M.loop_closure(f2) == pytest.approx(1.0)
    three = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])  # second difference (−1, 2), steps 1 and 2
    assert M.curvature(three) == pytest.approx(np.sqrt(5) / 1.5, rel=1e-12)
    assert M.turning_angle(three) == pytest.approx(90.0)


def test_paths_that_pause():
    """Zero steps are skipped where a ratio needs them, and a zero median makes a ratio undefined."""
    a, b, c = (np.full((1, 2, 3), v) for v in (0.1, 0.4, 0.2))
    paused = np.stack([a, a, a, b, c])  # steps 0, 0, 0.3, 0.2: the first triple does not count
    assert M.perceptual_straightness(paused) == pytest.approx(np.mean([0.3 / (0 + 0.3), 0.1 / (0.3 + 0.2)]))
    assert M.perceptual_straightness(np.stack([a, a, c, c, c])) == pytest.approx(1.0)  # 2 of its 3 triples count
    jump = np.stack([a, a, a, c])  # steps 0, 0, 0.1: median 0
    assert np.isnan(M.jump_ratio(jump)) and np.isnan(M.loop_closure(jump))
    w = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # a repeated latent, then a right angle
    assert M.turning_angle(w) == pytest.approx(90.0)


def test_turning_angle_of_a_reversal_is_180():
    v = np.array([0.905, 0.446, -0.537])  # the cosine of the two steps rounds to −1 − 2e-16
    w = np.stack([np.zeros(3), v, v - 1.52 * v])
    assert M.turning_angle(w) == pytest.approx(180.0)


def test_empty_static_and_huge_inputs_give_nan_silently():
    ref, mask = np.zeros((4, 4, 3)), _mask()
    none = np.zeros((0, 4, 4, 3))
    static = np.full((4, 4, 4, 3), 0.3)
    huge = np.array([[0.0, 0.0], [1e200, 0.0], [-1e200, 1e199]])  # finite, but the spectrum overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" and the like would fail here
        assert np.isnan(M.outside_change(none, ref, mask)) and np.isnan(M.path_length(none))
        assert all(np.isnan(v) for v in M.inside_change(none, ref, mask).values())
        assert np.isnan(M.curvature(np.zeros((0, 3)), closed=True))
        assert np.isnan(M.perceptual_straightness(static)) and np.isnan(M.image_step_cv(static))
        out = M.intrinsic_dim(huge)
    assert set(out) == {"n90", "participation_ratio"} and all(np.isnan(v) for v in out.values())


def test_integer_images_are_numbers_not_bytes():
    f = np.zeros((3, 1, 2, 3), np.uint8)
    f[0] = 200
    f[1] = 50  # a darkening step: 50 − 200 must not wrap around to 106
    f[2] = 50
    assert M.image_steps(f).tolist() == [150.0, 0.0]
    assert M.path_length(f) == 150.0


def test_shape_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"^expected latents \[n, \.\.\.\] with n >= 1, got shape \[3\]$"):
        M.step_sizes(np.zeros(3))
    with pytest.raises(ValueError, match=r"^expected frames \[n, H, W, C\], got shape \[2, 3\]$"):
        M.image_steps(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^expected frames \[n, H, W, C\] and a reference \[H, W, C\], got "
                                         r"\[4, 4, 3\] and \[4, 4, 3\]$"):
        M.locality(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.ones((4, 4)))


def test_step_sizes_are_open_by_default():
    w = np.array([[0.0], [1.0], [3.0]])
    assert M.step_sizes(w).tolist() == [1.0, 2.0] and M.step_sizes(w, True).tolist() == [1.0, 2.0, 3.0]


def test_recompute_metrics_goes_on_after_a_bad_run_and_reports(tmp_path, capsys):
    paths = sorted(make_run(tmp_path, seed=s) for s in range(3))
    for q in (paths[0] / "frames").iterdir():  # the first run in the store's order cannot be read
        q.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert recompute_metrics(tmp_path) == 2
    assert capsys.readouterr().out == ""  # quiet by default
    assert [str(w.message).split(" not recomputed")[0] for w in caught] == [f"metrics of {paths[0].name}"]
    assert caught[0].filename != M.__file__  # points at the caller, not at the loop inside metrics.py
    with pytest.warns(UserWarning, match="not recomputed"):
        assert recompute_metrics(tmp_path, quiet=False) == 2
    lines = capsys.readouterr().out.splitlines()
    expected = []
    for p in paths[1:]:
        run = store.load_run(p)
        loc = M.locality(run.frames, run.reference_img, run.mask)  # the frames change only inside the box
        expected.append(f"{p.name}: locality {loc:.3f}")
    assert lines == expected and expected[0].endswith("locality 1.000")


def test_float32_arrays_as_runs_store_them_are_measured_in_float64():
    """Runs store latents and masks as float32; the metrics still compute in float64 (no float32 sums)."""
    rng = np.random.default_rng(31)
    w = (rng.normal(size=(7, 3, 512)) + 1.0).astype(np.float32)
    w64 = w.astype(np.float64).reshape(7, -1)
    steps = [np.sqrt(sum((float(b) - float(a)) ** 2 for a, b in zip(w64[i], w64[i + 1], strict=True)))
             for i in range(6)]
    assert M.step_sizes(w) == pytest.approx(steps, rel=1e-12)
    yy, xx = np.mgrid[:64, :64]
    mask = np.clip(1.3 - np.hypot(yy - 30.5, xx - 27.0) / 12.0, 0, 1).astype(np.float32)  # a feathered disc
    ref = rng.uniform(0.2, 0.8, (64, 64, 3))
    frames = ref[None] + rng.normal(0, 0.05, (2, 64, 64, 3))
    m64 = mask.astype(np.float64)
    mse = [float(np.einsum("yx,yxc->", m64, (f - ref) ** 2)) / 3 / sum(m64.ravel().tolist())
           for f in frames]
    assert M.inside_change(frames, ref, mask)["mse"] == pytest.approx(np.mean(mse), rel=1e-12)
