"""The discovery engine: mask-guided search for a smooth, local chain of latents (the paper's method).

``discover(G, w_ref, mask, cfg)`` finds ``n`` W+ latents — only layers
``layer_start:layer_end`` free, the rest pinned to ``w_ref`` — minimising

    E = Σ_i γ·[λ·D_out(G(w_i), x*) + |D_in(G(w_i), x*) − c_i|]
        + α·Σ_i (‖w_{i+1} − w_i‖ − σ)² + β·Σ_i (‖w_{i+2} − w_i‖ − 2σ)²

(Yang, Rokeby, Snelgrove 2020, "Mask-Guided Discovery of Semantic Manifolds in
Generative Models"; λ = 1 and a constant c in the paper).  The reference
implementation runs the generator on one latent at a time; here all latents go
through the generator as one batch, split into chunks only to bound memory and
keep the per-image cost low, with gradients accumulated — the same loss and
gradient (tests/test_discovery.py checks it to 1e-5).

The function does no file I/O: it returns a :class:`Trajectory`; the command
line and the store write files.  Ctrl-C (``KeyboardInterrupt``; SIGTERM too
in a job, :func:`mgm_analysis.jobs.run_job`) ends the search with the last completed
epoch, marked ``interrupted``; a non-finite loss rolls back to the last good
state and stops (also ``interrupted``); ``state=`` continues such a trajectory.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sys
import time
import types
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .config import MAX_SEED, MAX_WEIGHT, DiscoveryConfig  # noqa: F401  (re-exported)
from .directions import chunk_sizes
from .errors import MGMError, SearchStopped
from .losses import (
    chain_angles,
    image_spring_energy,
    image_spring_targets,
    make_distance,
    offsets_for,
    spring_energy,
)
from .metrics import explores

__all__ = [ "Trajectory", "discover", "energy", "auto_prim_dist", "initial_free", "quality_reached", "coarse_config",
           "subdivide", "jacobian_start", "run_noise", "with_run_noise", "chain_extent"]

HISTORY_KEYS = ("epoch", "total", "l_x", "spring", "stiffener", "image_spring", "d_in", "d_out", "d_in_gap",
                "spread", "inside_path", "seconds")


@torch.no_grad()
def auto_prim_dist(G, layer_start: int, layer_end: int, share: float = 0.05, n: int = 256, seed: int = 0) -> float:
    """σ as ``share`` × the mean ‖w(z₁) − w(z₂)‖ of random pairs, over the free layers (w broadcast to W+)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2 * n, G.z_dim, generator=g).to(G.w_avg.device)
    w = G.mapping(z)
    d = (w[:n] - w[n:]).norm(dim=1) * math.sqrt(layer_end - layer_start)
    return float(share * d.mean())


@dataclass
class Trajectory:
    """What :func:`discover` returns: the chain and how the search went."""

    ws: torch.Tensor                                  # [n, num_ws, w_dim] float32 on CPU
    history: dict = field(default_factory=dict)       # per epoch: epoch, total, l_x, spring, stiffener, d_in, d_out, seconds
    status: str = "complete"                          # complete | interrupted
    stop_reason: str = "epochs"                       # epochs | quality | stalled | interrupted | nan | callback
    epochs_done: int = 0                              # epochs completed, counting those before a resume
    seconds: float = 0.0                              # wall time of this call
    evaluations: int = 0                              # energy + gradient evaluations in this call

    def state(self) -> dict:
        """What ``discover(..., state=)`` needs to continue this trajectory."""
        return {"ws": self.ws, "history": self.history, "epochs_done": self.epochs_done}


def _assemble(w_ref: torch.Tensor, w_free: torch.Tensor, layer_start: int, layer_end: int) -> torch.Tensor:
    """W+ latents [k, num_ws, w_dim]: the free layers from ``w_free`` [k, free, w_dim], the rest ``w_ref``."""
    k = w_free.shape[0]
    return torch.cat([w_ref[None, :layer_start].expand(k, -1, -1), w_free,
                      w_ref[None, layer_end:].expand(k, -1, -1)], dim=1)


