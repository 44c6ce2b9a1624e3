"""The built-in metric functions — pure numpy; each checks its shapes, returns a float (or a small dict / list) and
is NaN where undefined — and, at the end, their entries in the registry: a built-in metric is its function and
one ``_builtin`` line here."""


from __future__ import annotations

import numpy as np

from .registry import NAN, _builtin, _quiet


# ------------------------------------------------------------------ checks
def _images(frames, ref, mask=None):
    frames, ref = np.asarray(frames, np.float64), np.asarray(ref, np.float64)
    if ref.ndim != 3 or frames.ndim != 4:
        raise ValueError(f"expected frames [n, H, W, C] and a reference [H, W, C], got {list(frames.shape)} and "
                         f"{list(ref.shape)}")
    if frames.shape[1:] != ref.shape:
        raise ValueError(f"expected the same shape for frames[i] and reference, got {frames.shape[1:]} and {ref.shape}")
    if mask is not None:
        mask = np.asarray(mask, np.float64)
        if mask.shape != ref.shape[:2]:
            raise ValueError(f"expected a mask of {ref.shape[:2]} (the images' H, W), got {mask.shape}")
    return frames, ref, mask


def _flat(latents, min_len: int = 1) -> np.ndarray:
    w = np.asarray(latents, np.float64)
    if w.ndim < 2:
        raise ValueError(f"expected latents [n, ...] with n >= {min_len}, got shape {list(w.shape)}")
    return w.reshape(len(w), int(np.prod(w.shape[1:])))  # (not -1: n may be 0)


def _frames(frames) -> np.ndarray:
    f = np.asarray(frames, np.float64)
    if f.ndim != 4:
        raise ValueError(f"expected frames [n, H, W, C], got shape {list(f.shape)}")
    return f


def _rms(a) -> np.ndarray:
    """RMS over all but the first axis."""
    a = np.asarray(a, np.float64)
    return np.sqrt((a**2).reshape(len(a), int(np.prod(a.shape[1:]))).mean(1))


# ---------------------------------------------------------------- locality
@_quiet
def locality(frames, ref, mask) -> float:
    """Share of the change energy inside the mask.

    ``Σ_i ‖M ⊙ (x_i − x*)‖² / Σ_i ‖x_i − x*‖²`` (squared differences summed over
    channels, then weighted per pixel by M).  1 = every change inside the
    region; a uniform change gives the area share A.  NaN when nothing changes.

    >>> import numpy as np
    >>> M = np.zeros((2, 2)); M[0, 0] = 1
    >>> round(locality(np.full((3, 2, 2, 3), 0.4), np.zeros((2, 2, 3)), M), 12)
    0.25
    """
    frames, ref, mask = _images(frames, ref, mask)
    e = ((frames - ref) ** 2).sum(-1)  # [n, H, W]
    total = e.sum()
    return float((e * mask).sum() / total) if total > 0 else NAN


@_quiet
def locality_gain(frames, ref, mask) -> float:
    """``locality / A``: how many times more local than a uniform change (1 = chance, 1/A = perfect).

    >>> import numpy as np
    >>> M = np.zeros((2, 2)); M[0, 0] = 1
    >>> f = np.zeros((1, 2, 2, 3)); f[0, 0, 0] = 1
    >>> locality_gain(f, np.zeros((2, 2, 3)), M)
    4.0
    """
    a = float(np.mean(mask))
    return locality(frames, ref, mask) / a if a > 0 else NAN


@_quiet
def outside_change(frames, ref, mask) -> float:
    """Mean over frames of the mean absolute change outside the mask.

    ``mean_i [ Σ_p (1 − M_p)·mean_c |x_i − x*|_{p,c} / Σ_p (1 − M_p) ]`` in units of
    [0, 1] images; → 0 for a local manifold.  NaN when the mask covers everything.
    """
    frames, ref, mask = _images(frames, ref, mask)
    out = 1.0 - mask
    if not out.sum() > 0 or len(frames) == 0:
        return NAN
    d = np.abs(frames - ref).mean(-1)
    return float(((d * out).sum((1, 2)) / out.sum()).mean())


