"""mgm analyze at scale on tiny stores: the streamed PCA against an SVD done here, the memory guard through a real
process, and the per-run work on a 2-worker Dask LocalCluster against the local path."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgm_analysis.analysis import analyze, overlap_groups, scale

REPO = Path(__file__).resolve().parents[1]
TABLES = ["metrics", "regions", "projection_pca", "projection_pca_positions", "layer_profiles", "overlap",
          "overlap_summary"]


def _store(root, n=12):
    from dashboards.synthetic import make_store

    make_store(root, n, n_frames=7)
    return root


def _pca_here(runs, relative):
    """PCA of the free layers' features (deltas or positions) of every frame of the runs, by numpy's SVD."""
    a, b = min(r.layers[0] for r in runs), max(r.layers[1] for r in runs)
    X = np.concatenate([((r.latents - r.reference[None]) if relative else r.latents)[:, a:b].reshape(len(r.latents), -1)
                        for r in runs]).astype(np.float64)
    Xc = X - X.mean(0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    return Xc @ vt[:2].T, (s[:2] ** 2) / (s**2).sum()


@pytest.mark.parametrize("relative,name", [(True, "projection_pca"), (False, "projection_pca_positions")])
def test_streamed_pca_matches_an_svd(tmp_path, monkeypatch, relative, name):
    """Above the budget the PCA is the covariance accumulated over chunks of runs: the same coordinates as an SVD
    of the whole matrix (up to each axis' sign), and the same explained variance."""
    from mgm_analysis import store

    root = _store(tmp_path / "runs")
    monkeypatch.setattr(scale, "EXACT_PCA_MAX_VALUES", 0)
    monkeypatch.setattr(scale, "CHUNK_RUNS", 5)  # three chunks, a ragged last one
    paths = analyze(root, tmp_path / "rep", quiet=True)
    got = pd.read_csv(paths[name])
    runs = sorted(store.iter_runs(root), key=lambda r: r.path.name)
    expect, evr = _pca_here(runs, relative)
    assert list(got.run_id) == [r.run_id for r in runs for _ in range(len(r.latents))]
    for j, c in enumerate(["x", "y"]):
        sign = np.sign(got[c].to_numpy() @ expect[:, j])
        np.testing.assert_allclose(got[c].to_numpy(), sign * expect[:, j], atol=1e-4 * np.abs(expect[:, j]).max())
    attrs = pd.read_parquet(paths[name + "_parquet"]).attrs
    np.testing.assert_allclose(attrs["explained_variance_ratio"], evr, rtol=1e-4)
    assert "exact covariance accumulated over chunks" in paths["report"].read_text()


@pytest.mark.slow
def test_memory_guard_is_one_line_and_keeps_the_earlier_report(tmp_path):
    """A step that would need more memory than there is: exit 2, one line saying what it needs and how to reduce
    it, no traceback, and the earlier report as it was."""
    root = _store(tmp_path / "runs", 6)
    out = tmp_path / "rep"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "mgm_analysis.cli", "analyze", str(root), "--out", str(out), "--quiet"]
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    p = subprocess.run(cmd, env={**env, "MGM_MEMORY_LIMIT": "1000"}, capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "would need about" in lines[0] and "GiB" in lines[0] and ("selection" in lines[0]), lines[0]
    assert {q.name: q.read_bytes() for q in out.iterdir()} == before
    assert not [q for q in tmp_path.iterdir() if q.name.startswith((".tmp-", ".old-"))]


def test_no_overlap_skips_it(tmp_path):
    root = _store(tmp_path / "runs", 6)
    paths = analyze(root, tmp_path / "rep", quiet=True, overlap=False)
    assert "overlap" not in paths and "overlap_summary" not in paths
    assert "not measured (--no-overlap)" in paths["report"].read_text()


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_result(tmp_path, monkeypatch):
    """--workers 2: the per-run work (checks, metrics, bases, streamed PCA) on a 2-worker LocalCluster; every
    table as the local path writes it."""
    root = _store(tmp_path / "runs")
    monkeypatch.setattr(scale, "EXACT_PCA_MAX_VALUES", 0)  # the covariance chunks too
    monkeypatch.setattr(scale, "CHUNK_RUNS", 4)
    monkeypatch.setattr(overlap_groups, "EXACT_RUNS", 5)  # and the projector sums
    local = analyze(root, tmp_path / "local", quiet=True)
    import shutil

    shutil.rmtree(root / ".mgm_cache")  # fitted again, not read from the cache
    dask = analyze(root, tmp_path / "dask", quiet=True, workers=2)
    for name in TABLES:
        a, b = pd.read_csv(local[name]), pd.read_csv(dask[name])
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)


