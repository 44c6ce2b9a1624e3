"""The parsers of method names and strengths (torch-free).

A method's candidate directions are :func:`mgm_analysis.finders.registry.candidate_directions` (re-exported
here): what the registered method offers for a region at w*, checked and made unit length.  A run of a method (the
oracle's pick at equal strength, a line or a loop) is the ``baseline`` run kind, :mod:`mgm_analysis.kinds.baseline`;
``mgm baselines`` and ``mgm compare-methods`` make such runs (:mod:`mgm_analysis.method_runs`).
"""

from __future__ import annotations

import math

from ..errors import MGMError
from .registry import TOP_K, candidate_directions, method_names, method_problems

__all__ = ["TOP_K", "candidate_directions", "parse_methods", "parse_strengths", "MAX_STRENGTHS"]

#: at most this many strengths in one ``--strengths`` list
MAX_STRENGTHS = 16


def parse_methods(text) -> list[str]:
    """``"ganspace,sefa"`` -> ["ganspace", "sefa"] (any registered method,
    :mod:`mgm_analysis.finders.registry`); an unknown name is one MGMError line, a plugin that was left out its
    own line (why, what to do)."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m and m.strip()]
    known = method_names()
    broken = method_problems()
    for m in names:
        if m in broken:
            raise MGMError(broken[m])
    bad = [m for m in names if m not in known]
    if bad:
        raise MGMError(f"unknown method(s) {', '.join(bad)}; known: {', '.join(known)}")
    if not names:
        raise MGMError(f"--methods is empty; give some of {', '.join(known)}")
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
