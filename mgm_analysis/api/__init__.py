"""The notebook API: discover, compare and look at manifolds from Python.

    >>> import mgm_analysis as mgm
    >>> run = mgm.discover(region="mouth", seed=3, epochs=3)      # doctest: +SKIP
    >>> run.metrics["locality"], run.verdict()                     # doctest: +SKIP
    >>> run.figure()                                               # doctest: +SKIP
    >>> run.save("store"); mgm.open_store("store").projection(method="pca")   # doctest: +SKIP

Every function goes through the one job path (:func:`mgm_analysis.jobs.run_job`), as ``mgm discover`` does;
bad input raises :class:`~mgm_analysis.errors.MGMError` with the line the CLI prints.  A front end beside the
CLI: torch is imported when a model is needed, not before.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from ..errors import MGMError, RunInterrupted
from .run import Run
from .store import Store

__all__ = ["discover", "baselines", "compare_methods", "load_run", "open_store", "Run", "Store"]

_GENERATORS: dict = {}
_LOCK = threading.Lock()


def _user_errors(fn):
    """Bad input comes out as the MGMError raised here, its traceback starting at the call (not inside the
    toolkit): the line is what the CLI prints."""
    import functools

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MGMError as exc:
            raise exc.with_traceback(None) from None

    return wrapped


def _generator(generator, device: str):
    """The generator, loaded once per name (or checkpoint file and its modification time) and device."""
    from ..generators import load_generator

    p = Path(str(generator)).expanduser()
    key = (str(generator), device, p.stat().st_mtime_ns if p.is_file() else None)
    with _LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = load_generator(str(generator), device=device)
        return _GENERATORS[key]


def _config(config: dict) -> dict:
    """DiscoveryConfig overrides from keyword arguments: known fields only (one line naming the unknown);
    ``layers`` may be "START:END" or a pair."""
    from ..config import config_fields, parse_layers

    config = {k: v for k, v in config.items() if v is not None}
    if "init_seed" in config:  # the search's own seed (DiscoveryConfig.seed); ``seed`` is the reference face's
        config["seed"] = config.pop("init_seed")
    layers = config.pop("layers", None)
    if layers is not None:
        start, end = parse_layers(layers if isinstance(layers, str) else ":".join(map(str, layers)))
        config["layer_start"], config["layer_end"] = start, end
    fields = config_fields()
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise MGMError(f"unknown setting {unknown[0]!r}; known: layers, {', '.join(sorted(fields))}")
    return config


def _kept(exc: RunInterrupted) -> Run:
    """A search stopped by Ctrl-C or a kernel interrupt: what it found, as the CLI keeps it."""
    from .. import store

    run = exc.path if isinstance(exc.path, store.Run) else store.load_run(exc.path)
    warnings.warn(f"interrupted: the run {run.run_id} is kept with status interrupted", stacklevel=3)
    return Run(run)


@_user_errors
def discover(region: str = "mouth", seed: int = 0, generator: str = "toyfaces", out=None, *, reference=None,
             truncation: float | None = None, layout: str | None = None, preset: str | None = None,
             device: str = "cpu", quiet: bool = False, **config) -> Run:
    """Discover a manifold of changes of ``region`` on the face of ``seed`` (``mgm discover``).

    Args:
        region: a preset (mouth, eyes, brows, ...), ``rect:x0,y0,x1,y1``, ``ellipse:...``, a PNG mask path.
        seed: the reference face's seed (``reference``, a latent ``.npy`` or a run folder, wins over it).
        generator: ``toyfaces`` or a checkpoint path (``.pt``, ``.pkl``).
        out: a run store to write the run into; None keeps it in memory and writes nothing anywhere
            (:meth:`Run.save` keeps it later).
        config: DiscoveryConfig fields, e.g. ``epochs=3``, ``n_frames=24``, ``offset=0.1``, ``layers="2:8"``,
            ``init_seed=1`` (the search's own seed, ``--init-seed``).

    A progress bar shows the epochs (tqdm: a widget in Jupyter, a bar in a terminal) unless ``quiet``.
    Ctrl-C or interrupting the kernel stops the search after its epoch and returns what it found
    (status ``interrupted``).  Bad input: :class:`MGMError`, nothing written.
    """
    from ..jobs import discover_spec, run_job

    spec = discover_spec(generator=generator, region=region, seed=seed, reference=reference, truncation=truncation,
                         layout=layout, preset=preset, config=_config(config))
    G = _generator(generator, device)
    try:
        got = run_job(spec, out, G=G, quiet=quiet, device=device)
    except RunInterrupted as exc:
        return _kept(exc)
    return Run(got) if out is None else Run(_load(got))


def _load(path):
    from .. import store

    return store.load_run(path)


@_user_errors
def baselines(region: str = "mouth", seed: int = 0, methods=None, generator: str = "toyfaces", out=None, *,
              strength: float = 1.0, reference=None, labels=None, device: str = "cpu", **config) -> list[Run]:
    """The baselines' runs on one face and region at equal strength K·c (``mgm baselines``): one run per
    method (default: the registered default methods), in memory when ``out`` is None."""
    from ..finders.methods import parse_methods
    from ..finders.registry import default_methods
    from ..jobs import run_job
    from ..method_runs import baseline_spec, run_baseline

    methods = parse_methods(methods or list(default_methods()))
    cfg = _config(config)
    G = _generator(generator, device)
    runs = []
    for method in methods:
        if out is None:
            spec = baseline_spec(G, method, region, seed=seed, reference=reference, out=None, labels=labels,
                                 config=cfg, strength=strength)
            runs.append(Run(run_job(spec, None, G=G)))
        else:
            runs.append(Run(_load(run_baseline(G, method, region, seed=seed, reference=reference, out=out,
                                               labels=labels, config=cfg, strength=strength))))
    return runs


@_user_errors
def compare_methods(regions=("mouth", "eyes", "brows"), seeds=(0, 1, 2, 3, 4), out="runs/methods", *,
                    methods=None, strengths=(1.0,), generator: str = "toyfaces", quiet: bool = False,
                    device: str = "cpu", **config):
    """The method table (a DataFrame): makes what store ``out`` lacks — discovery and every method at each
    strength K·c for every region and seed, and their transfers — then reads the table from the store
    (``mgm compare-methods``).  A job that fails is a warning; the others are kept."""
    from ..config import parse_seeds
    from ..masks import split_regions
    from ..method_runs import compare_methods as make_runs

    regions = split_regions(regions) if isinstance(regions, str) else list(regions)
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]
    res = make_runs(regions, seeds, out, methods=methods, generator=generator, quiet=quiet, device=device,
                    strengths=strengths, config=_config(config))
    for line in res["failed"]:
        warnings.warn(line, stacklevel=2)
    return Store(out).methods()


@_user_errors
def load_run(path) -> Run:
    """A run folder (MGMError, one line, when it is not a readable run)."""
    return Run(_load(path))


@_user_errors
def open_store(path) -> Store:
    """A run store folder."""
    return Store(path)
