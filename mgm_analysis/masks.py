"""Regions of change: masks from presets, rectangles, ellipses, polygons and PNG files.

Spec syntax (``--region``):

    mouth | eyes | left_eye | right_eye | brows | nose | chin    preset of the face layout
    rect:x0,y0,x1,y1                                             pixels, x1/y1 exclusive (the paper's box)
    rects:x0,y0,x1,y1;x0,y0,x1,y1                                union of rectangles
    ellipse:cx,cy,rx,ry                                          centre and radii in pixels
    poly:x,y,x,y,x,y[,...]                                       polygon vertices in pixels
    path/to/mask.png                                             white = region, at the generator's resolution

A mask is ``[H, W]`` float32 in [0, 1], 1 inside the region.  Rectangles keep
their boxes so the paper-faithful loss can crop them.

Every spec is checked before any work: numbers must be finite, rectangles and
polygon vertices inside the image, a polygon must enclose at least one pixel² (not
collinear), a region must be neither empty nor the whole image, a mask file must
be an image of at most :data:`~mgm_analysis.store.MAX_IMAGE_PIXELS` pixels at the
generator's resolution (any bit depth, scaled by its range).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MGMError
from .presets import PRESETS, preset_boxes

__all__ = ["Region", "parse_region", "split_regions", "rect_mask", "default_layout", "polygon_area", "SPEC_HELP"]

SPEC_HELP = ("a preset (mouth, eyes, left_eye, right_eye, brows, nose, chin), rect:x0,y0,x1,y1, "
             "rects:x0,y0,x1,y1;..., ellipse:cx,cy,rx,ry, poly:x,y,x,y,x,y,... or a PNG mask file")

#: limits of a spec (far above any real region; they keep a pasted or generated spec from taking minutes)
MAX_SPEC_CHARS = 100_000
MAX_VERTICES = 10_000
MAX_RECTS = 1_000


@dataclass(frozen=True)
class Region:
    """A region of change at one resolution: what ``--region`` resolves to."""

    name: str                                  # preset name or a short label of the spec
    spec: str                                  # the spec as given
    mask: np.ndarray = field(repr=False)       # [H, W] float32 in [0, 1]
    boxes: tuple = ()                          # pixel rectangles (x0, y0, x1, y1) when the region is rectangles
    layout: str | None = None                  # face layout of a preset

    @property
    def area_share(self) -> float:
        return float(self.mask.mean())

    def to_dict(self) -> dict:
        return {"name": self.name, "spec": self.spec, "layout": self.layout, "boxes": [list(b) for b in self.boxes],
                "area_share": self.area_share}


def default_layout(G) -> str:
    """The face layout of a generator's presets: its ``info.extra["layout"]``, "toyfaces" for the built-in
    model, else "ffhq" (aligned faces, the paper's setting)."""
    info = getattr(G, "info", None)
    layout = (getattr(info, "extra", None) or {}).get("layout")
    if layout in PRESETS:
        return layout
    return "toyfaces" if getattr(info, "name", None) == "toyfaces" else "ffhq"


def rect_mask(boxes, resolution: int) -> np.ndarray:
    """[H, W] float32 mask, 1 inside any of the pixel boxes (x0, y0, x1, y1), x1/y1 exclusive."""
    m = np.zeros((resolution, resolution), np.float32)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1, x0:x1] = 1.0
    return m


def _short(spec: str) -> str:
    return repr(spec) if len(spec) <= 80 else repr(spec[:77] + "...")


def _numbers(spec: str, body: str, count: int | None = None, what: str = "") -> list[float]:
    try:
        vals = [float(v) for v in body.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise MGMError(f"region {_short(spec)}: expected numbers, e.g. {what}") from None
    if count is not None and len(vals) != count:
        raise MGMError(f"region {_short(spec)}: expected {count} numbers ({what}), got {len(vals)}")
    bad = [v for v in vals if not np.isfinite(v)]
    if bad:
        raise MGMError(f"region {_short(spec)}: {bad[0]} is not a finite number; give pixel coordinates")
    return vals


def polygon_area(xy) -> float:
    """Area enclosed by a polygon's vertices [(x, y), ...] (shoelace formula; 0 when collinear)."""
    x, y = np.asarray(xy, np.float64).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _check_box(spec, box, resolution):
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= resolution and 0 <= y0 < y1 <= resolution):
        raise MGMError(f"region {_short(spec)}: rectangle {box} is outside the {resolution}x{resolution} image or empty; "
                       f"use 0 <= x0 < x1 <= {resolution} and 0 <= y0 < y1 <= {resolution}")
    return tuple(int(v) for v in box)


def _validate(spec: str, mask: np.ndarray, resolution: int) -> np.ndarray:
    if mask.shape != (resolution, resolution):
        raise MGMError(f"mask {_short(spec)} is {mask.shape[1]}x{mask.shape[0]} but the generator makes "
                       f"{resolution}x{resolution} images; pass a mask of that size")
    share = float(mask.mean())
    if share <= 0:
        raise MGMError(f"region {_short(spec)} is empty at {resolution}x{resolution}; give a region inside 0..{resolution - 1}")
    if share >= 0.999:
        raise MGMError(f"region {_short(spec)} covers the whole image; the method needs an outside to keep fixed")
    return mask.astype(np.float32)


