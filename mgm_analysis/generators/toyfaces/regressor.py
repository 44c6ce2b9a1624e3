"""Factor regressor: a small CNN that reads the toyfaces factors back from an image.

Trained on renders with independent uniform factors, it estimates the factors
of any image the generator makes; analysis uses it for *semantic locality*
(the share of factor change that falls in the region's own factors).

    python -m mgm_analysis.generators.toyfaces.regressor --out mgm_analysis/data/toyfaces_regressor.pt
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..base import torch_threads
from .renderer import FACTORS, NUM_FACTORS, render

__all__ = ["FactorRegressor", "load_regressor", "predict_factors", "train_regressor", "r2_per_factor", "r2_scores"]


class FactorRegressor(nn.Module):
    """img [B, 3, 64, 64] in [-1, 1] -> factors [B, NUM_FACTORS] in [0, 1]."""

    def __init__(self, width: int = 32, resolution: int = 64):
        super().__init__()
        self.resolution = resolution
        c = [3, width, width * 2, width * 4, width * 4]
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(c[i], c[i + 1], 3, padding=1), nn.GELU(),
                       nn.Conv2d(c[i + 1], c[i + 1], 3, stride=2, padding=1), nn.GELU()]
        self.features = nn.Sequential(*layers)
        side = resolution // 16
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c[-1] * side * side, 256), nn.GELU(),
                                  nn.Linear(256, NUM_FACTORS))

    def forward(self, img):
        if img.shape[-1] != self.resolution:
            img = F.interpolate(img, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        return torch.sigmoid(self.head(self.features(img)))


def r2_scores(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """[F] coefficient of determination of each column of ``pred`` [n, F] against ``true`` (1 = perfect,
    0 = the mean predictor)."""
    return 1 - (pred - true).square().sum(0) / (true - true.mean(0)).square().sum(0)


def r2_per_factor(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """:func:`r2_scores` by factor name."""
    return {name: float(r) for name, r in zip(FACTORS, r2_scores(pred, true), strict=True)}


def random_blur(img: torch.Tensor, max_sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Blur each image with its own Gaussian, sigma ~ U(0, max_sigma) pixels (5 taps, separable, replicate pad).

    The generator draws fine geometry (eye outlines, nostrils, lip corners) softer than the renderer; a
    regressor that has only seen sharp renders misreads those images (eye_size R² on lightly blurred renders
    fell from 0.96 to 0.28), so training sees a range of blurs.
    """
    b, c, h, w = img.shape
    sigma = torch.rand(b, generator=gen) * max_sigma
    x = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-0.5 * (x[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).to(img.device)                  # [B, 5]; sigma -> 0 gives the identity
    k = k.repeat_interleave(c, 0)                                     # [B*C, 5]
    y = F.pad(img.reshape(1, b * c, h, w), (2, 2, 2, 2), mode="replicate")
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)               # horizontal pass
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)               # vertical pass
    return y.reshape(b, c, h, w)


def train_regressor(steps: int = 3000, batch: int = 64, lr: float = 2e-3, seed: int = 0, log=print,
                    max_minutes: float | None = None, blur: float = 1.0, device: str = "cpu", width: int = 32,
                    resolution: int = 64) -> FactorRegressor:
    """Train on renders of independent uniform factors with pixel noise and a random blur of up to ``blur`` px.

    ``width`` and ``resolution``: the :class:`FactorRegressor`'s (the shipped one: 32 and 64)."""
    torch.manual_seed(seed)
    model = FactorRegressor(width=width, resolution=resolution).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        progress = step / steps
        if max_minutes:
            progress = max(progress, (time.perf_counter() - t0) / (60 * max_minutes))
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + torch.cos(torch.tensor(min(progress, 1.0) * torch.pi))).item() + 1e-5
        f = torch.rand(batch, NUM_FACTORS, generator=gen)
        with torch.no_grad():
            img = render(f.to(device))
            if blur > 0:
                img = random_blur(img, blur, gen)
            img = img + 0.02 * torch.randn(img.shape, generator=gen).to(device)  # robustness to generator artefacts
            f = f.to(device)
        loss = F.mse_loss(model(img), f)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 250 == 0:
            log(json.dumps({"step": step, "loss": round(loss.item(), 6), "minutes": round((time.perf_counter() - t0) / 60, 2)}))
        if progress >= 1:
            break
    return model.cpu().eval().requires_grad_(False)


@functools.lru_cache(maxsize=2)
def load_regressor(path: str | None = None) -> FactorRegressor:
    """The shipped factor regressor (frozen, eval mode)."""
    from . import REGRESSOR_WEIGHTS, load_shipped_weights

    obj = load_shipped_weights(path, REGRESSOR_WEIGHTS, "toyfaces factor regressor", __name__)
    model = FactorRegressor(**obj.get("config", {}))
    model.load_state_dict(obj["state_dict"])
    return model.eval().requires_grad_(False)


@torch.no_grad()
def predict_factors(img: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """img [B, 3, H, W] in [-1, 1] -> estimated factors [B, NUM_FACTORS] in [0, 1]."""
    model = load_regressor()
    img = img.detach().float().cpu()
    return torch.cat([model(img[i:i + batch]) for i in range(0, len(img), batch)]) if len(img) else \
        torch.zeros(0, NUM_FACTORS)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the toyfaces factor regressor on renders.")
    ap.add_argument("--out", default="mgm_analysis/data/toyfaces_regressor.pt")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--blur", type=float, default=1.0, help="largest Gaussian blur sigma (px) of the augmentation")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):  # the caller's setting is put back after
        return _main(args)


def _main(args):
    model = train_regressor(args.steps, batch=args.batch, seed=args.seed, log=lambda s: print(s, flush=True),
                            max_minutes=args.max_minutes, blur=args.blur, device=args.device)
    f = torch.rand(2000, NUM_FACTORS, generator=torch.Generator().manual_seed(999))
    with torch.no_grad():
        pred = torch.cat([model(render(f[i:i + 200])) for i in range(0, 2000, 200)])
    r2 = r2_per_factor(pred, f)
    print(json.dumps({"heldout_render_r2": {k: round(v, 4) for k, v in r2.items()}}), flush=True)
    torch.save({"state_dict": model.state_dict(), "config": {"width": 32, "resolution": 64},
                "heldout_render_r2": r2, "steps": args.steps, "seed": args.seed, "blur": args.blur,
                "batch": args.batch}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
