"""Sweeps: a grid of jobs (regions × seeds × config values × kinds) run in-process or on a Dask cluster.

Every job is a :class:`~mgm_analysis.jobs.JobSpec` run by :func:`~mgm_analysis.jobs.run_job` into the folder
``<store>/<spec.run_id>`` — a function of the job's key — so a job can never leave two run folders, and a
rerun of the same sweep finds its finished jobs by key and skips them, resumes interrupted ones and runs
failed ones again.  The sweep itself is recorded in ``<store>/.sweeps/<sweep_id>.json`` (the grid, every job's
key, run folder, status and error), rewritten atomically as jobs finish.

Executors:

* in-process (``workers=1``, no scheduler): one job after the other (:class:`~mgm_analysis.executor.Executor`),
  the generator loaded once;
* a Dask ``LocalCluster`` on 127.0.0.1 (``workers=N``): N worker processes, one job at a time each, torch
  using cores // N threads per job;
* an existing Dask cluster (``scheduler="tcp://HOST:PORT"`` or a scheduler file); with ``gpus_per_job`` the
  jobs ask for Dask resources ``GPU`` (start workers with ``--resources GPU=1``).

Dask reruns a job whose worker died on another worker; an exception in a job is retried once.  Ctrl-C sets a
Dask event that running jobs check every epoch: they stop, save their run as ``interrupted`` and the sweep
prints how to resume.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import store
from .config import parse_config_value
from .errors import MGMError
from .jobs import JobSpec, done, prepare_out, run_job
from .kinds import DERIVED_KINDS, KINDS, SEARCH_KINDS

__all__ = ["Grid", "parse_sets", "parse_params", "build_jobs", "check_jobs", "search_generator", "SweepRecord",
           "run_sweep", "SweepResult", "connect", "probe_scheduler", "execute", "summary_table", "pending"]

SWEEP_DIR = ".sweeps"
CONNECT_TIMEOUT_S = 8  # an unreachable scheduler is reported within this (and the 10 s the CLI promises)


# ------------------------------------------------------------------ the grid
def _split_values(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def parse_sets(items) -> dict[str, list]:
    """``["offset=0.02,0.04", "epochs=10"]`` -> {"offset": [0.02, 0.04], "epochs": [10]}: DiscoveryConfig fields,
    values typed by the field (MGMError naming the item for an unknown field or a bad value)."""
    out: dict[str, list] = {}
    for item in items or ():
        name, eq, values = str(item).partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name or not _split_values(values):
            raise MGMError(f"--set {item!r}: expected FIELD=v1,v2,... e.g. --set offset=0.02,0.04")
        try:  # parse_config_value refuses an unknown field or a bad value in one line
            out[name] = [parse_config_value(name, v) for v in _split_values(values)]
        except MGMError as exc:
            raise MGMError(f"--set {item!r}: {exc}") from None
    return out


def _auto(v: str):
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(v)
    return v


def parse_params(items) -> dict[str, list]:
    """``["method=pca", "component=0,1,2"]`` -> baseline parameter grid (numbers where they parse)."""
    out: dict[str, list] = {}
    for item in items or ():
        name, eq, values = str(item).partition("=")
        if not eq or not name.strip() or not _split_values(values):
            raise MGMError(f"--param {item!r}: expected NAME=v1,v2,... e.g. --param method=pca")
        out[name.strip()] = [_auto(v) for v in _split_values(values)]
    return out


def _product(grid: dict) -> list[dict]:
    names = sorted(grid)
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(grid[n] for n in names))]


@dataclass(frozen=True)
class Grid:
    """What ``mgm sweep`` asks for; :func:`build_jobs` turns it into job specs."""

    regions: tuple = ("mouth",)
    seeds: tuple = (0,)
    kinds: tuple = ("discover",)
    generator: str = "toyfaces"
    layout: str | None = None
    preset: str | None = None
    config: dict = field(default_factory=dict)      # fixed DiscoveryConfig fields
    sets: dict = field(default_factory=dict)        # field -> values (cartesian product)
    params: dict = field(default_factory=dict)      # baseline parameter -> values (cartesian product)
    transfer_seeds: tuple = ()

    def to_dict(self) -> dict:
        return {"regions": list(self.regions), "seeds": list(self.seeds), "kinds": list(self.kinds),
                "generator": self.generator, "layout": self.layout, "preset": self.preset,
                "config": dict(self.config), "sets": {k: list(v) for k, v in self.sets.items()},
                "params": {k: list(v) for k, v in self.params.items()}, "transfer_seeds": list(self.transfer_seeds)}


def build_jobs(grid: Grid, out) -> list[list[JobSpec]]:
    """The sweep's jobs in phases: searches (discover, baseline) first, then what derives from their runs
    (transfer onto ``transfer_seeds``, combine every pair of regions found on the same face and settings)."""
    out = Path(out).expanduser().resolve()
    unknown = set(grid.kinds) - set(KINDS)
    if unknown:
        raise MGMError(f"--kinds: unknown job kind {', '.join(sorted(unknown))}; use discover, baseline, transfer, "
                       "combine")
    if ("transfer" in grid.kinds or "combine" in grid.kinds) and "discover" not in grid.kinds:
        raise MGMError("--kinds transfer/combine derive from discovered runs; add discover to --kinds")
    if "transfer" in grid.kinds and not grid.transfer_seeds:
        raise MGMError("--kinds transfer needs --transfer-seeds (the faces to transfer to), e.g. 1000-1001")
    if "baseline" in grid.kinds and "method" not in grid.params:
        raise MGMError("--kinds baseline needs --param method=NAME (a registered baseline)")
    searches, derived = [], []
    discovered: dict = {}
    for combo in _product(grid.sets):
        cfg = {**grid.config, **combo}
        for seed in grid.seeds:
            for region in grid.regions:
                common = dict(generator=grid.generator, region=region, seed=seed, layout=grid.layout,
                              preset=grid.preset, config=cfg)
                if "discover" in grid.kinds:
                    spec = JobSpec(kind="discover", **common)
                    searches.append(spec)
                    discovered.setdefault((json.dumps(combo, sort_keys=True), seed), []).append(spec)
                if "baseline" in grid.kinds:
                    for params in _product(grid.params):
                        searches.append(JobSpec(kind="baseline", params=params, **common))
    for (_, seed), specs in discovered.items():
        if "transfer" in grid.kinds:
            for spec in specs:
                for t in grid.transfer_seeds:
                    if t != seed:
                        derived.append(JobSpec(kind="transfer", generator=grid.generator, region=None, seed=t,
                                               sources=(str(out / spec.run_id),)))
        if "combine" in grid.kinds:
            for a, b in itertools.combinations(specs, 2):
                if a.region != b.region:
                    derived.append(JobSpec(kind="combine", generator=grid.generator, region=None, seed=None,
                                           sources=(str(out / a.run_id), str(out / b.run_id))))
    if not searches:
        raise MGMError("the sweep is empty: give --regions, --seeds and --kinds")
    return [searches] + ([derived] if derived else [])


def check_jobs(specs, G=None) -> None:
    """Every search job's configuration (DiscoveryConfig's checks) and, given the generator ``G``, its region and
    layers must be valid before anything is written: bad input is one MGMError, not a failed job later.  The
    configuration is resolved as the job itself will resolve it (:func:`mgm_analysis.jobs.spec_config`)."""
    from .jobs import spec_config, spec_region

    seen, regions = set(), {}
    for spec in specs:
        if spec.kind not in SEARCH_KINDS:
            continue
        reg = None
        if G is not None:
            if (spec.region, spec.layout) not in regions:
                regions[(spec.region, spec.layout)] = spec_region(spec, G)
            reg = regions[(spec.region, spec.layout)]
        sig = (spec.generator, spec.region, spec.preset, json.dumps(spec.config, sort_keys=True))
        if sig in seen:
            continue
        seen.add(sig)
        c = spec_config(spec, G, reg)
        if G is not None:
            c.check_generator(G.num_ws)


def search_generator(phases):
    """The generator of the sweep's search jobs, loaded on the CPU (and kept for in-process jobs on the CPU)."""
    searches = [s for phase in phases for s in phase if s.kind in SEARCH_KINDS]
    return _generator(searches[0], "cpu") if searches else None


