"""run_sweep: build the record, run the phases in-process (the shared executor) or on Dask, and summarise."""


from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MGMError
from ..jobs import JobSpec, prepare_out
from .cluster import _dashboard, _generator, _ignore_sigint, _outcome, _run_dask, connect
from .record import SweepRecord, _Bar, _cleanup, _complete, _finish, _sources_ok


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


def _run_here(phases, out, record, result, bar, device) -> None:
    """One job after the other in this process, by the shared executor (the generator loaded once); Ctrl-C
    saves the running job (run_job) and stops the sweep; an unexpected error is retried once."""
    from ..executor import Executor, error_line

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