def split_regions(text: str, flag: str = "--regions") -> list[str]:
    """Split a comma-separated list of region specs, keeping the commas inside a spec (``rect:1,2,3,4``).

    Raises MGMError when nothing is left (``",,,"``) or the list is longer than :data:`MAX_RECTS`.
    """
    out: list[str] = []
    for tok in str(text).split(","):
        tok = tok.strip()
        if not tok:
            continue
        if out and (tok[0].isdigit() or tok[0] in "-.") and ":" in out[-1]:
            out[-1] += "," + tok
        else:
            out.append(tok)
    if not out:
        raise MGMError(f"{flag} {_short(str(text))} names no region; give e.g. mouth,eyes or rect:19,42,45,58")
    if len(out) > MAX_RECTS:
        raise MGMError(f"{flag} names {len(out)} regions, more than the {MAX_RECTS} allowed")
    return out


def parse_region(spec: str, resolution: int, layout: str = "toyfaces") -> Region:
    """Turn a region spec into a :class:`Region` at ``resolution`` (see the module docstring).

    ``layout`` picks the preset table ("toyfaces" or "ffhq"; see :func:`default_layout`).  Raises
    :class:`~mgm_analysis.errors.MGMError` (one line) for a region outside the image, empty, covering
    the whole image, a mask file of the wrong size, or an unknown name.
    """
    spec = str(spec).strip()
    if not spec:
        raise MGMError(f"empty --region; give {SPEC_HELP}")
    if len(spec) > MAX_SPEC_CHARS:
        raise MGMError(f"region spec of {len(spec)} characters is longer than the {MAX_SPEC_CHARS} allowed; "
                       "give a PNG mask file for a complex region")
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    kind, _, body = spec.partition(":")
    kind = kind.lower()
    if body and kind == "rect":
        box = _check_box(spec, _numbers(spec, body, 4, "rect:x0,y0,x1,y1"), resolution)
        return Region("rect", spec, _validate(spec, rect_mask([box], resolution), resolution), (box,))
    if body and kind == "rects":
        parts = [part for part in body.split(";") if part.strip()]
        if len(parts) > MAX_RECTS:
            raise MGMError(f"region {_short(spec)}: {len(parts)} rectangles, more than the {MAX_RECTS} allowed; "
                           "give a PNG mask file")
        boxes = tuple(_check_box(spec, _numbers(spec, part, 4, "rects:x0,y0,x1,y1;x0,y0,x1,y1"), resolution)
                      for part in parts)
        if not boxes:
            raise MGMError(f"region {_short(spec)}: no rectangles given")
        return Region("rects", spec, _validate(spec, rect_mask(boxes, resolution), resolution), boxes)
    if body and kind == "ellipse":
        cx, cy, rx, ry = _numbers(spec, body, 4, "ellipse:cx,cy,rx,ry")
        if rx <= 0 or ry <= 0:
            raise MGMError(f"region {_short(spec)}: radii must be > 0")
        yy, xx = np.mgrid[0:resolution, 0:resolution] + 0.5
        with np.errstate(over="ignore"):  # radii of 1e-300 overflow to inf: outside, so the region is empty
            mask = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0).astype(np.float32)
        return Region("ellipse", spec, _validate(spec, mask, resolution))
    if body and kind == "poly":
        vals = _numbers(spec, body, None, "poly:x,y,x,y,x,y")
        if len(vals) < 6 or len(vals) % 2:
            raise MGMError(f"region {_short(spec)}: a polygon needs at least 3 x,y pairs")
        if len(vals) > 2 * MAX_VERTICES:
            raise MGMError(f"region {_short(spec)}: {len(vals) // 2} vertices, more than the {MAX_VERTICES} "
                           "allowed; give a PNG mask file")
        xy = list(zip(vals[0::2], vals[1::2], strict=True))
        outside = [(x, y) for x, y in xy if not (0 <= x <= resolution and 0 <= y <= resolution)]
        if outside:
            raise MGMError(f"region {_short(spec)}: vertex {outside[0]} is outside the {resolution}x{resolution} "
                           f"image; use 0 <= x, y <= {resolution}")
        if polygon_area(xy) < 1.0:
            raise MGMError(f"region {_short(spec)}: the polygon encloses {polygon_area(xy):.3g} pixel² (collinear or "
                           "repeated vertices); give vertices that enclose at least one pixel")
        from PIL import Image, ImageDraw

        im = Image.new("L", (resolution, resolution), 0)
        ImageDraw.Draw(im).polygon(xy, fill=255)
        return Region("poly", spec, _validate(spec, np.asarray(im, np.float32) / 255.0, resolution))
    if layout not in PRESETS:
        raise MGMError(f"unknown face layout {layout!r}; known: {', '.join(PRESETS)}")
    if spec in PRESETS[layout]:
        boxes = tuple(preset_boxes(spec, layout, resolution))
        return Region(spec, spec, _validate(spec, rect_mask(boxes, resolution), resolution), boxes, layout)
    path = Path(spec)
    try:
        path = path.expanduser()
        is_file = path.is_file()
    except (OSError, ValueError, RuntimeError):  # a name too long for the file system, a NUL byte, "~nobody"
        is_file = False
    if spec.lower().endswith(".png") or is_file:
        if not is_file:
            raise MGMError(f"mask file {_short(str(path))} does not exist; give {SPEC_HELP}")
        from .store import read_png

        try:
            mask = read_png(path, gray=True)
        except MGMError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            raise MGMError(f"mask file {path}: {reason}; give a PNG at the generator's resolution, "
                           "white = region") from None
        return Region(path.stem, spec, _validate(spec, mask, resolution))
    raise MGMError(f"unknown region {_short(spec)} (layout {layout}); give {SPEC_HELP}")
