"""Analysis of stores of runs, read-only: joint projections, region comparison, the method table, the report.

Everything here reads runs with numpy, pandas and json and never runs a generator (no torch; deriving
transfer and combination runs is :mod:`mgm_analysis.derive`, a metric's formula :mod:`mgm_analysis.metrics`).
Submodules load on first use, so ``import mgm_analysis.analysis`` stays light.

>>> from mgm_analysis.analysis import load_runs, project    # doctest: +SKIP
>>> cat = load_runs("runs/")          # one row per run, metrics as columns
>>> df = project("runs/", "pca")      # run_id, region, frame, x, y
"""

from __future__ import annotations

import importlib

__all__ = ["analyze", "load_runs", "project", "overlap_matrix", "layer_profiles", "region_overlap_summary",
           "method_table", "projection", "compare", "report", "table"]

_LAZY = {
    "analyze": "report", "load_runs": "report", "project": "projection", "overlap_matrix": "compare",
    "layer_profiles": "compare", "region_overlap_summary": "compare", "method_table": "table",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in ("projection", "compare", "report", "table"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
