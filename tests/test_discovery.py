"""The engine: energy and gradient against a loop written here, descent, determinism, early stop, NaN
rollback, interruption, resume, the paper preset."""

import numpy as np
import pytest
import torch

from mgm_analysis.config import PAPER, DiscoveryConfig, default_config
from mgm_analysis.directions import chunk_sizes
from mgm_analysis.discovery import Trajectory, discover, energy, initial_free, run_noise
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


def _springs_by_hand(w, alpha, beta, sigma, closed):
    """α·Σ(‖w_{i+1} − w_i‖ − σ)² and β·Σ(‖w_{i+2} − w_i‖ − 2σ)², one pair at a time (wrapping when closed)."""
    n = len(w)
    spring = stiff = 0.0
    for i in range(n if closed else n - 1):
        spring += alpha * (float((w[(i + 1) % n] - w[i]).norm()) - sigma) ** 2
    for i in range(n if closed else n - 2):
        stiff += beta * (float((w[(i + 2) % n] - w[i]).norm()) - 2 * sigma) ** 2
    return spring, stiff


def _energy_by_hand(G, w_free, w_ref, ref_img, mask, cfg, offsets):
    """E of the chain written out: one latent per generator call, l2 D_in/D_out as mask-weighted means of the
    squared difference, the springs as a loop; returns the terms and dE/dw_free by autograd."""
    w = w_free.detach().clone().requires_grad_(True)
    m = torch.as_tensor(mask, dtype=torch.float32)
    terms = {"l_x": 0.0, "d_in": 0.0, "d_out": 0.0}
    total = torch.zeros((), dtype=torch.float64)
    for i in range(len(w)):
        ws = torch.cat([w_ref[:cfg.layer_start], w[i], w_ref[cfg.layer_end:]])[None]
        sq = (G.synthesis(ws) - ref_img).square().mean(1)[0]  # [H, W]
        d_in = (sq * m).sum() / m.sum()
        d_out = (sq * (1 - m)).sum() / (1 - m).sum()
        l_x = cfg.outside_weight * d_out + (d_in - float(offsets[i])).abs()
        total = total + cfg.gamma * l_x.double()
        terms["l_x"] += l_x.item()
        terms["d_in"] += d_in.item() / len(w)
        terms["d_out"] += d_out.item() / len(w)
    n = len(w)
    pairs = [(i, (i + k) % n, k) for k in (1, 2) for i in range(n if cfg.closed_loop else n - k)]
    for i, j, k in pairs:  # the same springs, differentiable
        weight = cfg.alpha if k == 1 else cfg.beta
        total = total + weight * ((w[j] - w[i]).norm() - k * cfg.prim_dist).double() ** 2
    total.backward()
    terms["spring"], terms["stiffener"] = _springs_by_hand(w.detach(), cfg.alpha, cfg.beta, cfg.prim_dist,
                                                           cfg.closed_loop)
    terms["total"] = total.item()
    return terms, w.grad


@pytest.mark.parametrize("closed, ramp, sigma", [(False, False, 0.2), (True, True, 0.7)])
def test_energy_and_gradient_match_a_loop_written_here(G, w_ref, region, closed, ramp, sigma):
    n = 7
    cfg = _cfg(n_frames=n, closed_loop=closed, offset_ramp=ramp, prim_dist=sigma, alpha=0.3, beta=0.45, gamma=0.6)
    dist = make_distance(region.mask, boxes=region.boxes)
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    w0 = w_ref[1:4].expand(n, -1, -1) + 0.1 * torch.randn(n, 3, 32, generator=torch.Generator().manual_seed(0))
    offsets = offsets_for(n, cfg.offset, cfg.offset_ramp)
    ref_terms, ref_grad = _energy_by_hand(G, w0, w_ref, ref_img, region.mask, cfg, offsets)
    assert ref_terms["spring"] > 1e-3 and ref_terms["stiffener"] > 1e-3 and ref_terms["d_out"] > 1e-6
    for name, kw in {"batch": dict(chunks=None), "chunks": dict(chunks=[3, 2, 2]), "auto": dict(chunks=3),
                     "per_latent": dict(per_latent=True)}.items():
        w = w0.clone().requires_grad_(True)
        terms = energy(G, w, w_ref, ref_img, dist, cfg, offsets, backward=True, **kw)
        for k in ("total", "l_x", "spring", "stiffener", "d_in", "d_out"):
            assert terms[k] == pytest.approx(ref_terms[k], rel=1e-5), (name, k)
        rel = float((w.grad - ref_grad).norm() / ref_grad.norm())
        assert rel < 1e-5, f"{name}: gradient differs from the loop written here by {rel:.2e} (relative)"


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
    assert 1 <= t.epochs_done < 6
    # rolled back to the last finite epoch: the latents of a clean search stopped after that many epochs
    # (the distance is the same until the NaN, the search deterministic)
    NaNDist.calls = -10**9
    clean = discover(G, w_ref, NaNDist(), _cfg(epochs=t.epochs_done))
    assert clean.status == "complete" and clean.history["total"] == t.history["total"]
    assert torch.equal(t.ws, clean.ws)
    assert not torch.equal(t.ws, discover(G, w_ref, NaNDist(), _cfg(epochs=t.epochs_done + 1)).ws)


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
    assert toy.distance == "l2" and toy.outside_weight == 20 and toy.n_frames == 16
    # the exploring chain: a closed loop of edits spaced by image springs, the latent springs off
    assert (toy.image_spring, toy.cone, toy.closed_loop, toy.clip, toy.alpha, toy.beta) == (1.0, 35.0, True, True,
                                                                                             0.0, 0.0)
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


