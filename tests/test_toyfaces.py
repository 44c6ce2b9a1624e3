"""The built-in toyfaces model: renderer, prior, region presets, shipped weights, recipe, regressor."""

import pytest
import torch

from mgm_analysis.generators.toyfaces import data_path
from mgm_analysis.generators.toyfaces.prior import factor_matrix, factors_from_z
from mgm_analysis.generators.toyfaces.renderer import FACTOR_REGION, FACTORS, NUM_FACTORS, render
from mgm_analysis.presets import REGION_FACTORS, preset_boxes


def test_renderer_is_deterministic_and_in_range():
    f = torch.rand(4, NUM_FACTORS, generator=torch.Generator().manual_seed(0))
    a, b = render(f), render(f.clone())
    assert torch.equal(a, b)
    assert a.shape == (4, 3, 64, 64) and a.min() >= -1 and a.max() <= 1
    assert render(f, resolution=32).shape == (4, 3, 32, 32)


@pytest.mark.parametrize("region", ["mouth", "eyes", "brows", "nose"])
def test_region_factor_changes_stay_inside_preset(region):
    """≥ 95% of the pixel-change energy of each region factor's sweep falls inside the region preset."""
    (x0, y0, x1, y1), = preset_boxes(region, "toyfaces", 64)
    g = torch.Generator().manual_seed(1)
    for name in REGION_FACTORS[region]:
        i = FACTORS.index(name)
        energy = torch.zeros(64, 64)
        for _ in range(8):
            f = torch.rand(1, NUM_FACTORS, generator=g).repeat(9, 1)
            f[:, i] = torch.linspace(0, 1, 9)
            img = render(f)
            energy += (img - img.mean(0, keepdim=True)).square().sum((0, 1))
        share = float(energy[y0:y1, x0:x1].sum() / energy.sum())
        assert share >= 0.95, f"{name}: only {share:.3f} of its change is inside the {region} preset"


def test_every_factor_is_visible():
    g = torch.Generator().manual_seed(2)
    base = torch.rand(1, NUM_FACTORS, generator=g)
    for i, name in enumerate(FACTORS):
        lo, hi = base.clone(), base.clone()
        lo[0, i], hi[0, i] = 0.0, 1.0
        rms = float((render(lo) - render(hi)).square().mean().sqrt()) / 2
        assert rms > 0.01, f"factor {name} barely changes the image (RMS {rms:.4f})"


def test_prior_is_uniform_and_entangled():
    z = torch.randn(4000, 512, generator=torch.Generator().manual_seed(3))
    f = factors_from_z(z)
    assert f.shape == (4000, NUM_FACTORS) and 0 <= f.min() and f.max() <= 1
    assert torch.allclose(f.mean(0), torch.full((NUM_FACTORS,), 0.5), atol=0.03)
    hist = torch.stack([torch.histc(f[:, k], 4, 0, 1) for k in range(NUM_FACTORS)]) / 4000
    assert torch.allclose(hist, torch.full_like(hist, 0.25), atol=0.04)
    A = factor_matrix()
    assert (A.abs() > 1e-3).float().mean() > 0.95  # (almost) every z direction moves every factor
    assert ((A.abs() > 0.01).sum(0) >= 8).all()  # and each z direction moves many factors


def test_factor_regions_are_known():
    for region, names in REGION_FACTORS.items():
        for n in names:
            assert n in FACTORS and FACTOR_REGION[n] in (region, "eyes")


needs_weights = pytest.mark.skipif(not data_path("toyfaces_G.pt").exists(), reason="toyfaces weights not shipped yet")


@needs_weights
def test_shipped_generator_loads_and_makes_faces():
    from mgm_analysis import load_generator

    G = load_generator("toyfaces")
    assert (G.resolution, G.num_ws, G.info.format, G.info.name) == (64, 10, "builtin", "toyfaces")
    z = torch.randn(8, 512, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        img = G(z)
    target = render(factors_from_z(z))
    psnr = -10 * torch.log10(((img - target) / 2).square().mean())
    assert psnr > 20, f"generated faces do not match their renders (PSNR {psnr:.1f} dB)"


def test_training_recipe_smoke(tmp_path):
    from mgm_analysis.generators.checkpoints import load_checkpoint
    from mgm_analysis.generators.toyfaces.train import TrainConfig, train

    cfg = TrainConfig(resolution=16, w_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8}, batch=8, steps=12,
                      eval_every=6, eval_n=16, map_steps=5, map_batch=16)
    logs, threads = [], []

    def log(line):
        logs.append(line)
        threads.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's own setting (the training itself on 1 thread: 2 spin on 2 busy cores)
    try:
        res = train(cfg, tmp_path / "g.pt", log=log, threads=1)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert res["steps_done"] == 12 and len(logs) == 3  # stage 1 + two evaluations
    # --threads holds while it trains; the process's own setting is back after (a notebook keeps its own)
    assert threads == [1] * 3 and after == 2
    G = load_checkpoint(tmp_path / "g.pt")
    assert G.resolution == 16 and G.num_ws == 6
    assert "notes" not in G.info.extra, G.info.extra["notes"]  # nothing the loader had to make up
    saved = torch.load(tmp_path / "g.pt", weights_only=True)
    assert torch.equal(G.w_avg, saved["latent_avg"])
    own = G.state_dict()
    assert all(torch.equal(own[k], v) for k, v in saved["g_ema"].items())


