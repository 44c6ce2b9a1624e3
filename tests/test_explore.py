"""A chain that explores its region: the image springs (energy, gradient, rest lengths), the circle-of-edits start,
a known answer on a generator whose region depends on a 2-D latent plane, and extent metrics that a chain standing
still cannot pass."""

import math

import numpy as np
import pytest
import torch

from mgm_analysis import metrics as M
from mgm_analysis.config import DiscoveryConfig
from mgm_analysis.discovery import discover, energy, jacobian_start, quality_reached
from mgm_analysis.generators.stylegan2 import tiny_generator
from mgm_analysis.losses import chain_angles, image_spring_targets, make_distance, offsets_for
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
    base = dict(n_frames=6, layer_start=1, layer_end=4, prim_dist=0.2, offset=0.05, outside_weight=5.0, epochs=8,
                distance="l2", alpha=0.0, beta=0.0, image_spring=1.0, cone=35.0, closed_loop=True,
                init_mode="jacobian")
    base.update(kw)
    return DiscoveryConfig(**base)


# ------------------------------------------------------------------ rest lengths
@pytest.mark.parametrize("closed, cone_deg, sweep_deg, ramp", [(True, 35, 0, False), (False, 90, 180, False),
                                                              (False, 50, 270, True), (True, 90, 0, True)])
def test_rest_lengths_are_the_chords_of_the_circle_of_edits(closed, cone_deg, sweep_deg, ramp):
    """Points built here on a circle of angular radius ρ around e0 in a 5-D space, at distance √c_i from the
    origin: their squared distances are the rest lengths."""
    n, c = 9, 0.04
    offsets = offsets_for(n, c, ramp)
    rho = math.radians(cone_deg)
    if closed:
        theta = [2 * math.pi * i / n for i in range(n)]
    else:
        theta = [math.radians(sweep_deg) * (i / (n - 1) - 0.5) for i in range(n)]
    pts = np.array([math.sqrt(float(offsets[i])) * np.array([math.cos(rho), math.sin(rho) * math.cos(t),
                                                             math.sin(rho) * math.sin(t), 0.0, 0.0])
                    for i, t in enumerate(theta)])
    t1, t2 = image_spring_targets(offsets, math.radians(sweep_deg), rho, closed)
    for k, got in ((1, t1), (2, t2)):
        pairs = [(i, (i + k) % n) for i in range(n)] if closed else [(i, i + k) for i in range(n - k)]
        want = [float(((pts[i] - pts[j]) ** 2).sum()) for i, j in pairs]
        assert got.tolist() == pytest.approx(want, abs=1e-7), k
    assert chain_angles(n, math.radians(sweep_deg), closed).tolist() == pytest.approx(theta)


# ------------------------------------------------------------------ the energy
def _energy_by_hand(G, w, w_ref, ref_img, mask, cfg, offsets):
    """E with image springs, written as one loop over frames and pairs; returns (total, image springs, grad)."""
    w = w.clone().requires_grad_(True)
    ls, le = cfg.layer_start, cfg.layer_end
    n = len(w)
    m = torch.as_tensor(mask, dtype=torch.float32)
    imgs = []
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        ws = w_ref.clone()[None]
        ws = torch.cat([ws[:, :ls], w[i:i + 1], ws[:, le:]], 1)
        img = G.synthesis(ws)[0]
        if cfg.clip:
            img = img.clamp(-1, 1)
        imgs.append(img)
        e = (img - ref_img[0]).square().mean(0)
        d_in, d_out = (e * m).sum() / m.sum(), (e * (1 - m)).sum() / (1 - m).sum()
        total = total + cfg.gamma * (cfg.outside_weight * d_out + (d_in - offsets[i]).abs()).double()
    rho = math.radians(cfg.cone)
    step = 2 * math.pi / n if cfg.closed_loop else math.radians(cfg.sweep) / (n - 1)
    springs = torch.zeros((), dtype=torch.float64)
    for k in (1, 2):
        rest = 2 * cfg.offset * math.sin(rho) ** 2 * (1 - math.cos(k * step))  # constant c: 2c·sin²ρ·(1 − cos kφ)
        for i in range(n if cfg.closed_loop else n - k):
            j = (i + k) % n
            d = ((imgs[j] - imgs[i]).square().mean(0) * m).sum() / m.sum()
            springs = springs + cfg.gamma * cfg.image_spring * (d - rest).abs().double()
    total = total + springs
    total.backward()
    return float(total.detach()), float(springs.detach()), w.grad