def energy(G, w_free: torch.Tensor, w_ref: torch.Tensor, ref_img: torch.Tensor, dist, cfg: DiscoveryConfig,
           offsets: torch.Tensor, *, chunks: list[int] | int | None = None, backward: bool = False,
           per_latent: bool = False, extent: bool = False) -> dict:
    """The energy E of the chain, and with ``backward`` its gradient accumulated into ``w_free.grad``.

    Args:
        w_free: [n, layer_end − layer_start, w_dim] the free layers of the chain (a leaf when ``backward``).
        w_ref: [num_ws, w_dim]; ref_img: [1, 3, H, W] = G(w_ref) in [-1, 1].
        dist: ``(img, ref) -> (d_in [B], d_out [B])``, e.g. a :class:`~mgm_analysis.losses.MaskedDistance`.
        offsets: [n] the target c_i per frame.
        chunks: latents per generator call (a list of sizes summing to n, or one size); None = all at once.
        per_latent: one latent per generator call, as the reference implementation does.
        extent: also measure the chain's extent inside the region (``spread``, ``inside_path``; NaN without a
            mask distance).

    Returns floats: total, l_x (Σ_i L_X), spring, stiffener (weighted), image_spring (the weighted image springs,
    0 when off), d_in, d_out (means over frames), d_in_gap (max_i |D_in,i − c_i|, the worst frame's distance
    from its target) [, spread, inside_path].

    With image springs (``cfg.image_spring`` > 0), which couple frames across chunks, every frame is rendered
    first (without a graph when there are several chunks), the image terms are differentiated with respect to
    the frames, and each chunk is rendered again to carry that gradient back to its latents; one chunk: one pass.
    """
    n = w_free.shape[0]
    if per_latent:
        sizes = [1] * n
    elif chunks is None:
        sizes = [n]
    elif isinstance(chunks, int):
        sizes = chunk_sizes(n, chunks)
    else:
        sizes = list(chunks)
    ls, le = cfg.layer_start, cfg.layer_end
    coupled = cfg.image_spring > 0
    two_pass = coupled and backward and len(sizes) > 1
    ref = ref_img.clamp(-1, 1) if cfg.clip else ref_img
    grad = torch.enable_grad() if backward else torch.no_grad()
    with grad:
        spring, stiff = spring_energy(w_free, cfg.alpha, cfg.beta, cfg.prim_dist, cfg.closed_loop)
        if backward and not (coupled and not two_pass):
            (spring + stiff).backward()
        l_x_sum, d_in_sum, d_out_sum, gap = (w_free.new_zeros(()) for _ in range(4))
        kept = []
        i = 0
        for size in sizes:
            w = w_free[i:i + size]
            with torch.no_grad() if two_pass else contextlib.nullcontext():
                img = G.synthesis(_assemble(w_ref, w.detach() if two_pass else w, ls, le))
            if cfg.clip:
                img = img.clamp(-1, 1)
            if coupled or extent:
                kept.append(img)
            if not coupled:
                d_in, d_out = dist(img, ref)
                l_x = cfg.outside_weight * d_out + (d_in - offsets[i:i + size]).abs()
                if backward:
                    (cfg.gamma * l_x.sum()).backward()
                l_x_sum += l_x.detach().sum()
                d_in_sum += d_in.detach().sum()
                d_out_sum += d_out.detach().sum()
                gap = torch.maximum(gap, (d_in.detach() - offsets[i:i + size]).abs().max())
            i += size
        image_e = w_free.new_zeros(())
        if coupled:
            x = torch.cat(kept)
            if two_pass:
                x = x.requires_grad_(True)
            d_in, d_out = dist(x, ref)
            l_x = cfg.outside_weight * d_out + (d_in - offsets).abs()
            targets = image_spring_targets(offsets, math.radians(cfg.sweep), math.radians(cfg.cone),
                                           cfg.closed_loop)
            img1, img2 = image_spring_energy(x, dist, targets, cfg.gamma * cfg.image_spring, cfg.closed_loop)
            image_e = img1 + img2
            if backward:
                total = cfg.gamma * l_x.sum() + image_e
                if two_pass:
                    (g_x,) = torch.autograd.grad(total, x)
                    i = 0
                    for size in sizes:
                        img = G.synthesis(_assemble(w_ref, w_free[i:i + size], ls, le))
                        (img.clamp(-1, 1) if cfg.clip else img).backward(g_x[i:i + size])
                        i += size
                else:
                    (total + spring + stiff).backward()
            l_x_sum, d_in_sum, d_out_sum = l_x.detach().sum(), d_in.detach().sum(), d_out.detach().sum()
            gap = (d_in.detach() - offsets).abs().max()
    l_x_total, spring_v, stiff_v, image_v = (float(t.detach()) for t in (l_x_sum, spring, stiff, image_e))
    out = {"total": cfg.gamma * l_x_total + spring_v + stiff_v + image_v, "l_x": l_x_total, "spring": spring_v,
           "stiffener": stiff_v, "image_spring": image_v, "d_in": float(d_in_sum) / n, "d_out": float(d_out_sum) / n,
           "d_in_gap": float(gap)}
    if extent:
        out.update(chain_extent(torch.cat(kept).detach(), ref, getattr(dist, "inside", None), cfg.closed_loop))
    return out


