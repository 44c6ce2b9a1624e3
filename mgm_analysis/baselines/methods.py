"""The direction finders' candidate directions, and the parsers of method names and strengths.

:func:`candidate_directions` is what a method offers for a region at w*: unit directions [K, F, w_dim] in the free
W+ layers, their names and figures.  A run of a method (the oracle's pick at equal strength, a line or a loop)
is the ``baseline`` run kind, :mod:`mgm_analysis.kinds.baseline`; ``mgm baselines`` and ``mgm compare-methods``
make such runs (:mod:`mgm_analysis.method_runs`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import MGMError
from .common import broadcast_direction, unit_directions

__all__ = ["METHODS", "DEFAULT_METHODS", "LOOP_METHODS", "TOP_K", "candidate_directions", "parse_methods",
           "parse_strengths", "MAX_STRENGTHS"]

from . import DEFAULT_METHODS, LOOP_METHODS, METHODS  # noqa: E402  (the names live in the torch-free package root)

TOP_K = 10
#: at most this many strengths in one ``--strengths`` list
MAX_STRENGTHS = 16


def parse_methods(text) -> list[str]:
    """``"ganspace,sefa"`` -> ["ganspace", "sefa"]; an unknown name is one MGMError line."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m and m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise MGMError(f"unknown method(s) {', '.join(bad)}; known: {', '.join(METHODS)}")
    if not names:
        raise MGMError(f"--methods is empty; give some of {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def parse_strengths(text, flag: str = "--strengths", limit: int = MAX_STRENGTHS) -> list[float]:
    """``"1,2,4,8"`` -> [1.0, 2.0, 4.0, 8.0]: multiples K of the region's target c, each finite and > 0, at most
    ``limit`` of them, duplicates dropped; a number or a list of them is taken too.  Anything else is one
    MGMError line that names ``flag`` (nothing has been written when the commands check it)."""
    example = f"e.g. {flag} 1,2,4,8" if limit > 1 else f"e.g. {flag} 2"
    if isinstance(text, str):
        items = [p.strip() for p in text.split(",")]
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        items = [text]
    else:
        items = list(text or [])
    items = [p for p in items if not (isinstance(p, str) and not p)]
    if not items:
        raise MGMError(f"{flag} is empty; give {'multiples' if limit > 1 else 'a multiple'} of the region's "
                       f"target offset c, {example}")
    if len(items) > limit:
        raise MGMError(f"{flag} has {len(items)} values; give at most {limit}, {example}")
    out = []
    for p in items:
        try:
            if isinstance(p, bool):
                raise TypeError
            v = float(p)
        except (TypeError, ValueError):
            raise MGMError(f"{flag} {text}: {p!r} is not a number; a strength is a multiple K > 0 of the region's "
                           f"target offset c, {example}") from None
        if not (math.isfinite(v) and v > 0):
            raise MGMError(f"{flag} {text}: {p} is not a finite number > 0; a strength is a multiple K > 0 of the "
                           f"region's target offset c, {example}")
        out.append(v)
    return list(dict.fromkeys(out))


def _region_factors(region_name: str | None) -> list[str]:
    from ..presets import REGION_FACTORS

    return list(REGION_FACTORS.get(region_name or "", []))


def candidate_directions(method: str, G, w_ref, region, layers: tuple[int, int], *, cache_dir=None, labels=None,
                         attributes=None, truncation: float = 0.7, k: int = TOP_K, seed: int = 0):
    """(directions [K, F, w_dim] unit, names [K], info) offered by ``method`` for ``region`` at w*."""
    n_free = layers[1] - layers[0]
    if method == "ganspace":
        from .ganspace import ganspace_components

        pcs = ganspace_components(G, k=k, seed=seed, cache_dir=cache_dir)
        dirs = np.stack([broadcast_direction(v, n_free) for v in pcs["components"]])
        return unit_directions(dirs), [f"PC{i}" for i in range(len(dirs))], {
            "explained_variance": [float(v) for v in pcs["explained"]], "n_samples": pcs["n_samples"],
            "cached": pcs["cached"]}
    if method == "sefa":
        from .sefa import sefa_components

        ev = sefa_components(G, layers, k=k)
        dirs = np.stack([broadcast_direction(v, n_free) for v in ev["components"]])
        return unit_directions(dirs), [f"EV{i}" for i in range(len(dirs))], {
            "eigenvalues": [float(v) for v in ev["eigenvalues"]], "style_layers": ev["layers"]}
    if method in ("interfacegan", "interfacegan_cond"):
        from .interfacegan import boundaries_for, conditional_normal

        if labels is None and getattr(getattr(G, "info", None), "name", None) != "toyfaces":
            raise MGMError(f"{method} needs labels on this generator: pass --labels CSV (columns seed or w, and one "
                           "per attribute); only toyfaces has ground-truth factors built in")
        if labels is None:  # toyfaces: the region's own factors; a region without any cannot be reached
            wanted = _region_factors(getattr(region, "name", None) if getattr(region, "layout", None) else None)
            if not wanted:
                raise MGMError(f"{method} cannot reach region {getattr(region, 'spec', region)!r}: no labelled factor "
                               "belongs to it (toyfaces presets with factors: mouth, eyes, left_eye, right_eye, "
                               "brows, nose); pass --labels with attributes of that region")
        b = boundaries_for(G, labels=labels, seed=seed, cache_dir=cache_dir, truncation=truncation, layers=layers)
        names = b["names"]
        if labels is not None:
            wanted = list(attributes) if attributes else list(names)
        missing = [a for a in wanted if a not in names]
        if missing:
            raise MGMError(f"{method}: attribute(s) {', '.join(missing)} are not in the labels "
                           f"({', '.join(names)})")
        if not wanted:
            raise MGMError(f"{method} cannot reach region {getattr(region, 'spec', region)!r}: no labelled factor "
                           "belongs to it (toyfaces presets with factors: mouth, eyes, left_eye, right_eye, brows, "
                           "nose); pass --labels with attributes of that region")
        idx = [names.index(a) for a in wanted]
        if method == "interfacegan_cond":
            others = [i for i in range(len(names)) if i not in idx]
            normals = [conditional_normal(b["normals"], i, others) for i in idx]
        else:
            normals = [b["normals"][i] for i in idx]
        dirs = np.stack([broadcast_direction(v, n_free) for v in normals])
        return unit_directions(dirs), wanted, {
            "accuracy": {a: float(b["accuracy"][i]) for a, i in zip(wanted, idx, strict=True)},
            "labels": b["source"], "conditional_on": [names[i] for i in range(len(names)) if i not in idx]
            if method == "interfacegan_cond" else []}
    if method in ("jacobian", "jacobian_loop"):  # the loop: the same directions, an ellipse instead of a line
        from ..directions import masked_jacobian

        res = masked_jacobian(G, w_ref, region.mask, layers, k=k, seed=seed, cache_dir=cache_dir)
        return unit_directions(res["directions"]), [f"J{i}" for i in range(len(res["directions"]))], {
            "ratios": [float(v) for v in res["ratios"]], "jvp_vjp_vectors": int(res["products"]),
            "rank": int(res["rank"])}
    raise MGMError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


