"""Measuring runs after the fact: compute the registered metrics a run lacks (:func:`fill_metrics`), recompute a
store's array metrics, refresh its semantic metrics, and keep a failing metric from losing a run
(:func:`safe_metrics`)."""

from __future__ import annotations

import warnings
from pathlib import Path

from .metrics import applicable, metric_options, registered_metrics, run_metrics

__all__ = ["fill_metrics", "missing_metrics", "recompute_metrics", "refresh_semantic", "safe_metrics"]


def _options(cfg: dict) -> dict:
    return {"offset": cfg.get("offset"), "closed": bool(cfg.get("closed_loop")), "distance": cfg.get("distance", "l2")}


def missing_metrics(meta: dict) -> list[str]:
    """The registered metrics (built in, installed plugins, registered at run time) that apply to a run and that
    its run.json ``metrics`` lack: made before the metric existed, or never measured."""
    have = meta.get("metrics") or {}
    opts = _options(meta.get("config") or {})
    return [m.name for m in registered_metrics() if m.name not in have and applicable(m, opts)]


def fill_metrics(runs, save: bool = True) -> tuple[int, list[str]]:
    """Compute, for each run (:class:`mgm_analysis.store.Run`), the registered metrics it lacks
    (:func:`missing_metrics`) from its arrays as saved, and add them to the run's metadata — in memory, and in its
    run.json with ``save`` — so that metrics.csv, the report and the dashboard show them.  A metric that raises is
    NaN with its reason added to ``metrics_errors``; the run is kept.  Returns (runs updated, lines for the runs
    left as they were: arrays that do not load, a run.json that cannot be written)."""
    from .errors import RunReadError
    from .store import update_run_meta

    n, notes = 0, []
    for run in runs:
        missing = missing_metrics(run.meta)
        if not missing:
            continue
        cached = "frames" in run.__dict__
        cfg = run.meta.get("config") or {}
        errors: list = []
        try:
            new = run_metrics(run.latents, run.reference, run.frames, run.reference_img, run.mask, only=missing,
                              failures=errors, **metric_options(cfg, run.latents))
        except (RunReadError, ValueError, OSError) as exc:
            notes.append(f"metrics {', '.join(missing)} of {run.run_id} not computed: {exc}")
            continue
        finally:
            if not cached:  # a store's frames are not kept in memory run after run
                run.__dict__.pop("frames", None)
        patch = {"metrics": new, **({"metrics_errors": [*(run.meta.get("metrics_errors") or []), *errors]}
                                    if errors else {})}
        run.meta.setdefault("metrics", {}).update(new)
        if errors:
            run.meta["metrics_errors"] = patch["metrics_errors"]
        if save:
            try:
                update_run_meta(run.path, patch)
            except (OSError, RunReadError, ValueError) as exc:
                notes.append(f"metrics {', '.join(new)} of {run.run_id} are in this report only: its run.json "
                             f"cannot be written ({exc})")
        n += 1
    return n, notes


def recompute_metrics(root, quiet: bool = True) -> int:
    """Recompute the array-based metrics (every registered one, :func:`mgm_analysis.metrics.run_metrics`) of every
    run in a store and merge them into run.json; returns the count.

    Metrics that need a model (``semantic_locality``, ``factor_change``) and those
    written by transfer/combination are kept.  Runs without frames are skipped
    with a warning (render them with ``mgm render``).
    """
    from .errors import RunReadError  # noqa: F401
    from .store import iter_runs, update_run_meta

    n = 0
    for run in iter_runs(root):
        errors: list = []
        try:
            m = run_metrics(run.latents, run.reference, run.frames, run.reference_img, run.mask, failures=errors,
                            **metric_options(run.meta.get("config", {}) or {}, run.latents))
        except (RunReadError, ValueError) as exc:
            warnings.warn(f"metrics of {run.run_id} not recomputed: {exc}", stacklevel=2)
            continue
        update_run_meta(run.path, {"metrics": m, **({"metrics_errors": errors} if errors else {})})
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
