"""One job executor: a queue of job specs, run one after the other, with progress, cancel and status.

Both places that run jobs in one process use it: the sweep's local mode (:func:`mgm_analysis.sweep.run_sweep`
without Dask) and the dashboard's Discover worker (``dashboards.discover.worker``).  Each job is a
:class:`~mgm_analysis.jobs.JobSpec` run by :func:`~mgm_analysis.jobs.run_job` into ``<out>/<spec.run_id>``
(a function of the job's key: a rerun finds, resumes or refreshes the same folder).

    >>> ex = Executor("runs/", generator=lambda spec: G)             # doctest: +SKIP
    >>> job = ex.submit(JobSpec(region="mouth", seed=3))             # doctest: +SKIP
    >>> ex.drain()                  # runs the queue here, in this thread  # doctest: +SKIP
    >>> ex.status(job).state, ex.status(job).path                    # doctest: +SKIP
    ('complete', PosixPath('runs/mouth-s3-...'))

A job's state goes ``queued`` → ``running`` → ``complete`` | ``interrupted`` | ``failed``, or ``queued`` →
``cancelled``:

* :meth:`Executor.cancel` of a queued job cancels it at once; of a running discovery, the search stops at
  once — before its next evaluation of the energy, or inside its Jacobian start (run_job's ``stop``) — and
  the run is saved ``interrupted`` with the last finished epoch's chain (resumable); a running baseline stops
  inside its direction finder when that polls ``stop`` (the masked Jacobian does) and is ``cancelled``, nothing
  written (else it runs to its end, as transfer and combine do).
* ``failed``: ``error`` is one line — the :class:`~mgm_analysis.errors.MGMError` (bad input), or
  ``Type: first line`` of anything else, after ``retries`` more attempts.
* A signal (Ctrl-C, SIGTERM) while a job runs in the main thread: run_job saves the run ``interrupted``
  (``signal`` says which), then :meth:`~Executor.drain` / :meth:`~Executor.serve` re-raise it to the caller
  (the jobs still queued stay queued).  A signal before the search began writes nothing: that job is
  ``cancelled``.

Every transition (and every epoch) is reported to ``listener(status, event)`` — ``event`` one of ``queued``,
``started``, ``progress``, ``finished`` — in order, with the executor's lock held: keep it short (write a
file, update a record); it may call :meth:`~Executor.status`.  An exception in it is logged, not raised.

Torch-free at import: torch comes with the first job (run_job) or the caller's generator.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .errors import MGMError
from .jobs import JobSpec

__all__ = ["Executor", "JobStatus", "STATES", "FINAL", "EVENTS", "error_line"]

log = logging.getLogger(__name__)

STATES = ("queued", "running", "complete", "interrupted", "failed", "cancelled")
FINAL = ("complete", "interrupted", "failed", "cancelled")
EVENTS = ("queued", "started", "progress", "finished")

#: the error of a queued job that was cancelled, and of one that a signal stopped before its search began
CANCELLED_QUEUED = "cancelled before it started"
CANCELLED_EARLY = "stopped by a signal before the search began; nothing was written"
#: the error of a running job whose cancel stopped a search that keeps nothing (a baseline's direction finder)
CANCELLED_RUNNING = "cancelled while it ran; a baseline keeps nothing of an unfinished search"


def error_line(exc: BaseException) -> str:
    """One line for a failed job: an MGMError's message, else ``Type: first line of the message``."""
    if isinstance(exc, MGMError):
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class JobStatus:
    """A job as the executor sees it (a snapshot: later changes do not alter it).

    Attributes:
        id: the job's id (given to :meth:`Executor.submit`, or ``job-<n>``).
        spec: the job.
        state: one of :data:`STATES`.
        path: the run folder, once run_job wrote it (``complete`` or ``interrupted``).
        error: one line, for ``failed`` and ``cancelled``.
        epoch, terms: the last epoch reported by the search and its energy terms (numbers only).
        submitted, started, finished: ``time.time()`` of each transition (None before it).
        attempts: how often run_job was called for it.
        cancel_requested: :meth:`Executor.cancel` was called while it ran.
        signal: the signal that stopped it (run saved ``interrupted``, or nothing written: ``cancelled``).
        existed: the store held the job's complete run already (nothing was searched; ``path`` is that run).
    """

    id: str
    spec: JobSpec
    state: str = "queued"
    path: Path | None = None
    error: str | None = None
    epoch: int | None = None
    terms: dict = field(default_factory=dict)
    submitted: float | None = None
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    cancel_requested: bool = False
    signal: int | None = None
    existed: bool = False

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def run_id(self) -> str | None:
        return self.path.name if self.path is not None else None


