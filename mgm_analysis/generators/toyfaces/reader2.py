"""A second, independent toyfaces factor reader: the judge of *semantic locality*.

The shipped generator was fine-tuned (stage B of its recipe) so that the shipped
factor regressor (:mod:`.regressor`) reads the right factors off its images, so
a semantic-locality score from that regressor can flatter the generator.  This
reader played no part in training the generator and differs from the shipped
regressor in design:

* architecture: it reads the face at 32² (2×2 area average of the 64² image)
  with two coordinate channels (CoordConv), through residual blocks with
  GroupNorm and SiLU downsampled by average pooling, read out by global mean
  *and* max pooling — the shipped regressor is a plain strided GELU CNN at 64²
  with a flattening dense head;
* loss: Huber (smooth L1, δ = 0.05) on the factors instead of MSE;
* augmentation: random Gaussian blur (σ up to 1.2 px), pixel noise (σ 0.03) and
  a random global contrast/brightness jitter (±5 %) instead of blur and noise alone;
* data: renders of independent uniform factors from its own seed stream (seed 2).

It is trained only on renders (never on generator output)::

    python -m mgm_analysis.generators.toyfaces.reader2 --minutes 20 --threads 2 --out mgm_analysis/data/toyfaces_reader2.pt

and ships as ``mgm_analysis/data/toyfaces_reader2.pt`` (weights, config, recipe, held-out R²).
A run's ``semantic_locality`` is read by this reader; the shipped regressor's
figure is kept beside it as ``semantic_locality_shipped``
(:func:`mgm_analysis.semantic.semantic_metrics`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..base import torch_threads
from .renderer import FACTORS, NUM_FACTORS, render

__all__ = ["Reader2", "READER2_WEIGHTS", "load_reader2", "predict_factors2", "readable_factors", "train_reader2"]

READER2_WEIGHTS = "toyfaces_reader2.pt"


class _Block(nn.Module):
    """x + conv(SiLU(GN(conv(SiLU(GN(x))))))."""

    def __init__(self, ch: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, ch), nn.Conv2d(ch, ch, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(8, ch), nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x))))))


class Reader2(nn.Module):
    """img [B, 3, 64, 64] in [-1, 1] -> factors [B, NUM_FACTORS] in [0, 1] (see the module docstring)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), resolution: int = 32):
        super().__init__()
        self.resolution = resolution
        self.widths = tuple(int(w) for w in widths)
        # the image is read at ``resolution`` (2x2 average pooling of a 64² face), then residual stages halve it
        self.stem = nn.Conv2d(5, self.widths[0], 3, padding=1)
        stages = []
        for i, w in enumerate(self.widths):
            prev = self.widths[i - 1] if i else self.widths[0]
            stages.append(nn.Sequential(nn.Conv2d(prev, w, 1) if prev != w else nn.Identity(), _Block(w),
                                        nn.AvgPool2d(2)))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Linear(2 * self.widths[-1], 192), nn.SiLU(), nn.Linear(192, NUM_FACTORS))
        g = torch.linspace(-1, 1, resolution)
        self.register_buffer("coords", torch.stack(torch.meshgrid(g, g, indexing="ij"))[None], persistent=False)

    def forward(self, img):
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {list(img.shape)}")
        if img.shape[-1] != self.resolution or img.shape[-2] != self.resolution:
            if img.shape[-1] % self.resolution == 0 and img.shape[-1] == img.shape[-2]:
                img = F.avg_pool2d(img, img.shape[-1] // self.resolution)   # area average: no aliasing
            else:
                img = F.interpolate(img, size=(self.resolution, self.resolution), mode="area")
        x = torch.cat([img, self.coords.expand(len(img), -1, -1, -1)], 1)
        x = self.stages(self.stem(x))
        x = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)
        return torch.sigmoid(self.head(x))


