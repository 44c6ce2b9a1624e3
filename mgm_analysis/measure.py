"""Measuring runs after the fact: recompute a store's array metrics, refresh its semantic metrics, and keep a
failing metric from losing a run (:func:`safe_metrics`)."""

from __future__ import annotations

import warnings
from pathlib import Path

from .metrics import metric_options, run_metrics

__all__ = ["recompute_metrics", "refresh_semantic", "safe_metrics"]

def recompute_metrics(root, quiet: bool = True) -> int:
    """Recompute the array-based metrics of every run in a store and merge them into run.json; returns the count.

    Metrics that need a model (``semantic_locality``, ``factor_change``) and those
    written by transfer/combination are kept.  Runs without frames are skipped
    with a warning (render them with ``mgm render``).
    """
    from .errors import RunReadError  # noqa: F401
    from .store import iter_runs, update_run_meta

    n = 0
    for run in iter_runs(root):
        try:
            m = run_metrics(run.latents, run.reference, run.frames, run.reference_img, run.mask,
                            **metric_options(run.meta.get("config", {}) or {}, run.latents))
        except (RunReadError, ValueError) as exc:
            warnings.warn(f"metrics of {run.run_id} not recomputed: {exc}", stacklevel=2)
            continue
        update_run_meta(run.path, {"metrics": m})
        n += 1
        if not quiet:
            print(f"{run.run_id}: locality {m['locality']:.3f}")
    return n


def refresh_semantic(root, G=None, force: bool = False) -> int:
    """Re-read the semantic metrics of every toyfaces run in ``root`` that lacks ``semantic_locality_shipped``,
    the semantic extent or the realism (made before those existed; with ``force`` every one, e.g. after new
    reader weights) with :func:`mgm_analysis.semantic.semantic_metrics`; returns the count."""
    from . import store
    from .semantic import semantic_metrics

    n = 0
    for r in store.iter_runs(root, warn=False):
        m = r.meta.get("metrics") or {}
        have = all(k in m for k in ("semantic_locality_shipped", "semantic_extent", "realism"))
        if (r.meta.get("generator") or {}).get("name") != "toyfaces" or (have and not force):
            continue
        if G is None:
            from .generators import load_generator

            G = load_generator("toyfaces")
        regions = (r.meta.get("provenance") or {}).get("regions") or [r.region]
        truncation = (r.meta.get("reference") or {}).get("truncation")
        new = semantic_metrics(G, r.frames, r.reference_img, regions, factor_change="factor_change" in m,
                               mask=r.mask, truncation=truncation if truncation is not None else 0.7,
                               cache_dir=Path(root) / ".mgm_cache")
        reader = new.pop("semantic_reader", None)  # a name: run.json keeps it beside metrics, as run_job does
        if new:
            store.update_run_meta(r.path, {"metrics": new, **({"semantic_reader": reader} if reader else {})})
            n += 1
    return n


# ------------------------------------------------------------------ run_job
def safe_metrics(fn, *args, errors: list, main: bool = True, **kw) -> dict:
    """Metrics that raise (a degenerate trajectory) become NaN, the reason goes to ``errors``, and the run is
    still written; ``main`` False: a secondary group (semantic, transfer scores) that only adds the reason."""
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - any failure of a metric must not lose the run
        errors.append(f"{getattr(fn, '__name__', 'metrics')}: {type(exc).__name__}: {exc}")
        nan = float("nan")
        return {"locality": nan, "jump_ratio": nan, "inside_rms": nan} if main else {}