def chain_extent(imgs: torch.Tensor, ref_img: torch.Tensor, mask: torch.Tensor | None, closed: bool) -> dict:
    """``spread`` and ``inside_path`` of frames imgs [n, 3, H, W] around ref_img [1, 3, H, W] inside ``mask``
    [H, W] (the definitions of :func:`mgm_analysis.metrics.spread` / ``inside_path``); NaN without a
    mask or with nothing changed inside it."""
    nan = {"spread": float("nan"), "inside_path": float("nan")}
    if mask is None or len(imgs) < 2:
        return nan
    y = ((imgs - ref_img) * mask.clamp(min=0).sqrt()).flatten(1).double()
    to_ref = y.norm(dim=1)
    if not float(to_ref.max()) > 0:
        return nan
    pair = torch.cdist(y, y)
    steps = pair.diagonal(1).sum() + (pair[-1, 0] if closed else 0.0)
    return {"spread": float(pair.max() / to_ref.max()), "inside_path": float(steps / to_ref.mean())}


def quality_reached(history: dict, cfg: DiscoveryConfig) -> bool:
    """The stopping rule by quality, from a trajectory's ``history`` alone (so it holds across a resume).

    True when ``cfg.stop_tol`` > 0, the history has more than ``stop_window`` epochs, and at the last one

    * every frame's inside distance is within ``stop_tol``·c of its target: ``d_in_gap`` <= stop_tol·c;
    * the chain explores its region: its ``spread`` and ``inside_path`` reach
      :data:`~mgm_analysis.metrics.EXTENT_BARS` (a chain standing still never stops by quality);
    * the outside term ``γ·λ·Σ_i D_out,i`` (= γ·λ·n·mean ``d_out``) and the spring residuals ``spring +
      stiffener + image_spring`` have stopped falling: over the last ``stop_window`` epochs each fell by at most ``stop_rel`` ×
      the energy E at the window's start (a rise counts as stopped).  Relative to E, not to the term itself, so
      that a term too small to matter (springs at rest, an outside change near zero) cannot keep a finished
      search going by its noise.
    """
    if cfg.stop_tol <= 0:
        return False
    w = cfg.stop_window
    keys = ("d_in_gap", "d_out", "spring", "stiffener", "total", "spread", "inside_path")
    h = {k: history.get(k) or [] for k in keys}
    m = len(h["total"])
    if any(len(h[k]) != m for k in keys) or m <= w:
        return False
    if not h["d_in_gap"][-1] <= cfg.stop_tol * cfg.offset:
        return False
    if not explores({"spread": h["spread"][-1], "inside_path": h["inside_path"][-1]}):
        return False
    scale = cfg.gamma * cfg.outside_weight * cfg.n_frames
    energy0 = abs(h["total"][-1 - w])
    springs = [h["spring"][i] + h["stiffener"][i] + (h.get("image_spring") or [0.0] * m)[i] for i in (-1 - w, -1)]
    falls = (scale * (h["d_out"][-1 - w] - h["d_out"][-1]), springs[0] - springs[1])
    return all(f <= cfg.stop_rel * energy0 for f in falls)


