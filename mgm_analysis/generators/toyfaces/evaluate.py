"""Measurements of the built-in model against its ground truth (used by the benchmark and the recipe).

* :func:`heldout_psnr` — PSNR of G(z) against render(factors(z)) overall and inside every region preset.
* :func:`regressor_r2` — R² of the factor regressor per factor, on renders and on generated images.
* :func:`sweep_energy_share` — share of a factor sweep's pixel-change energy inside its region preset.
* :func:`sample_grid` — a picture: renders next to the generator's outputs for the same z.
* :func:`write_recipe` — ``mgm_analysis/data/toyfaces_recipe.json``: config, seed, time, hardware, figures.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from ...presets import REGION_FACTORS, preset_boxes
from .prior import Z_DIM, factors_from_z
from .renderer import FACTORS, NUM_FACTORS, render

__all__ = ["HELDOUT_SEED", "heldout_psnr", "regressor_r2", "sweep_energy_share", "sample_grid", "write_recipe"]

HELDOUT_SEED = 777_000  # held-out z of the figures; the training stream and its eval set use other seeds
REGIONS = ("mouth", "eyes", "brows", "nose")


def heldout_z(n: int, seed: int = HELDOUT_SEED) -> torch.Tensor:
    """[n, 512] standard-normal latents never seen in training."""
    return torch.randn(n, Z_DIM, generator=torch.Generator().manual_seed(seed))


def psnr_per_image(fake: torch.Tensor, real: torch.Tensor, box=None) -> torch.Tensor:
    """[B] PSNR in dB of images in [-1, 1] (mapped to [0, 1]), optionally inside a pixel box (x0, y0, x1, y1)."""
    err = ((fake - real) / 2).square()
    if box is not None:
        x0, y0, x1, y1 = box
        err = err[:, :, y0:y1, x0:x1]
    return -10 * torch.log10(err.mean((1, 2, 3)) + 1e-12)


@torch.no_grad()
def psnr_by_region(G, z: torch.Tensor, batch: int = 64) -> dict[str, torch.Tensor]:
    """{"overall"|region: [n] per-image PSNR (dB)} of G(z) against render(factors(z)), region = inside its preset."""
    res = G.resolution
    vals: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(z), batch):
        zb = z[i:i + batch]
        fake, real = G(zb), render(factors_from_z(zb), res)
        vals.setdefault("overall", []).append(psnr_per_image(fake, real))
        for name in REGIONS:
            (box,) = preset_boxes(name, "toyfaces", res)
            vals.setdefault(name, []).append(psnr_per_image(fake, real, box))
    return {k: torch.cat(v) for k, v in vals.items()}


def heldout_psnr(G, n: int = 512, seed: int = HELDOUT_SEED, batch: int = 64) -> dict[str, dict[str, float]]:
    """{"overall"|region: {"mean", "p5", "min"}} over ``n`` held-out z (dB)."""
    return {k: {"mean": round(float(v.mean()), 2), "p5": round(float(v.quantile(0.05)), 2),
                "min": round(float(v.min()), 2)}
            for k, v in psnr_by_region(G, heldout_z(n, seed), batch).items()}


@torch.no_grad()
def regressor_r2(G=None, n: int = 1000, seed: int = HELDOUT_SEED + 1, regressor=None) -> dict[str, dict[str, float]]:
    """{factor: {"renders": R², "generated": R²}}; "generated" compares the regressor's reading of G(z)
    with factors(z) (absent when ``G`` is None)."""
    from .regressor import load_regressor, r2_scores

    model = regressor or load_regressor()
    z = heldout_z(n, seed)
    f = factors_from_z(z)
    read = lambda img: model(img)  # noqa: E731
    pred_r = torch.cat([read(render(f[i:i + 100])) for i in range(0, n, 100)])
    table = {name: {"renders": round(r, 4)} for name, r in zip(FACTORS, r2_scores(pred_r, f).tolist(), strict=True)}
    if G is not None:
        pred_g = torch.cat([read(G(z[i:i + 100])) for i in range(0, n, 100)])
        for name, r in zip(FACTORS, r2_scores(pred_g, f).tolist(), strict=True):
            table[name]["generated"] = round(r, 4)
    return table


@torch.no_grad()
def sweep_energy_share(resolution: int = 64, n_bases: int = 16, steps: int = 11, seed: int = 1) -> dict[str, float]:
    """{factor: share of a 0→1 sweep's pixel-change energy inside its region preset} for every region factor."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for region in REGIONS:
        (x0, y0, x1, y1), = preset_boxes(region, "toyfaces", resolution)
        for name in REGION_FACTORS[region]:
            i = FACTORS.index(name)
            energy = torch.zeros(resolution, resolution)
            for _ in range(n_bases):
                f = torch.rand(1, NUM_FACTORS, generator=g).repeat(steps, 1)
                f[:, i] = torch.linspace(0, 1, steps)
                img = render(f, resolution)
                energy += (img - img.mean(0, keepdim=True)).square().sum((0, 1))
            out[name] = round(float(energy[y0:y1, x0:x1].sum() / energy.sum()), 5)
    return out


@torch.no_grad()
def sample_grid(G, path: str | Path, n: int = 8, seed: int = 0, scale: int = 3) -> Path:
    """Write a PNG: top row render(factors(z)), bottom row G(z), for ``n`` z; returns the path."""
    import numpy as np
    from PIL import Image

    z = torch.randn(n, Z_DIM, generator=torch.Generator().manual_seed(seed))
    rows = [render(factors_from_z(z), G.resolution), G(z)]
    tiles = [((r + 1) / 2).clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy() for r in rows]
    sep = 2
    h = G.resolution
    canvas = np.full((2 * h + sep, n * h + (n - 1) * sep, 3), 255, np.uint8)
    for row, t in enumerate(tiles):
        for i in range(n):
            canvas[row * (h + sep):row * (h + sep) + h, i * (h + sep):i * (h + sep) + h] = t[i]
    img = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def hardware() -> str:
    """One line: CPU, cores, threads, torch version."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__} ({torch.get_num_threads()} threads)"


def write_recipe(path: str | Path, checkpoint_extra: dict, figures: dict) -> Path:
    """Write the recipe record (config, seed, training time, hardware, final figures) as JSON."""
    extra = dict(checkpoint_extra or {})
    rec = {
        "model": "toyfaces",
        "command": extra.get("command", "python -m mgm_analysis.generators.toyfaces.train"),
        "recipe": extra.get("recipe"),
        "steps_done": extra.get("steps_done"),
        "train_minutes": round(float(extra.get("minutes", 0.0)), 1),
        "train_hardware": extra.get("hardware"),
        "history": extra.get("history"),
        "stages": extra.get("stages"),
        "figures": figures,
    }
    path = Path(path)
    path.write_text(json.dumps(rec, indent=1) + "\n")
    return path
