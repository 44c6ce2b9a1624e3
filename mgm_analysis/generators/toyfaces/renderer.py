"""A procedural, anti-aliased cartoon-face renderer with known factors (the ``toyfaces`` ground truth).

Every face is drawn from named factors in [0, 1], each tagged with the region
it changes.  Shapes are signed-distance functions turned into coverage with a
soft anti-aliasing ramp (``ramp_px`` pixels), so images are smooth, the
renderer is differentiable almost everywhere, and a small generator can learn
it.  Features are large and high-contrast: thin, small eyes were never learned
by a small StyleGAN2.

Geometry is in relative coordinates (fractions of the image side), so any
power-of-two resolution renders the same face.  Region-factor features stay
inside their preset boxes (``mgm_analysis.presets``) over the whole factor
range; only the global factors (face shape, colours, head offset) move pixels
everywhere.
"""

from __future__ import annotations

import torch

__all__ = ["FACTORS", "FACTOR_REGION", "NUM_FACTORS", "render", "default_factors"]

#: (name, region) in the order of the factor vector
_FACTOR_TABLE = [
    ("mouth_open", "mouth"),
    ("mouth_smile", "mouth"),
    ("mouth_width", "mouth"),
    ("eye_open", "eyes"),
    ("gaze_x", "eyes"),
    ("gaze_y", "eyes"),
    ("eye_size", "eyes"),
    ("brow_height", "brows"),
    ("brow_tilt", "brows"),
    ("nose_length", "nose"),
    ("nose_width", "nose"),
    ("face_width", "global"),
    ("face_height", "global"),
    ("skin_tone", "global"),
    ("hair_color", "global"),
    ("bg_color", "global"),
    ("head_dx", "global"),
]
FACTORS: list[str] = [n for n, _ in _FACTOR_TABLE]
FACTOR_REGION: dict[str, str] = dict(_FACTOR_TABLE)
NUM_FACTORS = len(FACTORS)

_SKIN_LIGHT = torch.tensor([0.96, 0.82, 0.70])
_SKIN_DARK = torch.tensor([0.55, 0.36, 0.24])
_HAIR_A = torch.tensor([0.10, 0.07, 0.05])
_HAIR_B = torch.tensor([0.85, 0.62, 0.25])
_BG_A = torch.tensor([0.25, 0.45, 0.80])
_BG_B = torch.tensor([0.55, 0.85, 0.55])
_SCLERA = torch.tensor([1.0, 1.0, 1.0])
_PUPIL = torch.tensor([0.05, 0.10, 0.30])
_BROW = torch.tensor([0.12, 0.08, 0.06])
_LIP = torch.tensor([0.80, 0.15, 0.20])
_MOUTH_IN = torch.tensor([0.25, 0.02, 0.05])


def default_factors(n: int = 1) -> torch.Tensor:
    """[n, NUM_FACTORS] all 0.5: the average face."""
    return torch.full((n, NUM_FACTORS), 0.5)


def _lerp(a, b, t):
    return a + (b - a) * t


def _cover(sdf_px: torch.Tensor, ramp_px: float) -> torch.Tensor:
    """Coverage in [0, 1] from a signed distance in pixels (negative inside)."""
    return (0.5 - sdf_px / ramp_px).clamp(0.0, 1.0)


def _ellipse_sdf(x, y, cx, cy, rx, ry):
    """Approximate signed distance (relative units) to an axis-aligned ellipse."""
    dx, dy = (x - cx) / rx, (y - cy) / ry
    r = torch.sqrt(dx * dx + dy * dy + 1e-12)
    return (r - 1.0) * torch.minimum(rx, ry) if torch.is_tensor(rx) else (r - 1.0) * min(rx, ry)


