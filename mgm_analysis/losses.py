"""The masked distance and the spring energy of the paper.

    E = Σ_i γ·L_X(w_i) + α·Σ_i (‖w_{i+1} − w_i‖ − σ)² + β·Σ_i (‖w_{i+2} − w_i‖ − 2σ)²
    L_X(w) = λ·D_out(G(w), x*) + |D_in(G(w), x*) − c|

``D_in`` compares the region of change, ``D_out`` the rest.  Distances:

* ``l2`` — mean squared error over the region's pixels and channels (images in [-1, 1]).
* ``lpips`` — the ``lpips`` package with AlexNet, as the paper (torchvision's AlexNet weights, downloaded
  into the torch hub folder on first use).

Modes: ``map`` weights a per-pixel distance map by the mask (any mask);
``paper`` (rectangles only) crops the box for ``D_in`` and splits the outside
into the four strips above, below, left and right of it, each weighted by its
share of the outside area — the paper's code.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .errors import MGMError

__all__ = ["MaskedDistance", "make_distance", "spring_energy", "chain_angles", "image_spring_targets", "image_spring_energy", "offsets_for", "load_lpips", "lpips_backbone_path",
           "fetch_lpips_backbone", "LPIPS_BACKBONE_FILE"]

LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"


def _strips(box, res):
    """The four outside rectangles of the paper (above, below, left, right) as (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return [s for s in [(0, 0, res, y0), (0, y1, res, res), (0, y0, x0, y1), (x1, y0, res, y1)]
            if s[2] > s[0] and s[3] > s[1]]


class MaskedDistance(torch.nn.Module):
    """``forward(img, ref) -> (d_in [B], d_out [B])`` for img [B, 3, H, W] and ref [1 or B, 3, H, W] in [-1, 1].

    ``mask`` [H, W] in [0, 1] (1 = region).  ``map`` mode: D_in and D_out are the per-pixel distance map
    averaged with the weights ``mask`` and ``1 − mask``.  ``paper`` mode (``boxes`` = one rectangle
    (x0, y0, x1, y1), x1/y1 exclusive): D_in on the crop, D_out the area-weighted mean over the four strips.
    For l2 both modes give the same numbers on a rectangle.
    """

    def __init__(self, mask: torch.Tensor, distance: str = "l2", mode: str = "map", boxes=(), lpips_model=None):
        super().__init__()
        if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
            raise ValueError(f"mask must be [H, W] square, got {list(mask.shape)}")
        if distance not in ("l2", "lpips"):
            raise MGMError(f"unknown distance {distance!r}; use l2 or lpips")
        if mode not in ("map", "paper"):
            raise MGMError(f"unknown mask mode {mode!r}; use map or paper")
        if mode == "paper" and len(boxes) != 1:
            raise MGMError("the paper-faithful mask mode needs exactly one rectangle (rect:x0,y0,x1,y1 or a "
                           "one-box preset); use --mask-mode map for other regions")
        self.distance, self.mode = distance, mode
        self.box = tuple(int(v) for v in boxes[0]) if boxes else None
        if mode == "paper" and distance == "lpips":
            small = [c for c in [self.box, *_strips(self.box, mask.shape[-1])] if min(c[2] - c[0], c[3] - c[1]) < 32]
            if small:
                raise MGMError(f"LPIPS (AlexNet) needs crops of at least 32x32 pixels but the paper-faithful mode "
                               f"makes a {small[0][2] - small[0][0]}x{small[0][3] - small[0][1]} crop at "
                               f"{mask.shape[-1]}x{mask.shape[-1]}; use --mask-mode map or --distance l2")
        self.register_buffer("inside", mask.float())
        self.register_buffer("outside", 1.0 - mask.float())
        self.lpips = lpips_model
        if distance == "lpips" and lpips_model is None:
            self.lpips = load_lpips(spatial=(mode == "map"))

    def _d(self, a, b):
        """Per-pixel distance map [B, 1, H, W] (l2, spatial LPIPS) or [B, 1, 1, 1] (LPIPS on a paper-mode crop)."""
        if self.distance == "l2":
            return (a - b).square().mean(1, keepdim=True)
        return self.lpips(a, b, normalize=False)

    def forward(self, img, ref):
        if img.dim() != 4 or img.shape[-2:] != self.inside.shape:
            raise ValueError(f"expected images [B, C, {', '.join(map(str, self.inside.shape))}], "
                             f"got {list(img.shape)}")
        ref = ref.expand_as(img)
        if self.mode == "map":
            dmap = self._d(img, ref)  # [B, 1, H, W]: spatial LPIPS upsamples its layers to the input's size
            d_in = (dmap * self.inside).sum((1, 2, 3)) / self.inside.sum()
            d_out = (dmap * self.outside).sum((1, 2, 3)) / self.outside.sum()
            return d_in, d_out
        res = img.shape[-1]
        x0, y0, x1, y1 = self.box

        def crop(t, b):
            return t[..., b[1]:b[3], b[0]:b[2]]

        def dist(a, b):
            return self._d(a, b).mean((1, 2, 3))  # [B, 1, h, w] (l2) or [B, 1, 1, 1] (LPIPS) -> [B]

        d_in = dist(crop(img, self.box), crop(ref, self.box))
        strips = _strips(self.box, res)
        area = sum((s[2] - s[0]) * (s[3] - s[1]) for s in strips)
        d_out = sum(dist(crop(img, s), crop(ref, s)) * ((s[2] - s[0]) * (s[3] - s[1]) / area) for s in strips)
        return d_in, d_out


def lpips_backbone_path() -> Path:
    """Where torchvision (and so lpips) looks for the AlexNet weights: ``<torch hub dir>/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILE


def lpips_backbone_url() -> str:
    """The address torchvision downloads the AlexNet weights from (its ``AlexNet_Weights.IMAGENET1K_V1``)."""
    try:
        from torchvision.models import AlexNet_Weights

        return AlexNet_Weights.IMAGENET1K_V1.url
    except ImportError:  # pragma: no cover - torchvision comes with the lpips extra
        return f"https://download.pytorch.org/models/{LPIPS_BACKBONE_FILE}"


def fetch_lpips_backbone() -> Path:
    """The AlexNet weights on disk, downloaded as torchvision does when absent (its URL, hash check and progress
    bar, written atomically into the hub folder); one line naming the file, the folder and ``--distance l2``
    when that fails (offline, a read-only folder, a bad hash)."""
    path = lpips_backbone_path()
    if path.exists():
        return path
    url = lpips_backbone_url()
    hash_prefix = LPIPS_BACKBONE_FILE.rsplit("-", 1)[-1].split(".")[0]  # torchvision's check_hash: "7be5be79"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=hash_prefix, progress=True)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; a wrong hash a RuntimeError
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())
        raise MGMError(f"LPIPS needs the AlexNet weights {LPIPS_BACKBONE_FILE} in {path.parent} and downloading "
                       f"them from {url} failed ({reason}); copy the file there or use --distance l2") from None
    return path


def load_lpips(spatial: bool = True, random_backbone: bool = False):
    """The lpips package's AlexNet LPIPS (frozen); the AlexNet weights are downloaded when absent (see
    :func:`fetch_lpips_backbone`).  ``random_backbone``: an untrained AlexNet (tests; no download)."""
    try:
        import lpips
    except ImportError:
        raise MGMError("--distance lpips needs the lpips extra: pip install 'mgm-analysis[lpips]' "
                       "(or use --distance l2)") from None
    if not random_backbone:
        fetch_lpips_backbone()
    import warnings

    with warnings.catch_warnings():  # torchvision's deprecation notes; verbose=False: no banner on stdout
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", spatial=spatial, pnet_rand=random_backbone, verbose=False)
    return model.eval().requires_grad_(False)


def make_distance(mask, distance="l2", mode="map", boxes=(), lpips_model=None) -> MaskedDistance:
    """A :class:`MaskedDistance` from a numpy or torch mask [H, W] (LPIPS loaded when needed)."""
    return MaskedDistance(torch.as_tensor(mask, dtype=torch.float32), distance, mode, boxes, lpips_model)


def offsets_for(n: int, offset: float, ramp: bool) -> torch.Tensor:
    """Per-frame target c_i: constant c, or a ramp from 0 to c (the paper's animation)."""
    if ramp:
        return torch.linspace(0.0, offset, n)
    return torch.full((n,), float(offset))


def spring_energy(w_free: torch.Tensor, alpha: float, beta: float, sigma: float, closed: bool = False):
    """(α·Σ(‖w_{i+1}−w_i‖−σ)², β·Σ(‖w_{i+2}−w_i‖−2σ)²) over the chain w_free [n, ...] (norms flattened).

    ``closed`` wraps the springs around so the chain is a loop.
    """
    n = w_free.shape[0]
    flat = w_free.reshape(n, -1)
    if closed:
        d1 = flat.roll(-1, 0) - flat
        d2 = flat.roll(-2, 0) - flat
    else:
        d1 = flat[1:] - flat[:-1]
        d2 = flat[2:] - flat[:-2]
    # norm with a tiny epsilon keeps the gradient finite when two latents coincide (the first epoch)
    s1 = torch.sqrt(d1.square().sum(1) + 1e-12)
    s2 = torch.sqrt(d2.square().sum(1) + 1e-12)
    return alpha * (s1 - sigma).square().sum(), beta * (s2 - 2 * sigma).square().sum()


def chain_angles(n: int, sweep: float, closed: bool = False) -> torch.Tensor:
    """The angle θ_i (radians) of each frame around the circle of an exploring chain: n frames evenly over
    ``sweep`` radians centred on 0 (open), or a full turn 2π·i/n (closed)."""
    if closed:
        return torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return torch.linspace(-sweep / 2, sweep / 2, n, dtype=torch.float64)


def image_spring_targets(offsets: torch.Tensor, sweep: float, cone: float = math.pi / 2,
                         closed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Rest lengths (as inside distances D_in) of the image springs between frames i, i+1 and i, i+2.

    The frames of an exploring chain lie on a circle around x*: frame i is the edit
    ``√c_i·(cos ρ·e₀ + sin ρ·(cos θ_i·e₁ + sin θ_i·e₂))`` for orthonormal image directions e₀ (the circle's
    centre), e₁, e₂, with ρ = ``cone`` (π/2: a great circle through opposite edits) and θ_i from
    :func:`chain_angles`.  For l2, D_in is the squared distance, so the rest length between frames a and b is
    ``c_a + c_b − 2·√(c_a·c_b)·(cos²ρ + sin²ρ·cos(θ_a − θ_b))``.  Returns ([pairs i, i+1], [pairs i, i+2]).
    """
    n = len(offsets)
    c = offsets.double().clamp(min=0)
    theta = chain_angles(n, sweep, closed)
    cos2, sin2 = math.cos(cone) ** 2, math.sin(cone) ** 2
    out = []
    for k in (1, 2):
        if closed:
            a, b, ta, tb = c, c.roll(-k), theta, theta.roll(-k)
        else:
            a, b, ta, tb = c[:-k], c[k:], theta[:-k], theta[k:]
        out.append((a + b - 2 * (a * b).sqrt() * (cos2 + sin2 * (ta - tb).cos())).clamp(min=0).float())
    return out[0], out[1]


def image_spring_energy(imgs: torch.Tensor, dist, targets: tuple[torch.Tensor, torch.Tensor], weight: float,
                        closed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The image springs: ``weight·Σ_i |D_in(x_{i+1}, x_i) − t1_i|`` and ``weight·Σ_i |D_in(x_{i+2}, x_i) − t2_i|``
    over the frames imgs [n, 3, H, W] (differentiable), with ``dist`` the run's masked distance."""
    out = []
    for k, t in zip((1, 2), targets, strict=True):
        a, b = (imgs, imgs.roll(-k, 0)) if closed else (imgs[:-k], imgs[k:])
        if len(a) == 0:
            out.append(imgs.new_zeros(()))
            continue
        d_in, _ = dist(b, a)
        out.append(weight * (d_in - t.to(d_in)).abs().sum())
    return out[0], out[1]
