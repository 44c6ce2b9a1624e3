"""Analysis of discovered manifolds: metrics, joint projections, region comparison, transfer and combination.

Everything here reads runs with numpy, pandas and json; only :mod:`.transfer`
imports torch (it runs the generator).  Submodules load on first use, so
``import mgm_analysis.analysis.metrics`` stays light.

>>> from mgm_analysis.analysis import load_runs, project    # doctest: +SKIP
>>> cat = load_runs("runs/")          # one row per run, metrics as columns
>>> df = project("runs/", "pca")      # run_id, region, frame, x, y
"""

from __future__ import annotations

import importlib

__all__ = ["analyze", "load_runs", "project", "overlap_matrix", "layer_profiles", "region_overlap_summary",
           "run_metrics", "recompute_metrics", "metrics", "projection", "compare", "report", "transfer"]

_LAZY = {
    "analyze": "report", "load_runs": "report", "project": "projection", "overlap_matrix": "compare",
    "layer_profiles": "compare", "region_overlap_summary": "compare", "run_metrics": "metrics",
    "recompute_metrics": "metrics",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in ("metrics", "projection", "compare", "report", "transfer"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
