"""Established direction finders, run on the same faces, regions and metrics as mask-guided discovery.

One small module per method, each a pure function on a generator:

* :mod:`.ganspace` — PCA of W (Härkönen et al. 2020), cached per generator;
* :mod:`.sefa` — eigenvectors of Σ_l A_lᵀA_l over the style affine weights (Shen & Zhou 2021);
* :mod:`.interfacegan` — linear SVM boundaries in W per attribute, optionally conditional (Shen et al. 2020);
* :mod:`.jacobian` — the masked Jacobian's generalised eigen-directions at the reference, from JVP/VJP
  products and randomised eigen-solvers (in the spirit of LowRankGAN / ReSeFa); ``jacobian`` is the straight
  line along the best one, ``jacobian_loop`` the ellipse in the plane of the best two (a loop of edits, or
  the arc of it as long as the discovered chain: equal extent).

:mod:`.common` turns a direction into a path at equal strength; :mod:`.run`
picks the component (an oracle: best locality among the top 10) and writes an
ordinary run through :func:`mgm_analysis.jobs.run_job` (``provenance.kind =
"baseline"``); :mod:`.table` is the method table (torch-free); :mod:`.compare`
is ``mgm compare-methods``.  Importing this package registers every method as a
``baseline`` job and imports no torch.
"""

from __future__ import annotations

import importlib

__all__ = ["METHODS", "DEFAULT_METHODS", "LOOP_METHODS", "run_baseline", "baseline_trajectory", "parse_methods",
           "parse_strengths", "compare_methods", "method_table"]

#: every method; ``interfacegan_cond`` is InterFaceGAN's conditional variant (not in the default set)
METHODS = ("ganspace", "sefa", "interfacegan", "jacobian", "jacobian_loop", "interfacegan_cond")
DEFAULT_METHODS = ("ganspace", "sefa", "interfacegan", "jacobian", "jacobian_loop")
#: the methods whose path is a loop (or an arc of it) in a plane of two directions, not a straight line
LOOP_METHODS = ("jacobian_loop",)

_LAZY = {"run_baseline": "run", "baseline_trajectory": "run", "parse_methods": "run", "parse_strengths": "run",
         "compare_methods": "compare", "method_table": "table"}


def _job(ctx):
    from .run import job_baseline

    return job_baseline(ctx)


def _register() -> None:
    from ..jobs import register_baseline

    for m in METHODS:
        register_baseline(m, _job)


_register()


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
