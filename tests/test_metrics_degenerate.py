"""Metrics on NaN, infinite and degenerate trajectories: NaN for what is undefined, never an exception.

A search that diverges (NaN latents) or a chain that does not move must still be saved with its metrics,
so every metric is called here on such input and compared with an answer worked out by hand.
"""

import json
import math
import warnings

import numpy as np
import pytest

from mgm_analysis import metrics as M


def _box_mask(res=4):
    mask = np.zeros((res, res))
    mask[:2] = 1  # top half: area share 0.5
    return mask


def _is_nan(v):
    return isinstance(v, float) and math.isnan(v)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN in, NaN out: silently (no RuntimeWarning either)
        yield


def test_nan_trajectory_gives_nan_metrics_and_no_exception():
    lat = np.full((5, 4, 3), np.nan)
    frames = np.full((5, 4, 4, 3), np.nan)
    m = M.run_metrics(lat, np.zeros((4, 3)), frames, np.zeros((4, 4, 3)), _box_mask(), offset=0.1, closed=True)
    assert m["area_share"] == 0.5  # the only value that does not depend on the trajectory
    scalars = {k: v for k, v in m.items() if k not in ("area_share", "layer_profile")}
    assert sorted(scalars) == sorted(["locality", "locality_gain", "outside_change", "inside_rms", "inside_mse",
                                      "inside_d", "change_f1", "step_cv", "image_step_cv", "jump_ratio", "curvature",
                                      "turning_angle", "perceptual_straightness", "path_length", "intrinsic_dim_90",
                                      "participation_ratio", "inside_gap", "loop_closure", "spread",
                                      "inside_path"])
    assert all(_is_nan(v) for v in scalars.values()), {k: v for k, v in scalars.items() if not _is_nan(v)}
    assert len(m["layer_profile"]) == 4 and all(_is_nan(v) for v in m["layer_profile"])
    json.loads(json.dumps(m))  # still JSON the store can write (NaN is allowed there)


def test_one_nan_latent_spoils_only_the_latent_metrics():
    """Frames are fine, one latent is NaN: image metrics keep their hand-computed values."""
    ref = np.zeros((4, 4, 3))
    frames = np.zeros((3, 4, 4, 3))
    frames[1, 0, 0] = 0.3  # inside the mask
    frames[2, 3, 3] = 0.4  # outside
    lat = np.zeros((3, 2, 2))
    lat[1, 0, 0] = np.nan
    m = M.run_metrics(lat, np.zeros((2, 2)), frames, ref, _box_mask())
    # locality: energy inside 3·0.09 over all 3·0.09 + 3·0.16
    assert m["locality"] == pytest.approx(0.27 / (0.27 + 0.48))
    # path length: RMS over 48 values of two steps: √(3·0.09/48) + √(3·(0.09 + 0.16)/48)
    assert m["path_length"] == pytest.approx(math.sqrt(0.27 / 48) + math.sqrt(0.75 / 48))
    for k in ("step_cv", "curvature", "turning_angle", "intrinsic_dim_90", "participation_ratio"):
        assert _is_nan(m[k]), k
    assert all(_is_nan(v) for v in m["layer_profile"])


def test_svd_of_a_nan_or_infinite_trajectory_is_nan_not_linalgerror():
    w = np.random.default_rng(0).normal(size=(6, 3))
    for bad in (np.nan, np.inf, -np.inf):
        x = w.copy()
        x[3, 1] = bad
        d = M.intrinsic_dim(x)
        assert _is_nan(d["n90"]) and _is_nan(d["participation_ratio"])
    # huge but finite entries overflow the squared singular values: NaN too, not inf
    d = M.intrinsic_dim(np.array([[0.0, 0.0], [1e300, 0.0], [0.0, 1e300]]))
    assert _is_nan(d["participation_ratio"])


def test_a_chain_that_does_not_move():
    """Every step has length 0: the shape metrics divide by the mean step, so they are undefined."""
    lat = np.ones((4, 2, 3))
    assert list(M.step_sizes(lat)) == [0.0, 0.0, 0.0]
    for f in (M.step_cv, M.curvature, M.turning_angle):
        assert _is_nan(f(lat)) and _is_nan(f(lat, closed=True))
    assert M.intrinsic_dim(lat) == {"n90": 0, "participation_ratio": 0.0}  # a point has dimension 0
    frames = np.full((4, 2, 2, 3), 0.5)
    assert M.path_length(frames) == 0.0
    for f in (M.jump_ratio, M.image_step_cv, M.loop_closure, M.perceptual_straightness):
        assert _is_nan(f(frames))
    assert _is_nan(M.locality(frames, np.full((2, 2, 3), 0.5), np.eye(2)))  # no change at all


def test_single_and_empty_chains():
    one = np.zeros((1, 2, 3))
    assert M.step_sizes(one).shape == (0,)
    assert _is_nan(M.step_cv(one)) and _is_nan(M.curvature(one)) and _is_nan(M.turning_angle(one))
    assert M.path_length(np.zeros((1, 2, 2, 3))) == 0.0  # one point: a path of length 0
    empty_lat, empty_frames = np.zeros((0, 2, 3)), np.zeros((0, 4, 4, 3))
    m = M.run_metrics(empty_lat, np.zeros((2, 3)), empty_frames, np.zeros((4, 4, 3)), _box_mask(), closed=True,
                      offset=0.2)
    assert m["area_share"] == 0.5
    assert all(_is_nan(v) for k, v in m.items() if k not in ("area_share", "layer_profile")), m
    assert all(_is_nan(v) for v in m["layer_profile"])


def test_empty_mask_inside_change_is_nan():
    frames = np.full((2, 3, 3, 3), 0.2)
    r = M.inside_change(frames, np.zeros((3, 3, 3)), np.zeros((3, 3)), offset=0.1)
    assert set(r) == {"rms", "mse", "d_in", "gap"} and all(_is_nan(v) for v in r.values())
    # and a non-empty mask still gives the hand value: every pixel changed by 0.2 → rms 0.2, d_in 4·0.04
    r = M.inside_change(frames, np.zeros((3, 3, 3)), np.eye(3), offset=0.1)
    assert r["rms"] == pytest.approx(0.2) and r["d_in"] == pytest.approx(0.16) and r["gap"] == pytest.approx(0.06)


def test_change_f1_of_non_finite_images_is_nan():
    frames = np.zeros((2, 3, 3, 3))
    frames[0, 1, 1] = np.inf
    assert _is_nan(M.change_f1(frames, np.zeros((3, 3, 3)), np.eye(3)))


def test_shape_errors_still_raise():
    """Undefined values are NaN, but a caller's shape mistake is still an error."""
    with pytest.raises(ValueError, match="one frame per latent"):
        M.run_metrics(np.zeros((3, 2, 2)), np.zeros((2, 2)), np.zeros((2, 4, 4, 3)), np.zeros((4, 4, 3)), _box_mask())
