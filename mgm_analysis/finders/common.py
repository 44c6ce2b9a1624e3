"""What every direction finder shares: free-layer directions, the straight path, equal strength, the oracle.

A *direction* lives in the free W+ layers ``layer_start:layer_end``: an array
``[F, w_dim]`` (F free layers).  Methods that find a direction in w
(GANSpace, SeFa, InterFaceGAN) apply it to every free layer, as those papers
edit a range of layers; the masked Jacobian finds one in the whole free space.
Directions are normalised to unit length over the free layers (flattened), so
``scale`` is the latent distance of a path's end from w*.

The path of a direction ``d`` at scale ``s`` is the straight slider through the
reference, ``w_i = w* + s·t_i·d`` with ``t_i`` evenly spaced in [−1, 1] (the
free layers only; the others stay w*): the edit both ways, as the methods'
papers show it.  A *plane* path (the ``jacobian_loop`` baseline) has two
directions ``d = [d₁, d₂]`` and positions ``t_i = (cos θ_i, sin θ_i)``:
``w_i = w* + s·(t_i1·d₁ + t_i2·d₂)``, an ellipse (or an arc of it) through
w*'s neighbourhood.  *Equal strength*: ``s`` is found by bisection (in log s)
so that the mean inside distance over the frames,
``mean_i D_in(G(w_i), G(w*))`` — the discovery engine's own ``D_in`` on the
images clamped to [-1, 1], the display range in which frames are saved —
equals the target offset (K·c at strength K, c the one a discovery run of the
region uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..directions import free_layer_chunks, generator_key  # noqa: F401  (common paths use them)
from ..errors import MGMError

__all__ = ["unit_directions", "broadcast_direction", "line_latents", "path_t", "ellipse_t", "path_offsets",
           "mean_inside_distance", "equal_strength", "Strength",]


def broadcast_direction(v, n_free: int) -> np.ndarray:
    """A w-space direction [w_dim] -> the same direction on every free layer [n_free, w_dim]."""
    v = np.asarray(v, np.float64)
    if v.ndim != 1:
        raise ValueError(f"expected a w-space direction [w_dim], got shape {list(v.shape)}")
    return np.broadcast_to(v, (n_free, v.shape[0])).copy()


def unit_directions(dirs) -> np.ndarray:
    """[K, F, w_dim] directions, each scaled to unit norm over its flattened free layers."""
    d = np.asarray(dirs, np.float64)
    if d.ndim != 3:
        raise ValueError(f"expected directions [K, F, w_dim], got shape {list(d.shape)}")
    n = np.linalg.norm(d.reshape(len(d), -1), axis=1)
    if (n <= 0).any() or not np.isfinite(n).all():
        raise MGMError("a direction has zero or non-finite length; it cannot make a path")
    return d / n[:, None, None]


def path_t(n_frames: int) -> np.ndarray:
    """The path's positions t_i: ``n_frames`` values evenly spaced in [−1, 1]."""
    if n_frames < 2:
        raise ValueError(f"a path needs at least 2 frames, got {n_frames}")
    return np.linspace(-1.0, 1.0, n_frames)


def ellipse_t(n_frames: int, sweep: float, closed: bool) -> np.ndarray:
    """A plane path's positions [n, 2] = (cos θ_i, sin θ_i): a full turn θ_i = 2π·i/n when ``closed``, else
    ``n_frames`` angles evenly over ``sweep`` radians centred on 0 (on the first direction), as the discovery
    engine's chain (:func:`mgm_analysis.losses.chain_angles`)."""
    from ..losses import chain_angles

    theta = chain_angles(n_frames, float(sweep), closed).numpy()
    return np.stack([np.cos(theta), np.sin(theta)], 1)


def path_offsets(dirs, scales, t) -> np.ndarray:
    """The free-layer offsets [K, n, F, D] of K paths at their scales [K]: ``s_k·t_i·d_k`` for a line (``t`` [n],
    ``dirs`` [K, F, D]) or ``s_k·(t_i1·d_k1 + t_i2·d_k2)`` for a plane path (``t`` [n, 2], ``dirs`` [K, 2, F, D])."""
    dirs, t = np.asarray(dirs, np.float64), np.asarray(t, np.float64)
    s = np.asarray(scales, np.float64).reshape(-1)[:, None, None, None]
    if t.ndim == 1:
        return s * t[None, :, None, None] * dirs[:, None]
    if t.ndim != 2 or dirs.ndim != 4 or dirs.shape[1] != t.shape[1]:
        raise ValueError(f"a plane path needs t [n, j] and directions [K, j, F, D], got {list(t.shape)} and "
                         f"{list(dirs.shape)}")
    return s * np.einsum("nj,kjfd->knfd", t, dirs)