def test_training_stage_b_starts_from_a_checkpoint_with_the_consistency_term(tmp_path):
    """The recipe's second stage: --init a checkpoint, add the factor-regressor consistency term."""
    import torch.nn.functional as F

    from mgm_analysis.generators.checkpoints import load_checkpoint
    from mgm_analysis.generators.toyfaces.train import TrainConfig, train

    small = dict(resolution=16, w_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8}, batch=8, eval_n=16,
                 map_steps=5, map_batch=16)
    train(TrainConfig(**small, steps=4, eval_every=4), tmp_path / "a.pt", log=lambda s: None)
    logs = []
    res = train(TrainConfig(**small, steps=3, eval_every=3, lr=1e-3, consistency_weight=1.0), tmp_path / "b.pt",
                log=logs.append, init=tmp_path / "a.pt")
    assert res["steps_done"] == 3 and '"stage": "init"' in logs[0]
    A, B = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    extra = torch.load(tmp_path / "b.pt", map_location="cpu", weights_only=True)["mgm_extra"]
    assert extra["recipe"]["consistency_weight"] == 1.0
    pa, pb = dict(A.named_parameters()), dict(B.named_parameters())
    moved = [k for k in pa if not torch.equal(pa[k], pb[k])]
    assert moved  # it trained ...
    z = torch.randn(8, A.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # ... from A's weights, not from scratch: three small steps keep the images close
        assert F.mse_loss(B(z), A(z)) < 0.1 * F.mse_loss(A(z), torch.zeros_like(A(z)))


@pytest.mark.slow
def test_regressor_beats_mean_predictor():
    from mgm_analysis.generators.toyfaces.regressor import r2_per_factor, train_regressor

    torch.manual_seed(0)
    # the recipe on a network half as wide reading the faces at 32 px (~1/16 of the shipped one's work a step)
    model = train_regressor(steps=100, batch=32, lr=3e-3, log=lambda s: None, blur=0.0, resolution=32, width=16)
    assert model.resolution == 32 and model.features[0].out_channels == 16
    f = torch.rand(256, NUM_FACTORS, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        pred = model(render(f))
    r2 = r2_per_factor(pred, f)
    # a mean predictor has R² = 0; 100 tiny steps already explain the colour factors
    # (the shipped regressor's R² >= 0.8 on every factor is checked in test_shipped_regressor_reads_renders)
    assert sorted(r2.values())[-3] > 0.7 and sum(r2.values()) / len(r2) > 0.1, r2


def test_random_blur_augmentation():
    from mgm_analysis.generators.toyfaces.regressor import random_blur

    img = render(torch.rand(4, NUM_FACTORS, generator=torch.Generator().manual_seed(3)))
    # sigma ~ U(0, 0): the identity
    assert torch.allclose(random_blur(img, 0.0, torch.Generator().manual_seed(0)), img, atol=1e-6)
    blurred = random_blur(img, 1.5, torch.Generator().manual_seed(0))
    assert blurred.shape == img.shape
    # a blur lowers the image-gradient energy of every face and keeps a flat image flat
    tv = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3))  # noqa: E731
    assert (tv(blurred) <= tv(img) + 1e-6).all() and tv(blurred).sum() < 0.95 * tv(img).sum()
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(random_blur(flat, 1.5, torch.Generator().manual_seed(1)), flat, atol=1e-6)


@pytest.mark.skipif(not data_path("toyfaces_regressor.pt").exists(), reason="regressor weights not shipped yet")
def test_shipped_regressor_reads_renders():
    from mgm_analysis.generators.toyfaces.regressor import load_regressor, r2_per_factor

    f = torch.rand(300, NUM_FACTORS, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        pred = load_regressor()(render(f))
    r2 = r2_per_factor(pred, f)
    assert min(r2.values()) > 0.8, r2


def test_evaluation_helpers_on_a_tiny_generator(tmp_path):
    from PIL import Image

    from mgm_analysis.generators.stylegan2 import StyleGAN2
    from mgm_analysis.generators.toyfaces.evaluate import heldout_psnr, sample_grid, write_recipe

    torch.manual_seed(0)
    G = StyleGAN2(16, w_dim=32, n_mlp=2, channels={4: 8, 8: 8, 16: 8}, z_dim=512).eval()
    psnr = heldout_psnr(G, n=8, batch=4)
    assert set(psnr) == {"overall", "mouth", "eyes", "brows", "nose"}
    assert all(v["p5"] <= v["mean"] for v in psnr.values())
    path = sample_grid(G, tmp_path / "grid.png", n=3, scale=1)
    assert Image.open(path).size == (3 * 16 + 2 * 2, 2 * 16 + 2)
    rec = write_recipe(tmp_path / "r.json", {"recipe": {"seed": 0}, "minutes": 1.5}, {"psnr": psnr})
    assert '"train_minutes": 1.5' in rec.read_text()