# ------------------------------------------------------------------ record
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class SweepRecord:
    """``<store>/.sweeps/<sweep_id>.json``: the grid, every job (key, kind, run folder, status, error, attempts)."""

    def __init__(self, out: Path, grid: dict, phases: list[list[JobSpec]], command: str | None = None):
        self.out = Path(out)
        specs = [s for phase in phases for s in phase]
        self.sweep_id = hashlib.sha256("\n".join(sorted(s.key for s in specs)).encode()).hexdigest()[:12]
        self.path = self.out / SWEEP_DIR / f"{self.sweep_id}.json"
        old = {}
        if self.path.exists():
            with contextlib.suppress(OSError, ValueError):
                old = {j["key"]: j for j in json.loads(self.path.read_text()).get("jobs", [])}
        self.data = {"sweep_id": self.sweep_id, "created": _now(), "updated": _now(), "command": command,
                     "grid": grid, "jobs": []}
        for s in specs:
            prev = old.get(s.key, {})
            self.data["jobs"].append({"key": s.key, "kind": s.kind, "label": s.label, "region": s.region,
                                      "seed": s.seed, "config": s.config, "params": s.params, "run_id": s.run_id,
                                      "status": prev.get("status", "pending"), "error": prev.get("error"),
                                      "attempts": prev.get("attempts", 0)})
        self.jobs = {j["key"]: j for j in self.data["jobs"]}
        self._lock = threading.Lock()

    def set(self, key: str, **fields) -> None:
        with self._lock:
            self.jobs[key].update(fields)

    def save(self, force: bool = True, every_s: float = 1.0) -> None:
        """Rewrite the record atomically; with ``force`` False at most once per ``every_s`` (a sweep of thousands
        of jobs would otherwise rewrite a large file after every job)."""
        now = time.monotonic()
        if not force and now - getattr(self, "_saved_at", -1e9) < every_s:
            return
        self._saved_at = now
        with self._lock:
            self.data["updated"] = _now()
            self.path.parent.mkdir(exist_ok=True)
            store.write_json(self.path, self.data)


