"""The engine: batched == per-latent, the loss goes down, determinism, early stop, NaN, interruption, resume."""

import numpy as np
import pytest
import torch

from mgm_analysis.discovery import DiscoveryConfig, Trajectory, chunk_sizes, default_config, discover, energy
from mgm_analysis.errors import MGMError
from mgm_analysis.generators.stylegan2 import tiny_generator
from mgm_analysis.losses import make_distance, offsets_for
from mgm_analysis.masks import parse_region

REGION = "rect:4,8,12,14"


@pytest.fixture(scope="module")
def G():
    return tiny_generator(resolution=16, w_dim=32, seed=1)


@pytest.fixture(scope="module")
def w_ref(G):
    with torch.no_grad():
        return G.broadcast(G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5))))[0]


@pytest.fixture(scope="module")
def region():
    return parse_region(REGION, 16)


def _cfg(**kw):
    base = dict(n_frames=6, layer_start=1, layer_end=4, prim_dist=0.2, offset=0.05, outside_weight=5.0, epochs=3,
                distance="l2", init_noise=0.05)
    base.update(kw)
    return DiscoveryConfig(**base)


@pytest.mark.parametrize("closed, ramp", [(False, False), (True, True)])
def test_batched_equals_per_latent_loss_and_gradient(G, w_ref, region, closed, ramp):
    n = 7
    cfg = _cfg(n_frames=n, closed_loop=closed, offset_ramp=ramp)
    dist = make_distance(region.mask, boxes=region.boxes)
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    w0 = w_ref[1:4].expand(n, -1, -1) + 0.1 * torch.randn(n, 3, 32, generator=torch.Generator().manual_seed(0))
    offsets = offsets_for(n, cfg.offset, cfg.offset_ramp)
    out = {}
    for name, kw in {"batch": dict(chunks=None), "chunks": dict(chunks=[3, 2, 2]), "auto": dict(chunks=3),
                     "loop": dict(per_latent=True)}.items():
        w = w0.clone().requires_grad_(True)
        terms = energy(G, w, w_ref, ref_img, dist, cfg, offsets, backward=True, **kw)
        out[name] = (terms, w.grad.clone())
    ref_terms, ref_grad = out["loop"]
    for name in ("batch", "chunks", "auto"):
        terms, grad = out[name]
        for k in ("total", "l_x", "spring", "stiffener", "d_in", "d_out"):
            assert terms[k] == pytest.approx(ref_terms[k], rel=1e-5), (name, k)
        rel = float((grad - ref_grad).norm() / ref_grad.norm())
        assert rel < 1e-5, f"{name}: gradient differs from the per-latent loop by {rel:.2e} (relative)"


def test_energy_without_backward_matches(G, w_ref, region):
    cfg = _cfg()
    dist = make_distance(region.mask)
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    w = w_ref[1:4].expand(6, -1, -1) + 0.05
    a = energy(G, w, w_ref, ref_img, dist, cfg, offsets_for(6, 0.05, False))
    b = energy(G, w.clone().requires_grad_(True), w_ref, ref_img, dist, cfg, offsets_for(6, 0.05, False),
               backward=True)
    assert a["total"] == pytest.approx(b["total"], rel=1e-6)


def test_chunk_sizes_are_balanced():
    assert chunk_sizes(16, 12) == [8, 8]
    assert chunk_sizes(36, 12) == [12, 12, 12]
    assert chunk_sizes(7, 3) == [3, 2, 2]
    assert chunk_sizes(37, 0) == [37] and chunk_sizes(60, 0) == [30, 30]
    assert chunk_sizes(36, 0, "cpu", 256) == [4] * 9
    assert chunk_sizes(36, 0, "cuda", 256) == [36]


def test_lbfgs_lowers_energy_and_is_deterministic(G, w_ref, region):
    cfg = _cfg(epochs=4)
    t1 = discover(G, w_ref, region, cfg)
    t2 = discover(G, w_ref, region.mask, cfg)  # a bare mask works too
    h = t1.history["total"]
    assert t1.status == "complete" and t1.stop_reason == "epochs" and t1.epochs_done == 4
    assert len(h) == 4 and h[-1] < h[0] and t1.evaluations >= 4
    assert torch.equal(t1.ws, t2.ws)
    assert t1.ws.shape == (6, G.num_ws, G.w_dim) and t1.ws.dtype == torch.float32
    # only the free layers move; latent 0 starts at w* and the others did move
    assert torch.equal(t1.ws[:, :1], w_ref[None, :1].expand(6, -1, -1))
    assert torch.equal(t1.ws[:, 4:], w_ref[None, 4:].expand(6, -1, -1))
    assert float((t1.ws[1:, 1:4] - w_ref[1:4]).abs().max()) > 0


def test_other_seed_other_start(G, w_ref, region):
    a = discover(G, w_ref, region, _cfg(epochs=1, seed=0))
    b = discover(G, w_ref, region, _cfg(epochs=1, seed=1))
    assert not torch.equal(a.ws, b.ws)


def test_adam_option_runs(G, w_ref, region):
    t = discover(G, w_ref, region, _cfg(optimizer="adam", lr=0.01, epochs=5))
    assert t.status == "complete" and t.history["total"][-1] < t.history["total"][0]


def test_lbfgs_without_line_search_runs(G, w_ref, region):
    t = discover(G, w_ref, region, _cfg(line_search="none", lr=0.5, epochs=3))
    assert t.status == "complete" and np.isfinite(t.history["total"]).all()