def coarse_config(cfg: DiscoveryConfig) -> DiscoveryConfig:
    """The coarse chain of a coarse-to-fine search: ``coarse_frames`` frames whose rest length σ is scaled so
    that the chain is as long as the fine one, ``coarse_epochs`` epochs, everything else as ``cfg``."""
    n, k = cfg.n_frames, cfg.coarse_frames
    scale = n / k if cfg.closed_loop else (n - 1) / (k - 1)
    return replace(cfg, n_frames=k, prim_dist=cfg.prim_dist * scale, epochs=cfg.coarse_epochs, coarse_frames=0,
                   coarse_epochs=0)


def subdivide(w_free: torch.Tensor, n: int, closed: bool = False) -> torch.Tensor:
    """A chain [k, ...] resampled to ``n`` latents evenly spaced in index (linear between neighbours); the ends
    stay where they are (open), or the loop closes from the last latent back to the first (``closed``)."""
    k = w_free.shape[0]
    pts = torch.cat([w_free, w_free[:1]]) if closed else w_free
    t = torch.arange(n, dtype=torch.float64) * (k / n if closed else (k - 1) / (n - 1))
    lo = t.floor().long().clamp(max=pts.shape[0] - 2)
    frac = (t - lo).to(w_free.dtype).reshape(n, *([1] * (w_free.dim() - 1))).to(w_free.device)
    return pts[lo] * (1 - frac) + pts[lo + 1] * frac


#: rank of the outside operator and directions of the masked-Jacobian start (init_mode "jacobian"): small, since the
#: start only needs three local directions, not the precise spectrum (~36 Jacobian products, ~3/4 epoch on toyfaces)
JACOBIAN_START = dict(k=3, rank=8, oversample=2, power=0)


@torch.no_grad()
def _radius(G, w_ref, dist, ref_img, d: torch.Tensor, guess: float, target: float, ls: int, le: int) -> float:
    """The step s along the free-layer direction d at which D_in(G(w* + s·d)) reaches ``target``: D_in at 9
    scales guess·2^(−2..2) in one batch, interpolated (log-log) at the first crossing; the largest if none."""
    scales = guess * 2.0 ** torch.linspace(-2, 2, 9, device=w_ref.device)
    img = G.synthesis(_assemble(w_ref, w_ref[ls:le][None] + scales[:, None, None] * d[None], ls, le))
    d_in = dist(img, ref_img)[0].double().cpu().numpy()
    s = scales.double().cpu().numpy()
    for j in range(len(s) - 1):
        if d_in[j] < target <= d_in[j + 1] and d_in[j] > 0:
            f = math.log(target / d_in[j]) / math.log(d_in[j + 1] / d_in[j])
            return float(s[j] * (s[j + 1] / s[j]) ** f)
    return float(s[0] if d_in[0] >= target else s[-1])