def _complete(out: Path, spec: JobSpec) -> bool:
    return done(spec, out) is not None


def pending(phases, out) -> list[list[JobSpec]]:
    """The jobs of each phase that are not complete in the store yet (found by key; nothing is written)."""
    out = Path(out).expanduser()
    return [[s for s in phase if not _complete(out, s)] for phase in phases]


def _cleanup(out: Path, specs) -> None:
    """Temporary folders a killed worker left for this sweep's runs (no job of the sweep runs any more)."""
    names = {s.run_id for s in specs}
    for p in out.glob(".tmp-*"):
        if p.name[len(".tmp-"):].rsplit("-", 1)[0] in names:
            shutil.rmtree(p, ignore_errors=True)
    for p in out.glob(".old-*"):
        if p.name[len(".old-"):].rsplit("-", 1)[0] in names:
            shutil.rmtree(p, ignore_errors=True)
    for p in out.glob(".write-test-*"):
        with contextlib.suppress(OSError):
            if time.time() - p.stat().st_mtime > 60:
                shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------ one job
_GENERATORS: dict = {}


def _generator(spec: JobSpec, device: str):
    """The generator of a search job, loaded once per process (per generator and device)."""
    if spec.kind in DERIVED_KINDS:
        return None
    from .generators import load_generator

    key = (spec.generator, device)
    if key not in _GENERATORS:
        _GENERATORS[key] = load_generator(spec.generator, device=device)
    return _GENERATORS[key]


def _outcome(spec: JobSpec, path: Path) -> dict:
    from . import store

    run = store.load_run(path)
    m = run.meta.get("metrics") or {}
    return {"key": spec.key, "status": run.status, "stop_reason": run.meta.get("stop_reason"), "path": str(path),
            "locality": m.get("locality"), "seconds": (run.meta.get("timings") or {}).get("total_s")}


def execute(spec_dict: dict, out: str, device: str = "cpu", threads: int | None = None,
            stop_event: str | None = None) -> dict:
    """Run one sweep job where it is scheduled (a Dask worker or this process); a dict says how it went.

    Input errors come back as ``status`` failed with the one-line message; anything else raises (Dask then
    retries the job once).  ``stop_event`` names a Dask event: when it is set, the running search stops after
    its epoch and saves its run ``interrupted``, and jobs that had not started return ``not run``.
    """
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    spec = JobSpec.from_dict(spec_dict)
    progress = None
    if stop_event:
        from distributed import Event

        stop = Event(stop_event)
        if stop.is_set():
            return {"key": spec.key, "status": "not run"}
        last = [time.monotonic()]

        def progress(epoch, terms):
            now = time.monotonic()
            if now - last[0] < 0.5:
                return True
            last[0] = now
            return not stop.is_set()

    if device.startswith("cuda") and ":" not in device:
        device = _gpu_of_worker(device)
    try:
        path = run_job(spec, out, G=_generator(spec, device), progress=progress, quiet=True, device=device)
    except MGMError as exc:
        return {"key": spec.key, "status": "failed", "error": str(exc)}
    return _outcome(spec, path)


