"""The discovery engine: mask-guided search for a smooth, local chain of latents (the paper's method).

``discover(G, w_ref, region_mask, cfg)`` finds ``n`` W+ latents — only layers
``layer_start:layer_end`` free, the rest pinned to ``w_ref`` — minimising

    E = Σ_i γ·[λ·D_out(G(w_i), x*) + |D_in(G(w_i), x*) − c_i|]
        + α·Σ_i (‖w_{i+1} − w_i‖ − σ)² + β·Σ_i (‖w_{i+2} − w_i‖ − 2σ)²

(Yang, Rokeby, Snelgrove 2020, eq. 1–3; λ = 1 in the paper).  The reference
implementation runs the generator on one latent at a time; here all latents go
through the generator as one batch, split into chunks only to bound memory,
with gradients accumulated — the same loss and gradient (tested).

The function does no file I/O: it returns a :class:`Trajectory`; the command
line and the store write files.  Ctrl-C / SIGTERM (as ``KeyboardInterrupt``)
and non-finite losses end the search early with what it has, marked
``interrupted``; ``resume=`` continues such a trajectory.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields

import torch

from .errors import MGMError
from .losses import MaskedDistance, offsets_for, spring_energy

__all__ = ["DiscoveryConfig", "Trajectory", "discover", "default_config", "energy", "auto_prim_dist"]


@dataclass(frozen=True)
class DiscoveryConfig:
    n_frames: int = 16                 # latents in the chain (paper: 36)
    layer_start: int = 2               # first free W+ layer (inclusive)
    layer_end: int = 8                 # last free W+ layer (exclusive); paper: 2..8
    alpha: float = 0.3                 # primary spring weight α
    beta: float = 0.1                  # stiffener spring weight β
    gamma: float = 0.5                 # image term weight γ
    prim_dist: float = 4.0             # primary spring rest length σ (stiffener: 2σ)
    offset: float = 0.25               # target inside distance c
    outside_weight: float = 1.0        # λ on D_out (paper: 1)
    distance: str = "l2"               # l2 | lpips
    mask_mode: str = "map"             # map (any mask) | paper (one rectangle: crop + four strips)
    optimizer: str = "lbfgs"           # lbfgs (paper) | adam
    lr: float = 1.0                    # L-BFGS step size (1 = paper) or Adam learning rate
    history_size: int = 20             # L-BFGS history
    max_iter: int = 8                  # L-BFGS inner iterations per epoch
    epochs: int = 500                  # maximum epochs (paper: 500)
    init_noise: float = 0.01           # std of the initial perturbation of free layers (all but the first latent)
    offset_ramp: bool = False          # c ramps from 0 to c along the chain
    closed_loop: bool = False          # springs wrap around (seamless loops)
    chunk_size: int = 0                # latents per generator call; 0 = automatic
    patience: int = 5                  # stop when the loss improved < tol (relative) over this many epochs; 0 = never
    tol: float = 1e-4                  # relative improvement threshold for the early stop
    seed: int = 0                      # seeds the initial perturbation

    def __post_init__(self):
        if self.n_frames < 3:
            raise MGMError(f"--frames must be >= 3 (springs need neighbours), got {self.n_frames}")
        if not 0 <= self.layer_start < self.layer_end:
            raise MGMError(f"--layers {self.layer_start}:{self.layer_end} is empty or negative; use START:END "
                           "with 0 <= START < END")
        for name in ("alpha", "beta", "gamma", "prim_dist", "offset", "outside_weight", "init_noise", "tol"):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                raise MGMError(f"{name.replace('_', '-')} must be a finite number >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise MGMError(f"--lr must be > 0, got {self.lr}")
        if self.epochs < 1:
            raise MGMError(f"--epochs must be >= 1, got {self.epochs}")
        if self.distance not in ("l2", "lpips"):
            raise MGMError(f"--distance must be l2 or lpips, got {self.distance!r}")
        if self.mask_mode not in ("map", "paper"):
            raise MGMError(f"--mask-mode must be map or paper, got {self.mask_mode!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise MGMError(f"--optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.chunk_size < 0 or self.history_size < 1 or self.max_iter < 1 or self.patience < 0:
            raise MGMError("chunk-size, history-size, max-iter and patience must be positive")

    def check_generator(self, num_ws: int) -> None:
        if self.layer_end > num_ws:
            raise MGMError(f"--layers {self.layer_start}:{self.layer_end} is outside the generator's {num_ws} W+ "
                           f"layers; use END <= {num_ws}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiscoveryConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


#: measured defaults (see docs/discover.md and shared/FINDINGS.md)
PAPER_FFHQ = dict(n_frames=36, layer_start=2, layer_end=8, alpha=0.3, beta=0.1, gamma=0.5, prim_dist=4.0,
                  offset=0.25, outside_weight=1.0, distance="lpips", epochs=500)
TOYFACES_L2 = dict(n_frames=16, layer_start=2, layer_end=8, alpha=0.3, beta=0.1, gamma=0.5, prim_dist=0.35,
                   offset=0.03, outside_weight=10.0, distance="l2", epochs=30, patience=0)


def default_config(generator_name: str | None, distance: str | None = None, **overrides) -> DiscoveryConfig:
    """Defaults per generator and distance: toyfaces + l2 as calibrated here, the paper's values otherwise."""
    if generator_name == "toyfaces" and distance in (None, "l2"):
        base = dict(TOYFACES_L2)
    else:
        base = dict(PAPER_FFHQ)
        base["distance"] = distance or ("l2" if generator_name == "toyfaces" else "lpips")
    base.update({k: v for k, v in overrides.items() if v is not None})
    return DiscoveryConfig(**base)


