"""Store round-trip and robustness, metrics with known answers, projections, comparison, analyze, no torch."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from mgm_analysis import store
from mgm_analysis.analysis import metrics as M
from mgm_analysis.analysis.compare import layer_profiles, overlap_matrix, subspace_overlap
from mgm_analysis.analysis.projection import project


def _meta(region="mouth", seed=0, **extra):
    return {"status": "complete", "region": {"name": region, "spec": region, "layout": "toyfaces"},
            "generator": {"name": "synthetic", "format": "builtin"}, "reference": {"seed": seed},
            "seed": seed, "config": {"n_frames": 6, "layer_start": 1, "layer_end": 3, "distance": "l2"},
            "metrics": {"locality": 0.5}, **extra}


def make_run(root, region="mouth", seed=0, n=6, res=8, direction=None, rng=None):
    rng = rng or np.random.default_rng(seed)
    ref = rng.normal(size=(4, 5)).astype(np.float32)
    d = direction if direction is not None else rng.normal(size=(2, 5))
    t = np.linspace(0, 1, n)[:, None, None]
    lat = np.repeat(ref[None], n, 0)
    lat[:, 1:3] += t * d
    mask = np.zeros((res, res), np.float32)
    mask[2:5, 2:6] = 1
    ref_img = rng.uniform(size=(res, res, 3)).astype(np.float32)
    frames = np.repeat(ref_img[None], n, 0)
    frames[:, 2:5, 2:6] += t[..., None] * 0.1
    return store.write_run(root, meta=_meta(region, seed), latents=lat, reference=ref, reference_img=ref_img,
                           mask=mask, frames=np.clip(frames, 0, 1))


# ------------------------------------------------------------------- store
def test_store_roundtrip_is_lossless(tmp_path):
    p = make_run(tmp_path)
    run = store.load_run(p)
    assert run.latents.dtype == np.float32 and run.latents.shape == (6, 4, 5)
    assert np.array_equal(run.latents, np.load(p / "latents.npy"))
    assert run.mask.sum() == 12 and run.frames.shape == (6, 8, 8, 3) and (p / "animation.gif").exists()
    assert run.meta["schema_version"] == 1 and run.meta["run_id"] == p.name
    store.update_run_meta(p, {"metrics": {"extra": 2.0}})
    assert store.load_run(p).meta["metrics"] == {"locality": 0.5, "extra": 2.0}
    df = store.catalog(tmp_path)
    assert list(df.run_id) == [p.name] and df.loc[0, "locality"] == 0.5


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        store.write_run(tmp_path, meta=_meta(), latents=np.zeros((3, 4, 5)), reference=np.zeros((4, 5)),
                        reference_img=np.zeros((8, 8, 3)), mask=np.zeros((8, 8)), frames=np.zeros((2, 8, 8, 3)))
    assert list(tmp_path.iterdir()) == []

    class Boom(dict):
        def get(self, *a):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.write_run(tmp_path, meta={**_meta(), "region": Boom()}, latents=np.zeros((3, 4, 5)),
                        reference=np.zeros((4, 5)), reference_img=np.zeros((8, 8, 3)), mask=np.zeros((8, 8)))
    assert [p for p in tmp_path.iterdir()] == []


def test_corrupt_and_half_written_runs_are_skipped_with_a_warning(tmp_path):
    good = make_run(tmp_path, seed=1)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "latents.npy").write_bytes(b"junk")
    bad = make_run(tmp_path, seed=2)
    (bad / "run.json").write_text("{not json")
    trunc = make_run(tmp_path, seed=3)
    (trunc / "latents.npy").write_bytes((trunc / "latents.npy").read_bytes()[:40])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        runs = list(store.iter_runs(tmp_path))
    assert [r.path for r in runs] == [good]
    assert len(w) == 3 and all("skipping" in str(x.message) for x in w)


# ----------------------------------------------------------------- metrics
def test_locality_known_answers():
    mask = np.zeros((4, 4))
    mask[:2] = 1
    ref = np.zeros((4, 4, 3))
    inside = np.zeros((3, 4, 4, 3))
    inside[:, :2] = 0.3
    assert M.locality(inside, ref, mask) == 1.0
    assert M.outside_change(inside, ref, mask) == 0.0
    uniform = np.full((3, 4, 4, 3), 0.2)
    assert M.locality(uniform, ref, mask) == pytest.approx(mask.mean())
    assert M.locality_gain(uniform, ref, mask) == pytest.approx(1.0)
    assert M.change_f1(inside, ref, mask) == 1.0


def test_straight_constant_speed_path():
    w = np.linspace(0, 1, 10)[:, None] * np.array([[1.0, 2.0, -1.0]])
    assert M.step_cv(w) == pytest.approx(0, abs=1e-12)
    assert M.curvature(w) == pytest.approx(0, abs=1e-12)
    assert M.turning_angle(w) == pytest.approx(0, abs=1e-5)
    assert M.intrinsic_dim(w)["n90"] == 1


def test_planar_circle_has_intrinsic_dim_two():
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 2)))[0]
    w = np.stack([np.cos(t), np.sin(t)], 1) @ basis.T
    d = M.intrinsic_dim(w)
    assert d["n90"] == 2 and d["participation_ratio"] == pytest.approx(2.0, rel=1e-6)
    assert M.step_cv(w, closed=True) == pytest.approx(0, abs=1e-9)


def test_jump_ratio_and_straightness():
    f = np.zeros((5, 2, 2, 3))
    for i, v in enumerate([0, 0.1, 0.2, 0.3, 0.4]):
        f[i] = v
    assert M.jump_ratio(f) == pytest.approx(1.0)
    assert M.perceptual_straightness(f) == pytest.approx(1.0)
    f[4] = 0.9
    assert M.jump_ratio(f) == pytest.approx(6.0)


def test_layer_profile_and_semantic_locality():
    ref = np.zeros((3, 2))
    w = np.zeros((4, 3, 2))
    w[:, 1] = 1.0
    assert M.layer_profile(w, ref) == [0.0, 1.0, 0.0]
    f = np.array([[0.5, 0.5, 0.5], [0.9, 0.5, 0.5]])
    assert M.semantic_locality(f, [0.5, 0.5, 0.5], [0]) == 1.0
    assert M.semantic_locality(f, [0.5, 0.5, 0.4], [1, 2]) == pytest.approx(0.02 / (0.16 + 0.02))


def test_metric_shape_check():
    with pytest.raises(ValueError, match="expected the same shape"):
        M.locality(np.zeros((2, 4, 4, 3)), np.zeros((5, 5, 3)), np.zeros((4, 4)))


# ------------------------------------------------------- geometry, projection
def test_orthogonal_subspaces_overlap_zero():
    e = np.eye(6)
    assert subspace_overlap(e[:, :3], e[:, 3:]) == 0.0
    assert subspace_overlap(e[:, :3], e[:, :3]) == pytest.approx(1.0)


def test_projection_joint_and_cached(tmp_path):
    for i, region in enumerate(["mouth", "eyes", "mouth"]):
        make_run(tmp_path, region=region, seed=i)
    df = project(tmp_path, "pca")
    assert list(df.columns) == ["run_id", "region", "frame", "x", "y"] and len(df) == 18
    cached = list((tmp_path / ".mgm_cache").glob("projection-*.parquet"))
    assert len(cached) == 1
    assert project(tmp_path, "pca").equals(df)
    d3 = project(tmp_path, "pca", n_components=3, space="w_all")
    assert "z" in d3.columns


def test_overlap_same_direction_vs_other(tmp_path):
    rng = np.random.default_rng(0)
    d1, d2 = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    a = store.load_run(make_run(tmp_path, "mouth", 0, direction=d1))
    b = store.load_run(make_run(tmp_path, "mouth", 1, direction=d1))
    c = store.load_run(make_run(tmp_path, "eyes", 2, direction=d2 - (d2 * d1).sum() / (d1**2).sum() * d1))
    Mx = overlap_matrix([a, b, c], k=1)
    assert Mx.loc[a.run_id, b.run_id] == pytest.approx(1.0)
    assert Mx.loc[a.run_id, c.run_id] < 0.1
    lp = layer_profiles([a])
    assert lp.groupby("run_id").share.sum().iloc[0] == pytest.approx(1.0)


def test_analyze_writes_report(tmp_path):
    for i, region in enumerate(["mouth", "eyes", "brows", "mouth"]):
        make_run(tmp_path / "runs", region=region, seed=i)
    (tmp_path / "runs" / "broken").mkdir()
    from mgm_analysis.analysis import analyze

    paths = analyze(tmp_path / "runs", tmp_path / "report", quiet=True)
    html = paths["report"].read_text()
    assert "plotly" in html and "Subspace overlap" in html and "data:image/png;base64" in html
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "report" / "metrics.parquet")) == 4


def test_analysis_works_without_torch(tmp_path):
    make_run(tmp_path / "runs", "mouth", 0)
    make_run(tmp_path / "runs", "eyes", 1)
    code = f"""
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, BlockTorch())
from mgm_analysis.analysis import analyze, load_runs
from mgm_analysis.analysis.projection import project
assert len(load_runs({str(tmp_path / 'runs')!r})) == 2
analyze({str(tmp_path / 'runs')!r}, {str(tmp_path / 'rep')!r}, quiet=True)
print(len(project({str(tmp_path / 'runs')!r})))
assert "torch" not in sys.modules
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("12")


def test_analyze_cli_on_empty_and_missing(tmp_path):
    from click.testing import CliRunner

    from mgm_analysis.cli import main

    r = CliRunner().invoke(main, ["analyze", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such run store" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0 and "no runs" in r.output
    assert "No runs in this store" in (tmp_path / "rep" / "report.html").read_text()
    json.loads(json.dumps({}))
