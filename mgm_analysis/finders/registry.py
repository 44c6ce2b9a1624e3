"""The direction finders' registry: a method is one declaration.

A *method* offers candidate directions for a region at a reference latent; the toolkit does everything else, the
same for every method, built in or not (:mod:`mgm_analysis.kinds.baseline`): *equal strength* (each direction's
path is scaled so that its mean inside distance on the frames as saved is K·c), *the oracle* (the direction — for
a loop the two — with the best locality at that strength is kept, and recorded), rendering, metrics and the run.

The contract of a method
------------------------
``fn(ctx) -> (directions, names)`` or ``(directions, names, info)``, ``ctx`` a :class:`MethodContext`:

* ``ctx.G`` — the generator (``G.synthesis(ws)``, ``G.mapping(z)``, ``G.num_ws``, ``G.w_dim``, ``G.resolution``);
* ``ctx.w_ref`` — the reference latent w*, a torch float32 tensor ``[num_ws, w_dim]`` on ``ctx.device``;
* ``ctx.mask`` — the region, a torch float32 tensor ``[H, W]`` in [0, 1] on ``ctx.device``;
* ``ctx.layers`` — ``(start, end)``, the free W+ layers, end exclusive (F = end − start);
* ``ctx.device`` — the torch device; ``ctx.cache_dir`` — a folder for per-generator caches (or None);
* for the built-ins that need them: ``ctx.region`` (a :class:`mgm_analysis.masks.Region`: name, spec, layout,
  boxes, the mask as numpy), ``ctx.labels`` / ``ctx.attributes`` (``--labels`` CSV and its columns),
  ``ctx.truncation``, ``ctx.seed`` (the search seed) and ``ctx.k`` (how many directions the built-ins offer, 10);
* ``ctx.stop`` — None, or ``stop() -> bool``: a long method may poll it and raise
  :class:`mgm_analysis.errors.SearchStopped` when it returns True (a cancel; the masked Jacobian does).

It returns

* ``directions`` — a numpy array or torch tensor ``[k, w_dim]`` (a direction in w, the same on every free layer)
  or ``[k, end − start, w_dim]``; any length (the toolkit makes each one unit length over the free layers), every
  value finite, none zero;
* ``names`` — k distinct strings (the chosen one is recorded as the run's ``component``);
* optionally ``info`` — a JSON-ready dict, recorded in run.json (``provenance.params.info``).

A method leaves ``ctx.G``, ``ctx.w_ref`` and ``ctx.mask`` unchanged, returns the same directions for the same
context (seed any randomness from ``ctx.seed``), and imports torch inside the function rather than at the top of
its module (listing the methods — ``--help``, the method table, the dashboard — stays torch-free).  What a method
returns is checked (:func:`check_result`); anything off is one :class:`~mgm_analysis.errors.MGMError` line that
says what.  :func:`check_method` runs a method against the whole contract on a tiny generator.

Declaring a method
------------------
* built in: a module in ``mgm_analysis/finders/`` with a module-level :class:`Method` (or a tuple of them):
  ``ganspace.py``, ``sefa.py``, ``interfacegan.py``, ``jacobian.py``; every module of the package is looked at
  except ``common``, ``methods``, ``registry`` and private ones (so each must import without torch);
* a third-party package: an entry point in the group ``mgm_analysis.methods`` naming a callable (the entry
  point's name is the method's) or a :class:`Method`::

      [project.entry-points."mgm_analysis.methods"]
      mymethod = "mypackage.mymethod:directions"

* at run time (a notebook): ``register_method("mine", fn, ...)``, or ``@register_method("mine")`` on ``fn``.

Entry points are read the first time the registry is used.  A plugin that does not import, or that declares
something else than a callable, is left out with one warning line naming it and what to do; asking for it
(``--methods NAME``) is an error with that line.  A name a built-in method has is refused.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import MGMError, SearchStopped

__all__ = ["Method", "MethodContext", "MethodPluginWarning", "ENTRY_POINT_GROUP", "TOP_K", "register_method",
           "unregister_method", "methods", "method_names", "get_method", "default_methods", "loop_methods",
           "method_order", "method_problems", "candidate_directions", "check_result", "check_method",
           "describe_methods"]

#: the entry-point group of third-party methods
ENTRY_POINT_GROUP = "mgm_analysis.methods"
#: how many directions the built-ins offer (``ctx.k``)
TOP_K = 10
#: the method table's row of discovered runs: not a method's name
RESERVED = ("discovery",)
#: modules of this package that declare no method
_NOT_METHODS = {"common", "methods", "registry"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class MethodPluginWarning(UserWarning):
    """A third-party method that could not be registered (one line: which, why, what to do)."""


@dataclass(frozen=True)
class Method:
    """A direction finder: what ``mgm baselines`` and the method table need to know of it.

    Attributes:
        name: the method's name (``--methods``, run.json ``provenance.method``, the method table's row).
        directions: the candidate-directions callable, ``fn(ctx) -> (directions, names[, info])`` (the module
            docstring has the contract).
        default: in the default set of ``mgm baselines`` and ``mgm compare-methods``.
        order: its place in the method table, the figures and the listings (ascending; discovery comes first).
        path: ``"line"`` — the straight path through w* along the best direction — or ``"loop"`` — the ellipse
            in the plane of the best two (cut to the discovered run's extent when there is one).
        description: one line for ``--help``.
        source: where it was declared (``built-in``, an entry point, ``run time``).
    """

    name: str
    directions: Callable = field(repr=False)
    default: bool = False
    order: float = 100.0
    path: str = "line"
    description: str = ""
    source: str = "built-in"

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"

    @property
    def where(self) -> str:
        """How error lines name it: ``method NAME`` and, unless built in, where it comes from."""
        return f"method {self.name}" + ("" if self.builtin else f" ({self.source})")


@dataclass(frozen=True)
class MethodContext:
    """What a method gets (the module docstring has the contract)."""

    G: Any
    w_ref: Any                         # torch float32 [num_ws, w_dim] on device
    mask: Any                          # torch float32 [H, W] in [0, 1] on device
    layers: tuple                      # (start, end), end exclusive
    device: Any = None                 # torch.device
    cache_dir: Path | None = None
    region: Any = None                 # masks.Region
    labels: str | None = None
    attributes: tuple | None = None
    truncation: float = 0.7
    seed: int = 0
    k: int = TOP_K
    method: str = ""
    stop: Any = None                   # () -> bool, or None: a long method may poll it (a cancel; see below)

    @property
    def n_free(self) -> int:
        return int(self.layers[1]) - int(self.layers[0])


# ------------------------------------------------------------------ the registry
_LOCK = threading.RLock()
_METHODS: dict[str, Method] = {}
_PROBLEMS: dict[str, str] = {}        # a plugin left out -> the line that says why
_LOADED = False


def _checked(m: Method) -> Method:
    if not isinstance(m.name, str) or not _NAME.fullmatch(m.name):
        raise MGMError(f"method name {m.name!r} is not usable: give a letter, then letters, digits or _ "
                       "(it goes into --methods lists and run folder names)")
    if m.name in RESERVED:
        raise MGMError(f"method name {m.name!r} is reserved (the method table's row of discovered runs)")
    if not callable(m.directions):
        raise MGMError(f"{m.where}: its directions are {type(m.directions).__name__}, not a callable "
                       "fn(ctx) -> (directions, names)")
    if m.path not in ("line", "loop"):
        raise MGMError(f"{m.where}: path {m.path!r} is not 'line' or 'loop'")
    try:
        order = float(m.order)
    except (TypeError, ValueError):
        raise MGMError(f"{m.where}: order {m.order!r} is not a number") from None
    desc = " ".join(str(m.description or "").split())
    return replace(m, order=order, description=desc, default=bool(m.default))


def _add(m: Method, *, replace_runtime: bool = False) -> Method:
    m = _checked(m)
    old = _METHODS.get(m.name)
    if old is not None and not (replace_runtime and old.source == "run time"):
        raise MGMError(f"{m.where}: the name {m.name!r} is taken by " +
                       ("a built-in method" if old.builtin else f"{old.where}") + "; register it under another name")
    _METHODS[m.name] = m
    return m


def _builtin_modules():
    pkg = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in _NOT_METHODS and not info.name.startswith("_"):
            yield importlib.import_module(f"{__package__}.{info.name}")


def _from_entry_point(ep) -> Method:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    label = f"{ep.name} = {ep.value}" + (f" of {dist}" if dist else "")
    source = f"entry point {label}"
    obj = ep.load()
    if isinstance(obj, Method):
        if obj.name != ep.name:
            raise MGMError(f"method plugin {label} declares method {obj.name!r}; make the entry point's name "
                           f"and the method's the same")
        return replace(obj, source=source)
    if callable(obj):
        doc = (inspect.getdoc(obj) or "").strip().splitlines()
        return Method(name=ep.name, directions=obj, description=doc[0] if doc else "", source=source)
    raise MGMError(f"method plugin {label} is a {type(obj).__name__}, not a callable or a Method; point the "
                   "entry point at fn(ctx) -> (directions, names)")


def _load() -> None:
    """Register the built-in methods, then the entry points' (once)."""
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        for mod in _builtin_modules():
            for value in list(vars(mod).values()):  # a Method, or a tuple of them, at module level
                for m in (value if isinstance(value, (tuple, list)) else (value,)):
                    if isinstance(m, Method) and m.name not in _METHODS:
                        _add(replace(m, source="built-in"))
        from importlib.metadata import entry_points

        seen = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen:  # the same distribution found twice on the path
                continue
            seen.add((ep.name, ep.value))
            try:
                _add(_from_entry_point(ep))
            except MGMError as exc:
                _problem(ep.name, str(exc))
            except Exception as exc:  # noqa: BLE001 - a plugin's import can fail any way; one line, never a traceback
                dist = getattr(getattr(ep, "dist", None), "name", None)
                _problem(ep.name, f"method plugin {ep.name} = {ep.value}{f' of {dist}' if dist else ''} cannot be "
                                  f"imported ({type(exc).__name__}: {exc}); fix it, or uninstall the package that "
                                  "provides it")
        _LOADED = True


def _problem(name: str, line: str) -> None:
    if name not in _METHODS:
        _PROBLEMS[name] = line
    warnings.warn(line, MethodPluginWarning, stacklevel=3)


def register_method(name, fn: Callable | None = None, *, default: bool = False, order: float = 100.0,
                    path: str = "line", description: str | None = None):
    """Register a method at run time (a notebook); usable as a decorator::

        @register_method("mine", description="my directions")
        def mine(ctx):
            ...
            return directions, names

    ``name`` may also be a :class:`Method`.  Registering a name again replaces an earlier run-time registration
    (re-running a notebook cell); the name of a built-in or an installed plugin is refused (MGMError).  The
    description defaults to the first line of ``fn``'s docstring.  Returns ``fn`` (or the Method).
    """
    if isinstance(name, Method):
        with _LOCK:
            _load()
            return _add(replace(name, source="run time"), replace_runtime=True)
    if fn is None:
        def decorate(f):
            register_method(name, f, default=default, order=order, path=path, description=description)
            return f

        return decorate
    if description is None:
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        description = doc[0] if doc else ""
    with _LOCK:
        _load()
        _add(Method(name=name, directions=fn, default=default, order=order, path=path, description=description,
                    source="run time"), replace_runtime=True)
    return fn


def unregister_method(name: str) -> None:
    """Remove a method registered at run time (built-ins and installed plugins stay)."""
    with _LOCK:
        m = _METHODS.get(name)
        if m is not None and m.source != "run time":
            raise MGMError(f"{m.where} was not registered at run time; it cannot be unregistered")
        _METHODS.pop(name, None)


def methods() -> list[Method]:
    """Every registered method, in table order (``order``, then name)."""
    _load()
    with _LOCK:
        return sorted(_METHODS.values(), key=lambda m: (m.order, m.name))


def method_names() -> tuple[str, ...]:
    """The names of every method, in table order."""
    return tuple(m.name for m in methods())


def default_methods() -> tuple[str, ...]:
    """The default set of ``mgm baselines`` and ``mgm compare-methods``, in table order."""
    return tuple(m.name for m in methods() if m.default)


def loop_methods() -> tuple[str, ...]:
    """The methods whose path is a loop in the plane of two directions."""
    return tuple(m.name for m in methods() if m.path == "loop")


def method_order() -> list[str]:
    """The rows of the method table in order: ``discovery``, then every method."""
    return ["discovery", *method_names()]


def method_problems() -> dict[str, str]:
    """{plugin name: the line that says why it was left out}."""
    _load()
    return dict(_PROBLEMS)


def get_method(name: str) -> Method:
    """The method called ``name``; one MGMError line when there is none (or its plugin was left out)."""
    _load()
    with _LOCK:
        if name in _METHODS:
            return _METHODS[name]
        if name in _PROBLEMS:
            raise MGMError(_PROBLEMS[name])
    raise MGMError(f"unknown method {name!r}; known: {', '.join(method_names())}")


def describe_methods() -> str:
    """One line per method for ``--help``: name, (default), description."""
    return "; ".join(f"{m.name}{' (default)' if m.default else ''}" + (f": {m.description}" if m.description else "")
                     for m in methods())


# ------------------------------------------------------------------ what a method returns
def _array(x, what: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "double"):  # a torch tensor, on any device
        x = x.detach().double().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MGMError(f"{what}: its directions are not an array of numbers ({exc})") from None
    return a


def check_result(m: Method | str, out, layers, w_dim: int) -> tuple[np.ndarray, list[str], dict]:
    """What a method returned, checked against the contract: (directions [k, F, w_dim] float64 as given — on
    every free layer —, names, info).  Anything off is one MGMError line that says what."""
    where = m.where if isinstance(m, Method) else f"method {m}"
    ls, le = int(layers[0]), int(layers[1])
    n_free = le - ls
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise MGMError(f"{where} returned {type(out).__name__}"
                       f"{f' of {len(out)} items' if isinstance(out, (tuple, list)) else ''}; a method returns "
                       "(directions, names) or (directions, names, info)")
    dirs, names = out[0], out[1]
    info = out[2] if len(out) == 3 else {}
    d = _array(dirs, where)
    expect = f"expected [k, {w_dim}] (one direction in w) or [k, {n_free}, {w_dim}] (free layers {ls}:{le})"
    if d.ndim == 2 and d.shape[1] == w_dim:
        d = np.broadcast_to(d[:, None, :], (len(d), n_free, w_dim)).copy()
    elif not (d.ndim == 3 and d.shape[1:] == (n_free, w_dim)):
        raise MGMError(f"{where}: its directions have shape {list(d.shape)}; {expect}")
    k = len(d)
    if k == 0:
        raise MGMError(f"{where} offered no direction; return at least one, {expect}")
    if isinstance(names, str) or not hasattr(names, "__len__"):
        raise MGMError(f"{where}: its names are a {type(names).__name__}; give a list of {k} strings")
    names = list(names)
    if len(names) != k:
        raise MGMError(f"{where} gave {len(names)} names for {k} directions; give one name per direction")
    bad = [i for i, n in enumerate(names) if not isinstance(n, str) or not n.strip()]
    if bad:
        raise MGMError(f"{where}: name {bad[0]} is {names[bad[0]]!r}; names are non-empty strings")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise MGMError(f"{where}: the names are not distinct ({', '.join(dup)}); the chosen one is recorded by name")
    finite = np.isfinite(d.reshape(k, -1)).all(1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise MGMError(f"{where}: direction {i} ({names[i]}) has NaN or inf values; every value must be finite")
    with np.errstate(all="ignore"):
        norm = np.linalg.norm(d.reshape(k, -1), axis=1)
    off = ~(np.isfinite(norm) & (norm > 0))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise MGMError(f"{where}: direction {i} ({names[i]}) is zero (or too long to normalise); a direction "
                       "must move the latent")
    if not isinstance(info, dict):
        raise MGMError(f"{where}: its info is a {type(info).__name__}; give a dict (or return two items)")
    try:
        json.dumps(info, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise MGMError(f"{where}: its info is not JSON-ready ({exc}); give numbers, strings, lists and dicts") \
            from None
    return d, names, info


def unit(d: np.ndarray) -> np.ndarray:
    """[k, F, D] directions each scaled to unit length over its flattened free layers."""
    n = np.linalg.norm(d.reshape(len(d), -1), axis=1)
    return d / n[:, None, None]


def candidate_directions(method: str, G, w_ref, region, layers: tuple[int, int], *, cache_dir=None, labels=None,
                         attributes=None, truncation: float = 0.7, k: int = TOP_K, seed: int = 0, stop=None):
    """(directions [K, F, w_dim] unit float64, names [K], info) that ``method`` offers for ``region`` at w*
    (``w_ref`` [num_ws, w_dim]), checked (:func:`check_result`).  A registered method's own failure is one
    MGMError line naming it.  ``stop``: goes to the method as ``ctx.stop``; a method that polls it raises
    :class:`~mgm_analysis.errors.SearchStopped` when it returns True, which passes through."""
    import torch

    m = get_method(method)
    dev = G.w_avg.device
    ctx = MethodContext(G=G, w_ref=torch.as_tensor(np.asarray(w_ref, np.float32), device=dev),
                        mask=torch.as_tensor(np.asarray(region.mask, np.float32), device=dev),
                        layers=(int(layers[0]), int(layers[1])), device=dev,
                        cache_dir=Path(cache_dir) if cache_dir is not None else None, region=region, labels=labels,
                        attributes=tuple(attributes) if attributes else None, truncation=truncation, seed=int(seed),
                        k=int(k), method=m.name, stop=stop)
    if m.builtin:
        out = m.directions(ctx)
    else:
        try:
            out = m.directions(ctx)
        except SearchStopped:  # a cancel, not the method's failure
            raise
        except MGMError as exc:
            raise MGMError(f"{m.where}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is one line, never a traceback
            raise MGMError(f"{m.where} failed: {type(exc).__name__}: {exc}; fix the method (mgm_analysis.finders."
                           "check_method runs it on a tiny generator) or leave it out of --methods") from None
    d, names, info = check_result(m, out, ctx.layers, int(G.w_dim))
    return unit(d), names, info


# ------------------------------------------------------------------ a researcher's contract check
def check_method(fn, G=None, *, region: str = "rect:4,4,12,10", layers: tuple[int, int] | None = None,
                 seed: int = 0, device: str = "cpu", **context) -> dict:
    """Run a method against its contract, as scikit-learn's ``check_estimator`` does an estimator; raises
    MGMError naming the first broken rule, returns {"k", "shape", "names"} when every rule holds.

    ``fn``: a callable, a :class:`Method` or a registered name.  ``G``: the generator to try it on (default: a
    seeded tiny StyleGAN2, 16², w_dim 16, on ``device``).  ``context``: more :class:`MethodContext` fields
    (``labels``, ``attributes``, ...).  The rules: what it returns (:func:`check_result`: shape, k distinct names,
    finite, non-zero, info JSON-ready); it honours ``ctx.layers`` (asked again for other free layers); the same
    context twice gives the same directions (determinism); ``ctx.w_ref``, ``ctx.mask`` and the generator's weights
    are left as they were; tensors it returns are on ``ctx.device``.
    """
    import torch

    from ..generators.latents import reference_latent
    from ..masks import default_layout, parse_region

    m = get_method(fn) if isinstance(fn, str) else fn if isinstance(fn, Method) else \
        Method(name=getattr(fn, "__name__", "method").strip("_") or "method", directions=fn, source="checked")
    if G is None:
        from ..generators.stylegan2 import tiny_generator

        G = tiny_generator(resolution=16, w_dim=16, seed=0).to(device).eval()
    dev = G.w_avg.device
    reg = parse_region(region, G.resolution, default_layout(G))
    w_ref, _ = reference_latent(G, seed, None, context.get("truncation", 0.7))
    first = layers or (1, min(4, G.num_ws))
    other = (0, min(2, G.num_ws)) if tuple(first) != (0, min(2, G.num_ws)) else (0, 1)
    weights = {k: v.detach().clone() for k, v in G.state_dict().items()}

    def ask(lay):
        ctx = MethodContext(G=G, w_ref=torch.as_tensor(np.asarray(w_ref, np.float32), device=dev),
                            mask=torch.as_tensor(reg.mask, dtype=torch.float32, device=dev), layers=tuple(lay),
                            device=dev, region=reg, seed=seed, method=m.name, **context)
        w0, m0 = ctx.w_ref.clone(), ctx.mask.clone()
        try:
            out = m.directions(ctx)
        except MGMError:
            raise
        except Exception as exc:  # noqa: BLE001 - the check says what failed, in one line
            raise MGMError(f"{m.where} failed on the tiny generator: {type(exc).__name__}: {exc}") from None
        if not (torch.equal(ctx.w_ref, w0) and torch.equal(ctx.mask, m0)):
            raise MGMError(f"{m.where} changed ctx.w_ref or ctx.mask in place; work on copies")
        if isinstance(out, (tuple, list)) and out and hasattr(out[0], "device") and hasattr(out[0], "detach") \
                and out[0].device != dev:
            raise MGMError(f"{m.where} returned directions on {out[0].device}, not on ctx.device {dev}; create "
                           "tensors on ctx.device")
        return check_result(m, out, lay, int(G.w_dim))

    d1, names1, _ = ask(first)
    d2, names2, _ = ask(first)
    if names1 != names2 or d1.shape != d2.shape or not np.allclose(unit(d1), unit(d2), rtol=1e-5, atol=1e-7):
        raise MGMError(f"{m.where} is not deterministic: the same context gave other directions the second time; "
                       "seed its randomness from ctx.seed")
    ask(other)
    changed = [k for k, v in G.state_dict().items() if not torch.equal(v, weights[k])]
    if changed:
        raise MGMError(f"{m.where} changed the generator's weights ({changed[0]}); leave ctx.G as it is")
    return {"k": len(d1), "shape": list(d1.shape), "names": names1}
