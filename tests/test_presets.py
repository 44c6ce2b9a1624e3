"""Region presets: relative boxes per layout, scaled to pixels at any resolution."""

import pytest

from mgm_analysis.presets import LAYOUTS, PRESETS, REGION_FACTORS, preset_boxes, preset_names

NAMES = {"mouth", "eyes", "left_eye", "right_eye", "brows", "nose", "chin"}


def test_layouts_have_every_region_and_valid_boxes():
    assert set(LAYOUTS) >= {"toyfaces", "ffhq"}
    for layout in LAYOUTS:
        assert set(PRESETS[layout]) >= NAMES
        for name, boxes in PRESETS[layout].items():
            for x0, y0, x1, y1 in boxes:
                assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, (layout, name)


def test_ffhq_mouth_is_the_papers_box():
    assert preset_boxes("mouth", "ffhq", 1024) == [(300, 680, 730, 790)]
    assert preset_boxes("mouth", "ffhq", 256) == [(75, 170, 182, 198)]


@pytest.mark.parametrize("layout", ["toyfaces", "ffhq"])
def test_eye_halves_split_the_eyes_box(layout):
    (ex0, ey0, ex1, ey1), = preset_boxes("eyes", layout, 1024)
    (lx0, _, lx1, _), = preset_boxes("left_eye", layout, 1024)
    (rx0, _, rx1, _), = preset_boxes("right_eye", layout, 1024)
    assert lx0 == ex0 and rx1 == ex1 and lx1 <= rx0


def test_boxes_scale_and_never_vanish():
    for layout in LAYOUTS:
        for name in preset_names(layout):
            for res in (4, 16, 64, 1024):
                for x0, y0, x1, y1 in preset_boxes(name, layout, res):
                    assert 0 <= x0 < x1 <= res and 0 <= y0 < y1 <= res


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(KeyError, match="mouth"):
        preset_boxes("ear", "toyfaces", 64)
    with pytest.raises(KeyError, match="ffhq"):
        preset_boxes("mouth", "cats", 64)


def test_region_factors_cover_the_feature_regions():
    for name in ("mouth", "eyes", "brows", "nose"):
        assert REGION_FACTORS[name]
