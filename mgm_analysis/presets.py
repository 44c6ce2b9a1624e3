"""Named region presets per face layout, in relative coordinates.

A preset is a list of boxes ``(x0, y0, x1, y1)`` as fractions of the image
side, x1/y1 exclusive; :func:`preset_boxes` scales them to pixels at any
resolution.  Layouts:

* ``toyfaces`` — the built-in procedural faces; every region-factor sweep keeps
  ≥ 95% of its pixel-change energy inside its box (tests/test_toyfaces.py;
  benchmarks/bench_toyfaces.py prints the shares).
* ``ffhq`` — FFHQ-aligned faces; ``mouth`` is the paper's box (x 300–730,
  y 680–790 at 1024²), the others follow the same alignment.
"""

from __future__ import annotations

__all__ = ["PRESETS", "REGION_FACTORS", "LAYOUTS", "preset_boxes", "preset_names", "region_colors"]


def _rel(box, size):
    return tuple(v / size for v in box)


PRESETS: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {
    "toyfaces": {  # drawn at 64², stored relative
        "mouth": [_rel((16, 40, 48, 56), 64)],
        "eyes": [_rel((12, 21, 52, 36), 64)],
        "left_eye": [_rel((12, 21, 32, 36), 64)],
        "right_eye": [_rel((32, 21, 52, 36), 64)],
        "brows": [_rel((12, 14, 52, 28), 64)],
        "nose": [_rel((24, 29, 40, 45), 64)],
        "chin": [_rel((19, 55, 45, 63), 64)],
    },
    "ffhq": {  # FFHQ-aligned 1024², stored relative
        "mouth": [_rel((300, 680, 730, 790), 1024)],
        "eyes": [_rel((270, 420, 760, 540), 1024)],
        "left_eye": [_rel((270, 420, 505, 540), 1024)],
        "right_eye": [_rel((520, 420, 760, 540), 1024)],
        "brows": [_rel((250, 340, 780, 440), 1024)],
        "nose": [_rel((420, 470, 610, 680), 1024)],
        "chin": [_rel((330, 800, 700, 960), 1024)],
    },
}
LAYOUTS = tuple(PRESETS)

#: toyfaces factors that belong to each region (the ground truth for semantic locality)
REGION_FACTORS: dict[str, list[str]] = {
    "mouth": ["mouth_open", "mouth_smile", "mouth_width"],
    "eyes": ["eye_open", "gaze_x", "gaze_y", "eye_size"],
    "left_eye": ["eye_open", "gaze_x", "gaze_y", "eye_size"],
    "right_eye": ["eye_open", "gaze_x", "gaze_y", "eye_size"],
    "brows": ["brow_height", "brow_tilt"],
    "nose": ["nose_length", "nose_width"],
    "chin": [],
}


def preset_names(layout: str = "toyfaces") -> list[str]:
    return sorted(PRESETS[layout])


def preset_boxes(name: str, layout: str, resolution: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes ``(x0, y0, x1, y1)`` (x1/y1 exclusive) of preset ``name`` at ``resolution``."""
    if layout not in PRESETS:
        raise KeyError(f"unknown face layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if name not in PRESETS[layout]:
        raise KeyError(f"unknown region {name!r} for layout {layout!r}; known: {', '.join(preset_names(layout))}")
    out = []
    for x0, y0, x1, y1 in PRESETS[layout][name]:
        box = (round(x0 * resolution), round(y0 * resolution), round(x1 * resolution), round(y1 * resolution))
        x0p, y0p, x1p, y1p = box
        out.append((x0p, y0p, max(x1p, x0p + 1), max(y1p, y0p + 1)))
    return out


def region_colors(regions) -> dict[str, str]:
    """A stable colour per region, the same in the report and the dashboard: regions sorted by name take
    plotly's D3, Set2 and Pastel1 palettes in order."""
    from plotly.colors import qualitative

    palette = qualitative.D3 + qualitative.Set2 + qualitative.Pastel1
    return {r: palette[i % len(palette)] for i, r in enumerate(sorted({str(r) for r in regions}))}
