"""Metrics of a discovered manifold (DESIGN §5): pure numpy functions, no torch.

Notation: frames x_i [n, H, W, 3] in [0, 1], reference x* [H, W, 3], mask M
[H, W] in [0, 1] with area share A, latents w_i, steps s_i = ‖w_{i+1} − w_i‖,
image steps d_i = RMS(x_{i+1} − x_i).

>>> import numpy as np
>>> M = np.zeros((4, 4)); M[:2] = 1
>>> ref = np.zeros((4, 4, 3)); fr = np.zeros((2, 4, 4, 3)); fr[:, :2] = 0.5
>>> locality(fr, ref, M)
1.0
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "locality", "locality_gain", "outside_change", "inside_change", "change_f1", "step_sizes", "step_cv",
    "image_steps", "image_step_cv", "jump_ratio", "curvature", "turning_angle", "perceptual_straightness",
    "loop_closure", "path_length", "intrinsic_dim", "layer_profile", "semantic_locality", "run_metrics",
]


def _check(frames, ref, mask=None):
    frames, ref = np.asarray(frames, np.float64), np.asarray(ref, np.float64)
    if frames.shape[1:] != ref.shape:
        raise ValueError(f"expected the same shape for frames[i] and reference, got {frames.shape[1:]} and {ref.shape}")
    if mask is not None:
        mask = np.asarray(mask, np.float64)
        if mask.shape != ref.shape[:2]:
            raise ValueError(f"expected a mask of {ref.shape[:2]}, got {mask.shape}")
    return frames, ref, mask


def locality(frames, ref, mask) -> float:
    """Σ_i ‖M⊙(x_i − x*)‖² / Σ_i ‖x_i − x*‖²: the share of change energy inside the mask (1 = perfectly local,
    the mask's area share A for a uniform change).  NaN when nothing changes."""
    frames, ref, mask = _check(frames, ref, mask)
    e = ((frames - ref) ** 2).sum(-1)  # [n, H, W]
    total = e.sum()
    return float((e * mask).sum() / total) if total > 0 else float("nan")


def locality_gain(frames, ref, mask) -> float:
    """locality / A: how many times more local than a uniform change (1 = no better than chance)."""
    return locality(frames, ref, mask) / float(np.mean(mask))


def outside_change(frames, ref, mask) -> float:
    """Mean over frames of the mean |x_i − x*| outside the mask."""
    frames, ref, mask = _check(frames, ref, mask)
    out = 1.0 - mask
    d = np.abs(frames - ref).mean(-1)
    return float(((d * out).sum((1, 2)) / out.sum()).mean())


def inside_change(frames, ref, mask, offset: float | None = None) -> dict:
    """Inside change: mean RMS and mean MSE of (x_i − x*) over the mask, and |mean MSE − c| when c is given.

    MSE is in the units of images in [0, 1]; the engine's l2 offset c is in [-1, 1] units (×4).
    """
    frames, ref, mask = _check(frames, ref, mask)
    e = ((frames - ref) ** 2).mean(-1)
    mse = (e * mask).sum((1, 2)) / mask.sum()
    out = {"rms": float(np.sqrt(mse).mean()), "mse": float(mse.mean())}
    if offset is not None:
        out["gap"] = float(abs(4.0 * mse.mean() - offset))
    return out


def change_f1(frames, ref, mask) -> float:
    """F1 of the top-|M| pixels of the summed change map against the mask (1 = the change sits on the mask)."""
    frames, ref, mask = _check(frames, ref, mask)
    change = ((frames - ref) ** 2).sum((0, -1)).ravel()
    m = mask.ravel() > 0.5
    k = int(m.sum())
    if k == 0 or change.sum() == 0:
        return float("nan")
    top = np.zeros_like(m)
    top[np.argsort(-change, kind="stable")[:k]] = True
    tp = float((top & m).sum())
    return 2 * tp / (top.sum() + m.sum())


def step_sizes(latents, closed: bool = False) -> np.ndarray:
    """s_i = ‖w_{i+1} − w_i‖ over the flattened latents [n, ...]."""
    w = np.asarray(latents, np.float64).reshape(len(latents), -1)
    d = np.diff(w, axis=0)
    if closed:
        d = np.concatenate([d, (w[:1] - w[-1:])])
    return np.linalg.norm(d, axis=1)


def _cv(x) -> float:
    x = np.asarray(x, np.float64)
    m = x.mean()
    return float(x.std() / m) if m > 0 else float("nan")


def step_cv(latents, closed: bool = False) -> float:
    """std(s)/mean(s): 0 for constant speed."""
    return _cv(step_sizes(latents, closed))


def image_steps(frames) -> np.ndarray:
    """d_i = RMS(x_{i+1} − x_i)."""
    f = np.asarray(frames, np.float64)
    return np.sqrt(((f[1:] - f[:-1]) ** 2).reshape(len(f) - 1, -1).mean(1))


def image_step_cv(frames) -> float:
    return _cv(image_steps(frames))


def jump_ratio(frames) -> float:
    """max(d)/median(d): ≈ 1 for even steps; > 3 is a visible pop."""
    d = image_steps(frames)
    med = np.median(d)
    return float(d.max() / med) if med > 0 else float("nan")


def curvature(latents) -> float:
    """mean ‖w_{i+1} − 2w_i + w_{i−1}‖ / mean(s): 0 on a straight constant-speed path."""
    w = np.asarray(latents, np.float64).reshape(len(latents), -1)
    if len(w) < 3:
        return float("nan")
    second = np.linalg.norm(w[2:] - 2 * w[1:-1] + w[:-2], axis=1)
    s = step_sizes(w).mean()
    return float(second.mean() / s) if s > 0 else float("nan")


def turning_angle(latents) -> float:
    """Mean angle (degrees) between consecutive steps: 0 on a straight path."""
    w = np.asarray(latents, np.float64).reshape(len(latents), -1)
    d = np.diff(w, axis=0)
    a, b = d[:-1], d[1:]
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    ok = denom > 0
    if not ok.any():
        return float("nan")
    cos = np.clip((a * b).sum(1)[ok] / denom[ok], -1, 1)
    return float(np.degrees(np.arccos(cos)).mean())


def perceptual_straightness(frames) -> float:
    """Mean of d(x_{i−1}, x_{i+1}) / (d_{i−1} + d_i): 1 for a perceptually straight path, lower when it bends."""
    f = np.asarray(frames, np.float64)
    if len(f) < 3:
        return float("nan")
    d = image_steps(f)
    skip = np.sqrt(((f[2:] - f[:-2]) ** 2).reshape(len(f) - 2, -1).mean(1))
    denom = d[:-1] + d[1:]
    ok = denom > 0
    return float((skip[ok] / denom[ok]).mean()) if ok.any() else float("nan")


def loop_closure(frames) -> float:
    """RMS(x_last − x_first) / median(d): ≈ 1 for a seamless loop (the closing step is an ordinary step)."""
    f = np.asarray(frames, np.float64)
    med = np.median(image_steps(f))
    gap = np.sqrt(((f[-1] - f[0]) ** 2).mean())
    return float(gap / med) if med > 0 else float("nan")


def path_length(frames) -> float:
    """Σ d_i (RMS units of [0, 1] images)."""
    return float(image_steps(frames).sum())


def intrinsic_dim(latents, var: float = 0.9) -> dict:
    """PCA of the trajectory: components for ``var`` of the variance, and the participation ratio (Σλ)²/Σλ²."""
    w = np.asarray(latents, np.float64).reshape(len(latents), -1)
    w = w - w.mean(0)
    s = np.linalg.svd(w, compute_uv=False)
    lam = s**2
    if lam.sum() <= 0:
        return {"n90": 0, "participation_ratio": 0.0}
    frac = np.cumsum(lam) / lam.sum()
    return {"n90": int(np.searchsorted(frac, var - 1e-12) + 1), "participation_ratio": float(lam.sum() ** 2 / (lam**2).sum())}


def layer_profile(latents, w_ref) -> list[float]:
    """Share of Σ_i ‖w_i[l] − w*[l]‖² per W+ layer l (sums to 1)."""
    w = np.asarray(latents, np.float64)
    e = ((w - np.asarray(w_ref, np.float64)[None]) ** 2).sum((0, 2))
    return (e / e.sum()).tolist() if e.sum() > 0 else [0.0] * w.shape[1]


def semantic_locality(factors, ref_factors, region_idx, scale=None) -> float:
    """Share of (normalised) factor change that falls in the region's own factors.

    factors [n, F] estimated for the frames, ref_factors [F] for the reference,
    region_idx the indices of the region's factors, scale [F] the factors'
    natural spread (default 1: factors already in [0, 1]).
    """
    f = np.asarray(factors, np.float64)
    d = (f - np.asarray(ref_factors, np.float64)[None]) ** 2
    if scale is not None:
        d = d / np.asarray(scale, np.float64)[None] ** 2
    total = d.sum()
    return float(d[:, list(region_idx)].sum() / total) if total > 0 else float("nan")


def run_metrics(latents, w_ref, frames, ref_img, mask, *, layers=None, offset=None, closed=False) -> dict:
    """All metrics of one run (those that need only its arrays), as a JSON-ready dict."""
    frames = np.asarray(frames)
    lat = np.asarray(latents)
    free = lat[:, layers[0]:layers[1]] if layers else lat
    inside = inside_change(frames, ref_img, mask, offset)
    dim = intrinsic_dim(free)
    m = {
        "locality": locality(frames, ref_img, mask),
        "locality_gain": locality_gain(frames, ref_img, mask),
        "outside_change": outside_change(frames, ref_img, mask),
        "inside_rms": inside["rms"],
        "inside_mse": inside["mse"],
        "change_f1": change_f1(frames, ref_img, mask),
        "step_cv": step_cv(free, closed),
        "image_step_cv": image_step_cv(frames),
        "jump_ratio": jump_ratio(frames),
        "curvature": curvature(free),
        "turning_angle": turning_angle(free),
        "perceptual_straightness": perceptual_straightness(frames),
        "path_length": path_length(frames),
        "intrinsic_dim_90": dim["n90"],
        "participation_ratio": dim["participation_ratio"],
        "layer_profile": layer_profile(lat, w_ref),
    }
    if "gap" in inside:
        m["inside_gap"] = inside["gap"]
    if closed:
        m["loop_closure"] = loop_closure(frames)
    return m


def recompute_metrics(root) -> int:
    """Recompute the array-based metrics of every run in a store (keeps semantic_locality); returns the count."""
    from ..store import iter_runs, update_run_meta

    n = 0
    for run in iter_runs(root):
        cfg = run.meta.get("config", {})
        closed = bool(cfg.get("closed_loop"))
        offset = cfg.get("offset") if cfg.get("distance") == "l2" else None
        m = run_metrics(run.latents, run.reference, run.frames, run.reference_img, run.mask,
                        layers=run.layers, offset=offset, closed=closed)
        update_run_meta(run.path, {"metrics": m})
        n += 1
    return n
