"""A sweep record (<store>/.sweeps/<sweep_id>.json: the grid, every job key, its run folder, status and error), what is pending on a rerun, and the progress bar."""


from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import store
from ..jobs import JobSpec, done

SWEEP_DIR = ".sweeps"
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


