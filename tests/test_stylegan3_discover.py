"""Discovery, analysis and the dashboard's data layer on an NVIDIA StyleGAN3 pickle (config R fixture, 16²)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mgm_analysis import store
from mgm_analysis.cli import main
from mgm_analysis.generators import load_generator
from mgm_analysis.masks import default_layout, parse_region
from mgm_analysis.presets import PRESETS

PKL = Path(__file__).parent / "fixtures" / "nvidia_sg3" / "sg3_r.pkl"
FAST = ["--frames", "4", "--epochs", "2", "--max-iter", "2", "--layers", "1:7", "--distance", "l2", "--quiet"]


@pytest.fixture(scope="module")
def sg3_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sg3runs")
    r = CliRunner().invoke(main, ["discover", "--generator", str(PKL), "--region", "rect:4,8,12,12", "--seed", "1",
                                  "--out", str(root), *FAST], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return root


def test_discover_writes_a_run_on_a_stylegan3_pickle(sg3_store):
    (run,) = list(store.iter_runs(sg3_store))
    assert run.status == "complete"
    assert run.latents.shape == (4, 7, 16) and run.reference.shape == (7, 16)
    gen = run.meta["generator"]
    assert gen["format"] == "nvidia-pickle" and gen["extra"]["config"] == "R" and gen["num_ws"] == 7
    assert np.array_equal(run.latents[:, 0], np.broadcast_to(run.reference[0], (4, 16)))  # layer 0 stays fixed
    assert np.abs(run.latents[1:, 1:7] - run.reference[1:7]).max() > 0  # the free layers moved
    # the stored reference image is the StyleGAN3 model's image of the stored reference latent
    G = load_generator(PKL)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(run.reference)[None])[0]
    want = np.clip((img.permute(1, 2, 0).numpy() + 1) / 2, 0, 1)
    assert np.abs(run.reference_img - want).max() <= 1 / 255 + 1e-6
    mask = run.mask
    assert mask.shape == (16, 16) and mask[8:12, 4:12].min() == 1 and mask.sum() == 8 * 4


def test_analyze_and_dashboard_read_the_run(sg3_store, tmp_path):
    r = CliRunner().invoke(main, ["analyze", str(sg3_store), "--out", str(tmp_path / "rep"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "report.html").exists()
    prof = (tmp_path / "rep" / "layer_profiles.csv").read_text()
    assert prof.strip()
    from dashboards import data

    snap = data.snapshot(sg3_store)
    assert len(snap.runs) == 1 and not snap.problems
    ids = list(snap.catalog["run_id"])
    lp = data.layer_profiles(snap, ids).sort_values("layer")
    assert list(lp["layer"]) == list(range(7))
    # the share of each W+ layer in the run's total squared displacement, computed here from the latents
    (run,) = list(store.iter_runs(sg3_store))
    e = ((run.latents - run.reference[None]) ** 2).sum((0, 2))
    assert np.allclose(lp["share"].to_numpy(), e / e.sum(), atol=1e-6)


def test_presets_use_the_ffhq_layout_at_any_resolution():
    """A StyleGAN3 pickle takes the FFHQ face layout: FFHQ-U crops have FFHQ's scale and mean centre."""
    G = load_generator(PKL)
    assert default_layout(G) == "ffhq"
    for res in (16, 256, 1024):
        reg = parse_region("mouth", res, default_layout(G))
        (x0, y0, x1, y1), = PRESETS["ffhq"]["mouth"]
        assert reg.boxes == ((round(x0 * res), round(y0 * res), round(x1 * res), round(y1 * res)),)


def test_random_noise_mode_refused_in_one_line(tmp_path):
    """StyleGAN3 has no noise inputs: --noise-mode random is a usage error, and no run folder is left."""
    r = CliRunner().invoke(main, ["discover", "--generator", str(PKL), "--region", "rect:4,8,12,12",
                                  "--noise-mode", "random", "--out", str(tmp_path / "runs"), *FAST])
    assert r.exit_code == 2 and "no noise inputs" in r.output
    assert len(r.output.strip().splitlines()) == 1
    runs = tmp_path / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]