def _gpu_of_worker(device: str) -> str:
    """On a machine with several GPUs, worker k of a local cluster takes GPU k (mod the count)."""
    try:
        import torch
        from distributed import get_worker

        n = torch.cuda.device_count()
        name = get_worker().name
        if n > 1 and isinstance(name, int):
            return f"cuda:{name % n}"
    except (ImportError, ValueError):
        pass
    return device


def _ignore_sigint() -> bool:
    """On a local worker process: ignore SIGINT (the sweep's own Ctrl-C handling stops the jobs)."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread of that process
        return False
    return True


def _check_store(out: str, token: str) -> str | None:
    """On a worker: None when the store is there (the client's token file is visible) and writable."""
    p = Path(out)
    if not (p / SWEEP_DIR / token).exists():
        import socket

        return (f"worker on {socket.gethostname()} does not see the store {out} (not a shared file system?); "
                "give --out on a folder every worker can reach")
    try:
        prepare_out(p)
    except MGMError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------ clusters
def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def probe_scheduler(scheduler: str, timeout: float = 3.0) -> None:
    """MGMError at once when nothing listens at a ``tcp://HOST:PORT`` scheduler (or the one a scheduler file
    names), before the sweep loads anything; other addresses are left to :func:`connect`."""
    import socket

    addr = scheduler
    if Path(scheduler).is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            addr = json.loads(Path(scheduler).read_text()).get("address", "")
    if not str(addr).startswith("tcp://"):
        return
    host, _, port = str(addr)[len("tcp://"):].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise MGMError(f"--scheduler {scheduler}: no Dask scheduler answered at {addr} ({exc.strerror or exc}); "
                       "start one with `dask scheduler` or check the address") from None


def connect(*, workers: int = 1, scheduler: str | None = None, gpus_per_job: float = 0):
    """(client, cluster or None, torch threads per job or None) for ``workers`` > 1 or a ``scheduler``."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        kw = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
        if "address" in kw and "://" not in scheduler and ":" not in scheduler:
            raise MGMError(f"--scheduler {scheduler!r}: give tcp://HOST:PORT or a scheduler file")
        try:
            client = Client(**kw, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MGMError(f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                           f"({why[:160]}); start one with `dask scheduler` or check the address") from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError):
            client.close()
            raise MGMError(f"--scheduler {scheduler}: the scheduler has no workers; start some with "
                           f"`dask worker {client.scheduler.address}`") from None
        if gpus_per_job:
            res = [w.get("resources", {}).get("GPU", 0) for w in client.scheduler_info()["workers"].values()]
            if not any(r >= gpus_per_job for r in res):
                client.close()
                raise MGMError(f"--gpus-per-job {gpus_per_job}: no worker offers that many GPUs; start workers "
                               "with `dask worker ... --resources GPU=1`")
        return client, None, None
    threads = max(1, _cores() // workers)
    kw = {"resources": {"GPU": gpus_per_job}} if gpus_per_job else {}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR, **kw)
    client = Client(cluster)
    return client, cluster, threads


def _dashboard(client) -> str | None:
    try:
        services = client.scheduler_info().get("services", {})
        return client.dashboard_link if "dashboard" in services else None
    except Exception:  # noqa: BLE001 - the link is a courtesy
        return None


# ------------------------------------------------------------------ the sweep
@dataclass
class SweepResult:
    record: SweepRecord
    executed: int = 0                  # jobs run in this call
    skipped: int = 0                   # complete before (by key)
    interrupted: bool = False          # Ctrl-C stopped the sweep
    counts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(j["status"] == "complete" for j in self.record.data["jobs"])


class _Bar:
    """One progress bar over the jobs, with done / running / failed."""

    def __init__(self, total: int, quiet: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="sweep", unit="job", disable=quiet, file=sys.stderr, dynamic_ncols=True)
        self.failed = 0

    def update(self, done: int = 0, running: int = 0):
        self.bar.update(done)
        self.bar.set_postfix(done=self.bar.n, running=running, failed=self.failed, refresh=True)

    def close(self):
        self.bar.close()


def run_sweep(phases: list[list[JobSpec]], out, *, grid: dict | None = None, workers: int = 1,
              scheduler: str | None = None, gpus_per_job: float = 0, device: str = "cpu", quiet: bool = False,
              command: str | None = None, echo=print) -> SweepResult:
    """Run every job of ``phases`` (phase after phase) into the store ``out``; see the module docstring."""
    created = not Path(out).expanduser().exists()
    out = prepare_out(out)
    record = SweepRecord(out, grid or {}, phases, command)
    all_specs = [s for phase in phases for s in phase]
    result = SweepResult(record)
    todo_phases = []
    for phase in phases:
        todo = []
        for s in phase:
            if _complete(out, s):
                record.set(s.key, status="complete", error=None)
                result.skipped += 1
            else:
                todo.append(s)
        todo_phases.append(todo)
    n_todo = sum(len(t) for t in todo_phases)
    if device == "cpu" and gpus_per_job:
        device = "cuda"
    client = cluster = threads = None
    if n_todo and (workers > 1 or scheduler):
        try:
            client, cluster, threads = connect(workers=workers, scheduler=scheduler, gpus_per_job=gpus_per_job)
        except MGMError:
            if created:  # nothing was written: leave no empty store behind either
                with contextlib.suppress(OSError):
                    out.rmdir()
            raise
    record.save()
    bar = _Bar(len(all_specs), quiet)
    bar.update(result.skipped)
    try:
        if n_todo == 0:
            pass
        elif client is None:
            _run_here(todo_phases, out, record, result, bar, device)
        else:
            link = _dashboard(client)
            where = f"{len(client.scheduler_info()['workers'])} Dask workers at {client.scheduler.address}"
            import importlib.util

            note = "" if importlib.util.find_spec("bokeh") else " (its plots need `pip install bokeh`)"
            echo(f"{where}; Dask dashboard: {link}{note}" if link else where)
            if cluster is not None:  # Ctrl-C in the terminal reaches our worker processes too: they leave it
                with contextlib.suppress(Exception):  # to the sweep, which stops the searches cleanly
                    client.run(_ignore_sigint)
            _run_dask(todo_phases, out, record, result, bar, client, threads, device, gpus_per_job)
    finally:
        bar.close()
        record.save()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        _cleanup(out, all_specs)
    return result


def _sources_ok(record, bar, spec) -> bool:
    """False, and the job failed, when a source run it derives from is missing (its own job failed)."""
    if not all(Path(p).exists() for p in spec.sources):
        _finish(record, bar, {"key": spec.key, "status": "failed", "error": "a source run is missing"})
        bar.update(1)
        return False
    return True


def _start(record, bar, spec) -> bool:
    """Mark a job running (one more attempt); False, and the job failed, when a source run is missing."""
    if not _sources_ok(record, bar, spec):
        return False
    record.set(spec.key, status="running", attempts=record.jobs[spec.key]["attempts"] + 1, error=None)
    return True


def _finish(record, bar, outcome: dict) -> None:
    key = outcome["key"]
    record.set(key, status=outcome["status"], error=outcome.get("error"), path=outcome.get("path"),
               locality=outcome.get("locality"), seconds=outcome.get("seconds"),
               stop_reason=outcome.get("stop_reason"))
    if outcome["status"] == "failed":
        bar.failed += 1
    record.save(force=False)


def _run_here(phases, out, record, result, bar, device) -> None:
    """One job after the other in this process, by the shared executor (the generator loaded once); Ctrl-C
    saves the running job (run_job) and stops the sweep; an unexpected error is retried once."""
    from .executor import Executor, error_line

    def outcome(job) -> dict:
        if job.state == "failed":
            return {"key": job.spec.key, "status": "failed", "error": job.error}
        try:
            return _outcome(job.spec, job.path)
        except Exception as exc:  # noqa: BLE001 - the run cannot be read back: the job failed
            return {"key": job.spec.key, "status": "failed", "error": error_line(exc)}

    def listener(job, event) -> None:
        key = job.spec.key
        if event == "started":
            record.set(key, status="running", attempts=record.jobs[key]["attempts"] + 1, error=None)
            record.save()  # the record says which job is running
            bar.update(0, running=1)
        elif event == "finished":
            if job.state == "cancelled":  # a signal before its search began: nothing was written
                record.set(key, status="pending")
            elif job.signal is not None:  # Ctrl-C: the run was saved interrupted, the sweep stops
                _finish(record, bar, outcome(job))
            else:
                result.executed += 1
                _finish(record, bar, outcome(job))
                bar.update(1, running=0)

    ex = Executor(out, generator=lambda spec: _generator(spec, device), device=device, retries=1,
                  listener=listener)
    try:
        for phase in phases:
            for spec in phase:
                if _sources_ok(record, bar, spec):  # the phase before has run: its runs are there or not
                    ex.submit(spec)
            ex.drain()
    except KeyboardInterrupt:  # the jobs not started stay pending
        result.interrupted = True


def _run_dask(phases, out, record, result, bar, client, threads, device, gpus_per_job) -> None:
    from distributed import Event, wait

    token = f"probe-{os.getpid()}-{time.time_ns()}"
    probe = out / SWEEP_DIR / token
    probe.parent.mkdir(exist_ok=True)
    probe.write_text("mgm sweep: can the workers see the store?")
    try:
        problems = {w: e for w, e in client.run(_check_store, str(out), token).items() if e}
    finally:
        probe.unlink(missing_ok=True)
    if problems:
        w, e = next(iter(problems.items()))
        raise MGMError(f"{e} ({len(problems)} of {len(client.scheduler_info()['workers'])} workers, e.g. {w})")
    stop_name = f"mgm-sweep-stop-{record.sweep_id}-{os.getpid()}"
    stop = Event(stop_name, client=client)
    stop.clear()
    resources = {"GPU": gpus_per_job} if gpus_per_job else None
    for phase in phases:
        futures = {}
        for spec in phase:
            if not _start(record, bar, spec):
                continue
            fut = client.submit(execute, spec.to_dict(), str(out), device, threads, stop_name, pure=False,
                                retries=1, resources=resources, key=f"mgm-job-{spec.key[:20]}-{time.time_ns()}")
            futures[fut] = spec
        record.save()
        pending = set(futures)
        try:
            while pending:
                try:
                    done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
                for fut in done:
                    spec = futures[fut]
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # noqa: BLE001 - raised twice (retried once) or its workers died
                        outcome = {"key": spec.key, "status": "failed",
                                   "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
                    if outcome["status"] == "not run":
                        record.set(spec.key, status="pending")
                        continue
                    result.executed += 1
                    _finish(record, bar, outcome)
                running = sum(len(v) for v in _processing(client).values())
                bar.update(len(done), running=min(running, len(pending)))
        except KeyboardInterrupt:
            result.interrupted = True
            stop.set()  # running searches stop after their epoch and save; the others do not start
            deadline = time.monotonic() + 120
            with contextlib.suppress(Exception):
                while pending and time.monotonic() < deadline:
                    try:
                        done, pending = wait(pending, timeout=1, return_when="FIRST_COMPLETED")
                    except TimeoutError:
                        continue
                    for fut in done:
                        with contextlib.suppress(Exception):
                            outcome = fut.result()
                            if outcome["status"] == "not run":
                                record.set(futures[fut].key, status="pending")
                            else:
                                _finish(record, bar, outcome)
            for fut in pending:
                record.set(futures[fut].key, status="pending")
            return


def _processing(client) -> dict:
    try:
        return client.processing()
    except Exception:  # noqa: BLE001 - only for the progress bar
        return {}


def summary_table(record: SweepRecord, max_rows: int = 60) -> str:
    """The end-of-sweep table: one row per job (kind, region, seed, varied settings, status, locality, time)."""
    import pandas as pd

    jobs = record.data["jobs"]
    varied = sorted({k for j in jobs for k in (j.get("config") or {})
                     if len({json.dumps((jj.get("config") or {}).get(k)) for jj in jobs}) > 1})
    rows = []
    for j in jobs:
        row = {"kind": j["kind"], "job": j["label"], "seed": j["seed"] if j["seed"] is not None else "-"}
        for k in varied:
            row[k] = (j.get("config") or {}).get(k)
        loc = j.get("locality")
        row.update({"status": j["status"], "locality": f"{loc:.3f}" if isinstance(loc, (int, float)) else "-",
                    "seconds": f"{j['seconds']:.1f}" if isinstance(j.get("seconds"), (int, float)) else "-",
                    "run": j["run_id"]})
        rows.append(row)
    df = pd.DataFrame(rows)
    text = df.head(max_rows).to_string(index=False)
    if len(df) > max_rows:
        text += f"\n... {len(df) - max_rows} more jobs in {record.path}"
    return text