class Executor:
    """A queue of jobs run one after the other into the run store ``out``; see the module docstring.

    Args:
        out: the run store (run_job creates and write-tests it).
        generator: ``generator(spec)`` → the loaded generator for a job (or None: run_job loads it); called in
            the thread that runs the job, for every job (cache it there).
        device: where run_job loads a generator it loads itself.
        retries: more attempts for a job that raised something other than MGMError (bad input) or a signal.
        listener: ``listener(status, event)`` (see the module docstring).

    Jobs run in the thread that calls :meth:`run_next`, :meth:`drain` or :meth:`serve` (the main thread keeps
    run_job's Ctrl-C handling: the run is saved), or in the thread :meth:`start` makes.
    """

    def __init__(self, out, *, generator: Callable | None = None, device: str = "cpu", retries: int = 0,
                 listener: Callable | None = None):
        self.out = Path(out)
        self.device = device
        self.retries = int(retries)
        self._generator = generator
        self._listener = listener
        self._cond = threading.Condition(threading.RLock())
        self._jobs: dict[str, JobStatus] = {}
        self._watch: dict[str, Callable] = {}
        self._queue: deque[str] = deque()
        self._running: str | None = None
        self._closed = False
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ asking
    def status(self, job_id: str) -> JobStatus | None:
        """The job's status now; None for an id this executor does not know."""
        with self._cond:
            return self._jobs.get(job_id)

    def jobs(self) -> list[JobStatus]:
        """Every job, in the order submitted."""
        with self._cond:
            return list(self._jobs.values())

    @property
    def running(self) -> str | None:
        """The id of the job running now."""
        with self._cond:
            return self._running

    def queued(self) -> list[str]:
        """The ids of the jobs waiting, in the order they will run."""
        with self._cond:
            return list(self._queue)

    def wait(self, job_id: str, states=FINAL, timeout: float | None = None) -> JobStatus:
        """Wait until the job's state is one of ``states`` (default: a final one), at most ``timeout`` seconds;
        its status then (check ``.state``: after the timeout it may be another).  MGMError for an unknown id."""
        with self._cond:
            if job_id not in self._jobs:
                raise MGMError(f"no job {job_id!r} in this executor")
            self._cond.wait_for(lambda: self._jobs[job_id].state in states, timeout)
            return self._jobs[job_id]

    # ------------------------------------------------------------ telling
    def submit(self, spec: JobSpec, *, job_id: str | None = None, watch: Callable | None = None) -> str:
        """Queue a job; its id.  ``watch(epoch, ws)`` is passed to run_job (e.g. a live strip of frames).
        MGMError once the executor is closed or for an id already used."""
        if not isinstance(spec, JobSpec):
            raise MGMError(f"a job is a JobSpec, got {type(spec).__name__}")
        with self._cond:
            if self._closed:
                raise MGMError("the executor is closed; it takes no new jobs")
            job_id = str(job_id) if job_id is not None else f"job-{next(self._ids)}"
            if job_id in self._jobs:
                raise MGMError(f"job id {job_id!r} is already used")
            self._jobs[job_id] = JobStatus(id=job_id, spec=spec, submitted=time.time())
            if watch is not None:
                self._watch[job_id] = watch
            self._queue.append(job_id)
            self._emit(job_id, "queued")
            self._cond.notify_all()
        return job_id

    def cancel(self, job_id: str) -> str | None:
        """Cancel a job: a queued one at once (``cancelled``), a running one at once (saved ``interrupted`` with
        its last finished epoch; see the module docstring).  The state it had (``queued``, ``running``, or a
        final state: nothing to cancel); None for an unknown id."""
        with self._cond:
            st = self._jobs.get(job_id)
            if st is None:
                return None
            if st.state == "queued":
                self._queue.remove(job_id)
                self._set(job_id, "finished", state="cancelled", error=CANCELLED_QUEUED, finished=time.time())
            elif st.state == "running" and not st.cancel_requested:
                self._jobs[job_id] = replace(st, cancel_requested=True)
                self._cond.notify_all()
            return st.state

    def close(self, cancel: bool = True) -> None:
        """Take no new jobs; with ``cancel``, cancel the queued ones and stop the running one (:meth:`cancel`).
        :meth:`serve` returns once nothing runs and nothing is queued."""
        with self._cond:
            self._closed = True
            if cancel:
                for job_id in list(self._queue):
                    self.cancel(job_id)
                if self._running is not None:
                    self.cancel(self._running)
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------ running
    def run_next(self, block: bool = False, timeout: float | None = None) -> JobStatus | None:
        """Run the next queued job in this thread; its final status, or None when there is none (``block``:
        wait for one up to ``timeout`` seconds, or until the executor is closed).  Re-raises a signal that
        stopped the job (KeyboardInterrupt / RunInterrupted) after recording it."""
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._queue or self._closed, timeout)
            if not self._queue:
                return None
            job_id = self._queue.popleft()
            self._running = job_id
            self._set(job_id, "started", state="running", started=time.time())
        try:
            self._run(job_id)
        finally:
            with self._cond:
                self._running = None
                self._watch.pop(job_id, None)
                self._cond.notify_all()
        return self.status(job_id)

    def drain(self) -> list[JobStatus]:
        """Run the queued jobs in this thread until none is left; their final statuses."""
        done = []
        while (st := self.run_next()) is not None:
            done.append(st)
        return done

    def serve(self) -> None:
        """Run jobs in this thread as they are submitted, until :meth:`close` (then: until none is queued)."""
        while True:
            with self._cond:
                if self._closed and not self._queue:
                    return
            self.run_next(block=True)

    def start(self) -> threading.Thread:
        """:meth:`serve` in a daemon thread (a signal then reaches the main thread, not the job)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self.serve, name="mgm-executor", daemon=True)
                self._thread.start()
            return self._thread

    # ------------------------------------------------------------ internals
    def _emit(self, job_id: str, event: str) -> None:
        if self._listener is None:
            return
        try:
            self._listener(self._jobs[job_id], event)
        except Exception:  # noqa: BLE001 - a listener observes; the jobs go on
            log.exception("the listener failed on %s of job %s", event, job_id)

    def _set(self, job_id: str, event: str | None, **changes) -> JobStatus:
        with self._cond:
            st = self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            if event is not None:
                self._emit(job_id, event)
            self._cond.notify_all()
            return st

    def _progress(self, job_id: str) -> Callable:
        def progress(epoch, terms) -> bool:
            numbers = {k: float(v) for k, v in (terms or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            with self._cond:
                self._set(job_id, "progress", epoch=int(epoch), terms=numbers)
                return not self._jobs[job_id].cancel_requested  # a cancel from the listener counts now

        return progress

    def _run(self, job_id: str) -> None:
        from .errors import RunInterrupted, SearchStopped
        from .jobs import done, run_job

        spec = self._jobs[job_id].spec
        if self._jobs[job_id].cancel_requested:  # cancelled between leaving the queue and its first step
            self._set(job_id, "finished", state="cancelled", error=CANCELLED_QUEUED, finished=time.time())
            return
        made = done(spec, self.out)
        if made is not None:  # the same job ran before: its run, said so, and nothing searched
            self._set(job_id, None, existed=True)
            self._landed(job_id, made)
            return
        for attempt in range(1 + max(0, self.retries)):
            self._set(job_id, None, attempts=attempt + 1)
            try:
                G = self._generator(spec) if self._generator is not None else None
                path = run_job(spec, self.out, G=G, progress=self._progress(job_id), quiet=True,
                               device=self.device, watch=self._watch.get(job_id),
                               stop=lambda: self._jobs[job_id].cancel_requested)
            except RunInterrupted as exc:  # a signal: the run was saved; the caller stops
                self._landed(job_id, exc.path, signal=exc.signum)
                raise
            except KeyboardInterrupt:  # a signal outside the search: nothing was written
                self._set(job_id, "finished", state="cancelled", error=CANCELLED_EARLY, finished=time.time())
                raise
            except SearchStopped:  # a cancel inside a baseline's finder: nothing was written
                self._set(job_id, "finished", state="cancelled", error=CANCELLED_RUNNING, finished=time.time())
                return
            except MGMError as exc:
                self._failed(job_id, error_line(exc))
                return
            except Exception as exc:  # noqa: BLE001 - retried, then the job failed; the executor goes on
                # the traceback goes to the log at INFO (a worker's log file), not to a CLI's terminal
                log.info("job %s failed (attempt %d)", job_id, attempt + 1, exc_info=True)
                if attempt < self.retries:
                    continue
                self._failed(job_id, error_line(exc))
                return
            self._landed(job_id, path)
            return

    def _landed(self, job_id: str, path, signal: int | None = None) -> None:
        """A run was written: the job's state is the run's own status (complete, or interrupted by a cancel,
        a signal or a non-finite chain)."""
        from . import store

        try:
            status = store.load_run(path, arrays=False).status
        except MGMError as exc:
            self._failed(job_id, error_line(exc), path=Path(path))
            return
        if status not in ("complete", "interrupted"):
            self._failed(job_id, f"the run {Path(path).name} has status {status!r}", path=Path(path))
            return
        self._set(job_id, "finished", state=status, path=Path(path), signal=signal, finished=time.time())

    def _failed(self, job_id: str, error: str, **changes) -> None:
        self._set(job_id, "finished", state="failed", error=error, finished=time.time(), **changes)