# ------------------------------------------------------------ the paper's code: --preset paper
def test_paper_preset_is_the_reference_code():
    cfg = default_config("anything", preset="paper")
    assert (cfg.line_search, cfg.mask_mode, cfg.truncation, cfg.init_mode, cfg.init_noise, cfg.noise_mode,
            cfg.distance, cfg.n_frames, cfg.epochs, cfg.optimizer, cfg.lr, cfg.history_size, cfg.max_iter) == (
        "none", "paper", 1.0, "paper", 0.001, "random", "lpips", 36, 500, "lbfgs", 1.0, 20, 8)
    assert (cfg.alpha, cfg.beta, cfg.gamma, cfg.prim_dist, cfg.offset, cfg.outside_weight) == (0.3, 0.1, 0.5, 4.0,
                                                                                               0.25, 1.0)
    assert (cfg.image_spring, cfg.clip, cfg.closed_loop) == (0.0, False, False)  # the paper's latent springs only
    assert default_config("toyfaces", preset="paper") == cfg  # the preset wins over the generator's defaults
    # explicit settings win over the preset
    mine = default_config("toyfaces", "l2", preset="paper", truncation=0.5, epochs=3)
    assert (mine.distance, mine.truncation, mine.epochs, mine.line_search) == ("l2", 0.5, 3, "none")
    with pytest.raises(MGMError, match="unknown preset"):
        default_config(None, preset="papr")
    assert set(PAPER) <= {f for f in DiscoveryConfig.__dataclass_fields__}


def test_paper_start_is_one_shared_direction_scaled_per_latent(w_ref):
    cfg = _cfg(n_frames=9, init_mode="paper", init_noise=0.001, seed=4)
    delta = (initial_free(w_ref, cfg) - w_ref[1:4]).reshape(9, -1).double()
    assert float(delta[0].abs().max()) == 0.0  # latent 0 is w*
    # every other latent is a_i·d for one d: the deltas have rank 1
    sv = torch.linalg.svdvals(delta[1:])
    assert float(sv[1]) < 1e-3 * float(sv[0])  # (float32 rounding of w* + a_i·d: ~1e-7)
    # run.py's draws, in its order, from the seed: d ~ 0.001·N(0, I) [free, w_dim], then a ~ N(0, 1) [n − 1]
    g = torch.Generator().manual_seed(4)
    d = torch.randn(3, 32, generator=g) * 0.001
    a = torch.randn(8, 1, 1, generator=g)
    assert torch.allclose(delta[1:].float(), (a * d).reshape(8, -1), atol=1e-6)
    # ours: independent noise per latent (full rank), scale init_noise
    ours = (initial_free(w_ref, _cfg(n_frames=9, init_noise=0.05, seed=4)) - w_ref[1:4]).reshape(9, -1)
    assert float(ours[0].abs().max()) == 0.0 and int(torch.linalg.matrix_rank(ours[1:])) == 8
    assert float(ours[1:].std()) == pytest.approx(0.05, rel=0.1)


