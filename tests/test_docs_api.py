"""docs/api.md's examples, run as doctests in an empty folder on the built-in model (each output written in the
page is checked here).  Documentation that runs, like the notebooks: ``make examples`` (CI runs it)."""

import doctest
import os
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


@pytest.mark.examples
def test_every_example_in_the_api_page(tmp_path, monkeypatch):
    from mgm_analysis.finders.registry import unregister_method
    from mgm_analysis.metrics import unregister_metric

    monkeypatch.chdir(tmp_path)
    try:
        res = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                               globs={}, verbose=False)
    finally:
        unregister_method("random_doc")
        unregister_metric("red_shift_doc")
    assert res.attempted >= 25 and res.failed == 0, res
    assert sorted(os.listdir(tmp_path)) == ["methods", "mouth.gif", "runs"]  # what the examples wrote, and only that
