"""Established direction finders, run on the same faces, regions and metrics as mask-guided discovery.

A direction finder is one declaration in the registry (:mod:`.registry`, which states the contract): a name, the
callable that offers candidate directions for a region at w*, whether it is in the default set, its place in the
method table, whether its path is a line or a loop, a one-line description.  The built-in ones, one module each:

* :mod:`.ganspace` — PCA of W (Härkönen et al. 2020), cached per generator;
* :mod:`.sefa` — eigenvectors of Σ_l A_lᵀA_l over the style affine weights (Shen & Zhou 2021);
* :mod:`.interfacegan` — linear SVM boundaries in W per attribute, optionally conditional (Shen et al. 2020);
* :mod:`.jacobian` — the masked Jacobian's generalised eigen-directions at the reference
  (:mod:`mgm_analysis.directions`; in the spirit of LowRankGAN / ReSeFa): ``jacobian`` the straight line along the
  best one, ``jacobian_loop`` the ellipse in the plane of the best two (a loop of edits, or the arc of it as long
  as the discovered chain: equal extent).

Third-party methods come from the entry-point group ``mgm_analysis.methods`` or :func:`register_method` at run
time.  :mod:`.common` turns a direction into a path at equal strength; the toolkit applies equal strength and the
oracle to every method.  A run of a method is the ``baseline`` run kind (:mod:`mgm_analysis.kinds.baseline`);
``mgm baselines`` and ``mgm compare-methods`` are :mod:`mgm_analysis.method_runs`, the method table
:mod:`mgm_analysis.analysis.table`.  Importing this package (or listing the methods) imports no torch.
"""

from __future__ import annotations

import importlib

__all__ = ["METHODS", "DEFAULT_METHODS", "LOOP_METHODS", "Method", "MethodContext", "register_method",
           "unregister_method", "get_method", "check_method", "candidate_directions", "parse_methods",
           "parse_strengths"]

#: every method, the default set, the loop methods: read from the registry at each access
_LISTS = {"METHODS": "method_names", "DEFAULT_METHODS": "default_methods", "LOOP_METHODS": "loop_methods"}
_LAZY = {"parse_methods": "methods", "parse_strengths": "methods"}


def __getattr__(name):
    if name in _LISTS:
        return getattr(importlib.import_module(".registry", __name__), _LISTS[name])()
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in __all__:
        return getattr(importlib.import_module(".registry", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
