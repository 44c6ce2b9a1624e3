"""Analysis of discovered manifolds: metrics, joint projections, region comparison, transfer and combination.

Everything here reads runs with numpy, pandas and json; only :mod:`.transfer` imports torch.

>>> from mgm_analysis.analysis import load_runs      # doctest: +SKIP
>>> df = load_runs("runs/")                           # one row per run, metrics as columns
"""

from .report import analyze, load_runs  # noqa: F401

__all__ = ["analyze", "load_runs"]