@pytest.mark.parametrize("closed, clip", [(True, False), (False, True)])
def test_energy_with_image_springs_matches_a_loop_written_here(G, w_ref, region, closed, clip):
    n = 7
    cfg = _cfg(n_frames=n, closed_loop=closed, clip=clip, sweep=200.0, cone=50.0, image_spring=2.0, gamma=0.6)
    dist = make_distance(region.mask)
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
        if clip:
            ref_img = ref_img.clamp(-1, 1)
    w0 = w_ref[1:4].expand(n, -1, -1) + 0.3 * torch.randn(n, 3, 32, generator=torch.Generator().manual_seed(0))
    offsets = offsets_for(n, cfg.offset, False)
    total, springs, grad = _energy_by_hand(G, w0, w_ref, ref_img, region.mask, cfg, offsets)
    assert springs > 1e-4 and grad.norm() > 0
    for name, kw in {"one pass": dict(chunks=None), "two passes": dict(chunks=[3, 2, 2]),
                     "per latent": dict(per_latent=True)}.items():
        w = w0.clone().requires_grad_(True)
        terms = energy(G, w, w_ref, ref_img, dist, cfg, offsets, backward=True, **kw)
        assert terms["total"] == pytest.approx(total, rel=1e-5), name
        assert terms["image_spring"] == pytest.approx(springs, rel=1e-5), name
        rel = float((w.grad - grad).norm() / grad.norm())
        assert rel < 1e-5, f"{name}: gradient differs from the loop written here by {rel:.2e}"
        again = energy(G, w0.clone(), w_ref, ref_img, dist, cfg, offsets, **kw)  # no graph: the same value
        assert again["total"] == pytest.approx(total, rel=1e-5)


# ------------------------------------------------------------------ the start
def test_the_start_is_a_circle_of_edits_around_the_most_local_one(G, w_ref, region):
    cfg = _cfg(n_frames=10)
    dist = make_distance(torch.as_tensor(region.mask), "l2")
    free = jacobian_start(G, w_ref, dist, cfg)
    point = jacobian_start(G, w_ref, dist, _cfg(n_frames=10, closed_loop=False, sweep=0.0, init_noise=0.0))
    centre = point[0] - w_ref[1:4]                                   # the most local edit, at its step
    delta = (free - w_ref[1:4]).reshape(10, -1).double()
    # every frame is cos ρ·centre plus a part orthogonal to it (the other two directions are B-orthogonal to
    # the centre's, so not orthogonal in w: test the mean instead, where the circle's parts cancel)
    assert torch.allclose(delta.mean(0), math.cos(math.radians(35)) * centre.reshape(-1).double(), atol=1e-5)
    steps = (free - free.roll(1, 0)).reshape(10, -1).norm(dim=1)
    assert float(steps.min()) > 0.3 * float(steps.max())             # spread around the loop, not bunched
    with torch.no_grad():
        ws = w_ref[None].repeat(10, 1, 1)
        ws[:, 1:4] = free
        d_in, _ = dist(G.synthesis(ws), G.synthesis(w_ref[None]))
    assert torch.all((d_in - cfg.offset).abs() < 0.5 * cfg.offset), d_in  # near the target (second order)