def _capsule_sdf(x, y, ax, ay, bx, by, radius):
    """Signed distance to a thick segment from (ax, ay) to (bx, by)."""
    px, py = x - ax, y - ay
    vx, vy = bx - ax, by - ay
    h = ((px * vx + py * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0)
    return torch.sqrt((px - h * vx) ** 2 + (py - h * vy) ** 2 + 1e-12) - radius


def _paint(img, color, alpha):
    """Alpha-composite ``color`` [B, 3] over ``img`` [B, 3, H, W] with coverage ``alpha`` [B, H, W]."""
    a = alpha[:, None]
    return img * (1 - a) + color[:, :, None, None] * a


def render(factors: torch.Tensor, resolution: int = 64, ramp_px: float = 2.0) -> torch.Tensor:
    """Draw faces.

    Args:
        factors: [B, NUM_FACTORS] in [0, 1] (order of :data:`FACTORS`).
        resolution: image side (any power of two; geometry is relative).
        ramp_px: width of the anti-aliasing ramp in pixels.

    Returns:
        img [B, 3, resolution, resolution] in [-1, 1].
    """
    if factors.ndim != 2 or factors.shape[1] != NUM_FACTORS:
        raise ValueError(f"factors must be [B, {NUM_FACTORS}], got {list(factors.shape)}")
    f = factors.float().clamp(0, 1)
    B, dev = f.shape[0], f.device
    g = dict(zip(FACTORS, f.unbind(1), strict=True))
    col = lambda t: t[:, None, None]  # noqa: E731  [B] -> [B, 1, 1] for broadcasting over pixels
    coords = (torch.arange(resolution, device=dev, dtype=torch.float32) + 0.5) / resolution
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    x, y = x[None], y[None]
    px = float(resolution)  # relative -> pixel distance
    C = lambda c: c.to(dev)[None].expand(B, 3)  # noqa: E731

    dx = col((g["head_dx"] - 0.5) * 0.03)
    img = C(_BG_A)[:, :, None, None] + (C(_BG_B) - C(_BG_A))[:, :, None, None] * col(g["bg_color"])[:, None]
    img = img.expand(B, 3, resolution, resolution).clone()

    # hair behind the head, face
    face_rx = col(0.30 + 0.07 * (g["face_width"] - 0.5))
    face_ry = col(0.38 + 0.05 * (g["face_height"] - 0.5))
    hair = _lerp(C(_HAIR_A), C(_HAIR_B), g["hair_color"][:, None])
    img = _paint(img, hair, _cover(_ellipse_sdf(x, y, 0.5 + dx, 0.44, face_rx + 0.05, face_ry + 0.04) * px, ramp_px))
    skin = _lerp(C(_SKIN_LIGHT), C(_SKIN_DARK), g["skin_tone"][:, None])
    img = _paint(img, skin, _cover(_ellipse_sdf(x, y, 0.5 + dx, 0.53, face_rx, face_ry) * px, ramp_px))

    # eyes: white sclera ellipses with a dark pupil clipped to them
    eye_rx = col(0.070 + 0.025 * g["eye_size"])
    eye_ry = eye_rx * col(0.30 + 0.70 * g["eye_open"])  # never thinner than ~3 px at 64²
    eye_cy = 0.45
    for side in (-1.0, 1.0):
        ecx = 0.5 + dx + side * 0.14
        sclera = _cover(_ellipse_sdf(x, y, ecx, eye_cy, eye_rx, eye_ry) * px, ramp_px)
        img = _paint(img, C(_SCLERA), sclera)
        pr = eye_rx * 0.55
        pcx = ecx + col(g["gaze_x"] - 0.5) * eye_rx * 0.9
        pcy = eye_cy + col(g["gaze_y"] - 0.5) * eye_rx * 0.7
        pupil = _cover(_ellipse_sdf(x, y, pcx, pcy, pr, pr) * px, ramp_px) * sclera
        img = _paint(img, C(_PUPIL), pupil)

    # brows: thick capsules whose height and tilt vary (tilt mirrors between sides)
    brow_y = col(0.33 - 0.05 * (g["brow_height"] - 0.5))
    tilt = col((g["brow_tilt"] - 0.5) * 0.06)
    for side in (-1.0, 1.0):
        inner_x, outer_x = 0.5 + dx + side * 0.065, 0.5 + dx + side * 0.215
        sdf = _capsule_sdf(x, y, inner_x, brow_y + tilt, outer_x, brow_y - tilt, 0.022)
        img = _paint(img, C(_BROW), _cover(sdf * px, ramp_px))

    # nose: a darker ellipse below the eyes
    nose_ry = col(0.045 + 0.040 * g["nose_length"])
    nose_rx = col(0.025 + 0.035 * g["nose_width"])
    nose_cy = 0.50 + nose_ry
    img = _paint(img, skin * 0.55, _cover(_ellipse_sdf(x, y, 0.5 + dx, nose_cy, nose_rx, nose_ry) * px, ramp_px))

    # mouth: lips and an opening, bent into a smile (corners up) or a frown
    mw = col(0.09 + 0.06 * g["mouth_width"])
    smile = col((g["mouth_smile"] - 0.5) * 0.09)
    mcx, mcy = 0.5 + dx, 0.735
    yb = y + smile * ((x - mcx) / mw).clamp(-1.2, 1.2) ** 2  # bent coordinates
    open_ry = col(0.004 + 0.055 * g["mouth_open"])
    lips = _cover(_ellipse_sdf(x, yb, mcx, mcy, mw, open_ry + 0.028) * px, ramp_px)
    img = _paint(img, C(_LIP), lips)
    inner = _cover(_ellipse_sdf(x, yb, mcx, mcy, mw * 0.85, open_ry) * px, ramp_px)
    img = _paint(img, C(_MOUTH_IN), inner)
    return img * 2 - 1
