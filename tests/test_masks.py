"""Region specs: presets, rectangles, unions, ellipses, polygons, PNG files, and the one-line rejections."""

import numpy as np
import pytest
from PIL import Image

from mgm_analysis.errors import MGMError
from mgm_analysis.masks import default_layout, parse_region, rect_mask
from mgm_analysis.presets import preset_boxes


def test_rectangle_keeps_its_box_and_area_share():
    r = parse_region("rect:2,3,10,12", 16)
    assert r.mask.shape == (16, 16) and r.mask.dtype == np.float32
    assert r.mask.sum() == 8 * 9 and r.boxes == ((2, 3, 10, 12),)
    assert r.area_share == pytest.approx(72 / 256)
    assert r.mask[3, 2] == 1 and r.mask[12, 10] == 0  # x1/y1 exclusive


def test_union_ellipse_polygon():
    assert parse_region("rects:0,0,2,2;4,4,6,6", 16).mask.sum() == 8
    assert parse_region("rects:0,0,4,4;2,2,6,6", 16).mask.sum() == 16 + 16 - 4  # overlap counted once
    e = parse_region("ellipse:8,8,3,2", 16)
    assert 0 < e.mask.sum() < 40 and e.mask[7, 7] == 1 and e.boxes == ()
    assert parse_region("poly:2,2,12,2,7,12", 16).mask.sum() > 20


@pytest.mark.parametrize("layout", ["toyfaces", "ffhq"])
def test_presets_scale_with_resolution(layout):
    for res in (16, 64, 256):
        r = parse_region("mouth", res, layout)
        assert r.boxes == tuple(preset_boxes("mouth", layout, res)) and r.layout == layout
        assert 0 < r.area_share < 0.5
    assert parse_region("mouth", 1024, "ffhq").boxes == ((300, 680, 730, 790),)  # the paper's box


@pytest.mark.parametrize("spec, needle", [
    ("rect:0,0,20,4", "outside"),
    ("rect:3,3,3,9", "outside the 16x16 image or empty"),
    ("rect:0,0,16,16", "whole image"),
    ("rects:0,0,16,8;0,8,16,16", "whole image"),
    ("ellipse:-50,-50,2,2", "empty"),
    ("ellipse:8,8,0,2", "radii"),
    ("poly:1,1,2,2", "at least 3"),
    ("lips", "unknown region"),
    ("rect:1,2", "expected 4"),
    ("rect:a,b,c,d", "expected numbers"),
    ("", "empty --region"),
])
def test_bad_specs_are_one_line(spec, needle):
    with pytest.raises(MGMError, match=needle) as info:
        parse_region(spec, 16)
    assert "\n" not in str(info.value)


def test_unknown_layout():
    with pytest.raises(MGMError, match="unknown face layout"):
        parse_region("mouth", 64, "cats")


def test_png_mask(tmp_path):
    arr = np.zeros((16, 16), np.uint8)
    arr[4:8, 4:8] = 255
    Image.fromarray(arr).save(tmp_path / "m.png")
    r = parse_region(str(tmp_path / "m.png"), 16)
    assert r.mask.sum() == 16 and r.name == "m"
    with pytest.raises(MGMError, match="is 16x16 but the generator makes 32x32"):
        parse_region(str(tmp_path / "m.png"), 32)
    with pytest.raises(MGMError, match="does not exist"):
        parse_region(str(tmp_path / "nope.png"), 16)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(MGMError, match="not a readable image"):
        parse_region(str(tmp_path / "bad.png"), 16)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "empty.png")
    with pytest.raises(MGMError, match="empty"):
        parse_region(str(tmp_path / "empty.png"), 16)


def test_rect_mask_and_layout_choice():
    assert rect_mask([(0, 0, 2, 1)], 4).tolist()[0] == [1, 1, 0, 0]

    class Info:
        name, extra = "toyfaces", {}

    class G:
        info = Info()

    assert default_layout(G) == "toyfaces"
    G.info.name = "ffhq-config-f"
    assert default_layout(G) == "ffhq"
    G.info.extra = {"layout": "toyfaces"}
    assert default_layout(G) == "toyfaces"