def test_early_stop_when_stalled(G, w_ref, region):
    t = discover(G, w_ref, region, _cfg(epochs=200, patience=2, tol=0.5))
    assert t.stop_reason == "stalled" and t.status == "complete" and t.epochs_done < 200


def test_callback_can_stop(G, w_ref, region):
    seen = []
    t = discover(G, w_ref, region, _cfg(epochs=5), callback=lambda e, terms: seen.append(terms) or e < 2)
    assert t.status == "interrupted" and t.stop_reason == "callback" and t.epochs_done == 2
    assert set(seen[0]) >= {"total", "l_x", "spring", "stiffener", "d_in", "d_out"}


def test_interrupt_keeps_state_and_resume_completes(G, w_ref, region):
    cfg = _cfg(epochs=4)

    def stop_after_two(epoch, terms):
        if epoch == 2:
            raise KeyboardInterrupt

    t = discover(G, w_ref, region, cfg, callback=stop_after_two)
    assert t.status == "interrupted" and t.stop_reason == "interrupted" and t.epochs_done == 2
    assert torch.isfinite(t.ws).all()
    t2 = discover(G, w_ref, region, cfg, state=t)
    assert t2.status == "complete" and t2.epochs_done == 4 and t2.history["epoch"] == [1, 2, 3, 4]
    t3 = discover(G, w_ref, region, cfg, state={"ws": t.ws.numpy(), "history": t.history, "epochs_done": 2})
    assert torch.equal(t2.ws, t3.ws)
    with pytest.raises(MGMError, match="cannot resume"):
        discover(G, w_ref, region, _cfg(n_frames=5), state=t)


def test_interrupt_mid_epoch_rolls_back_to_last_epoch(G, w_ref, region):
    class Boom(torch.nn.Module):
        calls = 0

        def forward(self, img, ref):
            Boom.calls += 1
            if Boom.calls == 15:
                raise KeyboardInterrupt
            v = (img - ref).square().mean((1, 2, 3))
            return v, v

    t = discover(G, w_ref, Boom(), _cfg(epochs=50))
    assert t.status == "interrupted" and 0 <= t.epochs_done < 50 and len(t.history["epoch"]) == t.epochs_done


def test_nan_rolls_back_and_stops(G, w_ref):
    class NaNDist(torch.nn.Module):
        calls = 0

        def forward(self, img, ref):
            NaNDist.calls += 1
            v = (img - ref).square().mean((1, 2, 3))
            return (v * float("nan"), v) if NaNDist.calls > 12 else (v, v)

    t = discover(G, w_ref, NaNDist(), _cfg(epochs=6))
    assert t.status == "interrupted" and t.stop_reason == "nan" and torch.isfinite(t.ws).all()
    assert len(t.history["total"]) == t.epochs_done and all(np.isfinite(t.history["total"]))


@pytest.mark.parametrize("kw, needle", [
    (dict(n_frames=2), "frames must be >= 3"),
    (dict(layer_start=5, layer_end=3), "empty"),
    (dict(layer_start=-1), "negative"),
    (dict(alpha=-1.0), "--alpha"),
    (dict(beta=float("nan")), "--beta"),
    (dict(offset=-0.1), "--offset"),
    (dict(outside_weight=-2.0), "--outside-weight"),
    (dict(distance="l1"), "distance"),
    (dict(mask_mode="blob"), "mask-mode"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(line_search="armijo"), "line-search"),
    (dict(epochs=0), "--epochs"),
    (dict(history_size=0), "--history-size"),
    (dict(lr=0.0), "--lr"),
])
def test_config_validation(kw, needle):
    with pytest.raises(MGMError, match=needle):
        _cfg(**kw)


def test_layers_outside_generator(G, w_ref, region):
    with pytest.raises(MGMError, match="outside the generator's 6 W\\+ layers"):
        discover(G, w_ref, region, _cfg(layer_end=9))


def test_bad_reference_and_mask_shapes(G, w_ref):
    with pytest.raises(MGMError, match="reference latent has shape"):
        discover(G, w_ref[:3], parse_region(REGION, 16), _cfg())
    with pytest.raises(MGMError, match="mask is 32x32"):
        discover(G, w_ref, parse_region("rect:1,1,5,5", 32), _cfg())


def test_defaults_per_generator_and_distance():
    toy = default_config("toyfaces")
    assert toy.distance == "l2" and toy.outside_weight == 10 and toy.n_frames == 16
    assert default_config("toyfaces", region="eyes").offset > default_config("toyfaces", region="mouth").offset
    paper = default_config("stylegan2-ffhq-config-f")
    assert (paper.n_frames, paper.alpha, paper.beta, paper.gamma, paper.prim_dist, paper.offset, paper.distance,
            paper.epochs, paper.history_size, paper.max_iter) == (36, 0.3, 0.1, 0.5, 4.0, 0.25, "lpips", 500, 20, 8)
    assert default_config("toyfaces", epochs=3, alpha=None).epochs == 3
    cfg = DiscoveryConfig.from_dict({**toy.to_dict(), "unknown_future_key": 1})
    assert cfg == toy


def test_trajectory_state_roundtrip():
    t = Trajectory(ws=torch.zeros(3, 2, 2), history={"total": [1.0]}, epochs_done=1)
    assert set(t.state()) == {"ws", "history", "epochs_done"}
