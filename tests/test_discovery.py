"""The engine: energy terms, batched == per-latent, loss decreases, determinism, interruption and resume."""

import numpy as np
import pytest
import torch

from mgm_analysis.discovery import DiscoveryConfig, discover, energy
from mgm_analysis.errors import MGMError
from mgm_analysis.generators.stylegan2 import tiny_generator
from mgm_analysis.losses import make_distance, offsets_for, spring_energy
from mgm_analysis.masks import rect_mask


@pytest.fixture(scope="module")
def G():
    return tiny_generator(resolution=16, w_dim=32, seed=1)


@pytest.fixture(scope="module")
def w_ref(G):
    return G.broadcast(G.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(5))))[0]


def _cfg(**kw):
    base = dict(n_frames=6, layer_start=1, layer_end=4, prim_dist=0.2, offset=0.05, outside_weight=5.0, epochs=3,
                patience=0, init_noise=0.05)
    base.update(kw)
    return DiscoveryConfig(**base)


def _dist(res=16, box=(4, 8, 12, 14), **kw):
    return make_distance(rect_mask([box], res), boxes=(box,), **kw)


def test_identical_images_give_zero_outside_and_inside():
    d = _dist()
    img = (torch.rand(1, 3, 16, 16) * 2 - 1).expand(2, -1, -1, -1)
    d_in, d_out = d(img, img[:1])
    assert torch.all(d_in == 0) and torch.all(d_out == 0)


def test_edit_inside_mask_leaves_outside_zero():
    d = _dist()
    ref = torch.zeros(1, 3, 16, 16)
    img = ref.clone()
    img[..., 8:14, 4:12] = 0.5
    d_in, d_out = d(img, ref)
    assert float(d_out) == 0 and float(d_in) == pytest.approx(0.25)


def test_paper_mode_equals_map_mode_for_l2():
    img, ref = torch.rand(3, 3, 16, 16), torch.rand(1, 3, 16, 16)
    a = _dist(mode="map")(img, ref)
    b = _dist(mode="paper")(img, ref)
    assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)


def test_lpips_distance_runs_with_random_backbone():
    from mgm_analysis.losses import load_lpips

    model = load_lpips(spatial=True, random_backbone=True)
    d = _dist(64, (16, 40, 48, 56), distance="lpips", lpips_model=model)
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    d_in, d_out = d(img, img[:1])
    assert d_in.shape == (2,) and float(d_in[0]) == pytest.approx(0, abs=1e-6) and float(d_in[1]) > 0


def test_spring_energy_known_values():
    w = torch.tensor([[0.0], [1.0], [3.0]])
    s, st = spring_energy(w, alpha=1.0, beta=1.0, sigma=1.0)
    assert float(s) == pytest.approx(0 + 1)          # steps 1 and 2 against rest 1
    assert float(st) == pytest.approx((3 - 2) ** 2)   # one stiffener of length 3 against 2
    s_closed, _ = spring_energy(w, 1.0, 0.0, 1.0, closed=True)
    assert float(s_closed) == pytest.approx(1 + (3 - 1) ** 2)


def test_offset_ramp():
    assert offsets_for(3, 0.4, True).tolist() == pytest.approx([0.0, 0.2, 0.4])


def test_batched_equals_per_latent_loss_and_gradient(G, w_ref):
    cfg = _cfg()
    dist = _dist()
    ref_img = G.synthesis(w_ref[None]).detach()
    torch.manual_seed(0)
    w0 = w_ref[1:4].expand(6, -1, -1).clone() + 0.1 * torch.randn(6, 3, 32)
    out = {}
    for name, kw in {"batched": dict(chunk=6), "chunked": dict(chunk=4), "loop": dict(chunk=6, per_latent=True)}.items():
        w = w0.clone().requires_grad_(True)
        terms = energy(G, w, w_ref, ref_img, dist, cfg, offsets_for(6, cfg.offset, False), backward=True, **kw)
        out[name] = (terms["total"], w.grad.clone())
    for name in ("chunked", "loop"):
        assert out[name][0] == pytest.approx(out["batched"][0], rel=1e-5)
        rel = (out[name][1] - out["batched"][1]).norm() / out["batched"][1].norm()
        assert rel < 1e-5, f"{name}: gradient differs by {rel:.2e} (relative)"