@_quiet
def inside_change(frames, ref, mask, offset=None, distance: str = "l2") -> dict:
    """Change inside the region, and its gap to the target distance ``c``.

    Per frame ``mse_i = Σ_p M_p·mean_c (x_i − x*)²_{p,c} / Σ_p M_p`` (images in
    [0, 1]).  Returns ``rms`` = mean_i √mse_i, ``mse`` = mean_i mse_i, ``d_in`` =
    the engine's l2 ``D_in`` (images in [-1, 1], i.e. 4·mse) and, when
    ``offset`` (c: a float, or one value per frame for a ramp) is given with the
    l2 distance, ``gap`` = |mean_i D_in,i − mean_i c_i|.  (With LPIPS the gap
    needs the network, which analysis does not run.)

    >>> import numpy as np
    >>> f = np.full((2, 2, 2, 3), 0.1)
    >>> r = inside_change(f, np.zeros((2, 2, 3)), np.ones((2, 2)), offset=0.04)
    >>> round(r["rms"], 6), round(r["d_in"], 6), round(r["gap"], 6)
    (0.1, 0.04, 0.0)
    """
    frames, ref, mask = _images(frames, ref, mask)
    if not mask.sum() > 0 or len(frames) == 0:  # an empty (or NaN) mask, no frames: undefined
        out = {"rms": NAN, "mse": NAN, "d_in": NAN}
        return {**out, "gap": NAN} if offset is not None and distance == "l2" else out
    e = ((frames - ref) ** 2).mean(-1)
    mse = (e * mask).sum((1, 2)) / mask.sum()
    out = {"rms": float(np.sqrt(mse).mean()), "mse": float(mse.mean()), "d_in": float(4.0 * mse.mean())}
    if offset is not None and distance == "l2":
        c = np.broadcast_to(np.asarray(offset, np.float64), mse.shape)
        out["gap"] = float(abs(4.0 * mse.mean() - c.mean()))
    return out


@_quiet
def change_f1(frames, ref, mask) -> float:
    """F1 of the top-|M| pixels of the change map against the mask.

    The change map is ``Σ_i Σ_c (x_i − x*)²``; its |M| largest pixels (|M| =
    pixels with M > 0.5) are compared with the mask: ``F1 = 2·TP / (|top| + |M|)``.
    1 = the change sits exactly on the region.  NaN for an empty mask, no change or non-finite images.

    >>> import numpy as np
    >>> M = np.zeros((3, 3)); M[1, 1:] = 1
    >>> f = np.zeros((1, 3, 3, 3)); f[0, 1, 1:] = 0.5
    >>> change_f1(f, np.zeros((3, 3, 3)), M)
    1.0
    """
    frames, ref, mask = _images(frames, ref, mask)
    change = ((frames - ref) ** 2).sum((0, -1)).ravel()
    m = mask.ravel() > 0.5
    k = int(m.sum())
    if k == 0 or not np.isfinite(change).all() or change.sum() == 0:
        return NAN
    top = np.zeros_like(m)
    top[np.argsort(-change, kind="stable")[:k]] = True
    return float(2 * (top & m).sum() / (top.sum() + m.sum()))


# -------------------------------------------------------------- smoothness
@_quiet
def step_sizes(latents, closed: bool = False) -> np.ndarray:
    """``s_i = ‖w_{i+1} − w_i‖`` over the flattened latents [n, ...] -> [n − 1] (or [n] with the closing step)."""
    w = _flat(latents)
    d = np.diff(w, axis=0)
    if closed:
        d = np.concatenate([d, w[:1] - w[-1:]])
    return np.linalg.norm(d, axis=1)


def _cv(x) -> float:
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return NAN
    m = x.mean()
    return float(x.std() / m) if m > 0 else NAN


@_quiet
def step_cv(latents, closed: bool = False) -> float:
    """``std(s) / mean(s)``: 0 at constant speed in latent space.

    >>> import numpy as np
    >>> step_cv(np.arange(5.0)[:, None])
    0.0
    """
    return _cv(step_sizes(latents, closed))


@_quiet
def image_steps(frames) -> np.ndarray:
    """``d_i = RMS(x_{i+1} − x_i)`` -> [n − 1] (units of [0, 1] images)."""
    f = _frames(frames)
    return _rms(f[1:] - f[:-1])


@_quiet
def image_step_cv(frames) -> float:
    """``std(d) / mean(d)``: 0 when every frame changes the image by the same amount."""
    return _cv(image_steps(frames))


