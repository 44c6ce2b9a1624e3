"""Running sweep jobs on Dask: one job on a worker (execute), connecting to a LocalCluster or an existing scheduler, and the Dask run loop (Ctrl-C sets an event every running job checks)."""


from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from .. import store
from ..errors import MGMError
from ..jobs import JobSpec, prepare_out, run_job
from ..kinds import DERIVED_KINDS
from .record import SWEEP_DIR, _finish, _start

CONNECT_TIMEOUT_S = 8  # an unreachable scheduler is reported within this (and the 10 s the CLI promises)
# ------------------------------------------------------------------ one job
_GENERATORS: dict = {}


def _generator(spec: JobSpec, device: str):
    """The generator of a search job, loaded once per process (per generator and device)."""
    if spec.kind in DERIVED_KINDS:
        return None
    from ..generators import load_generator

    key = (spec.generator, device)
    if key not in _GENERATORS:
        _GENERATORS[key] = load_generator(spec.generator, device=device)
    return _GENERATORS[key]


def _outcome(spec: JobSpec, path: Path) -> dict:

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
    ``threads``: torch CPU threads for the job (put back after it, for a job run in the caller's process).
    """
    from ..generators.base import torch_threads

    with torch_threads(threads):
        return _execute(spec_dict, out, device, stop_event)


def _execute(spec_dict: dict, out: str, device: str, stop_event: str | None) -> dict:
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