def jacobian_start(G, w_ref: torch.Tensor, dist, cfg: DiscoveryConfig, stop=None) -> torch.Tensor:
    """A start near the answer (``init_mode`` "jacobian"): free layers [n, F, w_dim] on a circle of edits at the
    inside distance c, around (or through) the edit that is most local there.

    The masked Jacobian at w* (:func:`mgm_analysis.directions.masked_jacobian`, settings
    :data:`JACOBIAN_START`) gives its three most local directions d₁, d₂, d₃ (most change inside the region per
    change outside, to second order).  For each, the step r at which ``D_in(G(w* + r·d)) = c`` is measured with
    the run's own distance.  The centre is the most local of ±d₁, ±d₂ *at its step*, a = ±r·d (least
    ``D_out`` per ``D_in``; eigen-directions' signs are arbitrary and at the target +d and −d are not equally
    local), and b, b' are the other two directions at their steps.  Frame i is

    * ``w* + cos ρ·a + sin ρ·(cos θ_i·b + sin θ_i·b')`` for a cone angle ρ = ``cone`` < 90°: a circle of edits
      around the centre, every edit mostly the most local one;
    * ``w* + cos θ_i·a + sin θ_i·b`` for ``cone`` = 90: a great circle through the centre and its opposite;

    with θ_i from :func:`mgm_analysis.losses.chain_angles` (a full turn for a closed loop, ``sweep`` degrees
    centred on the centre for an open chain) — the shape the image springs hold (their rest lengths assume it).
    ``sweep`` 0 on an open chain: every frame at the centre plus the noise start's perturbation (``init_noise``,
    seeded; frame 0 exactly at it); ``offset_ramp``: the frames on a at ``√(c_i / c)`` of its step.
    ``stop``: see :func:`discover` (polled through the Jacobian's products).
    """
    from .directions import masked_jacobian

    ls, le, n = cfg.layer_start, cfg.layer_end, cfg.n_frames
    mask = getattr(dist, "inside", None)
    if mask is None:
        raise MGMError("--init-mode jacobian needs a mask distance (a region or a mask), not a custom distance")
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    res = masked_jacobian(G, w_ref.detach().cpu().numpy(), mask.detach().cpu().numpy(), (ls, le),
                          seed=cfg.seed, stop=stop, **JACOBIAN_START)
    dirs = torch.as_tensor(res["directions"], dtype=torch.float32, device=w_ref.device)
    c = max(cfg.offset, 1e-12)

    def step(d, k):  # r with D_in(G(w* + r·d)) = c
        return _radius(G, w_ref, dist, ref_img, d, math.sqrt(c / max(float(res["d_in_rate"][k]), 1e-12)), c, ls, le)

    candidates = []  # (D_out / D_in at the step, index, sign, step)
    for k in range(min(2, len(dirs))):
        for sign in (1.0, -1.0):
            r = step(sign * dirs[k], k)
            with torch.no_grad():
                img = G.synthesis(_assemble(w_ref, w_ref[ls:le][None] + (sign * r) * dirs[k][None], ls, le))
                d_in, d_out = (float(v[0]) for v in dist(img, ref_img))
            candidates.append((d_out / max(d_in, 1e-30), k, sign, r))
    _, k, sign, r = min(candidates, key=lambda t: t[0])
    a = sign * r * dirs[k]
    if cfg.offset_ramp:
        t = torch.linspace(0.0, 1.0, n, device=w_ref.device).sqrt()
        return w_ref[ls:le][None] + t[:, None, None] * a[None]
    if cfg.sweep <= 0 and not cfg.closed_loop:
        return initial_free(w_ref, replace(cfg, init_mode="noise")) - w_ref[ls:le][None] + (w_ref[ls:le] + a)[None]
    rest = [j for j in range(len(dirs)) if j != k]
    b = [step(dirs[j], j) * dirs[j] for j in rest[:2]]
    theta = chain_angles(n, math.radians(cfg.sweep), cfg.closed_loop).float().to(w_ref.device)
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    if cfg.cone >= 90:
        return w_ref[ls:le][None] + cos * a[None] + sin * b[0][None]
    rho = math.radians(cfg.cone)
    return w_ref[ls:le][None] + math.cos(rho) * a[None] + math.sin(rho) * (cos * b[0][None] + sin * b[1][None])


def initial_free(w_ref: torch.Tensor, cfg: DiscoveryConfig) -> torch.Tensor:
    """The starting chain's free layers [n, layer_end − layer_start, w_dim] (seeded by ``cfg.seed``).

    Latent 0 starts exactly at w*; the others need a perturbation (|D_in − c| has no gradient at x*):
    ``init_mode`` "noise" adds independent N(0, init_noise²) to each; "paper" (the reference code) draws one
    direction d ~ init_noise·N(0, I) over the free layers, then a_i ~ N(0, 1) per latent, and adds a_i·d.
    """
    n, ls, le = cfg.n_frames, cfg.layer_start, cfg.layer_end
    g = torch.Generator().manual_seed(cfg.seed)
    w_dim = w_ref.shape[-1]
    if cfg.init_mode == "paper":
        direction = torch.randn(le - ls, w_dim, generator=g) * cfg.init_noise
        weights = torch.randn(n - 1, 1, 1, generator=g)
        noise = torch.cat([torch.zeros(1, le - ls, w_dim), weights * direction[None]])
    else:
        noise = torch.randn(n, le - ls, w_dim, generator=g) * cfg.init_noise
        noise[0] = 0.0
    return w_ref[ls:le].expand(n, -1, -1) + noise.to(w_ref.device)