@_quiet
def jump_ratio(frames) -> float:
    """``max(d) / median(d)``: ≈ 1 for even steps; above 3 a jump is visible in the animation.

    >>> import numpy as np
    >>> f = np.zeros((4, 1, 1, 3)); f[1:] = [[[0.1]]], [[[0.2]]], [[[0.6]]]
    >>> round(jump_ratio(f), 6)
    4.0
    """
    d = image_steps(frames)
    if d.size == 0:
        return NAN
    med = np.median(d)
    return float(d.max() / med) if med > 0 else NAN


@_quiet
def curvature(latents, closed: bool = False) -> float:
    """``mean_i ‖w_{i+1} − 2w_i + w_{i−1}‖ / mean(s)``: 0 on a straight constant-speed path.

    For a regular k-gon (a closed loop) it is ``2·sin(π/k)``.
    """
    w = _flat(latents)
    if closed:
        second = np.roll(w, -1, 0) - 2 * w + np.roll(w, 1, 0)
    elif len(w) < 3:
        return NAN
    else:
        second = w[2:] - 2 * w[1:-1] + w[:-2]
    if len(w) == 0:
        return NAN
    s = step_sizes(w, closed).mean()
    return float(np.linalg.norm(second, axis=1).mean() / s) if s > 0 else NAN


@_quiet
def turning_angle(latents, closed: bool = False) -> float:
    """Mean angle in degrees between consecutive steps ``w_i − w_{i−1}`` and ``w_{i+1} − w_i``: 0 on a straight path.

    A regular k-gon turns by 360/k at every vertex.
    """
    w = _flat(latents)
    d = (np.roll(w, -1, 0) - w) if closed else np.diff(w, axis=0)
    a, b = (d, np.roll(d, -1, 0)) if closed else (d[:-1], d[1:])
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    ok = denom > 0
    if not ok.any():
        return NAN
    cos = np.clip((a * b).sum(1)[ok] / denom[ok], -1, 1)
    return float(np.degrees(np.arccos(cos)).mean())


@_quiet
def perceptual_straightness(frames) -> float:
    """Mean over i of ``RMS(x_{i+1} − x_{i−1}) / (d_{i−1} + d_i)`` (triangle inequality: ≤ 1).

    1 when each frame lies on the straight image-space segment between its
    neighbours; lower when the path bends or doubles back (0.5·√2 at a right angle).
    """
    f = _frames(frames)
    if len(f) < 3:
        return NAN
    d = image_steps(f)
    skip = _rms(f[2:] - f[:-2])
    denom = d[:-1] + d[1:]
    ok = denom > 0
    return float((skip[ok] / denom[ok]).mean()) if ok.any() else NAN


@_quiet
def loop_closure(frames) -> float:
    """``RMS(x_{n−1} − x_0) / median(d)`` for closed runs: ≈ 1 when the closing step is an ordinary step.

    0 would mean the last frame repeats the first; much above 1, a visible jump when the loop restarts.
    """
    f = _frames(frames)
    d = image_steps(f)
    if d.size == 0:
        return NAN
    med = np.median(d)
    return float(_rms(f[-1:] - f[:1])[0] / med) if med > 0 else NAN


@_quiet
def path_length(frames) -> float:
    """``Σ_i d_i``: length of the path in image space (RMS units of [0, 1] images); NaN without frames."""
    f = _frames(frames)
    return float(image_steps(f).sum()) if len(f) else NAN


# ------------------------------------------------------------------ extent
def _masked_gram(frames, ref, mask):
    """Distances inside the mask: [n] ‖M(x_i − x*)‖ and [n, n] ‖M(x_i − x_j)‖, with
    ``‖M y‖ = √(Σ_p M_p Σ_c y_{p,c}²)`` (squared differences weighted by M, as in :func:`locality`)."""
    frames, ref, mask = _images(frames, ref, mask)
    y = ((frames - ref) * np.sqrt(np.clip(mask, 0, None))[None, :, :, None]).reshape(len(frames),
                                                                                     int(np.prod(ref.shape)))
    to_ref = np.sqrt((y**2).sum(1))
    sq = (y**2).sum(1)
    gram = sq[:, None] + sq[None, :] - 2 * (y @ y.T)
    return to_ref, np.sqrt(np.clip(gram, 0, None))