# ---------------------------------------------------------- asymmetric inputs (found by mutation testing)
def test_ellipse_off_centre_matches_pixel_centres():
    r = parse_region("ellipse:5,9.5,3.5,2", 16)
    expected = np.zeros((16, 16), np.float32)
    for y in range(16):
        for x in range(16):  # pixel (x, y) has its centre at (x + 0.5, y + 0.5)
            expected[y, x] = ((x + 0.5 - 5) / 3.5) ** 2 + ((y + 0.5 - 9.5) / 2) ** 2 <= 1
    assert np.array_equal(r.mask, expected) and 10 < expected.sum() < 30
    assert r.area_share == pytest.approx(expected.mean())


def test_four_vertex_polygons():
    from mgm_analysis.masks import polygon_area

    r = parse_region("poly:2,3,13,3,13,9,2,9", 16)  # an axis-aligned rectangle: PIL fills its edges too
    expected = np.zeros((16, 16), np.float32)
    expected[3:10, 2:14] = 1
    assert np.array_equal(r.mask, expected) and r.name == "poly" and r.boxes == ()
    assert polygon_area([(2, 3), (13, 3), (13, 9), (2, 9)]) == pytest.approx(66.0)
    quad = [(1, 1), (14, 4), (10, 12), (3, 9)]  # shoelace by hand: |−10 + 128 + 54 − 6| / 2
    assert polygon_area(quad) == pytest.approx(83.0) and polygon_area(quad[::-1]) == pytest.approx(83.0)
    q = parse_region("poly:" + ",".join(f"{x},{y}" for x, y in quad), 16).mask
    assert q[6, 8] == 1 and q[12, 1] == 0 and q[1, 14] == 0 and q[14, 14] == 0
    assert 83 <= q.sum() <= 83 + 40  # the area plus at most the boundary pixels
    with pytest.raises(MGMError, match="encloses"):
        parse_region("poly:2,2,6,6,10,10,4,4", 16)  # four collinear vertices


def test_split_regions_keeps_commas_inside_specs():
    from mgm_analysis.masks import split_regions

    assert split_regions("mouth, rect:1,2,3,4,eyes,ellipse:5,-6,.5,2 ,,poly:1,2,3,4,5,6") == [
        "mouth", "rect:1,2,3,4", "eyes", "ellipse:5,-6,.5,2", "poly:1,2,3,4,5,6"]
    assert split_regions("7,mouth") == ["7", "mouth"]  # a number after a name without ':' starts a spec
    with pytest.raises(MGMError, match="--regions ',, ,' names no region"):
        split_regions(",, ,")
    with pytest.raises(MGMError, match="--sweep-regions"):
        split_regions("", flag="--sweep-regions")
    with pytest.raises(MGMError, match="1001 regions, more than the 1000 allowed"):
        split_regions(",".join(["mouth"] * 1001))
    assert len(split_regions(",".join(["mouth"] * 1000))) == 1000


def test_region_names_boxes_and_to_dict():
    r = parse_region("rects:0,0,4,4;8,8,12,12", 16)
    assert r.name == "rects" and r.boxes == ((0, 0, 4, 4), (8, 8, 12, 12)) and r.layout is None
    assert r.to_dict() == {"name": "rects", "spec": "rects:0,0,4,4;8,8,12,12", "layout": None,
                           "boxes": [[0, 0, 4, 4], [8, 8, 12, 12]], "area_share": 32 / 256}
    assert parse_region("rect:1,2,5,6", 16).name == "rect"
    e = parse_region("ellipse:8,8,3,2", 16)
    assert (e.name, e.spec, e.boxes) == ("ellipse", "ellipse:8,8,3,2", ())
    p = parse_region("mouth", 64, "toyfaces")
    assert (p.name, p.layout, p.to_dict()["layout"]) == ("mouth", "toyfaces", "toyfaces")


@pytest.mark.parametrize("spec, needle", [
    ("poly:1,1,9,1,9", "at least 3 x,y pairs"),
    ("poly:1,1,9,1,9,9,4", "at least 3 x,y pairs"),
    ("poly:1,1,17,1,9,9", r"vertex \(17.0, 1.0\) is outside the 16x16"),
    ("poly:1,1,9,-1,9,9", r"vertex \(9.0, -1.0\) is outside"),
    ("poly:2,2,6,6,10,10", "encloses 0 pixel"),
    ("ellipse:8,8,2,-1", "radii must be > 0"),
    ("rect:1,nan,5,6", "nan is not a finite number"),
    ("rects:0,0,2,2;1,1,2", "rects:x0,y0,x1,y1"),
])
def test_more_bad_specs(spec, needle):
    with pytest.raises(MGMError, match=needle):
        parse_region(spec, 16)