#: added to the config's seed for the per-run noise, so that it is not the same stream as the start
NOISE_SEED_OFFSET = 1_000_003


def run_noise(G, cfg: DiscoveryConfig) -> list[torch.Tensor] | None:
    """The noise inputs of a run: None (``noise_mode`` "const": the generator's constant buffers), or for
    "random" one N(0, 1) draw per buffer from ``cfg.seed`` — fixed for the whole run, as the reference code
    draws ``make_noise()`` once per run."""
    if cfg.noise_mode == "const":
        return None
    buffers = getattr(G, "noise_buffers", None)
    if buffers is None:
        raise MGMError("--noise-mode random: this generator has no noise inputs; use --noise-mode const")
    g = torch.Generator().manual_seed(cfg.seed + NOISE_SEED_OFFSET)
    return [torch.randn(b.shape, generator=g).to(b.device, b.dtype) for b in buffers()]


class _WithNoise:
    """A generator whose ``synthesis`` uses fixed noise inputs instead of its buffers; everything else is G's."""

    def __init__(self, G, noise: list[torch.Tensor]):
        self._G, self._noise = G, noise

    def __getattr__(self, name):
        return getattr(self._G, name)

    def synthesis(self, ws: torch.Tensor, noise=None, **kw) -> torch.Tensor:
        return self._G.synthesis(ws, self._noise if noise is None else noise, **kw)


def with_run_noise(G, cfg: DiscoveryConfig):
    """G itself (``noise_mode`` "const"), or G rendering with :func:`run_noise` — use it for the reference image,
    the search and the frames of a run alike (:func:`discover` does so itself)."""
    noise = run_noise(G, cfg)
    if noise is None:
        return G
    if isinstance(G, _WithNoise):
        G = G._G
    return _WithNoise(G, [t.to(G.w_avg.device) for t in noise])


def _as_distance(mask, cfg: DiscoveryConfig, resolution: int):
    """A distance module from a Region, an [H, W] mask, or an already built distance."""
    if isinstance(mask, torch.nn.Module):
        return mask
    boxes = tuple(getattr(mask, "boxes", ()) or ())
    arr = getattr(mask, "mask", mask)
    arr = torch.as_tensor(np.asarray(arr.detach().cpu() if isinstance(arr, torch.Tensor) else arr), dtype=torch.float32)
    if arr.shape != (resolution, resolution):
        raise MGMError(f"mask is {arr.shape[-1]}x{arr.shape[0]} but the generator makes {resolution}x{resolution} "
                       "images; give a mask of that size")
    return make_distance(arr, cfg.distance, cfg.mask_mode, boxes)


def _skip_dynamo_import() -> None:
    """Spare each search process torch._dynamo's import (~1.2 CPU-s, 2–6 s of wall time on a busy 2-core machine).

    torch wraps some of its own Python functions in ``torch._disable_dynamo``: ``Optimizer.add_param_group`` and
    ``zero_grad``, which every optimizer's constructor calls, and the Python references through which forward-mode
    differentiation runs some operations (the masked-Jacobian start's products).  On its first call such a
    wrapper imports torch._dynamo only to mark the function as never compiled, and caches the result on the
    function.  The engine never compiles, so for every such wrapper that exists it stores the plain function as
    that cached result itself (found among the live functions by the wrapper's code; ~0.05 s, once per
    process).  Nothing changes once torch._dynamo is loaded anyway (then torch's own wrapper runs), nor on a
    torch whose wrapper has another shape (no function matches).
    """
    global _DYNAMO_SKIPPED
    if _DYNAMO_SKIPPED or "torch._dynamo" in sys.modules:
        return
    _DYNAMO_SKIPPED = True
    wrap = getattr(torch, "_disable_dynamo", None)
    code = getattr(wrap(lambda: None), "__code__", None) if callable(wrap) else None
    if code is None or "fn" not in code.co_freevars:
        return
    slot = code.co_freevars.index("fn")
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and obj.__code__ is code and obj.__closure__:
            fn = obj.__closure__[slot].cell_contents
            if callable(fn) and getattr(fn, "__dynamo_disable", None) is None:
                try:
                    fn.__dynamo_disable = fn
                except (AttributeError, TypeError):  # a builtin or a slotted callable: torch's wrapper stays
                    pass


