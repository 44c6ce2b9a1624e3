"""The run metrics registry: a metric is one entry (name, function, what it takes, headline, which way is better); run_metrics computes every registered one; third-party metrics come from the entry-point group mgm_analysis.metrics or register_metric."""


from __future__ import annotations

import functools
import inspect
import re
import threading
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

NAN = float("nan")


def _quiet(fn):
    """Run ``fn`` without numpy's floating-point warnings: NaN/inf input gives NaN output, silently."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapped


# ------------------------------------------------------------------- the registry
# A run metric is one entry here: a name, a function, what it needs, whether it is a headline metric (shown in
# summaries), which way is better, a short description.  run_metrics computes every registered metric; the report,
# the method table and the dashboard list them from here; `mgm analyze` computes one for every run that lacks it
# (mgm_analysis.measure.fill_metrics).  Third-party metrics: the entry-point group ``mgm_analysis.metrics`` (a
# function or a Metric) and register_metric at run time.

#: what a metric's function may ask for, by keyword: frames [n, H, W, 3] in [0, 1] (as saved), reference
#: [H, W, 3], mask [H, W] in [0, 1], latents [n, num_ws, w_dim] (the contract of a third-party metric) ...
INPUTS = ("frames", "reference", "mask", "latents")
#: ... and what the built-ins use too: w* [num_ws, w_dim], the free layers' latents, whether the run is a loop, the
#: target offset c (a float or one per frame) and the run's distance ("l2" | "lpips")
EXTRA_INPUTS = ("w_ref", "free_latents", "closed", "offset", "distance")
#: where a metric can be shown: the report's runs and regions tables, its bar figure, the method table, the
#: dashboard's first metric columns, the metrics the dashboard's comparison opens with, the terminal summary
VIEWS = ("summary", "bars", "table", "dashboard", "picked", "terminal")
#: the entry-point group of third-party metrics
METRIC_ENTRY_POINTS = "mgm_analysis.metrics"
#: catalog columns that are not metrics: no metric takes these names
_RESERVED = ("run_id", "path", "status", "region", "generator", "reference", "seed", "n_frames", "layers",
             "distance", "created", "kind", "method", "strength", "source", "seconds", "cpu_seconds", "runs")


class MetricPluginWarning(UserWarning):
    """A third-party metric that could not be registered, or that failed on a run (one line: which, why)."""


@dataclass(frozen=True)
class Metric:
    """A run metric.

    Attributes:
        name: its key in run.json ``metrics`` and its column in the catalog (metrics.csv, the dashboard).
        fn: ``fn(**inputs) -> float`` taking keyword arguments among :data:`INPUTS` (and :data:`EXTRA_INPUTS`);
            NaN when undefined.  None: a metric measured elsewhere (the semantic reader, a transfer) that is only
            listed here, so that the report and the dashboard show it.
        needs: the inputs it takes (default: read from ``fn``'s parameters).
        headline: shown in summaries — the report's tables and bars, the method table, the dashboard's first
            columns, the terminal summary (``show`` narrows that down).
        higher_is_better: True, False, or None (neither: a descriptive number).
        description: one short line (the report's list of metrics).
        order: its place in those summaries (ascending); the built-ins take 0–99.
        show: the views (:data:`VIEWS`) it is shown in; None: every view when ``headline``, else none.
        applies: ``applies(options) -> bool`` on the run's options (``offset``, ``closed``, ``distance``): when
            False the metric is not computed for that run (``loop_closure`` of an open path).
        measured_by: for ``fn`` None, what measures it.
        source: ``built-in``, an entry point, or ``run time``.
    """

    name: str
    fn: Callable | None = field(default=None, repr=False)
    needs: tuple = ()
    headline: bool = True
    higher_is_better: bool | None = None
    description: str = ""
    order: float = 100.0
    show: tuple | None = None
    applies: Callable | None = field(default=None, repr=False)
    measured_by: str = ""
    source: str = "built-in"

    @property
    def views(self) -> tuple:
        return tuple(self.show) if self.show is not None else (VIEWS if self.headline else ())

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"

    @property
    def where(self) -> str:
        return f"metric {self.name}" + ("" if self.builtin else f" ({self.source})")


_METRICS: dict[str, Metric] = {}
_METRIC_PROBLEMS: dict[str, str] = {}
_METRICS_LOCK = threading.RLock()
_PLUGINS_LOADED = False
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _needs_of(fn, name: str) -> tuple:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return INPUTS
    known = INPUTS + EXTRA_INPUTS
    needs = []
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            needs += [i for i in INPUTS if i not in needs]
        elif p.name in known or p.name == "_memo":
            needs.append(p.name)
        elif p.default is p.empty and p.kind not in (p.VAR_POSITIONAL,):
            raise ValueError(f"metric {name} asks for {p.name!r}; a metric takes keyword arguments among "
                             f"{', '.join(INPUTS)} (also {', '.join(EXTRA_INPUTS)})")
    return tuple(needs)


def _declare(m: Metric, *, replace_runtime: bool = False) -> Metric:
    """Check a declaration and add it; ValueError (one line) when it cannot be."""
    if not isinstance(m.name, str) or not _NAME.fullmatch(m.name) or m.name in _RESERVED:
        raise ValueError(f"metric name {m.name!r} is not usable: give a letter, then letters, digits or _, and not "
                         f"one of the catalog's own columns ({', '.join(_RESERVED[:6])}, ...)")
    if m.fn is not None and not callable(m.fn):
        raise ValueError(f"{m.where}: its function is a {type(m.fn).__name__}, not a callable")
    needs = tuple(m.needs) if m.needs else (_needs_of(m.fn, m.name) if m.fn is not None else ())
    bad = [n for n in needs if n not in INPUTS + EXTRA_INPUTS + ("_memo",)]
    if bad:
        raise ValueError(f"{m.where} needs {', '.join(bad)}; a metric takes keyword arguments among "
                         f"{', '.join(INPUTS)} (also {', '.join(EXTRA_INPUTS)})")
    views = None if m.show is None else tuple(m.show)
    if views is not None and any(v not in VIEWS for v in views):
        raise ValueError(f"{m.where}: show {list(views)} is not among {', '.join(VIEWS)}")
    if m.higher_is_better not in (True, False, None):
        raise ValueError(f"{m.where}: higher_is_better is True, False or None, not {m.higher_is_better!r}")
    old = _METRICS.get(m.name)
    if old is not None and not (replace_runtime and old.source == "run time"):
        raise ValueError(f"{m.where}: the name {m.name!r} is taken by "
                         + ("a built-in metric" if old.builtin else old.where) + "; register it under another name")
    m = replace(m, needs=needs, show=views, order=float(m.order), description=" ".join(str(m.description).split()))
    _METRICS[m.name] = m
    return m


def _builtin(name, fn=None, *, order, show=(), headline=None, better=None, description="", applies=None,
             measured_by=""):
    _declare(Metric(name, fn, headline="summary" in show if headline is None else headline, higher_is_better=better,
                    description=description, order=order, show=tuple(show), applies=applies,
                    measured_by=measured_by))


def _load_metric_plugins() -> None:
    """Register the entry points' metrics (once, on the registry's first use)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    with _METRICS_LOCK:
        if _PLUGINS_LOADED:
            return
        from importlib.metadata import entry_points

        seen = set()
        for ep in entry_points(group=METRIC_ENTRY_POINTS):
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            dist = getattr(getattr(ep, "dist", None), "name", None)
            label = f"{ep.name} = {ep.value}" + (f" of {dist}" if dist else "")
            source = f"entry point {label}"
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a plugin's import can fail any way: one line, not a traceback
                _metric_problem(ep.name, f"metric plugin {label} cannot be imported ({type(exc).__name__}: "
                                         f"{exc}); fix it, or uninstall the package that provides it")
                continue
            try:
                if isinstance(obj, Metric):
                    if obj.name != ep.name:
                        raise ValueError(f"metric plugin {label} declares metric {obj.name!r}; make the entry "
                                         "point's name and the metric's the same")
                    _declare(replace(obj, source=source))
                elif callable(obj):
                    _declare(Metric(ep.name, obj, description=_first_line(obj), source=source))
                else:
                    raise ValueError(f"metric plugin {label} is a {type(obj).__name__}, not a function or a "
                                     "Metric; point the entry point at fn(frames=..., ...) -> float")
            except ValueError as exc:
                _metric_problem(ep.name, str(exc))
        _PLUGINS_LOADED = True


def _first_line(fn) -> str:
    doc = (inspect.getdoc(fn) or "").strip().splitlines()
    return doc[0] if doc else ""


def _metric_problem(name: str, line: str) -> None:
    _METRIC_PROBLEMS[name] = line
    warnings.warn(line, MetricPluginWarning, stacklevel=3)


def register_metric(name, fn: Callable | None = None, *, needs=None, headline: bool = True,
                    higher_is_better: bool | None = None, description: str | None = None, order: float = 100.0,
                    show=None, applies=None):
    """Register a run metric at run time (a notebook); usable as a decorator::

        @register_metric("mouth_brightness", higher_is_better=True)
        def mouth_brightness(frames, reference, mask):
            return float(...)

    ``fn`` takes keyword arguments among ``frames``, ``reference``, ``mask``, ``latents`` (see :data:`INPUTS`) and
    returns a float (NaN when undefined).  ``name`` may also be a :class:`Metric`.  Registering a name again
    replaces an earlier run-time registration; a built-in's or an installed plugin's name is refused
    (ValueError).  Returns ``fn`` (or the Metric).
    """
    if isinstance(name, Metric):
        with _METRICS_LOCK:
            _load_metric_plugins()
            return _declare(replace(name, source="run time"), replace_runtime=True)
    if fn is None:
        def decorate(f):
            register_metric(name, f, needs=needs, headline=headline, higher_is_better=higher_is_better,
                            description=description, order=order, show=show, applies=applies)
            return f

        return decorate
    with _METRICS_LOCK:
        _load_metric_plugins()
        _declare(Metric(name, fn, needs=tuple(needs or ()), headline=headline, higher_is_better=higher_is_better,
                        description=_first_line(fn) if description is None else description, order=order,
                        show=None if show is None else tuple(show), applies=applies, source="run time"),
                 replace_runtime=True)
    return fn


def unregister_metric(name: str) -> None:
    """Remove a metric registered at run time (built-ins and installed plugins stay)."""
    with _METRICS_LOCK:
        m = _METRICS.get(name)
        if m is not None and m.source != "run time":
            raise ValueError(f"{m.where} was not registered at run time; it cannot be unregistered")
        _METRICS.pop(name, None)


def registered_metrics() -> list[Metric]:
    """Every registered metric in the order run_metrics computes them (built-ins, entry points, run time)."""
    _load_metric_plugins()
    with _METRICS_LOCK:
        return list(_METRICS.values())


def get_metric(name: str) -> Metric | None:
    """The metric called ``name``, or None."""
    _load_metric_plugins()
    return _METRICS.get(name)


def metric_names(view: str | None = None) -> list[str]:
    """The registered metrics shown in ``view`` (one of :data:`VIEWS`; None: every one), in display order."""
    if view is not None and view not in VIEWS:
        raise ValueError(f"view {view!r} is not one of {', '.join(VIEWS)}")
    ms = [m for m in registered_metrics() if view is None or view in m.views]
    return [m.name for m in sorted(ms, key=lambda m: m.order)]  # (stable: registration order among equals)


def metric_problems() -> dict[str, str]:
    """{plugin name: the line that says why it was left out}."""
    _load_metric_plugins()
    return dict(_METRIC_PROBLEMS)


def applicable(m: Metric, options: dict) -> bool:
    """Whether ``m`` is computed for a run with these options (``offset``, ``closed``, ``distance``)."""
    return m.fn is not None and (m.applies is None or bool(m.applies(options)))


def _value(m: Metric, v):
    """A metric's value as run.json keeps it: a built-in's as it is; a plugin's a float (else ValueError)."""
    if m.builtin:
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    a = np.asarray(v) if not isinstance(v, (bool, str, bytes, dict)) and v is not None else None
    if a is not None and a.ndim == 0 and np.issubdtype(a.dtype, np.number) and a.dtype.kind != "c":
        return float(a)
    shown = repr(v) if a is None or a.ndim == 0 else f"an array of shape {list(a.shape)}"
    raise ValueError(f"returned {shown[:60]}; a metric returns a float (NaN when undefined)")


# ------------------------------------------------------------------- a run
@_quiet
def run_metrics(latents, w_ref, frames, ref_img, mask, *, layers=None, offset=None, closed=False,
                distance: str = "l2", only=None, failures: list | None = None) -> dict:
    """Every registered metric of one run that its arrays give (:func:`registered_metrics`), as a JSON-ready dict
    (floats; a list for ``layer_profile``), in registration order.

    Args:
        latents: [n, num_ws, w_dim]; w_ref: [num_ws, w_dim].
        frames: [n, H, W, 3] and ref_img [H, W, 3] in [0, 1]; mask [H, W] in [0, 1].
        layers: (start, end) of the free W+ layers: latent-space smoothness and dimension use only those.
        offset: the target inside distance c (float or one per frame) for ``inside_gap`` (l2 only).
        closed: the run is a loop: steps wrap around and ``loop_closure`` is added.
        distance: the run's distance ("l2" or "lpips").
        only: compute just these metrics (names), when applicable.
        failures: a list: a metric that raises becomes NaN and ``"name: Error: message"`` is appended here (a run is
            never lost to a metric).  Without it a built-in's error is raised (a caller's shape mistake) and a
            third-party metric's becomes NaN with a :class:`MetricPluginWarning`.
    """
    frames, lat = np.asarray(frames), np.asarray(latents)
    if len(frames) != len(lat):
        raise ValueError(f"expected one frame per latent, got {len(frames)} frames and {len(lat)} latents")
    inputs = {"frames": frames, "reference": ref_img, "mask": mask, "latents": lat, "w_ref": w_ref,
              "free_latents": lat[:, layers[0]:layers[1]] if layers else lat, "closed": closed, "offset": offset,
              "distance": distance, "_memo": {}}
    options = {"offset": offset, "closed": bool(closed), "distance": distance}
    wanted = None if only is None else set(only)
    m = {}
    for metric in registered_metrics():
        if (wanted is not None and metric.name not in wanted) or not applicable(metric, options):
            continue
        try:
            m[metric.name] = _value(metric, metric.fn(**{k: inputs[k] for k in metric.needs}))
        except Exception as exc:  # noqa: BLE001 - see ``failures``
            if failures is None and metric.builtin:
                raise
            line = f"{metric.name}: {type(exc).__name__}: {exc}" + ("" if metric.builtin else f" ({metric.source})")
            if failures is None:
                warnings.warn(f"{metric.where} failed: {type(exc).__name__}: {exc}; its value is NaN",
                              MetricPluginWarning, stacklevel=3)
            else:
                failures.append(line)
            m[metric.name] = NAN
    return m


def metric_options(cfg: dict, latents) -> dict:
    """:func:`run_metrics`' keyword arguments for a run from its config (run.json ``config``) and latents
    [n, num_ws, w_dim]: the free layers, the target c (a ramp 0 → c over the frames with ``offset_ramp``),
    whether the run is a closed loop, and its distance."""
    n, num_ws = np.shape(latents)[:2]
    offset = cfg.get("offset")
    if offset is not None and cfg.get("offset_ramp"):
        offset = np.linspace(0.0, float(offset), n)
    return {"layers": (int(cfg.get("layer_start", 0)), int(cfg.get("layer_end", num_ws))), "offset": offset,
            "closed": bool(cfg.get("closed_loop")), "distance": cfg.get("distance", "l2")}


