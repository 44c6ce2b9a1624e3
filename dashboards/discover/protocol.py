"""Between the page and its worker: the job folders and the request lines (torch-free, dash-free).

A job launched from the page lives in ``<store>/.mgm_discover/jobs/<job>/``:

* ``spec.json`` — the job (a :class:`~mgm_analysis.jobs.JobSpec` as a dict);
* ``status.json`` — ``queued`` | ``running`` | ``complete`` | ``interrupted`` | ``failed`` | ``cancelled``
  (the states of :mod:`mgm_analysis.executor`), the run id once written, a message, the worker's pid;
* ``progress.json`` — epoch k of N and the energy terms, rewritten after every epoch;
* ``strip.png`` — a strip of the chain's current frames, redrawn at most every :data:`STRIP_EVERY_S`.

Every file is written atomically (a temporary file renamed), so the page never reads half of one.  The worker
writes them; the page reads them (:func:`job_state`, :func:`open_jobs`).  Requests and replies between the
two are one JSON object a line (:func:`_messages`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from pathlib import Path

from mgm_analysis.executor import FINAL  # noqa: F401 (re-exported: the final states of a job)

HIDDEN = ".mgm_discover"
STRIP_EVERY_S = 1.0     # the worker redraws the strip at most this often
STRIP_FRAMES = 8
FACE_PX = 448           # the face is drawn this large (the generator's pixels stay square and sharp)

_JOB_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9]{4}-[0-9a-f]{4}$")
_COUNTER = itertools.count()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict) -> None:
    _atomic_write(path, json.dumps(obj, allow_nan=False, default=float).encode())


def _read_json(path: Path) -> dict | None:
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None


def _messages(stream):
    """The JSON objects of a line-per-message stream between the dashboard and its worker; other lines are skipped."""
    for line in stream:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            yield msg


def hidden_dir(root) -> Path:
    return Path(root) / HIDDEN


def job_dir(root, job_id: str) -> Path:
    return hidden_dir(root) / "jobs" / job_id


def new_job_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{next(_COUNTER) % 10000:04d}-{os.urandom(2).hex()}"


def open_jobs(root, newest: int = 200) -> list[str]:
    """Ids of the jobs queued or running in the store now (of the ``newest`` job folders), oldest first."""
    d = hidden_dir(root) / "jobs"
    try:
        names = sorted(n for n in os.listdir(d) if _JOB_ID.match(n))[-newest:]
    except OSError:
        return []
    return [n for n in names if (_read_json(d / n / "status.json") or {}).get("state") in ("queued", "running")]


def job_state(root, job_id: str) -> dict:
    """What the page shows of a job: status.json merged with progress.json (``{}`` for an unknown id)."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        return {}
    d = job_dir(root, job_id)
    status = _read_json(d / "status.json") or {}
    prog = _read_json(d / "progress.json") or {}
    return {**prog, **status, "progress": prog, "job": job_id}
