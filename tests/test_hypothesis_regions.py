"""Property-based tests of the region parser: any text is a region or one line of error, never a crash;
rectangles and polygons are checked against masks and areas computed here, independently."""

import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mgm_analysis.errors import MGMError
from mgm_analysis.masks import parse_region, split_regions

RES = 16
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.integers(-40, 40), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([1e30, -1e30, 1e-300, 0.5, 15.999, 16.0, 16.0001]))


def _fmt(v) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def _check_region_or_one_line(spec):
    try:
        region = parse_region(spec, RES)
    except MGMError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 600, msg
        return None
    m = region.mask
    assert m.shape == (RES, RES) and m.dtype == np.float32
    assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1
    assert 0 < m.mean() < 0.999  # neither empty nor the whole image
    return region


@SETTINGS
@given(st.text(alphabet=string.printable + "\x00é∞", max_size=60))
@example("poly:1,1,nan,2,3,3")
@example("poly:1,1,1e30,2,3,3")
@example(",,,")
@example("rect:" + "9" * 400 + ",0,1,1")
def test_any_text_is_a_region_or_one_line(spec):
    _check_region_or_one_line(spec)


@SETTINGS
@given(st.sampled_from(["rect", "rects", "ellipse", "poly"]), st.lists(numbers, max_size=12))
def test_any_numbers_after_a_kind(kind, values):
    _check_region_or_one_line(f"{kind}:" + ",".join(_fmt(v) for v in values))


@SETTINGS
@given(st.tuples(*[st.integers(-3, RES + 3)] * 4))
def test_rectangles_match_a_mask_drawn_here(box):
    x0, y0, x1, y1 = box
    valid = 0 <= x0 < x1 <= RES and 0 <= y0 < y1 <= RES and (x1 - x0) * (y1 - y0) < RES * RES
    spec = "rect:" + ",".join(map(str, box))
    if not valid:
        with pytest.raises(MGMError):
            parse_region(spec, RES)
        return
    want = np.zeros((RES, RES), np.float32)
    for y in range(RES):
        for x in range(RES):
            want[y, x] = float(x0 <= x < x1 and y0 <= y < y1)
    region = parse_region(spec, RES)
    assert np.array_equal(region.mask, want) and region.boxes == (box,)


def _shoelace(xy):
    s = 0.0
    for (xa, ya), (xb, yb) in zip(xy, xy[1:] + xy[:1], strict=True):
        s += xa * yb - xb * ya
    return abs(s) / 2


@SETTINGS
@given(st.lists(st.tuples(numbers, numbers), min_size=3, max_size=8))
@example([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])  # collinear: zero area
@example([(1.0, 1.0), (float("nan"), 2.0), (3.0, 3.0)])
@example([(1.0, 1.0), (1e30, 2.0), (3.0, 3.0)])
def test_polygons_are_finite_inside_and_enclose_a_pixel(vertices):
    spec = "poly:" + ",".join(f"{_fmt(x)},{_fmt(y)}" for x, y in vertices)
    xy = [(float(x), float(y)) for x, y in vertices]
    finite = all(math.isfinite(v) for p in xy for v in p)
    inside = finite and all(0 <= x <= RES and 0 <= y <= RES for x, y in xy)
    region = _check_region_or_one_line(spec)
    if not inside or _shoelace(xy) < 1.0:
        assert region is None, (spec, region and region.mask.sum())  # NaN, 1e30, collinear: refused
    if region is not None:
        assert region.mask.sum() >= 1


@SETTINGS
@given(st.lists(st.sampled_from(["mouth", "eyes", "brows", "nose", "rect:1,2,9,10", "ellipse:8,8,3,2.5",
                                 "poly:1,1,9,1,5,7", "rects:0,0,4,4;8,8,12,12"]), min_size=1, max_size=6),
       st.sampled_from([",", ", ", " ,"]))
def test_split_regions_gives_back_the_specs(specs, sep):
    assert split_regions(sep.join(specs)) == specs


@SETTINGS
@given(st.text(alphabet=", \t", max_size=20))
def test_a_list_of_nothing_is_one_line(text):
    with pytest.raises(MGMError, match="names no region"):
        split_regions(text)