def test_random_noise_is_drawn_once_per_run_from_the_seed(G, w_ref, region):
    import copy

    cfg = _cfg(epochs=2, noise_mode="random", seed=3)
    noise = run_noise(G, cfg)
    assert [tuple(t.shape) for t in noise] == [tuple(b.shape) for b in G.noise_buffers()]
    assert all(not torch.equal(a, b) for a, b in zip(noise, G.noise_buffers(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(noise, run_noise(G, cfg), strict=True))  # the seed decides
    assert not torch.equal(noise[0], run_noise(G, _cfg(noise_mode="random", seed=4))[0])
    assert run_noise(G, _cfg()) is None
    # the search with random noise = the search with constant noise on a generator whose buffers hold that draw
    G2 = copy.deepcopy(G)
    for b, t in zip(G2.noise_buffers(), noise, strict=True):
        b.copy_(t)
    a = discover(G, w_ref, region, cfg)
    b = discover(G2, w_ref, region, _cfg(epochs=2, noise_mode="const", seed=3))
    assert torch.equal(a.ws, b.ws) and a.history["total"] == b.history["total"]
    assert not torch.equal(a.ws, discover(G, w_ref, region, _cfg(epochs=2, seed=3)).ws)
    assert all(torch.equal(x, y) for x, y in zip(G.noise_buffers(), tiny_generator(16, 32, seed=1).noise_buffers(),
                                                  strict=True))  # G itself untouched


def test_cli_paper_preset_writes_its_config(tmp_path):
    import json

    from click.testing import CliRunner

    from mgm_analysis.cli import main
    from mgm_analysis.generators.checkpoints import save_checkpoint

    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), ckpt)
    # at 16² LPIPS cannot see the paper's crops, so l2 here; every other setting is the preset's
    r = CliRunner().invoke(main, ["discover", "--preset", "paper", "--generator", str(ckpt), "--region",
                                  "rect:4,8,12,14", "--layers", "1:4", "--distance", "l2", "--frames", "4",
                                  "--epochs", "1", "--out", str(tmp_path / "runs"), "--quiet"])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run / "run.json").read_text())
    c = meta["config"]
    assert (c["line_search"], c["mask_mode"], c["truncation"], c["init_mode"], c["noise_mode"], c["distance"],
            c["n_frames"]) == ("none", "paper", 1.0, "paper", "random", "l2", 4)
    assert meta["reference"]["truncation"] == 1.0
    # re-rendered from the latents, the frames come out the same: the run's noise is drawn again from its config
    before = [p.read_bytes() for p in sorted((run / "frames").glob("*.png"))]
    r = CliRunner().invoke(main, ["render", str(run), "--rerender", "--no-gif"])
    assert r.exit_code == 0, r.output
    assert [p.read_bytes() for p in sorted((run / "frames").glob("*.png"))] == before and len(before) == 4



@pytest.mark.slow
def test_a_search_does_not_import_torch_dynamo():
    """The optimizer's constructor, and the forward-mode products of the masked-Jacobian start, would import
    torch._dynamo (~1.2 CPU-s per process) only to mark functions as never-compiled; the engine spares that import,
    and the search still descends.  One fresh process: a search from noise, then one from the Jacobian start,
    each checked after it ran."""
    import subprocess
    import sys

    code = """
import sys, torch
from mgm_analysis.discovery import DiscoveryConfig, discover
from mgm_analysis.generators.stylegan2 import tiny_generator
from mgm_analysis.masks import parse_region
G = tiny_generator(resolution=16, w_dim=32, seed=1)
w = G.broadcast(G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5))))[0].detach()
for init_mode in ("noise", "jacobian"):
    cfg = DiscoveryConfig(n_frames=5, layer_start=1, layer_end=4, prim_dist=0.2, offset=0.05, epochs=2,
                          distance="l2", init_noise=0.05, init_mode=init_mode)
    t = discover(G, w, parse_region("rect:4,8,12,14", 16), cfg)
    print(init_mode, "dynamo" if "torch._dynamo" in sys.modules else "no-dynamo",
          t.history["total"][0] > t.history["total"][-1])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["noise", "no-dynamo", "True", "jacobian", "no-dynamo", "True"]


@pytest.mark.slow
def test_the_dynamo_shortcut_leaves_a_loaded_dynamo_alone():
    """Once torch._dynamo is imported (someone compiles), torch's own wrapper is left to do its work."""
    import subprocess
    import sys

    code = """
import torch, torch._dynamo
from mgm_analysis.discovery import _skip_dynamo_import
_skip_dynamo_import()
fn = torch.optim.Optimizer.add_param_group.__wrapped__
print(getattr(fn, "__dynamo_disable", None) is fn)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False"]
