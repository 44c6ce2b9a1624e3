"""run_job: one spec → exactly one run folder, written atomically; signals save the running search (status interrupted)."""


from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .. import kinds
from ..errors import MGMError, RunInterrupted, RunReadError
from ..generators.latents import generator_spec, reference_latent
from ..kinds import DERIVED_KINDS, Job
from ..measure import safe_metrics
from ..semantic import semantic_metrics
from ..store import run_kind  # noqa: F401 (re-exported: a run's kind has one owner, the store)
from .spec import JobSpec, complete_run, prepare_out, spec_config, spec_region


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



def _load_sources(spec: JobSpec):
    from .. import store

    return [store.load_run(p) for p in spec.sources]


def run_job(spec: JobSpec, out, *, G=None, progress: Callable | None = None, quiet: bool = True,
            device: str = "cpu", resume=None, watch: Callable | None = None, stop: Callable | None = None):
    """Run one job and write exactly one run folder under ``out``, atomically; return its path.

    Args:
        spec: the job.
        out: the run store (created and write-tested before anything else); None: nothing is written and the
            run comes back in memory (a :class:`~mgm_analysis.store.Run` with ``path`` None), as it would read
            back from its folder.
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
        stop: ``stop()`` polled through a discovery (before every evaluation of its energy and through its
            Jacobian start): True stops it at once, saved as a ``progress`` False would save it (``interrupted``,
            resumable, with the last finished epoch's chain); a cancel then waits for no epoch to end.  A
            baseline passes it to its method (``ctx.stop``); stopped there, nothing is written and
            :class:`~mgm_analysis.errors.SearchStopped` is raised.

    Raises:
        MGMError for bad input (nothing written); :class:`RunInterrupted` after saving a run that SIGINT or
        SIGTERM stopped.
    """
    if out is None:
        if resume is not None or spec.kind in DERIVED_KINDS:
            raise MGMError(f"{spec.kind} jobs and resumes read runs from a store; give out")
        return _run_job(spec, None, G=G, progress=progress, quiet=quiet, device=device, resume=None, watch=watch,
                        stop=stop)
    created = not Path(out).expanduser().exists()
    out = prepare_out(out)
    try:
        with _made_here(out, spec.run_id if resume is None else Path(resume).name):
            return _run_job(spec, out, G=G, progress=progress, quiet=quiet, device=device, resume=resume,
                            watch=watch, stop=stop)
    except MGMError:
        if created:  # bad input leaves nothing behind, not even the empty store folder made for it
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def lock_path(out: Path, run_id: str) -> Path:
    """The lock of one run folder: in the user's cache (``$XDG_CACHE_HOME/mgm_analysis/locks``, by the store's
    absolute path), so that the store holds runs only and a lock never outlives a machine's processes."""
    import hashlib
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "mgm_analysis" / "locks"
    store_key = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]
    return cache / store_key / f"{run_id}.lock"


@contextlib.contextmanager
def _made_here(out: Path, run_id: str):
    """One process makes a run at a time (an OS file lock per run folder, :func:`lock_path`): a second process
    starting the same job on this machine waits for the first (saying so), then finds its run done or resumes it."""
    from filelock import FileLock, Timeout

    path = lock_path(out, run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MGMError(f"cannot make the lock folder {path.parent} ({exc.strerror}); set XDG_CACHE_HOME to a "
                       "writable folder") from None
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting: another process is making {out / run_id} (lock {path})", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _run_job(spec, out, *, G, progress, quiet, device, resume, watch, stop) -> Path:
    from .. import store

    run_id = spec.run_id
    if resume is None and out is not None and (out / run_id).exists():
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
        from ..generators import load_generator

        gen = spec.generator
        if spec.kind in DERIVED_KINDS:
            gen = generator_spec(_load_sources(spec)[0].meta) or gen
        G = load_generator(gen, device=device)
    if spec.kind in DERIVED_KINDS:
        return _run_derived(spec, out, G, quiet=quiet, run_id=run_id)
    return _run_search(spec, out, G, progress=progress, quiet=quiet, run_id=run_id, resume=resume, watch=watch,
                       stop=stop)


def _run_search(spec, out, G, *, progress, quiet, run_id, resume, watch, stop) -> Path:
    """discover and baseline: reference, region, config, (search), frames, metrics, store."""
    import torch

    from .. import store
    from ..config import DiscoveryConfig
    from ..discovery import with_run_noise
    from ..render import render_frames, to_unit

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
              sources=[source] if source is not None else [], state=state, stop=stop)
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
        from ..metrics import metric_options, run_metrics

        errors: list = []
        metrics = safe_metrics(run_metrics, ws, w_ref, frames, ref_img, reg.mask, errors=errors, failures=errors,
                                **metric_options(cfg.to_dict(), ws))
        metrics.update(safe_metrics(semantic_metrics, G, frames, ref_img, [reg.name], factor_change=True,
                                     mask=reg.mask, truncation=cfg.truncation,
                                     cache_dir=out / ".mgm_cache" if out is not None else None,
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
        path = complete_run(out, run_id, spec.key) if resume is None and out is not None else None
        if out is None:  # in memory: the run as it would read back, nothing written
            path = store.memory_run(meta=meta, latents=np.nan_to_num(ws), reference=w_ref, reference_img=ref_img,
                                    mask=reg.mask, frames=frames, run_id=run_id)
        elif path is None:
            path = store.write_run(out, meta=meta, latents=np.nan_to_num(ws), reference=w_ref, reference_img=ref_img,
                                   mask=reg.mask, frames=frames, run_id=run_id, overwrite=(out / run_id).exists())
    signum = later["signal"] or signum
    where = path if out is not None else f"{run_id} (in memory)"
    if not quiet:
        def fmt(k):
            v = metrics.get(k)
            return f"{v:.3f}" if isinstance(v, float) and math.isfinite(v) else "nan"

        from ..metrics import quality_failures

        sl = f", semantic locality {fmt('semantic_locality')}" if "semantic_locality" in metrics else ""
        real = f", realism {fmt('realism')}" if "realism" in metrics else ""
        print(f"{status}: {where}  ({traj.epochs_done} epochs, {t_opt:.1f} s; locality {fmt('locality')}{sl}, "
              f"spread {fmt('spread')}, inside path {fmt('inside_path')}, jump ratio {fmt('jump_ratio')}{real})")
        missed = quality_failures(metrics, cfg.offset)
        print("  good: local, on target, smooth and exploring" if not missed else f"  not good: {'; '.join(missed)}")
    if status == "interrupted" and spec.kind == "discover":
        how = f"mgm discover --resume {path}" if out is not None else "run.save(STORE), then mgm discover --resume"
        print(f"interrupted ({reason}) after {traj.epochs_done} epochs; resume with: {how}")
    if signum is not None:
        raise RunInterrupted(path, signum)
    return path


def _run_derived(spec, out, G, *, quiet, run_id) -> Path:
    """transfer and combine: latents from the source runs' deltas, then frames, metrics, store."""
    import torch

    from .. import store
    from ..generators.latents import check_generator
    from ..kinds.combine import combine_latents
    from ..kinds.transfer import transfer_latents
    from ..metrics import metric_options, run_metrics
    from ..render import render_frames

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