# ------------------------------------------------------------------ a known answer
class PlaneGenerator(torch.nn.Module):
    """A generator whose region depends only on a 2-D plane of its latent space.

    One free W+ layer (1) of 8 dimensions.  Inside the mask the image is x* + a·U + b·V with (a, b) the layer's
    first two coordinates and U, V patterns orthogonal inside the mask with mean square 1 per pixel and channel, so
    that D_in = a² + b²; outside it is x* + Σ_k t_k·P_k over the other six coordinates t, which never reach the
    region."""

    def __init__(self, mask: np.ndarray):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        m = torch.as_tensor(mask, dtype=torch.float32)
        u, v = torch.randn(2, 3, 16, 16, generator=g) * m
        v = v - (u * v).sum() / (u * u).sum() * u
        scale = math.sqrt(3 * float(m.sum()))
        self.register_buffer("U", u / u.norm() * scale)
        self.register_buffer("V", v / v.norm() * scale)
        self.register_buffer("P", torch.randn(6, 3, 16, 16, generator=g) * 0.3 * (1 - m))
        self.register_buffer("base", torch.rand(3, 16, 16, generator=g) * 0.4 - 0.2)
        self.register_buffer("w_avg", torch.zeros(8))
        self.w_dim, self.num_ws, self.resolution, self.z_dim = 8, 3, 16, 8

    def synthesis(self, ws, noise=None):
        t = ws[:, 1]
        inside = t[:, 0, None, None, None] * self.U + t[:, 1, None, None, None] * self.V
        outside = (t[:, 2:, None, None, None] * self.P[None]).sum(1)
        return self.base[None] + inside + outside


def test_a_closed_loop_covers_the_circle_of_radius_c_in_the_plane_and_the_outside_stays():
    region = parse_region(REGION, 16)
    G = PlaneGenerator(region.mask)
    w_ref = torch.zeros(3, 8)
    n, c = 12, 0.05
    cfg = DiscoveryConfig(n_frames=n, layer_start=1, layer_end=2, offset=c, distance="l2", alpha=0.0, beta=0.0,
                          image_spring=1.0, cone=90.0, closed_loop=True, init_mode="jacobian", epochs=10,
                          outside_weight=10.0)
    t = discover(G, w_ref, region, cfg)
    a, b = t.ws[:, 1, 0].double(), t.ws[:, 1, 1].double()
    # every frame on the circle a² + b² = c (D_in = c), and the frames go once around it, evenly
    assert torch.allclose(a**2 + b**2, torch.full((n,), c, dtype=torch.float64), rtol=0.02), a**2 + b**2
    angles = torch.sort(torch.atan2(b, a) % (2 * math.pi)).values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    assert float(gaps.max()) < 1.5 * 2 * math.pi / n, gaps
    with torch.no_grad():
        frames = ((G.synthesis(t.ws) + 1) / 2).permute(0, 2, 3, 1).numpy()
        ref = ((G.synthesis(w_ref[None]) + 1) / 2)[0].permute(1, 2, 0).numpy()
    assert M.spread(frames, ref, region.mask) >= 1.8
    assert M.inside_path(frames, ref, region.mask, closed=True) >= 6.0   # 2π·(chord/arc of 30°) = 6.21
    # the outside does not move: the coordinates that reach it stay at the reference's
    out = t.ws[:, 1, 2:].abs().max()
    assert float(out) < 1e-3 * math.sqrt(c), out
    assert M.outside_change(frames, ref, region.mask) < 1e-4


def test_the_image_springs_even_out_a_loop_that_the_start_left_uneven():
    """From frames bunched on part of the circle at the wrong radius, the search puts them on the circle at even
    steps; without the image springs they stay where the start put them around it."""
    region = parse_region(REGION, 16)
    G = PlaneGenerator(region.mask)
    w_ref = torch.zeros(3, 8)
    n, c = 12, 0.05
    i = torch.arange(n, dtype=torch.float32)
    theta = 2 * math.pi * (i / n) ** 1.6                    # gaps from 0.1 to 1.6 steps of 2π/n
    radius = math.sqrt(c) * (0.6 + 0.4 * (i % 3))           # 0.6, 1.0, 1.4 × the target radius
    ws0 = torch.zeros(n, 3, 8)
    ws0[:, 1, 0], ws0[:, 1, 1] = radius * theta.cos(), radius * theta.sin()

    def gaps(spring):
        cfg = DiscoveryConfig(n_frames=n, layer_start=1, layer_end=2, offset=c, distance="l2", alpha=0.0, beta=0.0,
                              image_spring=spring, cone=90.0, closed_loop=True, epochs=10, outside_weight=10.0)
        t = discover(G, w_ref, region, cfg, state={"ws": ws0, "history": {}, "epochs_done": 0})
        a, b = t.ws[:, 1, 0].double(), t.ws[:, 1, 1].double()
        assert torch.allclose(a**2 + b**2, torch.full((n,), c, dtype=torch.float64), rtol=0.02)
        ang = torch.atan2(b, a)
        return torch.diff(torch.cat([ang, ang[:1]])) % (2 * math.pi) / (2 * math.pi / n)  # in steps, frame order

    even = gaps(1.0)
    assert float(even.min()) > 0.9 and float(even.max()) < 1.1, even
    uneven = gaps(0.0)
    assert float(uneven.min()) < 0.5 and float(uneven.max()) > 1.4, uneven