def line_latents(w_ref, direction, scale: float, t, layers: tuple[int, int]) -> np.ndarray:
    """W+ latents [n, num_ws, w_dim] = w* + scale·t_i·direction on the free layers (the rest w*); with ``t``
    [n, 2] and ``direction`` [2, F, D], the plane path w* + scale·(t_i1·d₁ + t_i2·d₂) (:func:`path_offsets`)."""
    w_ref = np.asarray(w_ref, np.float32)
    d = np.asarray(direction, np.float64)
    ls, le = layers
    if d.shape[-2:] != (le - ls, w_ref.shape[1]):
        raise ValueError(f"direction must be [{le - ls}, {w_ref.shape[1]}] (free layers x w_dim), got {list(d.shape)}")
    t = np.asarray(t, np.float64)
    ws = np.repeat(w_ref[None], len(t), 0).astype(np.float64)
    ws[:, ls:le] += path_offsets(d[None], [scale], t)[0]
    return ws.astype(np.float32)


@torch.no_grad()
def mean_inside_distance(G, w_ref, dirs, scales, t, layers, dist, ref_img=None, mask=None):
    """[K] mean over the path's frames of D_in for each direction ``dirs[k]`` at ``scales[k]``.

    ``dist``: the engine's distance module ``(img, ref) -> (d_in, d_out)``; ``ref_img`` = G(w*) [1, 3, H, W].
    D_in is measured on the images clamped to [-1, 1], as the frames are saved (a generator's output can leave
    that range, and the part beyond it never shows).  ``t`` [n] (lines) or [n, 2] (plane paths, ``dirs``
    [K, 2, F, D]; :func:`path_offsets`).
    With ``mask`` [H, W] also returns [K] the locality of each path's frames (images clamped to [0, 1], as
    :func:`mgm_analysis.metrics.locality` of the rendered frames).
    """
    from ..metrics import locality

    dev = G.w_avg.device
    w_ref_t = torch.as_tensor(np.asarray(w_ref, np.float32), device=dev)
    if ref_img is None:
        ref_img = G.synthesis(w_ref_t[None])
    ref_img = ref_img.clamp(-1, 1)
    dirs = np.asarray(dirs, np.float64)
    t = np.asarray(t, np.float64)
    ls, le = layers
    k, n = len(dirs), len(t)
    offs = path_offsets(dirs, scales, t)  # [K, n, F, D]
    ws = w_ref_t[None].repeat(k * n, 1, 1)
    ws[:, ls:le] += torch.as_tensor(offs.reshape(k * n, le - ls, -1), dtype=torch.float32, device=dev)
    d_all, imgs = [], []
    i = 0
    for size in free_layer_chunks(k * n, G):
        img = G.synthesis(ws[i:i + size]).clamp(-1, 1)
        d_in, _ = dist(img, ref_img)
        d_all.append(d_in.detach().double().cpu())
        if mask is not None:
            imgs.append(((img + 1) / 2).permute(0, 2, 3, 1).float().cpu().numpy())
        i += size
    d = torch.cat(d_all).reshape(k, n).mean(1).numpy()
    if mask is None:
        return d
    frames = np.concatenate(imgs).reshape(k, n, *imgs[0].shape[1:])
    ref01 = ((ref_img[0] + 1) / 2).permute(1, 2, 0).float().cpu().numpy()
    return d, np.array([locality(frames[j], ref01, mask) for j in range(k)])


@dataclass
class Strength:
    """Result of :func:`equal_strength`: per direction the scale, the mean D_in reached, and whether c was hit."""

    scales: np.ndarray        # [K]
    d_in: np.ndarray          # [K] mean D_in over the frames at that scale
    reached: np.ndarray       # [K] bool: |d_in − c| <= tol·c
    evaluations: int          # batched generator passes
    locality: np.ndarray | None = None   # [K] locality of the path's frames at that scale (with ``mask``)