def test_polygon_vertices_on_the_border_and_limits():
    r = parse_region("poly:0,0,16,0,16,8", 16)  # vertices on the image border are allowed
    assert r.mask[0, 15] == 1 and r.mask[15, 0] == 0
    assert parse_region("poly:0,0,3,0,0,3", 16).mask.sum() > 0  # area 4.5 >= 1 pixel
    many = "poly:" + ",".join(f"{x},{y}" for x, y in [(1, 1), (9, 1), (9, 9)] * 3334)
    with pytest.raises(MGMError, match="10002 vertices, more than the 10000 allowed"):
        parse_region(many, 16)
    long = "rect:" + "1" * 100_001
    with pytest.raises(MGMError, match="100006 characters") as info:
        parse_region(long, 16)
    assert "\n" not in str(info.value)
    with pytest.raises(MGMError, match=r"'lipsXXXXXXXX.*\.\.\.'") as info:
        parse_region("lips" + "X" * 200, 16)  # a long spec is cut to 80 characters in the message
    assert "X" * 100 not in str(info.value)
    with pytest.raises(ValueError, match="resolution"):
        parse_region("rect:0,0,1,1", 1)
    assert parse_region("rect:0,0,1,1", 2).mask.sum() == 1


def test_png_mask_that_is_missing_or_not_a_png(tmp_path):
    with pytest.raises(MGMError, match="does not exist"):
        parse_region(str(tmp_path / "nope.png"), 16)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(MGMError, match="mask file .*bad.png.*white = region"):
        parse_region(str(bad), 16)


def test_limits_are_inclusive_and_hints_name_the_way_out():
    assert parse_region("ellipse:8.5,8.5,0.5,3", 16).mask.sum() > 0  # radii below one pixel are fine
    assert parse_region("ellipse:8.5,8.5,3,0.5", 16).mask.sum() > 0
    with pytest.raises(MGMError, match="radii must be > 0"):
        parse_region("ellipse:8,8,3,0", 16)
    assert parse_region("poly:0,0,2,0,0,1", 16).name == "poly"  # encloses exactly one pixel²: allowed
    assert parse_region("poly:0,0,3,0,0,1", 16).name == "poly"  # 1.5 pixel²
    assert parse_region("poly:0,0,16,16,0,16", 16).mask[15, 0] == 1  # a vertex at y = resolution
    rects = "rects:" + ";".join(["0,0,2,2"] * 1000)
    assert parse_region(rects, 16).boxes == ((0, 0, 2, 2),) * 1000  # exactly the limit
    with pytest.raises(MGMError, match="1001 rectangles, more than the 1000 allowed; give a PNG mask file"):
        parse_region(rects + ";0,0,2,2", 16)
    with pytest.raises(MGMError, match="no rectangles given"):
        parse_region("rects:;", 16)
    with pytest.raises(MGMError, match="give a PNG mask file for a complex region"):
        parse_region("poly:" + "1" * 100_000, 16)
    with pytest.raises(MGMError, match="allowed; give a PNG mask file"):
        parse_region("poly:" + ",".join(["1,1,9,1,9,9"] * 3334), 16)
    with pytest.raises(MGMError, match=r"repeated vertices\); give vertices that enclose at least one pixel"):
        parse_region("poly:2,2,6,6,10,10", 16)
    with pytest.raises(MGMError, match=r"expected 4 numbers \(ellipse:cx,cy,rx,ry\)|ellipse:cx,cy,rx,ry"):
        parse_region("ellipse:1,2,3", 16)
    with pytest.raises(MGMError, match="poly:x,y,x,y,x,y"):
        parse_region("poly:1,2,x", 16)
    with pytest.raises(MGMError, match="rect:x0,y0,x1,y1"):
        parse_region("rect:1,2,3", 16)
    with pytest.raises(MGMError, match="known: toyfaces, ffhq"):
        parse_region("mouth", 16, "cats")
    for spec in ("rect:1,2,5,6", "mouth", "poly:2,2,12,2,7,12"):
        assert parse_region(spec, 64).spec == spec
