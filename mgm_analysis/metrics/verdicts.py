"""The quality bars a run is judged by (locality, on target, smooth, exploring) and the verdicts read from its
metrics."""

from __future__ import annotations

import numpy as np

EXTENT_BARS = {"spread": 1.0, "inside_path": 3.0}

#: what a good run reaches: local (locality), on target (mean D_in within 5 % of c), smooth (no visible pop),
#: and exploring (:data:`EXTENT_BARS`); the one rule behind every "good" the toolkit prints
QUALITY_BARS = {"locality": 0.95, "inside_gap_share": 0.05, "jump_ratio": 2.5, **EXTENT_BARS}


def explores(metrics: dict) -> bool:
    """Whether a run's ``spread`` and ``inside_path`` reach :data:`EXTENT_BARS` (False when either is missing or
    NaN): the part of every quality verdict that a chain standing still cannot pass.

    >>> explores({"spread": 1.2, "inside_path": 3.4}), explores({"spread": 0.0, "inside_path": 0.0})
    (True, False)
    """
    vals = [(metrics or {}).get(k) for k in EXTENT_BARS]
    return all(isinstance(v, (int, float)) and np.isfinite(v) and v >= bar
               for v, bar in zip(vals, EXTENT_BARS.values(), strict=True))


def quality_failures(metrics: dict, offset=None) -> list[str]:
    """What keeps a run from being good, one short phrase per missed bar of :data:`QUALITY_BARS` ([] = good).

    ``offset``: the run's target c (a float, or one per frame for a ramp: their mean), for the inside gap
    (``inside_gap`` / c, l2 runs); without it, or without ``inside_gap``, that bar is not judged.  A missing or
    NaN metric misses its bar.  A chain that stands still always fails (its spread and path are 0).

    >>> quality_failures({"locality": 0.97, "jump_ratio": 1.2, "spread": 1.3, "inside_path": 3.7})
    []
    >>> quality_failures({"locality": 0.99, "jump_ratio": 1.1, "spread": 0.02, "inside_path": 0.2})
    ['spread 0.02 < 1', 'inside path 0.2 < 3']
    """
    m = metrics or {}

    def num(k):
        v = m.get(k)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) else None

    out = []
    for key, low in (("locality", QUALITY_BARS["locality"]), ("spread", QUALITY_BARS["spread"]),
                     ("inside_path", QUALITY_BARS["inside_path"])):
        v = num(key)
        if v is None or v < low:
            out.append(f"{key.replace('_', ' ')} {'nan' if v is None else f'{v:.3g}'} < {low:g}")
    j = num("jump_ratio")
    if j is None or j > QUALITY_BARS["jump_ratio"]:
        out.append(f"jump ratio {'nan' if j is None else f'{j:.3g}'} > {QUALITY_BARS['jump_ratio']:g}")
    c = float(np.mean(offset)) if offset is not None else None
    gap = num("inside_gap")
    if c and "inside_gap" in m and (gap is None or gap > QUALITY_BARS["inside_gap_share"] * c):
        share = "nan" if gap is None else f"{gap / c:.1%}"
        out.append(f"inside gap {share} of c > {QUALITY_BARS['inside_gap_share']:.0%}")
    return out




def describe_extent(metrics) -> str:
    """The states a chain covers, in words, from its ``semantic_low`` / ``semantic_high`` (nested, as in run.json, or
    flattened, as in a catalog row: ``semantic_low.mouth_open``); "" when the run has none (not toyfaces).

    >>> describe_extent({"semantic_low": {"mouth_open": 0.12, "mouth_smile": 0.3},
    ...                  "semantic_high": {"mouth_open": 0.71, "mouth_smile": 0.42}})
    'spans mouth_open 0.12–0.71, mouth_smile 0.30–0.42'
    """
    m = dict(metrics or {})
    low, high = m.get("semantic_low"), m.get("semantic_high")
    if not isinstance(low, dict):
        low = {k.split(".", 1)[1]: v for k, v in m.items() if str(k).startswith("semantic_low.")}
        high = {k.split(".", 1)[1]: v for k, v in m.items() if str(k).startswith("semantic_high.")}
    parts = [f"{f} {low[f]:.2f}–{high[f]:.2f}" for f in low
             if isinstance(low.get(f), (int, float)) and isinstance((high or {}).get(f), (int, float))
             and np.isfinite(low[f]) and np.isfinite(high[f])]
    return "spans " + ", ".join(parts) if parts else ""


