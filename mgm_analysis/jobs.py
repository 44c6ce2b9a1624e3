"""Jobs: one way from "a request for a run" to "a run folder".

A :class:`JobSpec` says what to compute — the kind of run (``discover``,
``transfer``, ``combine``, ``baseline``), the generator, the reference (a seed,
a latent file, or a source run), the region, the configuration and, for the
derived kinds, the source runs — and has a deterministic :attr:`~JobSpec.key`
(the SHA-256 of its canonical JSON).  :func:`run_job` runs one spec and writes
exactly one run, atomically (temp folder + rename), recording the spec under
``run.json`` ``provenance``; every entry point calls it: ``mgm discover``,
``mgm sweep`` (in-process or on Dask workers), ``mgm demo``, the analysis'
transfer and combination, and the baselines.

    >>> spec = JobSpec(region="mouth", seed=3, config={"epochs": 5})
    >>> spec.key == JobSpec(region="mouth", seed=3, config={"epochs": 5}).key
    True
    >>> path = run_job(spec, "runs/")            # doctest: +SKIP

Failure modes are handled in one place: the output folder is created and
write-tested before any search; Ctrl-C or SIGTERM during the search saves the
run with status ``interrupted`` and then raises :class:`RunInterrupted`
(``mgm`` exits 130 / 143); a non-finite trajectory is saved ``interrupted``
(stop reason ``nan``) and a metric that raises becomes NaN, so a run is never
lost for its numbers.

What each kind computes lives in :mod:`mgm_analysis.kinds`; this module resolves a spec once, identifies its
run (one rule for every caller) and renders, measures and writes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from . import kinds
from .config import config_fields, flag_of
from .errors import MGMError, RunInterrupted, RunReadError
from .generators.latents import generator_spec, reference_latent
from .kinds import DERIVED_KINDS, KINDS, N_SOURCES, SEARCH_KINDS, Job
from .measure import safe_metrics
from .semantic import semantic_metrics
from .store import run_kind  # noqa: F401 (re-exported: a run's kind has one owner, the store)

__all__ = ["KINDS", "JobSpec", "run_job", "done", "spec_config", "spec_region", "resume_spec", "prepare_out",
           "complete_run"]


# ------------------------------------------------------------------ specs
def _is_builtin(generator: str) -> bool:
    from .generators import BUILTIN  # torch-free: the loaders import torch lazily

    return str(generator) in BUILTIN


def _abs(path) -> str:
    return str(Path(path).expanduser().resolve())


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise MGMError(f"a job spec holds only JSON values (numbers, strings, lists); got {type(v).__name__}")


@dataclass(frozen=True)
class JobSpec:
    """What one run computes.  Frozen; paths are made absolute so the key does not depend on the working folder.

    Attributes:
        kind: ``discover`` | ``transfer`` | ``combine`` | ``baseline``.
        generator: built-in name (``toyfaces``) or checkpoint path; for transfer/combine the source run's.
        region: region spec (``mouth``, ``rect:...``, a PNG); None for transfer/combine (the sources' masks).
        seed: seed of the reference latent (z → w with ``config["truncation"]``).
        reference: a latent ``.npy`` ([num_ws, w_dim] or [w_dim]) or a run folder (its ``reference.npy``);
            overrides ``seed``.
        layout: face layout of the region presets (None = the generator's).
        preset: a named configuration (``config.CONFIG_PRESETS``) under ``config``.
        config: DiscoveryConfig fields that differ from the defaults (None values are dropped).
        sources: run folders a transfer (1), combination (2) or baseline (0 or 1) derives from.
        params: extra parameters of a baseline: ``method`` (registered name), ``component``, ``scale``, ...
    """

    kind: str = "discover"
    generator: str = "toyfaces"
    region: str | None = "mouth"
    seed: int | None = 0
    reference: str | None = None
    layout: str | None = None
    preset: str | None = None
    config: dict = field(default_factory=dict)
    sources: tuple = ()
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        s = object.__setattr__
        if self.kind not in KINDS:
            raise MGMError(f"job kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}")
        lo, hi = N_SOURCES[self.kind]
        sources = tuple(_abs(p) for p in (self.sources or ()))
        if not lo <= len(sources) <= hi:
            need = str(lo) if lo == hi else f"{lo} to {hi}"
            raise MGMError(f"a {self.kind} job needs {need} source run(s), got {len(sources)}")
        s(self, "sources", sources)
        gen = str(self.generator)
        if not _is_builtin(gen) and Path(gen).expanduser().exists():  # a missing one keeps its name for the error
            gen = _abs(gen)
        s(self, "generator", gen)
        if self.reference is not None:
            s(self, "reference", _abs(self.reference))
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
                raise MGMError(f"a job's seed is a whole number, got {self.seed!r}")
            if not 0 <= self.seed <= 2**32 - 1:  # what every seeded generator accepts, the same on every machine
                raise MGMError(f"--seed must be in 0..{2**32 - 1} (32-bit seeds), got {self.seed}")
            s(self, "seed", int(self.seed))
        if self.kind in SEARCH_KINDS:
            if not self.region:
                raise MGMError(f"a {self.kind} job needs a region")
            if self.seed is None and self.reference is None and not sources:
                raise MGMError("give a reference: a seed (--seed N) or a latent file (--reference W.npy)")
        if self.kind == "transfer" and self.seed is None and self.reference is None:
            raise MGMError("a transfer job needs the seed or latent file of the face to transfer to")
        if self.kind == "baseline" and not (self.params or {}).get("method"):
            raise MGMError("a baseline job needs params['method'] (a registered baseline)")
        types = config_fields()
        cfg = {}
        for k, v in dict(self.config or {}).items():
            if v is None:
                continue
            if k not in types:
                raise MGMError(f"unknown config field {k!r}; known: {', '.join(sorted(types))}")
            if isinstance(v, float) and not math.isfinite(v):  # a spec is JSON: its key, run.json
                raise MGMError(f"{flag_of(k)} must be a finite number, got {v}")
            cfg[k] = _jsonable(v)
        s(self, "config", dict(sorted(cfg.items())))
        s(self, "params", _jsonable(dict(self.params or {})))

    def __hash__(self):
        return hash(self.key)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "JobSpec":
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if k == "sources" else v) for k, v in d.items() if k in names})

    @cached_property
    def key(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the spec: equal specs, equal keys, on any machine."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def label(self) -> str:
        """Short readable name: the region (discover), ``transfer_<src>``, ``combine``, ``<method>_<region>``."""
        if self.kind == "discover":
            return str(self.region)
        if self.kind == "baseline":
            return f"{self.params.get('method')}_{self.region}"
        return f"{self.kind}_" + "+".join(Path(p).name.split("-")[0] for p in self.sources)

    @property
    def run_id(self) -> str:
        """Deterministic run folder name: ``<label>-s<seed>-<key[:12]>`` (``ref`` for a latent file)."""
        from .store import _slug

        tag = f"s{self.seed}" if self.reference is None and self.seed is not None else "ref"
        return f"{_slug(self.label)}-{tag}-{self.key[:12]}"

    def replace(self, **changes) -> "JobSpec":
        d = self.to_dict()
        d.update(changes)
        return JobSpec.from_dict(d)


# ------------------------------------------------------------ one owner each
def prepare_out(out) -> Path:
    """Create the run store folder and check a run can be written there (before any search); MGMError if not."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise MGMError(f"--out {out}: exists and is not a folder; give a folder for the run store")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}-{threading.get_ident()}"
        probe.mkdir(exist_ok=True)
        (probe / "x").write_bytes(b"x")
        (probe / "x").unlink()
        probe.rmdir()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise MGMError(f"--out {out}: cannot write a run there ({why}); choose a writable folder") from None
    return out


# ------------------------------------------------------------------ resolve
def spec_region(spec: JobSpec, G):
    """The :class:`~mgm_analysis.masks.Region` of a search job on generator ``G`` (the spec's layout, else the
    generator's)."""
    from .masks import default_layout, parse_region

    return parse_region(spec.region, G.resolution, spec.layout or default_layout(G))


def spec_config(spec: JobSpec, G=None, region=None):
    """The one way a search job's configuration is resolved: the defaults of the generator and distance (or the
    spec's preset) for the region — a preset region's own target c on toyfaces — then the spec's fields.

    ``region``: the job's Region when the caller has it; else parsed with ``G``; without ``G``, the spec's region
    counts as a preset when its name is one of the built-in generator's layout (what a sweep checks before it
    loads anything).
    """
    from .config import default_config
    from .generators import BUILTIN

    name = getattr(getattr(G, "info", None), "name", None) if G is not None else (
        spec.generator if spec.generator in BUILTIN else None)
    if region is None and G is not None:
        region = spec_region(spec, G)
    if region is not None:
        preset = region.name if region.layout else None
    else:
        from .presets import PRESETS

        layout = spec.layout or ("toyfaces" if name == "toyfaces" else "ffhq")
        preset = spec.region if spec.region in PRESETS.get(layout, {}) else None
    overrides = dict(spec.config)
    try:
        return default_config(name, overrides.pop("distance", None), region=preset, preset=spec.preset, **overrides)
    except TypeError as exc:  # a value of the wrong type that parse_config_value did not see
        raise MGMError(f"bad config value ({exc})") from None


# ------------------------------------------------------------------ resume
def _saved_spec(meta: dict, path: Path) -> JobSpec:
    """The spec of a saved run: its provenance.spec, or rebuilt from the run.json of an older run."""
    prov = meta.get("provenance") or {}
    if prov.get("spec"):
        return JobSpec.from_dict(prov["spec"])
    ref = meta.get("reference") or {}
    cfg = dict(meta.get("config") or {})
    gen = generator_spec(meta)
    if not gen:
        raise MGMError(f"{path}: the run does not say which generator made it; it cannot be resumed")
    return JobSpec(kind="discover", generator=gen, region=(meta.get("region") or {}).get("spec"),
                   seed=ref.get("seed"), reference=ref.get("file"), layout=(meta.get("region") or {}).get("layout"),
                   config={k: v for k, v in cfg.items() if k in config_fields()})


def resume_spec(path, *, generator=None, region=None, seed=None, reference=None, layout=None, preset=None,
                config: dict | None = None) -> JobSpec:
    """The spec that continues the interrupted run at ``path``, with a new ``epochs`` maximum if given.

    Every other argument is what the user asked for explicitly (None = not given); one that differs from the saved
    run is refused (MGMError), since resuming would ignore it, and so is an ``epochs`` below the epochs done.
    """
    from . import store

    path = Path(path)
    run = store.load_run(path)
    meta = run.meta
    if meta.get("status") == "complete":
        raise MGMError(f"{path}: the run is already complete; nothing to resume")
    if run_kind(meta) != "discover":
        raise MGMError(f"{path}: a {run_kind(meta)} run has no search to resume; run the job again")
    spec = _saved_spec(meta, path)
    saved_cfg = dict(meta.get("config") or {})
    differ = []

    def check(flag, given, saved):
        if given is not None and given != saved:
            differ.append(f"{flag} {given} (the run has {saved})")

    check("--generator", None if generator is None else
          (str(generator) if _is_builtin(str(generator)) else _abs(generator)), spec.generator)
    check("--region", region, spec.region)
    check("--seed", seed, spec.seed)
    check("--reference", None if reference is None else _abs(reference), spec.reference)
    check("--layout", layout, (meta.get("region") or {}).get("layout") if layout is not None else None)
    check("--preset", preset, spec.preset)
    new = dict(config or {})
    epochs = new.pop("epochs", None)
    for k, v in new.items():
        if v is not None and k in saved_cfg and saved_cfg[k] != v:
            differ.append(f"{flag_of(k)} {v} (the run has {saved_cfg[k]})")
    if differ:
        raise MGMError(f"--resume {path}: {'; '.join(differ)}; resuming keeps the run's own settings, only "
                       "--epochs may change (start a new run for other settings)")
    done = int((meta.get("resume") or {}).get("epochs_done") or len((meta.get("history") or {}).get("epoch", [])))
    if epochs is not None and epochs < done:
        raise MGMError(f"--resume {path}: --epochs {epochs} is below the {done} epochs already done; give "
                       f"--epochs {done} or more")
    full = {k: v for k, v in saved_cfg.items() if k in config_fields()}
    if epochs is not None:
        full["epochs"] = epochs
    return spec.replace(config=full, preset=None)


def _interrupts():
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` inside this block (main thread only), so the search
    stops at the last completed epoch and the run is saved; yields a dict whose ``signal`` says which came."""
    return _signals(raise_=True)


@contextlib.contextmanager
def _signals(raise_: bool):
    caught = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, frame):
        caught["signal"] = signum
        if raise_:
            raise KeyboardInterrupt

    old = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) in (signal.SIG_IGN, None):
            continue  # a process told to ignore a signal keeps ignoring it
        old[s] = signal.signal(s, handler)
    try:
        yield caught
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def complete_run(out: Path, run_id: str, key: str):
    """The path of the complete run of job ``key`` in ``out/run_id`` (finished earlier or by another worker),
    else None."""
    from . import store

    try:
        prev = store.load_run(out / run_id)
    except RunReadError:
        return None
    same = (prev.meta.get("provenance") or {}).get("key") == key
    return prev.path if same and prev.status == "complete" else None


def done(spec: JobSpec, out) -> Path | None:
    """The one "already done" rule: the complete run of ``spec`` in store ``out`` (its folder is
    ``spec.run_id``, a function of the spec's key), else None.  Every caller asks this before making a run."""
    return complete_run(Path(out).expanduser(), spec.run_id, spec.key)


def _load_sources(spec: JobSpec):
    from . import store

    return [store.load_run(p) for p in spec.sources]


def run_job(spec: JobSpec, out, *, G=None, progress: Callable | None = None, quiet: bool = True,
            device: str = "cpu", resume=None, watch: Callable | None = None) -> Path:
    """Run one job and write exactly one run folder under ``out``, atomically; return its path.

    Args:
        spec: the job.
        out: the run store (created and write-tested before anything else).
        G: the generator, when the caller has it loaded (else loaded from ``spec.generator``).
        progress: ``progress(epoch, terms)`` after every search epoch (returning False stops the search,
            status ``interrupted``); None with ``quiet`` False shows a progress bar.
        quiet: no progress bar and no summary line.
        device: where to load the generator.
        resume: an interrupted run folder to continue in place (``spec`` from :func:`resume_spec`).

    The one identity rule: a run's folder is ``spec.run_id`` (``<label>-s<seed>-<key[:12]>``), a function of the
    spec.  When it exists: complete with the same key → returned as is (:func:`done`; said on the terminal
    unless ``quiet``); interrupted with the same key → a discovery is resumed, another kind made again;
    anything else → MGMError.
        watch: ``watch(epoch, ws)`` with the chain after every search epoch (e.g. a live preview).

    Raises:
        MGMError for bad input (nothing written); :class:`RunInterrupted` after saving a run that SIGINT or
        SIGTERM stopped.
    """
    created = not Path(out).expanduser().exists()
    out = prepare_out(out)
    try:
        return _run_job(spec, out, G=G, progress=progress, quiet=quiet, device=device, resume=resume, watch=watch)
    except MGMError:
        if created:  # bad input leaves nothing behind, not even the empty store folder made for it
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _run_job(spec, out, *, G, progress, quiet, device, resume, watch) -> Path:
    from . import store

    run_id = spec.run_id
    if resume is None and (out / run_id).exists():
        try:
            prev = store.load_run(out / run_id)
        except RunReadError as exc:
            raise MGMError(f"{out / run_id}: exists but is not a readable run ({exc}); move it away") from None
        if (prev.meta.get("provenance") or {}).get("key") not in (spec.key, None):
            raise MGMError(f"{out / run_id}: holds another job's run; move it away or choose another --out")
        if prev.status == "complete":
            if not quiet:
                print(f"already in the store: {prev.path}  (the same job; move it away to make it again)")
            return prev.path
        if spec.kind != "discover":  # nothing to continue: run it again over the old folder
            resume = None
        else:
            resume = prev.path
    if G is None:
        from .generators import load_generator

        gen = spec.generator
        if spec.kind in DERIVED_KINDS:
            gen = generator_spec(_load_sources(spec)[0].meta) or gen
        G = load_generator(gen, device=device)
    if spec.kind in DERIVED_KINDS:
        return _run_derived(spec, out, G, quiet=quiet, run_id=run_id)
    return _run_search(spec, out, G, progress=progress, quiet=quiet, run_id=run_id, resume=resume, watch=watch)


def _run_search(spec, out, G, *, progress, quiet, run_id, resume, watch) -> Path:
    """discover and baseline: reference, region, config, (search), frames, metrics, store."""
    import torch

    from . import store
    from .config import DiscoveryConfig
    from .discovery import with_run_noise
    from .render import render_frames, to_unit

    reg = spec_region(spec, G)
    meta_prev, state = {}, None
    if resume is not None:
        prev = store.load_run(resume)
        meta_prev = prev.meta
        run_id, out = prev.run_id, Path(resume).parent
        cfg = DiscoveryConfig.from_dict({**(meta_prev.get("config") or {}), **spec.config})
        w_ref = np.asarray(prev.reference, np.float32)
        ref_info = meta_prev.get("reference", {})
        state = {"ws": prev.latents, "history": meta_prev.get("history"),
                 "epochs_done": (meta_prev.get("resume") or {}).get("epochs_done", 0)}
    else:
        cfg = spec_config(spec, G, reg)
    cfg.check_generator(G.num_ws)
    source = None
    if resume is None:
        if spec.reference is None and spec.seed is None and spec.sources:
            source = _load_sources(spec)[0]
            w_ref, ref_info = reference_latent(G, file=source.path)
        else:
            w_ref, ref_info = reference_latent(G, spec.seed, spec.reference, cfg.truncation,
                                               getattr(cfg, "truncation_cutoff", None))
    elif spec.sources:
        source = _load_sources(spec)[0]
    job = Job(spec=spec, G=G, out=out, config=cfg, region=reg, w_ref=w_ref, reference=ref_info,
              sources=[source] if source is not None else [], state=state)
    kind = kinds.module(spec.kind)
    if hasattr(kind, "prepare"):
        kind.prepare(job)
    done_before = state["epochs_done"] if state else 0

    bar = None
    if progress is None and not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=done_before, desc=f"{spec.label}", unit="epoch", file=sys.stderr,
                   dynamic_ncols=True)

        def progress(epoch, t):
            bar.update(epoch - bar.n)
            bar.set_postfix(E=f"{t['total']:.4g}", L_X=f"{t['l_x']:.3g}", spring=f"{t['spring']:.3g}",
                            stiff=f"{t['stiffener']:.3g}", D_in=f"{t['d_in']:.3g}", D_out=f"{t['d_out']:.2g}")

    t0 = time.perf_counter()
    try:
        with _interrupts() as caught:
            built = kind.build(job, progress=progress, watch=watch)
    finally:
        if bar is not None:
            bar.close()
    traj = built.trajectory
    if built.config:
        cfg = replace(cfg, **built.config)
    signum = caught["signal"] if traj.stop_reason == "interrupted" else None
    t_opt = time.perf_counter() - t0
    ws = traj.ws.detach().cpu().float().numpy()
    expect = (G.num_ws, G.w_dim)
    if ws.ndim != 3 or ws.shape[1:] != expect:
        raise MGMError(f"{spec.label}: the trajectory has shape {list(ws.shape)}; expected [n, {expect[0]}, "
                       f"{expect[1]}]")
    status, reason = traj.status, traj.stop_reason
    if not np.isfinite(ws).all():  # never write NaN frames as a finished run
        status, reason = "interrupted", "nan"
    with _signals(raise_=False) as later:  # the run is written whole even if a second signal comes
        Gn = with_run_noise(G, cfg)  # the frames and the reference image with the noise the search used
        frames = render_frames(Gn, np.nan_to_num(ws))
        with torch.no_grad():
            ref_img = to_unit(Gn.synthesis(torch.from_numpy(w_ref)[None].to(G.w_avg.device)))[0]
        from .metrics import metric_options, run_metrics

        errors: list = []
        metrics = safe_metrics(run_metrics, ws, w_ref, frames, ref_img, reg.mask, errors=errors, failures=errors,
                                **metric_options(cfg.to_dict(), ws))
        metrics.update(safe_metrics(semantic_metrics, G, frames, ref_img, [reg.name], factor_change=True,
                                     mask=reg.mask, truncation=cfg.truncation, cache_dir=out / ".mgm_cache",
                                     errors=errors, main=False))
        reader = metrics.pop("semantic_reader", None)  # a name, not a number: run.json keeps it beside metrics
        prev_timing = (meta_prev.get("timings") or {}) if resume is not None else {}
        epochs_now = traj.epochs_done - done_before
        metrics.update(built.metrics)
        if built.extra_metrics is not None:
            metrics.update(safe_metrics(built.extra_metrics, frames, ref_img, errors=errors, main=False))
        prov = {"kind": spec.kind, "sources": [Path(p).name for p in spec.sources], "key": spec.key,
                "spec": spec.to_dict(), **built.provenance}
        meta = {
            **({"created": meta_prev["created"]} if "created" in meta_prev else {}),
            "status": status,
            "stop_reason": reason,
            "region": reg.to_dict(),
            "generator": G.info.to_dict(),
            "reference": ref_info,
            "seed": ref_info.get("seed"),
            "config": cfg.to_dict(),
            "history": traj.history,
            "timings": {"optimise_s": t_opt + prev_timing.get("optimise_s", 0.0),
                        "per_epoch_s": t_opt / max(1, epochs_now),
                        "evaluations": traj.evaluations + prev_timing.get("evaluations", 0),
                        "total_s": time.perf_counter() - t0 + prev_timing.get("total_s", 0.0),
                        "device": str(G.w_avg.device), "threads": torch.get_num_threads(), **built.timings},
            "metrics": metrics,
            **({"metrics_errors": errors} if errors else {}),
            **({"semantic_reader": reader} if reader else {}),
            "provenance": prov,
            "resume": {"epochs_done": traj.epochs_done, "resumed": resume is not None},
        }
        path = complete_run(out, run_id, spec.key) if resume is None else None
        if path is None:
            path = store.write_run(out, meta=meta, latents=np.nan_to_num(ws), reference=w_ref, reference_img=ref_img,
                                   mask=reg.mask, frames=frames, run_id=run_id, overwrite=(out / run_id).exists())
    signum = later["signal"] or signum
    if not quiet:
        def fmt(k):
            v = metrics.get(k)
            return f"{v:.3f}" if isinstance(v, float) and math.isfinite(v) else "nan"

        from .metrics import quality_failures

        sl = f", semantic locality {fmt('semantic_locality')}" if "semantic_locality" in metrics else ""
        real = f", realism {fmt('realism')}" if "realism" in metrics else ""
        print(f"{status}: {path}  ({traj.epochs_done} epochs, {t_opt:.1f} s; locality {fmt('locality')}{sl}, "
              f"spread {fmt('spread')}, inside path {fmt('inside_path')}, jump ratio {fmt('jump_ratio')}{real})")
        missed = quality_failures(metrics, cfg.offset)
        print("  good: local, on target, smooth and exploring" if not missed else f"  not good: {'; '.join(missed)}")
    if status == "interrupted" and spec.kind == "discover":
        print(f"interrupted ({reason}) after {traj.epochs_done} epochs; resume with: mgm discover --resume {path}")
    if signum is not None:
        raise RunInterrupted(path, signum)
    return path


def _run_derived(spec, out, G, *, quiet, run_id) -> Path:
    """transfer and combine: latents from the source runs' deltas, then frames, metrics, store."""
    import torch

    from . import store
    from .generators.latents import check_generator
    from .kinds.combine import combine_latents
    from .kinds.transfer import transfer_latents
    from .metrics import metric_options, run_metrics
    from .render import render_frames

    sources = _load_sources(spec)
    for r in sources:
        check_generator(r, G)
    src = sources[0]
    src_ref = src.meta.get("reference") or {}
    truncation = spec.config.get("truncation")
    if truncation is None:
        truncation = src_ref.get("truncation") or 0.7
    cutoff = spec.config.get("truncation_cutoff", src_ref.get("truncation_cutoff"))
    if spec.kind == "transfer":
        w_ref, ref_info = reference_latent(G, spec.seed, spec.reference, truncation, cutoff)
        built = transfer_latents(src, w_ref)
    else:
        built = combine_latents(sources[0], sources[1], lambda ws: render_frames(G, ws))
        w_ref, ref_info = sources[0].reference, sources[0].meta.get("reference") or {}
    ws, mask, region = built["latents"], built["mask"], built["region"]
    with _signals(raise_=False) as later:
        frames = render_frames(G, ws)
        with torch.no_grad():
            ref_img = render_frames(G, w_ref[None])[0]
        cfg = dict(src.meta.get("config") or {})
        errors: list = []
        metrics = safe_metrics(run_metrics, ws, w_ref, frames, ref_img, mask, errors=errors, failures=errors,
                                **metric_options(cfg, ws))
        metrics.update(safe_metrics(semantic_metrics, G, frames, ref_img, built["regions"], mask=mask,
                                     truncation=truncation, cache_dir=out / ".mgm_cache", errors=errors, main=False))
        reader = metrics.pop("semantic_reader", None)
        metrics.update(safe_metrics(built["extra_metrics"], frames, ref_img, errors=errors, main=False))
        src_region = src.meta.get("region") or {}
        prov = {"kind": spec.kind, "sources": [r.run_id for r in sources], "key": spec.key, "spec": spec.to_dict(),
                **built["provenance"]}
        meta = {
            "status": "complete",
            "region": {**src_region, "name": region, "spec": built.get("region_spec", src_region.get("spec", region)),
                       "area_share": float(np.mean(mask))},
            "generator": G.info.to_dict() if getattr(G, "info", None) is not None else src.meta.get("generator", {}),
            "reference": ref_info, "seed": ref_info.get("seed"), "config": cfg, "history": {}, "timings": {},
            "metrics": metrics, "provenance": prov, **({"metrics_errors": errors} if errors else {}),
            **({"semantic_reader": reader} if reader else {}),
        }
        path = complete_run(out, run_id, spec.key)
        if path is None:
            path = store.write_run(out, meta=meta, latents=ws, reference=w_ref, reference_img=ref_img, mask=mask,
                                   frames=frames, run_id=run_id, overwrite=(out / run_id).exists())
    if not quiet:
        print(f"{spec.kind}: {path}")
    if later["signal"] is not None:
        raise RunInterrupted(path, later["signal"])
    return path