def test_lbfgs_lowers_energy_and_is_deterministic(G, w_ref):
    cfg = _cfg(epochs=4)
    t1 = discover(G, w_ref, _dist(), cfg)
    t2 = discover(G, w_ref, _dist(), cfg)
    h = t1.history["total"]
    assert len(h) == 4 and h[-1] < h[0]
    assert torch.equal(t1.ws, t2.ws)
    # only the free layers move
    assert torch.equal(t1.ws[:, :1], w_ref[None, :1].expand(6, -1, -1))
    assert torch.equal(t1.ws[:, 4:], w_ref[None, 4:].expand(6, -1, -1))


def test_adam_option_runs(G, w_ref):
    t = discover(G, w_ref, _dist(), _cfg(optimizer="adam", lr=0.01, epochs=5))
    assert t.status == "complete" and t.history["total"][-1] < t.history["total"][0]


def test_interrupt_keeps_state_and_resume_completes(G, w_ref):
    cfg = _cfg(epochs=4)

    def stop_after_two(epoch, terms):
        if epoch == 2:
            raise KeyboardInterrupt

    t = discover(G, w_ref, _dist(), cfg, callback=stop_after_two)
    assert t.status == "interrupted" and t.epochs_done == 2 and torch.isfinite(t.ws).all()
    t2 = discover(G, w_ref, _dist(), cfg, resume={"ws": t.ws, "history": t.history, "epochs_done": t.epochs_done})
    assert t2.status == "complete" and t2.epochs_done == 4 and t2.history["epoch"] == [1, 2, 3, 4]


def test_nan_rolls_back_and_stops(G, w_ref):
    class NaNDist(torch.nn.Module):
        calls = 0

        def forward(self, img, ref):
            NaNDist.calls += 1
            v = (img - ref).square().mean((1, 2, 3))
            return (v * float("nan"), v) if NaNDist.calls > 12 else (v, v)

    t = discover(G, w_ref, NaNDist(), _cfg(epochs=6))
    assert t.status == "interrupted" and t.stop_reason == "nan" and torch.isfinite(t.ws).all()


@pytest.mark.parametrize("kw, needle", [
    (dict(n_frames=2), "frames must be >= 3"),
    (dict(layer_start=5, layer_end=3), "empty"),
    (dict(alpha=-1.0), "alpha"),
    (dict(offset=-0.1), "offset"),
    (dict(distance="l1"), "distance"),
])
def test_config_validation(kw, needle):
    with pytest.raises(MGMError, match=needle):
        _cfg(**kw)


def test_layers_outside_generator(G, w_ref):
    with pytest.raises(MGMError, match="outside the generator's 6 W\\+ layers"):
        discover(G, w_ref, _dist(), _cfg(layer_end=9))


def test_mask_specs():
    from mgm_analysis.masks import parse_region

    assert parse_region("rect:2,3,10,12", 16).mask.sum() == 8 * 9
    assert parse_region("rects:0,0,2,2;4,4,6,6", 16).mask.sum() == 8
    assert 0 < parse_region("ellipse:8,8,3,2", 16).mask.sum() < 40
    assert parse_region("poly:2,2,12,2,7,12", 16).mask.sum() > 20
    assert parse_region("mouth", 64).boxes == ((16, 40, 48, 56),)
    for bad, needle in [("rect:0,0,20,4", "outside"), ("rect:3,3,3,9", "outside"), ("rect:0,0,16,16", "whole image"),
                        ("ellipse:-50,-50,2,2", "empty"), ("lips", "unknown region"), ("rect:1,2", "expected 4")]:
        with pytest.raises(MGMError, match=needle):
            parse_region(bad, 16)


def test_png_mask(tmp_path):
    from PIL import Image

    from mgm_analysis.masks import parse_region

    arr = np.zeros((16, 16), np.uint8)
    arr[4:8, 4:8] = 255
    Image.fromarray(arr).save(tmp_path / "m.png")
    assert parse_region(str(tmp_path / "m.png"), 16).mask.sum() == 16
    with pytest.raises(MGMError, match="is 16x16 but the generator makes 32x32"):
        parse_region(str(tmp_path / "m.png"), 32)
