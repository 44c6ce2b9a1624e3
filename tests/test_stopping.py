"""The stopping rule by quality and the coarse-to-fine start: where the rule fires (computed here, independently
of the engine), where it must not, resume of a run stopped by quality, subdivision of a coarse chain."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mgm_analysis import store
from mgm_analysis.cli import main
from mgm_analysis.config import DiscoveryConfig
from mgm_analysis.discovery import coarse_config, discover, quality_reached, subdivide
from mgm_analysis.errors import MGMError
from mgm_analysis.generators.checkpoints import save_checkpoint
from mgm_analysis.generators.stylegan2 import tiny_generator
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
    base = dict(n_frames=6, layer_start=1, layer_end=4, prim_dist=0.2, offset=0.05, outside_weight=5.0, epochs=12,
                distance="l2", init_noise=0.05)
    base.update(kw)
    return DiscoveryConfig(**base)


# ------------------------------------------------------------- the rule on a constructed history
def _history(n, gap_halvings_from, d_out_falls_until, springs_fall_until, c=0.1, cfg=None, springs_step=0.3):
    """Epochs 1..n with the energy E = 10: the worst gap c·2^-(e - gap_halvings_from) (c while e <=
    gap_halvings_from); the outside term γ·λ·n·D_out falls by 0.4 (4 % of E) a epoch up to ``d_out_falls_until``
    and is flat after; the springs fall by ``springs_step`` a epoch up to ``springs_fall_until``."""
    cfg = cfg or _cfg()
    per_unit = cfg.gamma * cfg.outside_weight * cfg.n_frames  # outside term per unit of mean D_out
    h = {k: [] for k in ("epoch", "total", "d_in_gap", "d_out", "spring", "stiffener", "spread", "inside_path")}
    for e in range(1, n + 1):
        h["epoch"].append(e)
        h["spread"].append(1.2)  # a chain that explores its region (the extent bars are 1 and 3)
        h["inside_path"].append(3.6)
        h["total"].append(10.0)
        h["d_in_gap"].append(c * 2.0 ** -max(0, e - gap_halvings_from))
        h["d_out"].append((30.0 - 0.4 * min(e, d_out_falls_until)) / per_unit)
        s = 20.0 - springs_step * min(e, springs_fall_until)
        h["spring"].append(0.75 * s)
        h["stiffener"].append(0.25 * s)
    return h


def _first_firing(h, cfg):
    for e in range(1, len(h["epoch"]) + 1):
        if quality_reached({k: v[:e] for k, v in h.items()}, cfg):
            return e
    return None


@pytest.mark.parametrize("gap_from, d_out_until, springs_until", [(0, 7, 3), (0, 2, 12), (10, 2, 2), (4, 4, 4)])
def test_rule_fires_at_the_epoch_worked_out_by_hand(gap_from, d_out_until, springs_until):
    # stop_tol 0.05: the gap c·2^-k is <= 0.05·c from k = 5 (2^-5 = 0.031; 2^-4 = 0.0625 is not), i.e. epoch
    # gap_from + 5.  Window 3, E = 10, stop_rel 0.01 (a fall of at most 0.1): a term that falls by 0.3 or 0.4 a
    # epoch until epoch u has fallen by at least that between epochs e - 3 and e while e - 3 < u, and not at all
    # once e - 3 >= u: it has stopped from epoch u + 3.
    cfg = _cfg(stop_tol=0.05, stop_window=3, stop_rel=0.01, offset=0.1)
    expected = max(gap_from + 5, d_out_until + 3, springs_until + 3)
    h = _history(40, gap_from, d_out_until, springs_until)
    assert _first_firing(h, cfg) == expected


def test_rule_must_not_fire():
    cfg = _cfg(stop_tol=0.05, stop_window=3, stop_rel=0.01, offset=0.1)
    assert _first_firing(_history(40, 0, 50, 2), cfg) is None    # D_out still falls 10 % a epoch
    assert _first_firing(_history(40, 0, 2, 50), cfg) is None    # the springs still fall 5 % a epoch
    assert _first_firing(_history(40, 38, 2, 2), cfg) is None    # the worst frame is still off its target
    assert _first_firing(_history(40, 0, 2, 2), _cfg(stop_tol=0.0, offset=0.1)) is None  # rule off
    # a slow fall: the springs lose 0.05 a epoch, 0.15 = 1.5 % of E over a window of 3, so stop_rel 0.02 calls
    # it stopped (at epoch 5, where the gap is in), 0.01 does not
    h = _history(40, 0, 2, 50, springs_step=0.05)
    assert _first_firing(h, _cfg(stop_tol=0.05, stop_window=3, stop_rel=0.02, offset=0.1)) == 5
    assert _first_firing(h, _cfg(stop_tol=0.05, stop_window=3, stop_rel=0.01, offset=0.1)) is None
    # relative to the energy, not to the term: the same fall in a larger energy has stopped
    h = _history(40, 0, 2, 50, springs_step=0.05)
    h["total"] = [20.0] * 40
    assert _first_firing(h, _cfg(stop_tol=0.05, stop_window=3, stop_rel=0.01, offset=0.1)) == 5
    assert not quality_reached({}, cfg)


# ------------------------------------------------------------- the rule in the engine
def _explore(**kw):
    """A chain that explores (the toyfaces defaults' shape): a closed loop of edits 35° around the most local one,
    spaced by image springs, no latent springs, from the masked-Jacobian start."""
    return _cfg(image_spring=1.0, alpha=0.0, beta=0.0, closed_loop=True, cone=35.0, init_mode="jacobian", **kw)


def _terms_by_hand(G, w_ref, region, ws, cfg):
    """Per epoch: worst |D_in,i − c|, the outside term γ·λ·Σ D_out,i, the weighted springs (latent and image),
    the energy E, and the extent (spread, inside path), computed from the images and latents."""
    import math

    with torch.no_grad():
        ref = G.synthesis(w_ref[None])
        img = G.synthesis(ws)
    m = torch.as_tensor(region.mask, dtype=torch.float32)
    e = (img - ref).square().mean(1)                           # [n, H, W], images in [-1, 1]
    d_in = (e * m).sum((1, 2)) / m.sum()
    d_out = (e * (1 - m)).sum((1, 2)) / (1 - m).sum()
    n = len(ws)
    free = ws[:, cfg.layer_start:cfg.layer_end].reshape(n, -1).double()
    s1 = (free[1:] - free[:-1]).norm(dim=1)
    s2 = (free[2:] - free[:-2]).norm(dim=1)
    springs = cfg.alpha * float(((s1 - cfg.prim_dist) ** 2).sum()) + cfg.beta * float(((s2 - 2 * cfg.prim_dist) ** 2).sum())
    pair = torch.zeros(n, n, dtype=torch.float64)  # D_in between frames, and the distances inside the mask
    for i in range(n):
        for j in range(n):
            pair[i, j] = float(((img[i] - img[j]).square().mean(0) * m).sum() / m.sum())
    if cfg.image_spring:  # a closed loop: neighbours 2π/n apart on a circle of angular radius `cone`
        rho = math.radians(cfg.cone)
        for k in (1, 2):
            rest = 2 * cfg.offset * math.sin(rho) ** 2 * (1 - math.cos(2 * math.pi * k / n))
            springs += cfg.gamma * cfg.image_spring * sum(abs(float(pair[i, (i + k) % n]) - rest) for i in range(n))
    outside = cfg.gamma * cfg.outside_weight * float(d_out.sum())
    total = outside + cfg.gamma * float((d_in - cfg.offset).abs().sum()) + springs
    dist = (pair * 3 * m.sum()).sqrt()  # ‖M(x_i − x_j)‖ (sums over pixels and channels; the scale cancels)
    to_ref = (((img - ref).square().sum(1) * m).sum((1, 2))).double().sqrt()
    spread = float(dist.max() / to_ref.max())
    path = float(sum(dist[i, (i + 1) % n] for i in range(n)) / to_ref.mean())
    return float((d_in - cfg.offset).abs().max()), outside, springs, total, spread, path


def _expected_stop(series, cfg):
    """First epoch (1-based) where the rule holds, written out from its definition."""
    w = cfg.stop_window
    for e in range(w + 1, len(series) + 1):
        gap, outside, springs, _, spread, path = series[e - 1]
        _, outside0, springs0, total0, _, _ = series[e - 1 - w]
        if (gap <= cfg.stop_tol * cfg.offset and outside0 - outside <= cfg.stop_rel * total0
                and springs0 - springs <= cfg.stop_rel * total0 and spread >= 1 and path >= 3):
            return e
    return None


@pytest.fixture(scope="module")
def free_run(G, w_ref, region):
    """12 epochs without the rule, with the chain after every epoch."""
    chain = []
    t = discover(G, w_ref, region, _explore(), watch=lambda e, ws: chain.append(ws))
    return t, chain


def test_engine_stops_where_the_rule_first_holds(G, w_ref, region, free_run):
    t_free, chain = free_run
    cfg = _explore(stop_tol=0.3, stop_window=3, stop_rel=0.01)
    series = [_terms_by_hand(G, w_ref, region, ws, cfg) for ws in chain]
    expected = _expected_stop(series, cfg)
    assert expected is not None and 4 <= expected < 12, series  # the case must be a real early stop
    t = discover(G, w_ref, region, cfg)
    assert (t.status, t.stop_reason, t.epochs_done) == ("complete", "quality", expected)
    assert torch.equal(t.ws, chain[expected - 1])  # the same search up to there: the rule only stops it
    assert t.history["d_in_gap"][-1] == pytest.approx(series[expected - 1][0], rel=1e-4)
    assert t.history["spread"][-1] == pytest.approx(series[expected - 1][4], rel=1e-4)
    assert t.history["inside_path"][-1] == pytest.approx(series[expected - 1][5], rel=1e-4)
    assert t.history["total"][-1] == pytest.approx(series[expected - 1][3], rel=1e-4)


def test_a_chain_that_stands_still_never_stops_by_quality(G, w_ref, region):
    """The paper's latent springs on this model shrink the chain to spread < 1: every other part of the rule
    holds, and the search runs to its cap."""
    cfg = _cfg(stop_tol=0.5, stop_window=3, stop_rel=0.05)
    chain = []
    t = discover(G, w_ref, region, cfg, watch=lambda e, ws: chain.append(ws))
    series = [_terms_by_hand(G, w_ref, region, ws, cfg) for ws in chain]
    assert series[-1][4] < 1  # stands (nearly) still
    without_extent = [(g, o, sp, tot, 9.0, 9.0) for g, o, sp, tot, _, _ in series]
    assert _expected_stop(without_extent, cfg) is not None  # only the extent keeps it from stopping
    assert (t.stop_reason, t.epochs_done) == ("epochs", 12)


def test_engine_runs_to_the_cap_when_the_rule_never_holds(G, w_ref, region, free_run):
    t_free, chain = free_run
    cfg = _explore(stop_tol=1e-6, stop_window=3, stop_rel=0.01)
    series = [_terms_by_hand(G, w_ref, region, ws, cfg) for ws in chain]
    assert _expected_stop(series, cfg) is None
    t = discover(G, w_ref, region, cfg)
    assert (t.status, t.stop_reason, t.epochs_done) == ("complete", "epochs", 12)
    assert torch.equal(t.ws, t_free.ws)


def test_resume_of_a_run_stopped_by_quality(G, w_ref, region):
    cfg = _explore(stop_tol=0.3, stop_window=3, stop_rel=0.01)
    done = discover(G, w_ref, region, cfg)
    assert done.stop_reason == "quality"
    # resumed with a higher cap: the history already meets the rule, so no epoch is added and nothing moves
    again = discover(G, w_ref, region, _explore(stop_tol=0.3, stop_window=3, stop_rel=0.01, epochs=40), state=done)
    assert (again.stop_reason, again.epochs_done, again.evaluations) == ("quality", done.epochs_done, 0)
    assert torch.equal(again.ws, done.ws) and again.history == done.history

    # interrupted before the rule held: the resumed search stops by quality, judged over the whole history
    def stop_after_two(epoch, terms):
        if epoch == 2:
            raise KeyboardInterrupt

    cut = discover(G, w_ref, region, cfg, callback=stop_after_two)
    assert cut.status == "interrupted" and cut.epochs_done == 2
    rest = discover(G, w_ref, region, cfg, state=cut)
    assert (rest.status, rest.stop_reason) == ("complete", "quality") and 2 < rest.epochs_done < 12
    assert rest.history["epoch"] == list(range(1, rest.epochs_done + 1))
    assert quality_reached(rest.history, cfg)
    assert not quality_reached({k: v[:-1] for k, v in rest.history.items()}, cfg)


def test_cli_records_why_a_run_stopped(tmp_path, w_ref):
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=1), ckpt)
    np.save(tmp_path / "w.npy", w_ref.numpy())  # the reference of the engine tests, where the rule fires
    args = ["discover", "--generator", str(ckpt), "--region", REGION, "--reference", str(tmp_path / "w.npy"),
            "--frames", "6",
            "--layers", "1:4", "--prim-dist", "0.2", "--offset", "0.05", "--outside-weight", "5", "--distance", "l2",
            "--init-noise", "0.05", "--epochs", "12", "--stop-tol", "0.3", "--image-spring", "1", "--alpha", "0",
            "--beta", "0", "--closed-loop", "--cone", "35", "--init-mode", "jacobian", "--quiet",
            "--out", str(tmp_path / "runs")]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (run_dir,) = list((tmp_path / "runs").iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["stop_reason"] == "quality"
    assert meta["config"]["stop_tol"] == 0.3 and len(meta["history"]["epoch"]) < 12
    assert len(meta["history"]["d_in_gap"]) == len(meta["history"]["epoch"])
    assert store.load_run(run_dir).status == "complete"
    r = CliRunner().invoke(main, ["discover", "--resume", str(run_dir)])
    assert r.exit_code == 2 and "already complete" in r.output
    r = CliRunner().invoke(main, args[:-2] + ["--init-mode", "jacobian", "--epochs", "1", "--out",
                                              str(tmp_path / "jac")])
    assert r.exit_code == 0, r.output
    (jac,) = list((tmp_path / "jac").iterdir())
    assert json.loads((jac / "run.json").read_text())["config"]["init_mode"] == "jacobian"
    r = CliRunner().invoke(main, args[:-2] + ["--stop-tol", "-1", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "--stop-tol" in r.output and not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_jacobian_start_in_a_fresh_process_prints_nothing_of_torch(tmp_path, w_ref):
    """The start's forward-mode products make torch script some decompositions on first use, and torch warns
    that torch.jit.script is deprecated; a quiet run of the bare command prints nothing at all."""
    import subprocess
    import sys

    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=1), ckpt)
    np.save(tmp_path / "w.npy", w_ref.numpy())
    cmd = [sys.executable, "-m", "mgm_analysis.cli", "discover", "--generator", str(ckpt), "--region", REGION,
           "--reference", str(tmp_path / "w.npy"), "--frames", "6", "--layers", "1:4", "--distance", "l2",
           "--init-mode", "jacobian", "--epochs", "1", "--quiet", "--out", str(tmp_path / "runs")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    assert len(list((tmp_path / "runs").iterdir())) == 1


# ------------------------------------------------------------- coarse to fine
def test_subdivide_known_answers():
    w = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    got = subdivide(w, 5)
    assert torch.allclose(got, torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]))
    loop = subdivide(w, 6, closed=True)  # back from the last latent to the first
    assert torch.allclose(loop, torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0],
                                              [0.5, 1.0]]))
    assert torch.equal(subdivide(w, 3), w)


def test_coarse_config_keeps_the_chain_length():
    cfg = _cfg(n_frames=16, prim_dist=0.35, coarse_frames=6, coarse_epochs=4)
    c = coarse_config(cfg)
    assert (c.n_frames, c.epochs, c.coarse_frames) == (6, 4, 0)
    assert c.prim_dist * 5 == pytest.approx(0.35 * 15)      # 5 coarse springs as long as 15 fine ones
    loop = coarse_config(_cfg(n_frames=16, prim_dist=0.35, coarse_frames=4, coarse_epochs=4, closed_loop=True))
    assert loop.prim_dist * 4 == pytest.approx(0.35 * 16)


def test_coarse_to_fine_runs_deterministically(G, w_ref, region):
    cfg = _cfg(n_frames=9, coarse_frames=4, coarse_epochs=3, epochs=2)
    a, b = discover(G, w_ref, region, cfg), discover(G, w_ref, region, cfg)
    assert a.status == "complete" and a.epochs_done == 2 and torch.equal(a.ws, b.ws)
    coarse = discover(G, w_ref, region, coarse_config(cfg))
    assert a.evaluations > coarse.evaluations  # the coarse search is part of the run
    # the fine search starts from the subdivided coarse chain: one epoch of each start differs
    one = discover(G, w_ref, region, _cfg(n_frames=9, coarse_frames=4, coarse_epochs=3, epochs=1))
    plain = discover(G, w_ref, region, _cfg(n_frames=9, epochs=1))
    assert not torch.equal(one.ws, plain.ws)
    assert float((one.ws[-1] - w_ref).norm()) > float((plain.ws[-1] - w_ref).norm())


def test_interrupt_in_the_coarse_phase_keeps_the_start(G, w_ref, region):
    class Boom(torch.nn.Module):
        calls = 0

        def forward(self, img, ref):
            Boom.calls += 1
            if Boom.calls == 3:
                raise KeyboardInterrupt
            v = (img - ref).square().mean((1, 2, 3))
            return v, v

    t = discover(G, w_ref, Boom(), _cfg(n_frames=9, coarse_frames=4, coarse_epochs=3))
    assert (t.status, t.stop_reason, t.epochs_done) == ("interrupted", "interrupted", 0)
    assert torch.isfinite(t.ws).all() and t.ws.shape[0] == 9


@pytest.mark.parametrize("kw, needle", [
    (dict(stop_tol=-0.1), "--stop-tol"),
    (dict(stop_tol=float("nan")), "--stop-tol"),
    (dict(stop_tol=2.0), "--stop-tol"),
    (dict(stop_rel=-1.0), "--stop-rel"),
    (dict(stop_window=0), "--stop-window"),
    (dict(coarse_frames=2, coarse_epochs=3), "--coarse-frames"),
    (dict(coarse_frames=6, coarse_epochs=3), "--coarse-frames"),   # not fewer than --frames 6
    (dict(coarse_frames=4, coarse_epochs=0), "--coarse-epochs"),
    (dict(coarse_epochs=-1), "--coarse-epochs"),
    (dict(init_mode="svd"), "--init-mode"),
])
def test_stop_and_coarse_validation(kw, needle):
    with pytest.raises(MGMError, match=needle):
        _cfg(**kw)


# ------------------------------------------------------------- the masked-Jacobian start
def _d_in_out(G, w_ref, free, region, ls=1, le=4):
    """Inside and outside mean squared change of the latents with free layers ``free`` [n, le − ls, w_dim]."""
    ws = w_ref[None].repeat(len(free), 1, 1)
    ws[:, ls:le] = free
    with torch.no_grad():
        img, ref = G.synthesis(ws), G.synthesis(w_ref[None])
    m = torch.as_tensor(region.mask, dtype=torch.float32)
    e = (img - ref).square().mean(1)
    return (e * m).sum((1, 2)) / m.sum(), (e * (1 - m)).sum((1, 2)) / (1 - m).sum()


def test_jacobian_start_sits_at_the_target_on_the_most_local_candidate(G, w_ref, region):
    from mgm_analysis.directions import masked_jacobian
    from mgm_analysis.discovery import JACOBIAN_START, jacobian_start
    from mgm_analysis.losses import make_distance

    cfg = _cfg(n_frames=7, init_mode="jacobian", init_noise=0.01, sweep=0)  # every frame at the centre
    free = jacobian_start(G, w_ref, make_distance(torch.as_tensor(region.mask), "l2"), cfg)
    assert free.shape == (7, 3, 32)
    d_in, d_out = _d_in_out(G, w_ref, free, region)
    # every frame near the target inside distance (the step is interpolated; the perturbation is small)
    assert torch.all((d_in - cfg.offset).abs() < 0.25 * cfg.offset), d_in
    # frame 0 is the point itself; the others are the noise start's perturbation of it (same seed, same draws)
    g = torch.Generator().manual_seed(cfg.seed)
    noise = torch.randn(7, 3, 32, generator=g) * cfg.init_noise
    noise[0] = 0
    assert torch.allclose(free - free[:1], noise, atol=1e-5)
    # the candidates, found here by bisection on the step: ±d1, ±d2 of the same masked Jacobian
    res = masked_jacobian(G, w_ref.numpy(), region.mask, (1, 4), seed=cfg.seed, **JACOBIAN_START)
    ratios = []
    for k in range(2):
        for sign in (1.0, -1.0):
            d = sign * torch.as_tensor(res["directions"][k], dtype=torch.float32)
            lo, hi = 0.0, 1.0
            while float(_d_in_out(G, w_ref, (w_ref[1:4] + hi * d)[None], region)[0]) < cfg.offset:
                hi *= 2
            for _ in range(40):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if float(_d_in_out(G, w_ref, (w_ref[1:4] + mid * d)[None], region)[0]) < cfg.offset else (lo, mid)
            a, b = _d_in_out(G, w_ref, (w_ref[1:4] + hi * d)[None], region)
            ratios.append(float(b) / float(a))
    chosen = float(d_out[0]) / float(d_in[0])
    # the start is the most local of the four at the target (up to the interpolated step), and the next best is
    # clearly less local, so a wrong choice would show
    assert chosen <= min(ratios) * 1.05, (chosen, ratios)
    assert sorted(ratios)[1] > 1.1 * min(ratios), ratios
    # the noise start of the same chain is nowhere near the target
    noise_run = discover(G, w_ref, region, _cfg(n_frames=7, epochs=1, init_mode="noise"))
    assert float(noise_run.history["d_in_gap"][0]) > 0.5 * cfg.offset


def test_jacobian_start_of_a_closed_loop_and_a_ramp(G, w_ref, region):
    from mgm_analysis.discovery import jacobian_start
    from mgm_analysis.losses import make_distance

    dist = make_distance(torch.as_tensor(region.mask), "l2")
    loop = jacobian_start(G, w_ref, dist, _cfg(n_frames=8, init_mode="jacobian", closed_loop=True))
    d_in, _ = _d_in_out(G, w_ref, loop, region)
    assert torch.all((d_in - 0.05).abs() < 0.35 * 0.05), d_in  # on the ellipse D_in = c (to second order)
    steps = (loop - loop.roll(1, 0)).reshape(8, -1).norm(dim=1)
    assert float(steps.min()) > 0.2 * float(steps.max())       # spread around the loop, not bunched
    ramp = jacobian_start(G, w_ref, dist, _cfg(n_frames=5, init_mode="jacobian", offset_ramp=True))
    d_in, _ = _d_in_out(G, w_ref, ramp, region)
    target = 0.05 * torch.linspace(0, 1, 5)
    assert torch.allclose(d_in, target, atol=0.25 * 0.05), d_in
    assert torch.equal(ramp[0], w_ref[1:4])


def test_jacobian_start_runs_and_is_deterministic(G, w_ref, region):
    cfg = _cfg(init_mode="jacobian", epochs=2)
    a, b = discover(G, w_ref, region, cfg), discover(G, w_ref, region, cfg)
    assert a.status == "complete" and torch.equal(a.ws, b.ws)
    assert a.history["d_in_gap"][-1] < 0.5 * cfg.offset


def test_jacobian_start_keeps_interruption_and_resume(G, w_ref, region, monkeypatch):
    import mgm_analysis.discovery as discovery

    cfg = _cfg(init_mode="jacobian", epochs=4)

    def stop_after_two(epoch, terms):
        if epoch == 2:
            raise KeyboardInterrupt

    t = discover(G, w_ref, region, cfg, callback=stop_after_two)
    assert (t.status, t.stop_reason, t.epochs_done) == ("interrupted", "interrupted", 2)
    whole = discover(G, w_ref, region, cfg)
    assert torch.equal(t.ws, discover(G, w_ref, region, _cfg(init_mode="jacobian", epochs=2)).ws)

    # a resumed run continues from its saved chain: the start is not made again
    def no_start(*a, **k):
        raise AssertionError("the start was made again on resume")

    monkeypatch.setattr(discovery, "jacobian_start", no_start)
    t2 = discover(G, w_ref, region, cfg, state=t)
    assert t2.status == "complete" and t2.history["epoch"] == [1, 2, 3, 4]
    assert torch.allclose(t2.ws, whole.ws, atol=0.05)  # L-BFGS restarts its history: close, not identical

    # Ctrl-C while the start is being made: the run is kept at its noise start, no epoch done
    def interrupted_start(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(discovery, "jacobian_start", interrupted_start)
    t3 = discover(G, w_ref, region, cfg)
    assert (t3.status, t3.stop_reason, t3.epochs_done) == ("interrupted", "interrupted", 0)
    noise = discovery.initial_free(w_ref, _cfg(init_mode="noise"))
    assert torch.equal(t3.ws[:, 1:4], noise)


def test_a_stop_inside_the_jacobian_start_keeps_the_noise_start(G, w_ref, region, monkeypatch):
    """``stop`` is polled through the masked Jacobian's products: True there ends the search before its first
    epoch, kept at its noise start (interrupted, reason callback), and no further product is computed."""
    import mgm_analysis.directions as directions
    import mgm_analysis.discovery as discovery

    products, polls = [], []
    real_vjp = directions.JacobianOperator.vjp
    monkeypatch.setattr(directions.JacobianOperator, "vjp", lambda self, U: products.append(len(U)) or real_vjp(self, U))

    def stop():
        polls.append(len(products))
        return len(products) >= 1  # once the first reverse product has begun

    t = discover(G, w_ref, region, _cfg(init_mode="jacobian", epochs=3), stop=stop)
    assert (t.status, t.stop_reason, t.epochs_done, t.evaluations) == ("interrupted", "callback", 0, 0)
    assert torch.equal(t.ws[:, 1:4], discovery.initial_free(w_ref, _cfg(init_mode="noise")))
    assert len(products) == 1 and polls[-1] == 1 and polls[:-1] == [0] * (len(polls) - 1)
    assert t.history["epoch"] == []


def test_a_stop_during_an_epoch_keeps_the_last_finished_epoch(G, w_ref, region):
    """``stop`` is polled before every evaluation: True after epoch 1 ends the search inside epoch 2, with
    epoch 1's chain exactly (not the half-made epoch 2), status interrupted, reason callback."""
    seen = {}
    t = discover(G, w_ref, region, _cfg(epochs=5), watch=lambda e, ws: seen.setdefault(e, ws),
                 stop=lambda: 1 in seen)
    assert (t.status, t.stop_reason, t.epochs_done) == ("interrupted", "callback", 1)
    assert t.history["epoch"] == [1] and torch.equal(t.ws, seen[1])