def test_per_run_pass_runs_on_the_workers(tmp_path, monkeypatch):
    from mgm_analysis.analysis.scale import _dask, measure, read_runs

    root = _store(tmp_path / "runs", 6)
    monkeypatch.setattr(scale, "CHUNK_RUNS", 1)
    client, cluster = _dask(2, None)
    try:
        res = measure(read_runs(root, data=False), root, client=client)
    finally:
        client.close()
        cluster.close()
    assert os.getpid() not in res.pids and len(res.pids) >= 1
    assert len(res.layer_profiles.run_id.unique()) == 6


def test_unreachable_scheduler_is_one_line(tmp_path):
    from click.testing import CliRunner

    from mgm_analysis.cli import main

    root = _store(tmp_path / "runs", 3)
    res = CliRunner().invoke(main, ["analyze", str(root), "--out", str(tmp_path / "rep"), "--scheduler",
                                    "tcp://127.0.0.1:9"])
    assert res.exit_code == 2 and "no Dask scheduler answered" in res.output
    assert not (tmp_path / "rep").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def _openmp_threads(libs=None):
    """{OpenMP library: its thread count} of this process (of ``libs`` only, when given)."""
    from threadpoolctl import threadpool_info

    got = {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}
    return got if libs is None else {k: got[k] for k in libs}


@pytest.mark.slow
def test_umap_projection_and_above_the_fit_size_a_sample_fit_that_transforms_the_rest(tmp_path, monkeypatch):
    """UMAP (one test: its numba code compiles for ~15 s on first use in a process).  ``project`` gives every
    frame its coordinates.  Above UMAP_FIT_POINTS frames UMAP is fitted on a seeded sample of runs and the other
    frames are placed by umap-learn's transform: every frame gets finite coordinates, the sample's size is
    recorded and said.  Neither leaves the process's OpenMP thread count changed (torch uses it)."""
    from mgm_analysis.analysis.projection import project

    root = _store(tmp_path / "runs", 12)  # 12 runs x 7 frames = 84 frames
    threads = _openmp_threads()  # torch's libgomp at least (conftest imports torch)
    df = project(root, "umap", n_neighbors=5)
    assert list(df.columns) == ["run_id", "region", "frame", "x", "y"] and len(df) == 84, df
    assert df.attrs["method"] == "umap" and np.isfinite(df[["x", "y"]].to_numpy()).all()
    assert _openmp_threads(threads) == threads
    monkeypatch.setattr(scale, "UMAP_FIT_POINTS", 35)  # 5 runs fitted, 7 transformed
    paths = analyze(root, tmp_path / "rep", quiet=True, umap=True, overlap=False)
    assert _openmp_threads(threads) == threads
    df = pd.read_parquet(paths["projection_umap_parquet"])
    assert len(df) == 84 and np.isfinite(df[["x", "y"]].to_numpy()).all()
    assert df.attrs["umap_fit_points"] == 35 and df.attrs["umap_fit_runs"] == 5
    assert df.groupby("run_id").size().eq(7).all()
    assert "fitted on 35 frames of a seeded sample of 5 of the 12 runs" in paths["report"].read_text()
