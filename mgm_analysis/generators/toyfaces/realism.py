"""Realism of toyfaces frames: is each frame a face the procedural renderer can draw?

A chain can explore its region by leaving the faces the model was trained on
(pale, washed-out lips; one eye without its pupil) — images no locality or
smoothness metric objects to.  On toyfaces the faces have a ground truth: the
renderer.  A frame's *realism error* is the RMS difference, inside the region,
between the frame and the renderer's drawing of the factors read from that
frame by the shipped factor regressor (which reads all 17 factors of generated
faces with R² ≥ 0.947, so the redrawing is the same face when the frame is
one the renderer can draw)::

    e(x) = √( Σ_p M_p · mean_c (x − render(read(x)))²_{p,c} / Σ_p M_p )   (images in [0, 1])

The generator itself does not reproduce the renderer exactly, so the error is
judged against the generator's own random samples at the same truncation ψ:
the *bar* is the 95th percentile of e over 512 samples (seeded), and a run
reports ``realism`` = the worst frame's e / bar (≤ 1: every frame within what
the generator's own faces show), ``realism_frames`` (each frame's ratio) and
``realism_bar`` (the bar itself).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["realism_errors", "realism_bar", "realism_metrics", "BAR_SAMPLES", "BAR_QUANTILE"]

#: random samples of the generator that set the bar, and the percentile that is the bar
BAR_SAMPLES, BAR_QUANTILE, BAR_SEED = 512, 95.0, 20_261_207

_MAPS: dict = {}   # (generator key, ψ) -> [BAR_SAMPLES, H, W] squared error maps of the samples


def _error_maps(img: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """img [B, 3, H, W] in [-1, 1] -> [B, H, W] squared difference to the redrawing, in [0, 1] units."""
    from .regressor import predict_factors
    from .renderer import render

    out = []
    for i in range(0, len(img), batch):
        x = img[i:i + batch].detach().float().cpu().clamp(-1, 1)
        with torch.no_grad():
            redrawn = render(predict_factors(x), x.shape[-1])
        out.append(((x - redrawn) / 2).square().mean(1))
    return torch.cat(out) if out else torch.zeros(0, *img.shape[-2:])


def _masked_rms(maps: torch.Tensor, mask) -> np.ndarray:
    m = torch.as_tensor(np.asarray(mask, np.float32))
    if maps.shape[-2:] != m.shape:
        raise ValueError(f"expected a mask of {list(maps.shape[-2:])}, got {list(m.shape)}")
    if not m.sum() > 0:
        return np.full(len(maps), np.nan)
    return ((maps * m).sum((1, 2)) / m.sum()).sqrt().double().numpy()


def realism_errors(frames, mask) -> np.ndarray:
    """[n] realism error e of each frame (frames [n, H, W, 3] in [0, 1], as saved; mask [H, W])."""
    f = np.asarray(frames, np.float32)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"expected frames [n, H, W, 3], got {list(f.shape)}")
    x = torch.from_numpy(f).permute(0, 3, 1, 2) * 2 - 1
    return _masked_rms(_error_maps(x), mask)


def _sample_maps(G, truncation: float, cache_dir=None) -> torch.Tensor:
    """[BAR_SAMPLES, H, W] error maps of G's seeded random samples at ψ ``truncation``: kept in this process per
    generator and ψ, and with ``cache_dir`` in ``<cache_dir>/realism-<sha256[:16]>-psi<ψ>.npy`` (float16), so a
    new process does not render the samples again."""
    sha = getattr(getattr(G, "info", None), "sha256", None)
    key = (sha or id(G), float(truncation))
    if key in _MAPS:
        return _MAPS[key]
    path = Path(cache_dir) / f"realism-{sha[:16]}-psi{float(truncation):g}.npy" if cache_dir and sha else None
    if path is not None and path.exists():
        try:
            maps = np.load(path, allow_pickle=False)
            if maps.shape == (BAR_SAMPLES, G.resolution, G.resolution):
                _MAPS[key] = torch.from_numpy(maps.astype(np.float32))
                return _MAPS[key]
        except (OSError, ValueError):
            pass  # an unreadable cache file is made again
    z = torch.randn(BAR_SAMPLES, G.z_dim, generator=torch.Generator().manual_seed(BAR_SEED))
    dev = G.w_avg.device
    imgs = []
    with torch.no_grad():
        for i in range(0, BAR_SAMPLES, 64):
            ws = G.broadcast(G.mapping(z[i:i + 64].to(dev), truncation))
            imgs.append(G.synthesis(ws).cpu())
    _MAPS[key] = _error_maps(torch.cat(imgs))
    if path is not None:
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower next time
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npy")
            np.save(tmp, _MAPS[key].numpy().astype(np.float16))
            os.replace(tmp, path)
    return _MAPS[key]


def realism_bar(G, mask, truncation: float = 0.7, cache_dir=None) -> float:
    """The 95th percentile of the realism error of G's own random samples (ψ ``truncation``) in ``mask``.

    The samples' error maps are kept per generator and ψ (and on disk with ``cache_dir``), so the bar of any
    other mask costs a sum.
    """
    return float(np.percentile(_masked_rms(_sample_maps(G, truncation, cache_dir), mask), BAR_QUANTILE))


def realism_metrics(G, frames, mask, truncation: float = 0.7, cache_dir=None) -> dict:
    """{"realism": worst frame's error / bar, "realism_frames": [n] each frame's ratio, "realism_bar": bar}."""
    bar = realism_bar(G, mask, truncation, cache_dir)
    ratio = realism_errors(frames, mask) / bar if bar > 0 else np.full(len(frames), np.nan)
    return {"realism": float(np.max(ratio)) if len(ratio) else float("nan"),
            "realism_frames": [float(v) for v in ratio], "realism_bar": bar}