@torch.no_grad()
def auto_prim_dist(G, layer_start: int, layer_end: int, share: float = 0.05, n: int = 256, seed: int = 0) -> float:
    """σ as ``share`` × the mean distance between the free layers of two random latents' W+."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2 * n, G.z_dim, generator=g).to(G.w_avg.device)
    w = G.mapping(z)
    d = (w[:n] - w[n:]).norm(dim=1) * math.sqrt(layer_end - layer_start)
    return float(share * d.mean())


@dataclass
class Trajectory:
    ws: torch.Tensor                                  # [n, num_ws, w_dim] on CPU
    history: dict = field(default_factory=dict)       # per epoch: total, l_x, spring, stiffener, d_in, d_out
    status: str = "complete"                          # complete | interrupted
    stop_reason: str = "epochs"                       # epochs | stalled | interrupted | nan
    epochs_done: int = 0
    seconds: float = 0.0


def _auto_chunk(G, n: int) -> int:
    if G.w_avg.device.type != "cpu":
        return n if G.resolution <= 256 else max(1, 4096 // G.resolution)
    return min(n, 12 if G.resolution <= 64 else 4 if G.resolution <= 256 else 1)


def energy(G, w_free, w_ref, ref_img, dist: MaskedDistance, cfg: DiscoveryConfig, offsets, *, chunk: int,
           backward: bool, per_latent: bool = False):
    """Evaluate E (and, with ``backward``, accumulate dE/dw_free into ``w_free.grad``).

    Returns a dict of floats: total, l_x, spring, stiffener, d_in, d_out (means over frames for d_*).
    ``per_latent=True`` runs the generator on one latent at a time (the reference implementation's way).
    """
    n = w_free.shape[0]
    spring, stiff = spring_energy(w_free, cfg.alpha, cfg.beta, cfg.prim_dist, cfg.closed_loop)
    if backward:
        (spring + stiff).backward()
    l_x_sum, d_in_sum, d_out_sum = 0.0, 0.0, 0.0
    step = 1 if per_latent else chunk
    for i in range(0, n, step):
        wf = w_free[i:i + step]
        ws = w_ref.expand(len(wf), -1, -1).clone()
        ws[:, cfg.layer_start:cfg.layer_end] = wf
        img = G.synthesis(ws)
        d_in, d_out = dist(img, ref_img)
        l_x = cfg.outside_weight * d_out + (d_in - offsets[i:i + step]).abs()
        term = cfg.gamma * l_x.sum()
        if backward:
            term.backward()
        l_x_sum += float(l_x.detach().sum())
        d_in_sum += float(d_in.detach().sum())
        d_out_sum += float(d_out.detach().sum())
    total = cfg.gamma * l_x_sum + float(spring) + float(stiff)
    return {"total": total, "l_x": l_x_sum, "spring": float(spring), "stiffener": float(stiff),
            "d_in": d_in_sum / n, "d_out": d_out_sum / n}


def discover(G, w_ref: torch.Tensor, dist: MaskedDistance, cfg: DiscoveryConfig, *, resume: dict | None = None,
             callback=None) -> Trajectory:
    """Search the chain of latents (see the module docstring).

    Args:
        G: a frozen generator (DESIGN §2).
        w_ref: [num_ws, w_dim] reference latent w*.
        dist: the masked distance, built for G's resolution (``losses.make_distance``).
        cfg: the configuration.
        resume: ``{"ws": [n, num_ws, w_dim], "history": {...}, "epochs_done": int}`` to continue a run.
        callback: called after every epoch with (epoch, terms dict); returning False stops the search.
    """
    cfg.check_generator(G.num_ws)
    device = G.w_avg.device
    w_ref = torch.as_tensor(w_ref, dtype=torch.float32, device=device)
    if w_ref.shape != (G.num_ws, G.w_dim):
        raise MGMError(f"reference latent has shape {list(w_ref.shape)} but the generator needs "
                       f"[{G.num_ws}, {G.w_dim}]")
    G.requires_grad_(False)
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    n, ls, le = cfg.n_frames, cfg.layer_start, cfg.layer_end
    history = {k: [] for k in ("epoch", "total", "l_x", "spring", "stiffener", "d_in", "d_out", "seconds")}
    start_epoch = 0
    if resume is not None:
        ws0 = torch.as_tensor(resume["ws"], dtype=torch.float32, device=device)
        if ws0.shape != (n, G.num_ws, G.w_dim):
            raise MGMError(f"cannot resume: saved latents are {list(ws0.shape)}, config needs [{n}, {G.num_ws}, {G.w_dim}]")
        w_free = ws0[:, ls:le].clone()
        for k, v in (resume.get("history") or {}).items():
            if k in history:
                history[k] = list(v)
        start_epoch = int(resume.get("epochs_done", 0))
    else:
        g = torch.Generator().manual_seed(cfg.seed)
        noise = torch.randn(n, le - ls, G.w_dim, generator=g) * cfg.init_noise
        noise[0] = 0.0  # the first latent starts exactly at w*
        w_free = w_ref[ls:le].expand(n, -1, -1).clone() + noise.to(device)
    w_free.requires_grad_(True)
    offsets = offsets_for(n, cfg.offset, cfg.offset_ramp).to(device)
    chunk = cfg.chunk_size or _auto_chunk(G, n)

    def closure():
        w_free.grad = None
        return torch.tensor(energy(G, w_free, w_ref, ref_img, dist, cfg, offsets, chunk=chunk, backward=True)["total"])

    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS([w_free], lr=cfg.lr, history_size=cfg.history_size, max_iter=cfg.max_iter,
                                line_search_fn="strong_wolfe")
    else:
        opt = torch.optim.Adam([w_free], lr=cfg.lr)

    status, reason = "complete", "epochs"
    t0 = time.perf_counter()
    epoch = start_epoch
    good = w_free.detach().clone()
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            if cfg.optimizer == "lbfgs":
                opt.step(closure)
            else:
                closure()
                opt.step()
            with torch.no_grad():
                finite = bool(torch.isfinite(w_free).all())
            terms = energy(G, w_free.detach(), w_ref, ref_img, dist, cfg, offsets, chunk=chunk,
                           backward=False) if finite else {"total": float("nan")}
            if not finite or not math.isfinite(terms["total"]):
                with torch.no_grad():
                    w_free.copy_(good)
                status, reason, epoch = "interrupted", "nan", epoch - 1
                break
            good = w_free.detach().clone()
            history["epoch"].append(epoch)
            for k in ("total", "l_x", "spring", "stiffener", "d_in", "d_out"):
                history[k].append(terms[k])
            history["seconds"].append(time.perf_counter() - t0)
            if callback is not None and callback(epoch, terms) is False:
                status, reason = "interrupted", "interrupted"
                break
            p = cfg.patience
            if p and len(history["total"]) > p:
                old, new = history["total"][-p - 1], history["total"][-1]
                if old - new < cfg.tol * abs(old):
                    reason = "stalled"
                    break
    except KeyboardInterrupt:
        with torch.no_grad():
            w_free.copy_(good)
        status, reason = "interrupted", "interrupted"
        epoch = history["epoch"][-1] if history["epoch"] else start_epoch
    with torch.no_grad():
        ws = w_ref.expand(n, -1, -1).clone()
        ws[:, ls:le] = w_free.detach()
    return Trajectory(ws=ws.cpu(), history=history, status=status, stop_reason=reason,
                      epochs_done=epoch,
                      seconds=time.perf_counter() - t0)