def equal_strength(G, w_ref, dirs, c: float, t, layers, dist, *, tol: float = 1e-3, max_scale: float = 1e3,
                   start: float = 1.0, max_iter: int = 60, mask=None) -> Strength:
    """Scale each unit direction so that the mean inside distance of its path equals ``c`` (bisection in log s).

    D_in on the images clamped to [-1, 1] (:func:`mean_inside_distance`), so the frames as saved meet ``c``;
    ``t`` [n] for lines, [n, 2] for plane paths (``dirs`` [K, 2, F, D]).

    A bracket ``[lo, hi]`` with ``D(lo) < c ≤ D(hi)`` is grown from ``start``
    (D(0) = 0; each growth step multiplies by 2–100, guessed from D ∝ s²), then
    halved in log-scale until ``|D − c| ≤ tol·c``; every other step tries the
    log-log secant point inside the bracket instead of the midpoint (D is nearly
    quadratic in s, so that point is close), which keeps the bracket and cuts the
    number of generator passes.  All directions still searching are evaluated in
    one batch per step.  A direction whose path never reaches c below
    ``max_scale`` is marked not ``reached`` (it cannot change the region that much).
    With ``mask``, the locality of each path at its returned scale comes along (no extra rendering).
    """
    if not c > 0:
        raise MGMError(f"the target offset c must be > 0, got {c}")
    dirs = np.asarray(dirs, np.float64)
    k = len(dirs)
    dev = G.w_avg.device
    with torch.no_grad():
        ref_img = G.synthesis(torch.as_tensor(np.asarray(w_ref, np.float32), device=dev)[None])

    loc_hi, best_loc = np.full(k, np.nan), np.full(k, np.nan)

    def D(idx, s, into=None):
        if mask is None:
            return mean_inside_distance(G, w_ref, dirs[idx], s, t, layers, dist, ref_img)
        d, loc = mean_inside_distance(G, w_ref, dirs[idx], s, t, layers, dist, ref_img, mask)
        if into is not None:
            into[idx] = loc
        D.last = loc
        return d

    lo, d_lo = np.zeros(k), np.zeros(k)
    hi = np.full(k, float(start))
    d_hi = D(np.arange(k), hi, loc_hi)
    evals = 1
    todo = np.flatnonzero(d_hi < c)
    while len(todo):                                   # grow the bracket
        lo[todo], d_lo[todo] = hi[todo], d_hi[todo]
        ratio = np.where(d_lo[todo] > 0, np.sqrt(c / np.maximum(d_lo[todo], 1e-300)) * 1.2, 100.0)
        hi[todo] = np.minimum(hi[todo] * np.clip(ratio, 2.0, 100.0), max_scale)
        d_hi[todo] = D(todo, hi[todo], loc_hi)
        evals += 1
        todo = todo[(d_hi[todo] < c) & (hi[todo] < max_scale)]
    bracketed = np.isfinite(d_hi) & (d_hi >= c)
    best_s, best_d, best_loc = hi.copy(), d_hi.copy(), loc_hi.copy()
    active = np.flatnonzero(bracketed & (np.abs(d_hi - c) > tol * c))
    it = 0
    while len(active) and it < max_iter:
        it += 1
        a_lo, a_hi = lo[active], hi[active]
        mid = np.where(a_lo > 0, np.sqrt(a_lo * np.maximum(a_hi, 1e-300)), a_hi / 2)
        if it % 2 == 1:                                # log-log secant point, kept inside the bracket
            ok = (a_lo > 0) & (d_lo[active] > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                x0, x1 = np.log(np.maximum(a_lo, 1e-300)), np.log(a_hi)
                y0, y1 = np.log(np.maximum(d_lo[active], 1e-300)), np.log(d_hi[active])
                x = x0 + (np.log(c) - y0) * (x1 - x0) / (y1 - y0)
            x = np.clip(x, x0 + 0.02 * (x1 - x0), x1 - 0.02 * (x1 - x0))
            mid = np.where(ok & np.isfinite(x), np.exp(x), mid)
        d = D(active, mid)
        evals += 1
        above = d >= c
        hi[active[above]], d_hi[active[above]] = mid[above], d[above]
        lo[active[~above]], d_lo[active[~above]] = mid[~above], d[~above]
        closer = np.abs(d - c) < np.abs(best_d[active] - c)
        best_s[active[closer]], best_d[active[closer]] = mid[closer], d[closer]
        if mask is not None:
            best_loc[active[closer]] = D.last[closer]
        active = active[np.abs(d - c) > tol * c]
    reached = bracketed & (np.abs(best_d - c) <= tol * c)
    return Strength(scales=best_s, d_in=best_d, reached=reached, evaluations=evals,
                    locality=best_loc if mask is not None else None)


def check_finite(name: str, arr) -> np.ndarray:
    a = np.asarray(arr)
    if not np.isfinite(a).all():
        raise MGMError(f"{name}: the computation produced NaN or inf; the generator may be broken")
    return a


def fmt_seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"