@_quiet
def spread(frames, ref, mask) -> float:
    """How far apart the frames are inside the region, against how far they are from the reference.

    ``max_{i,j} ‖M(x_i − x_j)‖ / max_i ‖M(x_i − x*)‖`` (``‖M y‖`` = √ of the squared differences
    weighted by M): ≈ 0 when every frame is the same edit (a chain that stands still), 1 when two frames
    differ from each other as much as the farthest frame differs from x*, 2 for opposite edits.  NaN when
    nothing changes inside the region.

    >>> import numpy as np
    >>> ref = np.zeros((1, 2, 3)); M = np.ones((1, 2))
    >>> f = np.zeros((3, 1, 2, 3)); f[0, 0, 0] = 0.5; f[1, 0, 1] = 0.5; f[2, 0, 0] = -0.5
    >>> round(spread(f, ref, M), 12)
    2.0
    """
    to_ref, pair = _masked_gram(frames, ref, mask)
    if to_ref.size == 0 or not to_ref.max() > 0:
        return NAN
    return float(pair.max() / to_ref.max())


@_quiet
def inside_path(frames, ref, mask, closed: bool = False) -> float:
    """Length of the chain inside the region, in units of its distance from the reference.

    ``Σ_i ‖M(x_{i+1} − x_i)‖ / mean_i ‖M(x_i − x*)‖`` (the closing step included for a loop): 0 for a
    chain that stands still, π for frames spread over a half circle around x*, 2π for a full circle.
    NaN when nothing changes inside the region.

    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    >>> f = np.zeros((64, 1, 2, 3)); f[:, 0, 0, 0], f[:, 0, 1, 0] = np.cos(t), np.sin(t)
    >>> round(inside_path(f, np.zeros((1, 2, 3)), np.ones((1, 2)), closed=True), 3)
    6.281
    """
    to_ref, pair = _masked_gram(frames, ref, mask)
    if len(to_ref) < 2 or not to_ref.mean() > 0:
        return NAN
    n = len(to_ref)
    steps = [pair[i, i + 1] for i in range(n - 1)] + ([pair[n - 1, 0]] if closed else [])
    return float(np.sum(steps) / to_ref.mean())


#: the least extent of a chain that explores its region: frames at least as far apart as from x*
#: (spread) and a path at least 3 times that distance (a half circle is π)
# ---------------------------------------------------------------- geometry
@_quiet
def intrinsic_dim(latents, var: float = 0.9) -> dict:
    """Dimension of the trajectory from the PCA spectrum λ of its (centred) latents [n, ...].

    ``n90``: the fewest components that explain ``var`` of the variance;
    ``participation_ratio``: ``(Σλ)² / Σλ²`` (1 for a line, 2 for a circle, k
    for k equal directions).  Both 0 for a constant trajectory; both NaN (no
    spectrum) for an empty or non-finite one.

    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    >>> intrinsic_dim(np.stack([np.cos(t), np.sin(t), 0 * t], 1))["n90"]
    2
    """
    if not 0 < var <= 1:
        raise ValueError(f"var must be in (0, 1], got {var}")
    w = _flat(latents)
    if w.size == 0 or not np.isfinite(w).all():  # the SVD does not converge on NaN/inf
        return {"n90": NAN, "participation_ratio": NAN}
    w = w - w.mean(0)
    lam = np.linalg.svd(w, compute_uv=False) ** 2
    if not np.isfinite(lam).all():  # finite but huge entries overflow the squares
        return {"n90": NAN, "participation_ratio": NAN}
    if lam.sum() <= 1e-30:
        return {"n90": 0, "participation_ratio": 0.0}
    frac = np.cumsum(lam) / lam.sum()
    return {"n90": int(np.searchsorted(frac, var - 1e-12) + 1),
            "participation_ratio": float(lam.sum() ** 2 / (lam**2).sum())}


@_quiet
def layer_profile(latents, w_ref) -> list[float]:
    """Share of ``Σ_i ‖w_i[l] − w*[l]‖²`` per W+ layer l: latents [n, num_ws, w_dim], w_ref [num_ws, w_dim].

    Sums to 1 (all zeros when nothing moves; all NaN for non-finite latents or none).

    >>> import numpy as np
    >>> w = np.zeros((2, 3, 4)); w[:, 1] = 1
    >>> layer_profile(w, np.zeros((3, 4)))
    [0.0, 1.0, 0.0]
    """
    w, ref = np.asarray(latents, np.float64), np.asarray(w_ref, np.float64)
    if w.ndim != 3 or ref.shape != w.shape[1:]:
        raise ValueError(f"expected latents [n, num_ws, w_dim] and w_ref [num_ws, w_dim], got {list(w.shape)} and "
                         f"{list(ref.shape)}")
    e = ((w - ref[None]) ** 2).sum((0, 2))
    if len(w) == 0 or not np.isfinite(e).all():
        return [NAN] * w.shape[1]
    return (e / e.sum()).tolist() if e.sum() > 0 else [0.0] * w.shape[1]


