"""Regions of change: masks from presets, rectangles, ellipses, polygons and PNG files.

Spec syntax (``--region``):

    mouth | eyes | left_eye | right_eye | brows | nose | chin    preset of the face layout
    rect:x0,y0,x1,y1                                             pixels, x1/y1 exclusive (the paper's box)
    rects:x0,y0,x1,y1;x0,y0,x1,y1                                union of rectangles
    ellipse:cx,cy,rx,ry                                          centre and radii in pixels
    poly:x,y,x,y,x,y[,...]                                       polygon vertices in pixels
    path/to/mask.png                                             white = region, at the generator's resolution

The inverse direction, shapes drawn on an image (plotly ``layout.shapes``: rectangles, ellipses, closed paths)
→ a spec (:func:`region_spec_of_shapes`, :func:`resolve_region`), is here too, so that what is drawn is
checked by the same :func:`parse_region`.

A mask is ``[H, W]`` float32 in [0, 1], 1 inside the region.  Rectangles keep
their boxes so the paper-faithful loss can crop them.

Every spec is checked before any work: numbers must be finite, rectangles and
polygon vertices inside the image, a polygon must enclose at least one pixel² (not
collinear), a region must be neither empty nor the whole image, a mask file must
be an image of at most :data:`~mgm_analysis.store.MAX_IMAGE_PIXELS` pixels at the
generator's resolution (any bit depth, scaled by its range).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MGMError
from .presets import PRESETS, preset_boxes

__all__ = ["Region", "parse_region", "split_regions", "rect_mask", "default_layout", "polygon_area", "SPEC_HELP",
           "path_vertices", "shape_spec", "preset_of_boxes", "region_spec_of_shapes", "resolve_region"]

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


# ------------------------------------------------------------------ drawn shapes -> region spec
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATH_TOKEN = re.compile(rf"([MLZmlz])|({_NUM}),({_NUM})")


def _num(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise MGMError(f"shape coordinate {v!r} is not a number; redraw the shape")
    try:
        f = float(v)
    except ValueError:
        raise MGMError(f"shape coordinate {v!r} is not a number; redraw the shape") from None
    if not math.isfinite(f):
        raise MGMError(f"shape coordinate {v!r} is not a finite number; redraw the shape")
    return f


def _clamp(v: float, res: int) -> float:
    return min(max(v, 0.0), float(res))


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def path_vertices(path: str) -> list[tuple[float, float]]:
    """The vertices of a plotly closed path ``M x,y L x,y ... Z`` (absolute coordinates only)."""
    if not isinstance(path, str) or len(path) > 2_000_000:
        raise MGMError("a drawn path is not a plotly path string; redraw it")
    pts, pos = [], 0
    text = path.replace(" ", "")
    for m in _PATH_TOKEN.finditer(text):
        if m.start() != pos:
            raise MGMError("a drawn path has an unexpected segment; draw a closed free-hand path")
        pos = m.end()
        if m.group(1):
            if m.group(1) in "ml":
                raise MGMError("a drawn path uses relative moves; draw a closed free-hand path")
            continue
        pts.append((_num(m.group(2)), _num(m.group(3))))
    if pos != len(text):
        raise MGMError("a drawn path has an unexpected segment; draw a closed free-hand path")
    return pts


def shape_spec(shape: dict, resolution: int) -> str:
    """The ``--region`` spec of one plotly shape in the image's pixel coordinates (x right, y down).

    A rectangle snaps to whole pixels (``rect:``, x1/y1 exclusive) and is clipped to the image; a circle
    shape is ``ellipse:cx,cy,rx,ry``; a closed path is ``poly:`` with its vertices clipped to the image.
    """
    if not isinstance(shape, dict):
        raise MGMError("a drawn shape is not a shape; redraw it")
    kind = shape.get("type")
    if kind == "rect":
        x0, x1 = sorted(_clamp(_num(shape.get(k)), resolution) for k in ("x0", "x1"))
        y0, y1 = sorted(_clamp(_num(shape.get(k)), resolution) for k in ("y0", "y1"))
        return "rect:" + ",".join(str(int(round(v))) for v in (x0, y0, x1, y1))
    if kind == "circle":
        x0, x1, y0, y1 = (_num(shape.get(k)) for k in ("x0", "x1", "y0", "y1"))
        return "ellipse:" + ",".join(_fmt(v) for v in ((x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2,
                                                       abs(y1 - y0) / 2))
    if kind == "path":
        pts = [(_clamp(x, resolution), _clamp(y, resolution)) for x, y in path_vertices(shape.get("path"))]
        if len(pts) > MAX_VERTICES:  # a long free-hand stroke: keep every k-th vertex
            pts = pts[::math.ceil(len(pts) / MAX_VERTICES)]
        if len(pts) < 3:
            raise MGMError("a drawn path has fewer than 3 points; draw around the region")
        return "poly:" + ",".join(f"{_fmt(x)},{_fmt(y)}" for x, y in pts)
    raise MGMError(f"a drawn shape of type {kind!r} is not a region; use the rectangle, ellipse or path tool")


def preset_of_boxes(boxes, resolution: int, layout: str) -> str | None:
    """The preset whose pixel boxes are exactly ``boxes`` (a preset's shapes, unmoved), else None."""
    got = sorted(tuple(b) for b in boxes)
    for name in PRESETS.get(layout, {}):
        if sorted(tuple(b) for b in preset_boxes(name, layout, resolution)) == got:
            return name
    return None


def region_spec_of_shapes(shapes, resolution: int, layout: str) -> tuple[str | None, np.ndarray | None]:
    """The region spec for the union of the drawn shapes, and (for a union of different kinds) its mask.

    One shape → its spec; only rectangles → a preset name when they are exactly its boxes, else ``rects:``;
    rectangles, ellipses and paths mixed → ``(None, mask)``: the union of the shapes' masks, each made by
    :func:`parse_region`, to be written as a PNG.  Raises MGMError (one line) when there is no shape or a shape
    is not a region.
    """
    if shapes is None or (isinstance(shapes, list) and not shapes):
        raise MGMError("no region: draw a rectangle, ellipse or closed path on the face, or pick a preset")
    if not isinstance(shapes, list) or len(shapes) > 1_000:
        raise MGMError("the drawn shapes are not a list of at most 1000 shapes; clear them and draw again")
    specs = [shape_spec(s, resolution) for s in shapes]
    if all(s.startswith("rect:") for s in specs):
        boxes = [tuple(int(v) for v in s[5:].split(",")) for s in specs]
        name = preset_of_boxes(boxes, resolution, layout)
        if name:
            return name, None
        if len(specs) == 1:
            return specs[0], None
        return "rects:" + ";".join(s[5:] for s in specs), None
    if len(specs) == 1:
        return specs[0], None
    mask = np.zeros((resolution, resolution), np.float32)
    for s in specs:
        mask = np.maximum(mask, parse_region(s, resolution, layout).mask)
    return None, mask


def resolve_region(shapes, resolution: int, layout: str, mask_dir: Path | None = None) -> tuple[str, Region]:
    """``(spec, Region)`` for the drawn shapes, checked by :func:`parse_region` exactly as ``--region`` is;
    MGMError (one line) for no region, an empty or whole-image one.

    A union of shapes of different kinds becomes a PNG mask: written under ``mask_dir`` (named by its content,
    ``drawn-<sha>.png``; the spec is its path) when given, else to a temporary file only to check it (the spec
    is then that name).
    """
    from .store import png_bytes

    spec, mask = region_spec_of_shapes(shapes, resolution, layout)
    if spec is not None:
        return spec, parse_region(spec, resolution, layout)
    png = png_bytes(mask)  # 8-bit grey: what --region mask.png reads back exactly
    name = f"drawn-{hashlib.sha256(png).hexdigest()[:10]}.png"
    if mask_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(png)
            region = parse_region(str(path), resolution, layout)
        return name, region
    mask_dir = Path(mask_dir)
    mask_dir.mkdir(parents=True, exist_ok=True)
    path = (mask_dir / name).resolve()
    if not path.exists():  # written whole or not at all (another page may read it)
        tmp = path.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(png)
        os.replace(tmp, path)
    return str(path), parse_region(str(path), resolution, layout)