_DYNAMO_SKIPPED = False


def discover(G, w_ref, mask, cfg: DiscoveryConfig, *, callback=None, state: dict | Trajectory | None = None,
             watch=None, stop=None) -> Trajectory:
    """Search the chain of latents (see the module docstring).  No file I/O.

    Args:
        G: a generator (``generators.base.Generator``); frozen here (``requires_grad_(False)``).
        w_ref: [num_ws, w_dim] the reference latent w*.
        mask: a :class:`~mgm_analysis.masks.Region`, an [H, W] mask in [0, 1] at G's resolution, or a
            distance module ``(img, ref) -> (d_in, d_out)`` (e.g. ``losses.make_distance(...)``).
        cfg: the configuration.
        callback: ``callback(epoch, terms)`` after every epoch (terms: total, l_x, spring, stiffener, d_in,
            d_out, d_in_gap); returning False stops the search (status ``interrupted``, reason ``callback``).
        state: a :class:`Trajectory` or ``{"ws", "history", "epochs_done"}`` to continue (same cfg).
        watch: ``watch(epoch, ws)`` after every epoch with the chain so far, W+ [n, num_ws, w_dim] on CPU (a new
            tensor each time): checkpoints for a benchmark or a live view.
        stop: ``stop()`` polled before every evaluation of the energy and through the Jacobian start (a cancel
            that should not wait for the epoch, or the start, to end): True stops the search at once like a
            callback's False (status ``interrupted``, reason ``callback``), with the last finished epoch's chain
            (the start's, before the first).

    The search ends after ``cfg.epochs``, or earlier when :func:`quality_reached` holds (``stop_reason``
    ``quality``, status ``complete``), when the energy stalls (``patience``, reason ``stalled``), or on the
    interruptions above.

    Returns:
        a :class:`Trajectory`; ``status`` is ``interrupted`` after Ctrl-C, a callback stop or a NaN
        (latents then hold the last completed, finite epoch).
    """
    cfg.check_generator(G.num_ws)
    device = G.w_avg.device
    w_ref = torch.as_tensor(w_ref, dtype=torch.float32).to(device)
    if w_ref.shape != (G.num_ws, G.w_dim):
        raise MGMError(f"reference latent has shape {list(w_ref.shape)} but the generator needs "
                       f"[{G.num_ws}, {G.w_dim}]")
    dist = _as_distance(mask, cfg, G.resolution).to(device)
    G.requires_grad_(False)
    G = with_run_noise(G, cfg)
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    n, ls, le = cfg.n_frames, cfg.layer_start, cfg.layer_end
    history = {k: [] for k in HISTORY_KEYS}
    start_epoch = 0
    if state is not None:
        state = state.state() if isinstance(state, Trajectory) else state
        ws0 = torch.as_tensor(np.asarray(state["ws"]), dtype=torch.float32).to(device)
        if ws0.shape != (n, G.num_ws, G.w_dim):
            raise MGMError(f"cannot resume: the saved latents are {list(ws0.shape)} but the config needs "
                           f"[{n}, {G.num_ws}, {G.w_dim}]")
        w_free = ws0[:, ls:le].clone()
        for k, v in (state.get("history") or {}).items():
            if k in history:
                history[k] = list(v)
        for k in HISTORY_KEYS:  # a run saved before a term was recorded: NaN for its earlier epochs
            history[k] += [float("nan")] * (len(history["epoch"]) - len(history[k]))
        start_epoch = int(state.get("epochs_done") or 0)
    else:
        w_free = initial_free(w_ref, replace(cfg, init_mode="noise") if cfg.init_mode == "jacobian" else cfg)
    t0 = time.perf_counter()
    _skip_dynamo_import()
    coarse = None
    if state is None and (cfg.coarse_frames or cfg.init_mode == "jacobian"):
        try:
            if cfg.coarse_frames:  # coarse-to-fine: a short chain first, then subdivided
                coarse = discover(G, w_ref, dist, coarse_config(cfg), stop=stop)
                if coarse.stop_reason == "interrupted":
                    raise KeyboardInterrupt
                if coarse.stop_reason == "callback":  # its stop said stop (it has no callback)
                    raise SearchStopped("stopped in the coarse chain")
                if coarse.stop_reason != "nan":  # a diverged coarse chain is dropped: the usual start instead
                    w_free = subdivide(coarse.ws[:, ls:le].to(device), n, cfg.closed_loop)
            else:
                w_free = jacobian_start(G, w_ref, dist, cfg, stop)
        except (KeyboardInterrupt, SearchStopped) as exc:  # before the first epoch: saved at its (noise) start
            with torch.no_grad():
                ws = _assemble(w_ref, w_free, ls, le)
            reason = "callback" if isinstance(exc, SearchStopped) else "interrupted"
            return Trajectory(ws=ws.cpu(), history=history, status="interrupted", stop_reason=reason,
                              epochs_done=0, seconds=time.perf_counter() - t0,
                              evaluations=coarse.evaluations if coarse is not None else 0)
    w_free = w_free.detach().clone().requires_grad_(True)
    offsets = offsets_for(n, cfg.offset, cfg.offset_ramp).to(device)
    chunks = chunk_sizes(n, cfg.chunk_size, device.type, G.resolution)
    evaluations = coarse.evaluations if coarse is not None else 0

    def closure():
        nonlocal evaluations
        if stop is not None and stop():
            raise SearchStopped("stopped during an epoch")
        evaluations += 1
        w_free.grad = None
        terms = energy(G, w_free, w_ref, ref_img, dist, cfg, offsets, chunks=chunks, backward=True)
        return torch.tensor(terms["total"], dtype=torch.float64)

    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS([w_free], lr=cfg.lr, history_size=cfg.history_size, max_iter=cfg.max_iter,
                                line_search_fn=None if cfg.line_search == "none" else cfg.line_search)
    else:
        opt = torch.optim.Adam([w_free], lr=cfg.lr)

    status, reason, epoch = "complete", "epochs", start_epoch
    good = w_free.detach().clone()
    first = start_epoch + 1
    if quality_reached(history, cfg):  # a resumed run that had already stopped by quality
        reason, first = "quality", cfg.epochs + 1
    try:
        for e in range(first, cfg.epochs + 1):
            if cfg.optimizer == "lbfgs":
                opt.step(closure)
            else:
                opt.zero_grad()
                closure()
                opt.step()
            terms = energy(G, w_free.detach(), w_ref, ref_img, dist, cfg, offsets, chunks=chunks, extent=True)
            if not (math.isfinite(terms["total"]) and bool(torch.isfinite(w_free).all())):
                with torch.no_grad():
                    w_free.copy_(good)
                status, reason = "interrupted", "nan"
                break
            good = w_free.detach().clone()
            epoch = e
            history["epoch"].append(e)
            for k in HISTORY_KEYS[1:-1]:
                history[k].append(terms[k])
            history["seconds"].append(time.perf_counter() - t0)
            if watch is not None:
                with torch.no_grad():
                    watch(e, _assemble(w_ref, w_free.detach(), ls, le).cpu())
            if callback is not None and callback(e, terms) is False:
                status, reason = "interrupted", "callback"
                break
            if quality_reached(history, cfg):
                reason = "quality"
                break
            p = cfg.patience
            if p and len(history["total"]) > p:
                old, new = history["total"][-p - 1], history["total"][-1]
                if old - new < cfg.tol * abs(old):
                    reason = "stalled"
                    break
    except (KeyboardInterrupt, SearchStopped) as exc:  # the last finished epoch's chain is kept
        with torch.no_grad():
            w_free.copy_(good)
        status, reason = "interrupted", "callback" if isinstance(exc, SearchStopped) else "interrupted"
    with torch.no_grad():
        ws = _assemble(w_ref, w_free.detach(), ls, le)
    return Trajectory(ws=ws.cpu(), history=history, status=status, stop_reason=reason, epochs_done=epoch,
                      seconds=time.perf_counter() - t0, evaluations=evaluations)