@_quiet
def semantic_locality(factors, ref_factors, region_factor_idx, scale=None) -> float:
    """Share of the factor change that falls on the region's own factors (toyfaces, via the factor regressor).

    ``Σ_i Σ_{f∈R} ((φ_i,f − φ*_f)/σ_f)² / Σ_i Σ_f ((φ_i,f − φ*_f)/σ_f)²`` for
    factors φ [n, F] estimated on the frames, φ* [F] on the reference, R the
    region's factor indices and σ [F] the factors' spread (default 1: factors
    already in [0, 1]).  1 = only the region's factors change.  NaN without change.

    >>> semantic_locality([[0.5, 0.9], [0.5, 0.7]], [0.5, 0.5], [1])
    1.0
    """
    f, r = np.asarray(factors, np.float64), np.asarray(ref_factors, np.float64)
    if f.ndim != 2 or r.shape != f.shape[1:]:
        raise ValueError(f"expected factors [n, F] and ref_factors [F], got {list(f.shape)} and {list(r.shape)}")
    idx = [int(i) for i in region_factor_idx]
    if any(not 0 <= i < f.shape[1] for i in idx):
        raise ValueError(f"region_factor_idx {idx} outside 0..{f.shape[1] - 1}")
    d = (f - r[None]) ** 2
    if scale is not None:
        d = d / np.asarray(scale, np.float64)[None] ** 2
    total = d.sum()
    return float(d[:, idx].sum() / total) if total > 0 else NAN


def semantic_ranges(factors, names) -> dict:
    """{name: [min, max]} over the frames of each factor in ``names`` (factors [n, F], one column per name):
    which states of the region a chain covers (toyfaces, read by the factor reader).

    >>> semantic_ranges([[0.1, 0.5], [0.7, 0.4]], ["mouth_open", "mouth_smile"])
    {'mouth_open': [0.1, 0.7], 'mouth_smile': [0.4, 0.5]}
    """
    f = np.asarray(factors, np.float64)
    if f.ndim != 2 or f.shape[1] != len(names):
        raise ValueError(f"expected factors [n, {len(names)}] (one column per name), got {list(f.shape)}")
    if len(f) == 0:
        return {str(n): [NAN, NAN] for n in names}
    return {str(n): [float(f[:, j].min()), float(f[:, j].max())] for j, n in enumerate(names)}


# ------------------------------------------------------------------- the built-in metrics
def _inside(frames, reference, mask, offset, distance, _memo) -> dict:
    """inside_change once per run (four metrics read it)."""
    if "inside" not in _memo:
        _memo["inside"] = inside_change(frames, reference, mask, offset, distance)
    return _memo["inside"]


def _dim(free_latents, _memo) -> dict:
    if "dim" not in _memo:
        _memo["dim"] = intrinsic_dim(free_latents)
    return _memo["dim"]


_ALL = ("summary", "bars", "table", "dashboard", "picked", "terminal")
_builtin("locality", lambda frames, reference, mask: locality(frames, reference, mask), order=0, show=_ALL,
         better=True, description="share of the change energy inside the region (1: every change inside)")
_builtin("locality_gain", lambda frames, reference, mask: locality_gain(frames, reference, mask), order=6,
         show=("summary",), better=True, description="locality / the region's area share (1: chance)")
_builtin("area_share", lambda mask: float(np.mean(mask)), order=30, description="the region's share of the image")
_builtin("outside_change", lambda frames, reference, mask: outside_change(frames, reference, mask), order=7,
         show=("summary", "bars", "table", "dashboard", "terminal"), better=False,
         description="mean absolute change outside the region, per frame")
_builtin("inside_rms", lambda frames, reference, mask, offset, distance, _memo:
         _inside(frames, reference, mask, offset, distance, _memo)["rms"], order=8,
         show=("summary", "bars", "table", "terminal"), description="RMS change inside the region, per frame")
