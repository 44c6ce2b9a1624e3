"""Established direction finders, run on the same faces, regions and metrics as mask-guided discovery.

One small module per method, each a pure function on a generator:

* :mod:`.ganspace` — PCA of W (Härkönen et al. 2020), cached per generator;
* :mod:`.sefa` — eigenvectors of Σ_l A_lᵀA_l over the style affine weights (Shen & Zhou 2021);
* :mod:`.interfacegan` — linear SVM boundaries in W per attribute, optionally conditional (Shen et al. 2020);
* the masked Jacobian (:mod:`mgm_analysis.directions`) — generalised eigen-directions at the reference, from
  JVP/VJP products and randomised eigen-solvers (in the spirit of LowRankGAN / ReSeFa); ``jacobian`` is the
  straight line along the best one, ``jacobian_loop`` the ellipse in the plane of the best two (a loop of
  edits, or the arc of it as long as the discovered chain: equal extent).

:mod:`.methods` gives a method's candidate directions; :mod:`.common` turns a direction into a path at equal
strength.  A run of a method is the ``baseline`` run kind (:mod:`mgm_analysis.kinds.baseline`); ``mgm
baselines`` and ``mgm compare-methods`` are :mod:`mgm_analysis.method_runs`, the method table
:mod:`mgm_analysis.analysis.table`.  Importing this package imports no torch.
"""

from __future__ import annotations

import importlib

__all__ = ["METHODS", "DEFAULT_METHODS", "LOOP_METHODS", "candidate_directions", "parse_methods", "parse_strengths"]

#: every method; ``interfacegan_cond`` is InterFaceGAN's conditional variant (not in the default set)
METHODS = ("ganspace", "sefa", "interfacegan", "jacobian", "jacobian_loop", "interfacegan_cond")
DEFAULT_METHODS = ("ganspace", "sefa", "interfacegan", "jacobian", "jacobian_loop")
#: the methods whose path is a loop (or an arc of it) in a plane of two directions, not a straight line
LOOP_METHODS = ("jacobian_loop",)

_LAZY = {"candidate_directions": "methods", "parse_methods": "methods", "parse_strengths": "methods"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
