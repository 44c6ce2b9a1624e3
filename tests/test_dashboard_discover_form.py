"""The Discover form's settings are a mapping onto the job API's parser: every setting names a DiscoveryConfig
field, its value is what ``parse_config_value`` (``--set``) makes of the same text, and anything else is one
line naming the setting (test_dashboard_discover.py checks the messages the page shows)."""

import pytest

from dashboards.discover import form
from mgm_analysis.config import DiscoveryConfig, config_fields, parse_config_value
from mgm_analysis.errors import MGMError

GOOD = {form.FRAMES: 12, form.EPOCHS: 7.0, form.OFFSET: 1, form.OUTSIDE: 2.5, form.LAYERS: " 1 : 6 ",
        form.DISTANCE: "lpips"}


def test_every_setting_is_a_config_field_parsed_as_set_parses_it():
    fields = config_fields()
    assert all(name in fields for _, names in form.SETTINGS.values() for name in names)
    got = form.settings_config(GOOD)
    want = {"n_frames": parse_config_value("n_frames", "12"), "epochs": parse_config_value("epochs", "7"),
            "offset": parse_config_value("offset", "1"), "outside_weight": parse_config_value("outside_weight", "2.5"),
            "layer_start": 1, "layer_end": 6, "distance": "lpips"}
    assert got == want and type(got["offset"]) is float and type(got["epochs"]) is int
    DiscoveryConfig(**got)  # what the page sends is a configuration the engine takes


@pytest.mark.parametrize("key, value, message", [
    (form.OFFSET, 10 ** 400, "offset: give a finite number"),    # an integer beyond any float
    (form.OUTSIDE, float("inf"), "outside weight: give a finite number"),
    (form.EPOCHS, 2.0 ** 60, "epochs: give a whole number"),     # beyond exact floats
    (form.LAYERS, "2:x", "layers '2:x': expected START:END"),
    (form.LAYERS, "1:2:3", "layers '1:2:3': expected START:END"),
    (form.LAYERS, "", "layers '': expected START:END"),
    (form.DISTANCE, None, "distance: choose one of l2, lpips"),
], ids=["huge-int", "inf", "2**60", "layers-x", "layers-3", "layers-empty", "distance-none"])
def test_bad_values_are_one_line_naming_the_setting(key, value, message):
    with pytest.raises(MGMError, match=message) as err:
        form.settings_config({**GOOD, key: value})
    assert "\n" not in str(err.value) and "config field" not in str(err.value)
