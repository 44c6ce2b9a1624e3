"""Training recipe of the built-in ``toyfaces`` generator (reproducible: fixed seed, logged).

The generator is the package's StyleGAN2 at 64×64 with small channel widths.
It is trained by regression on pairs (z, render(factors(z))) drawn on the fly:

    loss = L1(G(z), x) · (1 + region_weight · [pixel in a region preset])
         + grad_weight · L1(∇G(z), ∇x)                 (image gradients: sharp edges)
         + pyramid_weight · Σ_s L1(pool_s G(z), pool_s x)  (s = 2, 4: coarse structure first)
         + factor_weight · MSE(head(w), factors(z))     (w linearly encodes the factors)
         + consistency_weight · MSE(R(G(z)), factors(z))  (optional: the frozen factor regressor R
                                                          reads the right factors off G's image)

Region weighting and the gradient term keep small features (eyes, pupils,
brows) from being averaged away; the linear factor head gives the mapping
network a direct signal.  Weights are averaged (EMA) and the EMA model is what
ships.  Run:

    python -m mgm_analysis.generators.toyfaces.train --steps 12000 --out mgm_analysis/data/toyfaces_G.pt

Every ``--eval-every`` steps the log gets PSNR overall and per region on fixed
held-out z, and the checkpoint is rewritten (a stopped run is still usable).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ...presets import preset_boxes
from ..base import torch_threads
from ..checkpoints import save_checkpoint
from ..stylegan2 import StyleGAN2
from .evaluate import REGIONS, psnr_by_region
from .prior import Z_DIM, factors_from_z
from .regressor import r2_scores
from .renderer import NUM_FACTORS, render


@dataclass(frozen=True)
class TrainConfig:
    resolution: int = 64                      # image side
    w_dim: int = 256                          # width of w
    n_mlp: int = 4                            # mapping depth
    channels: dict = field(default_factory=lambda: {4: 128, 8: 128, 16: 64, 32: 48, 64: 24})
    lr_mlp: float = 1.0                       # mapping learning-rate multiplier (GANs use 0.01; too slow here)
    batch: int = 16                           # faces per step (more, cheaper steps beat bigger batches on CPU)
    steps: int = 12000                        # optimiser steps
    lr: float = 2e-3                          # Adam learning rate (cosine decay to 5%)
    region_weight: float = 4.0                # extra L1 weight inside the region presets
    grad_weight: float = 1.0                  # weight of the image-gradient L1 term
    pyramid_weight: float = 1.0               # weight of the L1 terms on 2x and 4x downsampled images
    warmup: int = 200                         # steps of linear learning-rate warm-up
    factor_weight: float = 1.0                # weight of the linear factor head on w
    map_steps: int = 1500                     # stage 1: mapping + factor head alone (cheap, seconds)
    map_batch: int = 256                      # z per stage-1 step
    map_lr: float = 5e-3                      # stage-1 Adam learning rate
    ema_decay: float = 0.998                  # EMA of weights, the shipped model
    seed: int = 0                             # seeds the model init and the z stream
    eval_every: int = 500                     # steps between held-out evaluations + checkpoints
    eval_n: int = 256                         # held-out z for the periodic evaluation
    consistency_weight: float = 0.0           # weight of the factor-regressor consistency term (0 = off)

    def __post_init__(self):
        for name in ("batch", "steps", "eval_every", "eval_n", "w_dim", "n_mlp", "warmup", "map_batch"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")


def region_weight_map(resolution: int, weight: float) -> torch.Tensor:
    m = torch.zeros(resolution, resolution)
    for name in REGIONS:
        for x0, y0, x1, y1 in preset_boxes(name, "toyfaces", resolution):
            m[y0:y1, x0:x1] = 1.0
    return 1.0 + weight * m


def build_generator(cfg: TrainConfig) -> StyleGAN2:
    torch.manual_seed(cfg.seed)
    return StyleGAN2(cfg.resolution, w_dim=cfg.w_dim, n_mlp=cfg.n_mlp, channels=dict(cfg.channels),
                     lr_mlp=cfg.lr_mlp, z_dim=Z_DIM)


@torch.no_grad()
def evaluate(G: StyleGAN2, z: torch.Tensor, batch: int = 64) -> dict[str, dict[str, float]]:
    """{"overall"|region: {"mean", "p5"}} PSNR (dB) of G(z) against its renders, for the training log."""
    G.eval()
    return {k: {"mean": float(v.mean()), "p5": float(v.quantile(0.05))}
            for k, v in psnr_by_region(G, z, batch).items()}


def pretrain_mapping(G: StyleGAN2, head: torch.nn.Module, cfg: TrainConfig, log=print) -> float:
    """Stage 1: teach the mapping network to encode the factors linearly in w (returns mean R²).

    A random mapping keeps only part of each factor's z direction, and learning it through the
    synthesis network is very slow (R² 0.14 after 1000 steps at lr_mlp 0.1); alone, with large
    batches, it takes seconds (R² 0.99 after 1500 steps of 256 z).
    """
    params = list(G.style.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.map_lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    for _ in range(cfg.map_steps):
        z = torch.randn(cfg.map_batch, Z_DIM, generator=gen)
        loss = F.mse_loss(torch.sigmoid(head(G.style(z))), factors_from_z(z))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = torch.randn(1000, Z_DIM, generator=torch.Generator().manual_seed(cfg.seed + 3))
        f = factors_from_z(z)
        pred = torch.sigmoid(head(G.style(z)))
        r2 = r2_scores(pred, f)
    log(json.dumps({"stage": "mapping", "steps": cfg.map_steps, "factor_r2_mean": round(float(r2.mean()), 4),
                    "factor_r2_min": round(float(r2.min()), 4)}))
    return float(r2.mean())


def _image_grad(x):
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def fit_head(G: StyleGAN2, head: torch.nn.Module, cfg: TrainConfig, steps: int = 300) -> None:
    """Fit the linear factor head alone on a frozen mapping (when training starts from a checkpoint)."""
    opt = torch.optim.Adam(head.parameters(), lr=cfg.map_lr)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    for _ in range(steps):
        z = torch.randn(cfg.map_batch, Z_DIM, generator=gen)
        with torch.no_grad():
            w = G.style(z)
        loss = F.mse_loss(torch.sigmoid(head(w)), factors_from_z(z))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def train(cfg: TrainConfig, out: Path, log=print, max_minutes: float | None = None, threads: int | None = None,
          device: str = "cpu", init: str | Path | None = None):
    """Train and write the EMA generator to ``out``; returns the final evaluation dict.

    The z stream is drawn on the CPU from a seeded generator, so a run on ``device="cuda"`` sees
    the same faces as one on the CPU (the arithmetic differs in the last bits).  ``threads``: torch CPU threads
    while it trains (the process's setting is put back after).
    """
    with torch_threads(threads):
        return _train(cfg, out, log, max_minutes, device, init)


def _train(cfg: TrainConfig, out: Path, log, max_minutes: float | None, device: str, init):
    if str(device).startswith("cuda"):  # the tiny convolutions: let cuDNN pick kernels, TF32 is plenty here
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    t0 = time.perf_counter()
    G = build_generator(cfg).train().requires_grad_(True)
    head = torch.nn.Linear(cfg.w_dim, NUM_FACTORS)
    if init is not None:  # continue from a checkpoint of the same architecture (fine-tuning)
        from ..checkpoints import load_checkpoint

        try:
            G.load_state_dict(load_checkpoint(init).state_dict())
        except RuntimeError as exc:  # another architecture: missing keys, other shapes
            from ...errors import MGMError

            raise MGMError(f"--init {init}: its weights do not fit this generator ({str(exc).splitlines()[0]} "
                           "...); give a checkpoint written by mgm toyfaces-train with the same --channels") from None
        G.train().requires_grad_(True)
        fit_head(G, head, cfg)
        log(json.dumps({"stage": "init", "from": str(init)}))
    elif cfg.map_steps:
        pretrain_mapping(G, head, cfg, log)
    G, head = G.to(device), head.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt = torch.optim.Adam(list(G.parameters()) + list(head.parameters()), lr=cfg.lr, betas=(0.9, 0.99))
    weight = region_weight_map(cfg.resolution, cfg.region_weight).to(device)
    regressor = None
    if cfg.consistency_weight > 0:
        from .regressor import load_regressor

        regressor = copy.deepcopy(load_regressor()).to(device).requires_grad_(False)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    z_eval = torch.randn(cfg.eval_n, Z_DIM, generator=torch.Generator().manual_seed(10_000 + cfg.seed)).to(device)
    history = []
    result = {}
    step = 0
    budget_s = max_minutes * 60 if max_minutes else None
    for step in range(1, cfg.steps + 1):
        # progress by steps or by the time budget, whichever is further: the cosine decay always completes
        elapsed = time.perf_counter() - t0
        progress = min(1.0, max(step / cfg.steps, elapsed / budget_s if budget_s else 0.0))
        lr = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))) * min(1.0, step / cfg.warmup)
        for grp in opt.param_groups:
            grp["lr"] = lr
        z = torch.randn(cfg.batch, Z_DIM, generator=gen).to(device)
        factors = factors_from_z(z)
        with torch.no_grad():
            target = render(factors, cfg.resolution)
        w = G.mapping(z)
        fake = G.synthesis(G.broadcast(w))
        loss_img = ((fake - target).abs() * weight).mean()
        gy_f, gx_f = _image_grad(fake)
        gy_r, gx_r = _image_grad(target)
        loss_grad = (gy_f - gy_r).abs().mean() + (gx_f - gx_r).abs().mean()
        loss_pyr = sum(F.l1_loss(F.avg_pool2d(fake, s), F.avg_pool2d(target, s)) for s in (2, 4))
        loss_fac = F.mse_loss(torch.sigmoid(head(w)), factors)
        loss = loss_img + cfg.grad_weight * loss_grad + cfg.pyramid_weight * loss_pyr + cfg.factor_weight * loss_fac
        if regressor is not None:
            loss = loss + cfg.consistency_weight * F.mse_loss(regressor(fake), factors)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        elapsed = time.perf_counter() - t0
        out_of_time = budget_s is not None and elapsed > budget_s
        if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
            result = evaluate(G_ema, z_eval)
            G_ema.w_avg.copy_(G_ema.mean_latent(4096, seed=0))
            row = {"step": step, "minutes": round(elapsed / 60, 2), "s_per_step": round(elapsed / step, 3), "lr": round(lr, 6), "loss": round(loss.item(), 5),
                   **{f"psnr_{k}": round(v["mean"], 2) for k, v in result.items()}}
            history.append(row)
            log(json.dumps(row))
            save_checkpoint(G_ema, out, extra={"recipe": asdict(cfg), "steps_done": step,
                                               "minutes": elapsed / 60, "eval": result, "history": history,
                                               "hardware": f"{platform.processor() or platform.machine()}, "
                                                           f"{torch.get_num_threads()} threads, torch {torch.__version__}"
                                                           + (f", {torch.cuda.get_device_name(device)}"
                                                              if str(device).startswith("cuda") else "")})
        if out_of_time:
            log(f"stopped at step {step}: time budget of {max_minutes} min reached")
            break
    return {"steps_done": step, "minutes": (time.perf_counter() - t0) / 60, "eval": result}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the built-in toyfaces generator.")
    ap.add_argument("--out", default="mgm_analysis/data/toyfaces_G.pt", help="checkpoint to write")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--seed", type=int, default=TrainConfig.seed)
    ap.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    ap.add_argument("--channels", default=None, help="e.g. 4:128,8:128,16:128,32:64,64:32")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (and keep the checkpoint) after this long")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] [default: cpu]")
    ap.add_argument("--init", default=None, help="start from this checkpoint (same architecture) instead of scratch")
    ap.add_argument("--consistency-weight", type=float, default=TrainConfig.consistency_weight,
                    help="weight of the factor-regressor consistency term (needs mgm_analysis/data/toyfaces_regressor.pt)")
    args = ap.parse_args(argv)
    kw = dict(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, eval_every=args.eval_every,
              consistency_weight=args.consistency_weight)
    if args.channels:
        kw["channels"] = {int(a): int(b) for a, b in (p.split(":") for p in args.channels.split(","))}
    cfg = TrainConfig(**kw)
    print(json.dumps({"config": asdict(cfg)}), flush=True)
    res = train(cfg, Path(args.out), log=lambda s: print(s, flush=True), max_minutes=args.max_minutes,
                threads=args.threads, device=args.device, init=args.init)
    print(json.dumps({"done": res}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
