"""The dashboard's handle on the Discover worker process: start it (again if it died), send requests, wait.

The page's callbacks talk only to a :class:`WorkerClient`; one per store and generator (:data:`_CLIENTS`),
stopped when the dashboard exits.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from mgm_analysis.errors import MGMError

from .options import DiscoverOptions
from .protocol import _messages, _read_json, _write_json, hidden_dir


def _alive(pid) -> bool:
    """Whether a process with this id runs (a worker of another dashboard on the same store)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerClient:
    """The dashboard's handle on the worker process: starts it (and again if it died), sends requests, waits."""

    START_TIMEOUT_S = 180.0
    REQUEST_TIMEOUT_S = 60.0

    def __init__(self, root, options: DiscoverOptions):
        self.root, self.options = Path(root).resolve(), options
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.info: dict | None = None
        self.ready = threading.Event()
        # request number -> (answered, the answer, the worker process it was sent to)
        self.pending: dict[int, tuple[threading.Event, dict, subprocess.Popen | None]] = {}
        self.req = itertools.count(1)

    def start(self) -> None:
        """Start the worker if it is not running (returns at once; :meth:`wait_ready` waits for it)."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                return
            hidden_dir(self.root).mkdir(parents=True, exist_ok=True)
            self._fail_orphans()
            self.ready.clear()
            self.info = None
            logf = open(hidden_dir(self.root) / "worker.log", "ab")  # noqa: SIM115 - the child keeps it open
            cmd = [sys.executable, "-m", "dashboards.discover", "--worker", "--store", str(self.root),
                   "--generator", self.options.generator, "--device", self.options.device]
            if self.options.threads:
                cmd += ["--threads", str(self.options.threads)]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])}
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf, env=env,
                                         start_new_session=True)  # a Ctrl-C in the terminal reaches it via EOF
            logf.close()
            threading.Thread(target=self._read, args=(self.proc,), name="mgm-discover-reader", daemon=True).start()

    def _fail_orphans(self) -> None:
        """Jobs left queued or running by a worker that is gone will not run: say so in their status (a job of
        another dashboard's live worker on the same store is left alone)."""
        jobs = hidden_dir(self.root) / "jobs"
        if not jobs.is_dir():
            return
        for d in jobs.iterdir():
            st = _read_json(d / "status.json")
            if st and st.get("state") in ("queued", "running") and not _alive(st.get("worker")):
                _write_json(d / "status.json", {**st, "state": "failed", "finished": time.time(),
                                                "message": "the worker stopped before this job ended; launch it again"})

    def _read(self, proc) -> None:
        for msg in _messages(proc.stdout):
            if msg.get("op") == "hello":
                self.info = msg
                self.ready.set()
            elif msg.get("req") in self.pending:
                ev, box, _ = self.pending[msg["req"]]
                box.update(msg)
                ev.set()
        # the worker ended: its unfinished jobs will not finish (a stop on purpose leaves none), and everyone
        # waiting on it is woken
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        else:
            self._fail_orphans()
        with self.lock:
            # a launch may already have started the next worker: its facts and its requests are not this one's
            if self.proc is proc:
                if self.info is None:
                    self.info = {"op": "hello", "error": "the worker stopped while starting; see "
                                                         f"{hidden_dir(self.root) / 'worker.log'}"}
                self.ready.set()
            waiting = [(ev, box) for ev, box, to in list(self.pending.values()) if to is proc]
        for ev, box in waiting:
            box.setdefault("error", "the worker stopped; try again")
            ev.set()

    def wait_ready(self, timeout: float | None = None) -> dict:
        """The worker's facts (generator, resolution, defaults); MGMError when it cannot start."""
        self.start()
        if not self.ready.wait(self.START_TIMEOUT_S if timeout is None else timeout):
            raise MGMError("the generator is still loading; try again in a moment")
        info = self.info or {}
        if info.get("error"):
            raise MGMError(f"the worker could not load the generator: {info['error']}")
        return info

    def request(self, msg: dict, timeout: float | None = None) -> dict:
        self.wait_ready()
        req = next(self.req)
        ev, box = threading.Event(), {}
        try:
            with self.lock:
                proc = self.proc
                self.pending[req] = (ev, box, proc)
                proc.stdin.write((json.dumps({**msg, "req": req}) + "\n").encode())
                proc.stdin.flush()
            if not ev.wait(self.REQUEST_TIMEOUT_S if timeout is None else timeout):
                raise MGMError("the worker did not answer; try again")
        except (OSError, ValueError, AttributeError):
            raise MGMError("the worker stopped; try again") from None
        finally:
            self.pending.pop(req, None)
        if box.get("error"):
            raise MGMError(box["error"])
        return box

    def stop(self, timeout: float = 30.0) -> None:
        """Close the worker's input: it interrupts a running job (the run is saved) and exits."""
        with self.lock:
            proc = self.proc
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_CLIENTS: dict[str, WorkerClient] = {}


def _stop_all():
    for c in list(_CLIENTS.values()):
        c.stop()


atexit.register(_stop_all)