# ------------------------------------------------------------------ stillness
def test_a_chain_that_stands_still_has_no_extent_and_fails_every_quality_rule():
    rng = np.random.default_rng(2)
    ref = rng.uniform(0.2, 0.8, (8, 8, 3))
    mask = np.zeros((8, 8))
    mask[2:5, 2:6] = 1
    edit = ref.copy()
    edit[2:5, 2:6] += 0.1                                  # one local edit, on target, repeated in every frame
    frames = np.repeat(edit[None], 12, 0)
    lat = np.repeat(rng.normal(size=(1, 4, 3)), 12, 0)
    m = M.run_metrics(lat, rng.normal(size=(4, 3)), frames, ref, mask, layers=(1, 3), closed=True)
    assert m["spread"] == 0.0 and m["inside_path"] == 0.0
    assert m["locality"] == 1.0                            # perfectly local ...
    assert not M.explores(m)                                # ... and still not exploring
    assert any(f.startswith("spread") for f in M.quality_failures({**m, "jump_ratio": 1.0}))
    # the engine's quality stop, from a history in which everything else holds
    h = {"epoch": [1, 2, 3, 4], "total": [1.0] * 4, "d_in_gap": [0.0] * 4, "d_out": [0.0] * 4, "spring": [0.0] * 4,
         "stiffener": [0.0] * 4, "spread": [0.0] * 4, "inside_path": [0.0] * 4}
    cfg = DiscoveryConfig(stop_tol=0.5, stop_window=3)
    assert not quality_reached(h, cfg)
    assert quality_reached({**h, "spread": [1.2] * 4, "inside_path": [3.5] * 4}, cfg)  # the same, exploring
    # the time-to-quality benchmark's "good"
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_time_to_quality import good

    assert not good({**m, "jump_ratio": 1.0, "inside_gap": 0.0}, 0.04)
    assert good({**m, "jump_ratio": 1.0, "inside_gap": 0.0, "spread": 1.2, "inside_path": 3.5}, 0.04)


def test_extent_of_known_chains():
    """A half circle of edits: spread 2, path π (written as chords); two opposite edits: spread 2."""
    n = 33
    theta = np.linspace(0, np.pi, n)
    ref = np.zeros((1, 2, 3))
    f = np.zeros((n, 1, 2, 3))
    f[:, 0, 0, 0], f[:, 0, 1, 0] = np.cos(theta), np.sin(theta)
    mask = np.ones((1, 2))
    assert M.spread(f, ref, mask) == pytest.approx(2.0)
    assert M.inside_path(f, ref, mask) == pytest.approx((n - 1) * 2 * np.sin(np.pi / (2 * (n - 1))))
    # only the masked pixel counts, weighted by the mask
    g = f.copy()
    g[:, 0, 1] = 0.0
    half = np.array([[1.0, 0.0]])
    assert M.spread(g, ref, half) == pytest.approx(max(abs(np.cos(theta[i]) - np.cos(theta[j]))
                                                       for i in range(n) for j in range(n)))
    assert np.isnan(M.spread(np.zeros((3, 1, 2, 3)), ref, mask))  # nothing changes: undefined
