"""Joint projections: tidy frames, shared coordinates, disk cache keyed by the inputs, scikit-learn contract."""

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from _fake_runs import fake_meta, make_run

from mgm_analysis import store
from mgm_analysis.analysis.projection import JointProjection, features, project


def _store(root, regions=("mouth", "eyes", "mouth")):
    return [make_run(root, region=r, seed=i) for i, r in enumerate(regions)]


def test_pca_is_joint_tidy_and_cached(tmp_path):
    paths = _store(tmp_path)
    df = project(tmp_path, "pca")
    assert list(df.columns) == ["run_id", "region", "frame", "x", "y"] and len(df) == 18
    assert sorted(df.run_id.unique()) == sorted(p.name for p in paths)
    assert list(df[df.run_id == paths[0].name].frame) == list(range(6))
    assert df.attrs["method"] == "pca" and len(df.attrs["explained_variance_ratio"]) == 2
    cached = list((tmp_path / ".mgm_cache").glob("projection-*.parquet"))
    assert len(cached) == 1
    again = project(tmp_path, "pca")
    assert again.equals(df) and again.attrs["explained_variance_ratio"] == df.attrs["explained_variance_ratio"]
    assert len(list((tmp_path / ".mgm_cache").glob("projection-*.parquet"))) == 1  # a hit, not a new entry


def test_joint_fit_matches_a_direct_pca(tmp_path):
    from sklearn.decomposition import PCA

    _store(tmp_path)
    runs = list(store.iter_runs(tmp_path))
    X = np.concatenate([r.latents[:, 1:3].reshape(6, -1) for r in runs]).astype(np.float64)
    direct = PCA(2, random_state=0).fit_transform(X)
    df = project(runs, "pca")
    got = df[["x", "y"]].to_numpy()
    assert np.allclose(np.abs(got), np.abs(direct), atol=1e-6)  # same up to the sign of each axis


def test_cache_is_invalidated_when_a_run_changes(tmp_path):
    paths = _store(tmp_path, ("mouth", "eyes"))
    df = project(tmp_path, "pca")
    lat = np.load(paths[0] / "latents.npy")
    time.sleep(0.01)
    np.save(paths[0] / "latents.npy", lat * 3)
    os.utime(paths[0] / "latents.npy", ns=(time.time_ns(), time.time_ns() + 10**9))
    df2 = project(tmp_path, "pca")
    assert not np.allclose(df.x.to_numpy(), df2.x.to_numpy())
    assert len(list((tmp_path / ".mgm_cache").glob("projection-*.parquet"))) == 2
    make_run(tmp_path, "brows", 7)
    assert len(project(tmp_path, "pca")) == 18


def test_spaces_dimensions_and_relative(tmp_path):
    _store(tmp_path)
    d3 = project(tmp_path, "pca", space="w_all", n_components=3)
    assert list(d3.columns)[-1] == "z"
    fr = project(tmp_path, "pca", space="frames")
    assert len(fr) == 18 and fr.attrs["space"] == "frames"
    rel = project(tmp_path, "pca", relative=True)
    first = rel[rel.frame == 0][["x", "y"]].to_numpy()
    assert np.allclose(first, first[0], atol=1e-6)  # every run starts at its reference: the same origin
    with pytest.raises(ValueError, match="unknown space"):
        project(tmp_path, space="pixels")
    assert project(tmp_path / "empty").empty


def test_w_free_uses_the_union_of_free_layers(tmp_path):
    make_run(tmp_path, "mouth", 0)
    make_run(tmp_path, "eyes", 1, meta=fake_meta("eyes", 1, config={"layer_start": 2, "layer_end": 4}))
    df = project(tmp_path)
    assert len(df) == 12 and df.attrs["layers"] == [1, 4]


def test_runs_of_another_generator_are_left_out_with_a_warning(tmp_path):
    _store(tmp_path, ("mouth", "eyes"))
    odd = make_run(tmp_path, "brows", 9, w_dim=7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = project(list(store.iter_runs(tmp_path)))
    assert odd.name not in set(df.run_id) and len(df) == 12
    assert df.attrs["runs_left_out"] == [odd.name]
    assert len(caught) == 1 and "another generator" in str(caught[0].message)


def test_estimator_follows_the_scikit_learn_contract():
    from sklearn.base import clone

    est = JointProjection(n_components=3, random_state=1)
    assert est.get_params()["n_components"] == 3 and clone(est).random_state == 1
    X = np.random.default_rng(0).normal(size=(20, 6))
    assert est.fit(X) is est and est.n_features_in_ == 6 and hasattr(est, "model_")
    assert est.transform(X[:4]).shape == (4, 3)
    assert JointProjection(n_components=3).fit_transform(X[:2, :2]).shape == (2, 3)  # padded with zeros
    with pytest.raises(ValueError, match="n_components"):
        JointProjection(n_components=4).fit(X)
    with pytest.raises(ValueError, match="not fitted"):
        JointProjection().transform(X)
    with pytest.raises(ValueError, match="NaN"):
        JointProjection().fit(np.full((3, 2), np.nan))


def test_features_shapes(tmp_path):
    run = store.load_run(make_run(tmp_path))
    assert features(run, "w_free").shape == (6, 10)
    assert features(run, "w_all").shape == (6, 20)
    assert features(run, "frames").shape == (6, 8 * 8 * 3)
    assert np.allclose(features(run, "w_all", relative=True)[0], 0)


@pytest.mark.slow
def test_pca_does_not_import_umap(tmp_path):
    _store(tmp_path, ("mouth", "eyes"))
    code = (f"import sys\nfrom mgm_analysis.analysis.projection import project\n"
            f"project({str(tmp_path)!r})\nassert 'umap' not in sys.modules\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]


def test_cached_projection_does_not_import_scikit_learn(tmp_path):
    """Reading a cached projection (the dashboard's usual path) must not pay for importing scikit-learn."""
    for i, r in enumerate(["mouth", "eyes", "brows"]):
        make_run(tmp_path, region=r, seed=i)
    first = project(tmp_path, "pca")
    code = ("import sys, warnings; warnings.simplefilter('ignore')\n"
            "from mgm_analysis.analysis.projection import project\n"
            f"df = project({str(tmp_path)!r}, 'pca')\n"
            "print(len(df), 'sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=300).stdout.split()
    assert out == [str(len(first)), "False"]