def _augment(img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    from .regressor import random_blur

    b = len(img)
    img = random_blur(img, 1.2, gen)
    gain = 1 + 0.05 * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
    bias = 0.05 * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
    return img * gain + bias + 0.03 * torch.randn(img.shape, generator=gen)


def train_reader2(minutes: float = 20.0, steps: int = 20000, batch: int = 48, lr: float = 2e-3, seed: int = 2,
                  log=print, checkpoint: Path | None = None, init: str | None = None) -> tuple[Reader2, int]:
    """Train on renders only (AdamW, cosine decay over the time budget); returns (model, steps done).

    ``init``: continue from a saved reader (its weights; a new optimiser and schedule).
    """
    torch.manual_seed(seed)
    model = Reader2() if init is None else load_reader2.__wrapped__(str(init)).train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.perf_counter()
    step = 0
    for step in range(1, steps + 1):
        progress = min(1.0, max(step / steps, (time.perf_counter() - t0) / (60 * minutes)))
        for g in opt.param_groups:
            g["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))) * min(1.0, step / 100)
        f = torch.rand(batch, NUM_FACTORS, generator=gen)
        with torch.no_grad():
            img = _augment(render(f), gen)
        loss = F.smooth_l1_loss(model(img), f, beta=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 200 == 0:
            log(json.dumps({"step": step, "loss": round(loss.item(), 6),
                            "minutes": round((time.perf_counter() - t0) / 60, 2)}))
        if checkpoint is not None and step % 1000 == 0:
            _save(model.eval(), checkpoint, {"steps": step, "seed": seed, "partial": True})
            model.train()
        if progress >= 1:
            break
    return model.eval().requires_grad_(False), step


def _save(model: Reader2, path: Path, extra: dict) -> None:
    import os

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": model.state_dict(), "config": {"widths": list(model.widths),
                                                             "resolution": model.resolution}, **extra}, tmp)
    os.replace(tmp, path)


@functools.lru_cache(maxsize=2)
def load_reader2(path: str | None = None) -> Reader2:
    """The shipped second reader (frozen, eval mode); ``torch.load(weights_only=True)``."""
    from . import load_shipped_weights

    obj = load_shipped_weights(path, READER2_WEIGHTS, "the second toyfaces factor reader's", __name__)
    cfg = obj.get("config", {})
    model = Reader2(widths=tuple(cfg.get("widths", (16, 32, 64, 96))), resolution=int(cfg.get("resolution", 32)))
    model.load_state_dict(obj["state_dict"])
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=2)
def readable_factors(path: str | None = None, min_r2: float = 0.5) -> tuple[bool, ...]:
    """Per factor: does the reader read it (held-out R² on renders, recorded with its weights, ≥ ``min_r2``)?

    A factor it cannot read would only add noise to the denominator of semantic locality, so that score
    leaves it out (``mgm_analysis.semantic.semantic_metrics``); the shipped reader reads every factor.
    """
    from . import load_shipped_weights

    obj = load_shipped_weights(path, READER2_WEIGHTS, "the second toyfaces factor reader's", __name__)
    r2 = obj.get("heldout_render_r2") or {}
    return tuple(float(r2.get(name, 1.0)) >= min_r2 for name in FACTORS)


@torch.no_grad()
def predict_factors2(img: torch.Tensor, batch: int = 128, reader: Reader2 | None = None) -> torch.Tensor:
    """img [B, 3, H, W] in [-1, 1] -> factors [B, NUM_FACTORS] in [0, 1], read by the second reader."""
    model = reader or load_reader2()
    img = img.detach().float().cpu()
    if not len(img):
        return torch.zeros(0, NUM_FACTORS)
    return torch.cat([model(img[i:i + batch]) for i in range(0, len(img), batch)])


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the second, independent toyfaces factor reader on renders.")
    ap.add_argument("--out", default="mgm_analysis/data/toyfaces_reader2.pt")
    ap.add_argument("--minutes", type=float, default=20.0, help="time budget (the cosine decay fits into it)")
    ap.add_argument("--steps", type=int, default=20000, help="at most this many steps")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--init", default=None, help="continue from this saved reader")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):  # the caller's setting is put back after
        return _main(args, argv)


def _main(args, argv):
    out = Path(args.out)
    t0 = time.perf_counter()
    prev = torch.load(args.init, map_location="cpu", weights_only=True) if args.init else {}
    model, steps = train_reader2(args.minutes, args.steps, args.batch, lr=args.lr, seed=args.seed,
                                 log=lambda s: print(s, flush=True), checkpoint=out, init=args.init)
    from .regressor import r2_per_factor

    f = torch.rand(2000, NUM_FACTORS, generator=torch.Generator().manual_seed(999))
    pred = torch.cat([model(render(f[i:i + 200])) for i in range(0, 2000, 200)])
    r2 = r2_per_factor(pred, f)
    print(json.dumps({"heldout_render_r2": {k: round(v, 4) for k, v in r2.items()}}), flush=True)
    command = "python -m mgm_analysis.generators.toyfaces.reader2 " + " ".join(argv or sys.argv[1:])
    _save(model, out, {"steps": steps + int(prev.get("steps", 0)), "seed": args.seed, "batch": args.batch,
                       "minutes": args.minutes + float(prev.get("minutes", 0.0)),
                       "train_seconds": round(time.perf_counter() - t0 + float(prev.get("train_seconds", 0.0)), 1),
                       "heldout_render_r2": r2,
                       "commands": list(prev.get("commands", [prev["command"]] if "command" in prev else [])) + [command]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