_builtin("inside_mse", lambda frames, reference, mask, offset, distance, _memo:
         _inside(frames, reference, mask, offset, distance, _memo)["mse"], order=31,
         description="mean squared change inside the region")
_builtin("inside_d", lambda frames, reference, mask, offset, distance, _memo:
         _inside(frames, reference, mask, offset, distance, _memo)["d_in"], order=32,
         description="the engine's l2 inside distance D_in, mean over frames")
_builtin("change_f1", lambda frames, reference, mask: change_f1(frames, reference, mask), order=9,
         show=("summary",), better=True, description="F1 of the most changed pixels against the region")
_builtin("step_cv", lambda free_latents, closed: step_cv(free_latents, closed), order=12,
         show=("summary", "bars", "dashboard"), better=False,
         description="coefficient of variation of the latent steps (0: even steps)")
_builtin("image_step_cv", lambda frames: image_step_cv(frames), order=11,
         show=("summary", "bars", "table", "dashboard"), better=False,
         description="coefficient of variation of the image steps (0: even steps)")
_builtin("jump_ratio", lambda frames: jump_ratio(frames), order=10, show=_ALL, better=False,
         description="largest image step / the median step (1: no jump)")
_builtin("curvature", lambda free_latents, closed: curvature(free_latents, closed), order=13, show=("summary",),
         description="mean second difference of the latents / the mean step")
_builtin("turning_angle", lambda free_latents, closed: turning_angle(free_latents, closed), order=33,
         description="mean angle between successive latent steps, degrees")
_builtin("perceptual_straightness", lambda frames: perceptual_straightness(frames), order=14,
         show=("summary", "bars"), description="image distance over two steps / the two steps' sum (1: straight)")
_builtin("path_length", lambda frames: path_length(frames), order=34, description="sum of the image steps (RMS)")
_builtin("spread", lambda frames, reference, mask: spread(frames, reference, mask), order=3,
         show=("summary", "bars", "table", "dashboard", "picked", "terminal"), better=True,
         description="largest distance between two frames inside the region / the largest to the reference")
_builtin("inside_path", lambda frames, reference, mask, closed: inside_path(frames, reference, mask, closed), order=4,
         show=("summary", "bars", "table", "dashboard", "picked", "terminal"), better=True,
         description="the chain's length inside the region / its mean distance to the reference")
_builtin("intrinsic_dim_90", lambda free_latents, _memo: _dim(free_latents, _memo)["n90"], order=15,
         show=("summary", "terminal"), description="principal components that explain 90 % of the latents' variance")
_builtin("participation_ratio", lambda free_latents, _memo: _dim(free_latents, _memo)["participation_ratio"],
         order=16, show=("summary",), description="(Σλ)² / Σλ² of the latents' PCA spectrum (1: a line)")
_builtin("layer_profile", lambda latents, w_ref: layer_profile(latents, w_ref), order=35, headline=False,
         description="each W+ layer's share of the change (a list)")
_builtin("inside_gap", lambda frames, reference, mask, offset, distance, _memo:
         _inside(frames, reference, mask, offset, distance, _memo)["gap"], order=36, better=False,
         applies=lambda o: o.get("offset") is not None and o.get("distance", "l2") == "l2",
         description="|mean D_in − c|: how far the run is from its target offset")
_builtin("loop_closure", lambda frames: loop_closure(frames), order=37, applies=lambda o: bool(o.get("closed")),
         description="last-to-first image step / the median step (a loop's closing jump)")
# measured elsewhere (a model, another run): listed for the report, the method table and the dashboard
_builtin("semantic_locality", order=1, show=_ALL, better=True, measured_by="the semantic reader (toyfaces)",
         description="share of the factor change in the region's own factors, by an independent reader")
_builtin("semantic_locality_shipped", order=2, show=("table",), headline=False, better=True,
         measured_by="the shipped factor regressor (toyfaces)",
         description="semantic locality by the regressor the generator was tuned against")
_builtin("realism", order=5, show=("summary", "bars", "table", "dashboard", "terminal"), better=False,
         measured_by="the renderer (toyfaces)",
         description="worst frame's realism error / the generator's own 95th percentile (≤ 1: as real)")
_builtin("transfer_locality", order=17, show=("table",), headline=False, better=True,
         measured_by="a transfer run", description="locality of the run's deltas applied to another face")
