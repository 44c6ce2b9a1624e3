"""The dashboard's Discover view: draw a region on a face, launch a search, watch it, keep the run.

The dashboard process stays torch-free.  Everything that needs the generator —
rendering the reference face, the configuration checks of ``mgm discover``, the
search itself — happens in one warm **worker process** (``python -m
dashboards.discover --worker``) started with the dashboard; it loads the
generator once and runs the launched jobs one after the other through the job
API (:func:`mgm_analysis.jobs.run_job`), so a launch starts without loading
anything.  The two talk over the worker's stdin/stdout (one JSON object a line);
what a job does is written to files in the store's hidden folder
``<store>/.mgm_discover/jobs/<job>/``:

* ``spec.json`` — the job (a :class:`~mgm_analysis.jobs.JobSpec` as a dict);
* ``status.json`` — ``queued`` | ``running`` | ``complete`` | ``interrupted`` | ``failed`` | ``cancelled``,
  the run id once written, a message;
* ``progress.json`` — epoch k of N and the energy terms, rewritten after every epoch;
* ``strip.png`` — a strip of the chain's current frames, redrawn at most every :data:`STRIP_EVERY_S`.

The page polls these files (every :data:`POLL_MS`); a reloaded page (or another
tab) follows the jobs queued or running at the time.  Cancel sends the worker SIGINT while that job runs: the job
API saves the run as ``interrupted`` (resumable with ``mgm discover --resume``)
and the worker goes on with the next job.

Regions are drawn with plotly's own shape tools (rectangle, ellipse, closed
free-hand path; several shapes are their union) and turned into a region spec
that ``--region`` accepts (:func:`mgm_analysis.masks.region_spec_of_shapes`); the mask shown is
:func:`mgm_analysis.masks.parse_region` of that spec, the function the engine
uses.  A union of shapes of different kinds is written as a PNG mask.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgm_analysis.errors import MGMError
from mgm_analysis.masks import (  # noqa: F401 (re-exported: the page's shapes -> region spec are the masks')
    path_vertices,
    preset_of_boxes,
    region_spec_of_shapes,
    resolve_region,
    shape_spec,
)
from mgm_analysis.store import png_bytes, png_data_uri

log = logging.getLogger(__name__)

# Component ids (stable: tests and users' scripts drive the view with them).
PANEL = "discover-panel"
OFF = "discover-off"
SEED = "discover-seed"
REF_KIND = "discover-ref-kind"
REF_RUN = "discover-ref-run"
UPLOAD = "discover-upload"
REF_NOTE = "discover-ref-note"
REFERENCE = "discover-reference"      # dcc.Store: {"seed": int} | {"run": run_id} | {"file": path} (the face shown)
FACE = "discover-face"
SHAPES = "discover-shapes"            # dcc.Store: the shapes drawn on the face (plotly layout.shapes)
CLEAR_SHAPES = "discover-clear"
MASK = "discover-mask"
REGION = "discover-region"
FRAMES = "discover-frames"
EPOCHS = "discover-epochs"
OFFSET = "discover-offset"
OUTSIDE = "discover-outside-weight"
LAYERS = "discover-layers"
DISTANCE = "discover-distance"
LAUNCH = "discover-launch"
CANCEL = "discover-cancel"
ERROR = "discover-error"
PROGRESS = "discover-progress"
STRIP = "discover-strip"
JOBS = "discover-jobs"                # dcc.Store: the ids of the jobs this page launched
LANDED = "discover-landed"            # dcc.Store: the job ids whose runs this page already showed
POLL = "discover-poll"
INIT = "discover-init"                # dcc.Store: filled once per page load with the generator's facts
PRESET_PREFIX = "discover-preset-"

PRESET_NAMES = ("mouth", "eyes", "left_eye", "right_eye", "brows", "nose", "chin")
POLL_MS = 1000          # the page reads the job files this often (≤ 2 s between strip refreshes)
STRIP_EVERY_S = 1.0     # the worker redraws the strip at most this often
STRIP_FRAMES = 8
FACE_PX = 448           # the face is drawn this large (the generator's pixels stay square and sharp)
MAX_SEED = 2**32 - 1
MAX_UPLOAD_BYTES = 64 * 2**20
HIDDEN = ".mgm_discover"
FINAL = ("complete", "interrupted", "failed", "cancelled")

#: the settings the page offers: page label, DiscoveryConfig field(s), kind
SETTINGS = {FRAMES: ("frames", "n_frames", "int"), EPOCHS: ("epochs", "epochs", "int"),
            OFFSET: ("offset", "offset", "float"), OUTSIDE: ("outside weight", "outside_weight", "float"),
            LAYERS: ("layers", "layers", "layers"), DISTANCE: ("distance", "distance", "choice")}
DISTANCES = ("l2", "lpips")


# ================================================================ options
@dataclass(frozen=True)
class DiscoverOptions:
    """Whether the view is on, why not, and what the worker loads.

    Attributes:
        generator: built-in name or checkpoint path (``mgm dashboard --generator``).
        enabled: False shows ``reason`` instead of the view (no worker is started).
        threads: torch threads of the worker (default: all cores but one, at least one).
        device: where the worker loads the generator.
    """

    generator: str = "toyfaces"
    enabled: bool = True
    reason: str = ""
    threads: int | None = None
    device: str = "cpu"

    @classmethod
    def for_host(cls, host: str, generator: str = "toyfaces", allow: bool = False, **kw) -> "DiscoverOptions":
        """On for a loopback address; elsewhere only with ``allow`` (``--allow-discover``)."""
        local = str(host) in ("127.0.0.1", "localhost", "::1")
        if local or allow:
            return cls(generator=str(generator), enabled=True, **kw)
        return cls(generator=str(generator), enabled=False, reason=(
            f"Discover is off: this dashboard is bound to {host}, so anyone who can reach it could start "
            "searches on this machine (CPU time, disk). Serve it on 127.0.0.1, or start it with "
            "`mgm dashboard --allow-discover` if everyone on that network may launch jobs."), **kw)


# ================================================================ settings (pure)
def _integral(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer() and abs(value) <= 2**53):
        return None
    return int(value)


def settings_config(values: dict) -> dict:
    """DiscoveryConfig overrides from the page's settings (keys: the setting ids); MGMError naming the setting.

    Only the types are judged here (the page's number inputs send None for text that is not a number); the
    ranges are ``mgm discover``'s own checks, made by the worker (:func:`check_job`).
    """
    cfg = {}
    for key, (label, name, kind) in SETTINGS.items():
        v = values.get(key)
        if kind == "int":
            i = _integral(v)
            if i is None:
                raise MGMError(f"{label}: give a whole number (got {v!r})")
            cfg[name] = i
        elif kind == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise MGMError(f"{label}: give a finite number (got {v!r})")
            cfg[name] = float(v)
        elif kind == "layers":
            if not isinstance(v, str) or len(v) > 40:
                raise MGMError(f"{label}: give START:END, e.g. 2:8 (got {v!r})")
            from mgm_analysis.cli.discover import _parse_layers

            try:
                cfg["layer_start"], cfg["layer_end"] = _parse_layers(v.strip())
            except MGMError as exc:
                raise MGMError(str(exc).replace("--layers", label, 1)) from None
        else:
            if v not in DISTANCES:
                raise MGMError(f"{label}: choose one of {', '.join(DISTANCES)} (got {v!r})")
            cfg[name] = v
    return cfg


def valid_reference(ref, runs, uploads: Path | None = None) -> dict:
    """The reference the page holds: {"seed": int}, {"run": known run id} or {"file": a file the page uploaded
    into ``uploads``} (never any other path: the browser could send one); MGMError otherwise."""
    if isinstance(ref, dict) and len(ref) == 1:
        (k, v), = ref.items()
        if k == "seed" and _integral(v) is not None and 0 <= _integral(v) <= MAX_SEED:
            return {"seed": _integral(v)}
        if k == "run" and isinstance(v, str) and v in runs:
            return {"run": v}
        if k == "file" and isinstance(v, str) and uploads is not None and len(v) < 4096 and "\x00" not in v:
            path = Path(v)
            if path.parent == Path(uploads) and _UPLOAD_NAME.match(path.name) and path.is_file():
                return {"file": str(path)}
    raise MGMError("no reference face: give a seed, pick a run or upload a w.npy")


_UPLOAD_NAME = re.compile(r"^w-[0-9a-f]{16}\.npy$")


# ================================================================ files of a job
def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict) -> None:
    _atomic_write(path, json.dumps(obj, allow_nan=False, default=float).encode())


def _messages(stream):
    """The JSON objects of a line-per-message stream between the dashboard and its worker; other lines are skipped."""
    for line in stream:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            yield msg


def _read_json(path: Path) -> dict | None:
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None


def hidden_dir(root) -> Path:
    return Path(root) / HIDDEN


def job_dir(root, job_id: str) -> Path:
    return hidden_dir(root) / "jobs" / job_id


_JOB_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9]{4}-[0-9a-f]{4}$")
_COUNTER = itertools.count()


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


# ================================================================ the worker (its own process; imports torch)
def _strip_png(G, latents, n: int = STRIP_FRAMES) -> bytes:
    """A PNG of ``n`` frames of the chain (evenly spaced), side by side at the generator's resolution."""
    from mgm_analysis.render import render_frames

    lat = latents.detach().float().cpu() if hasattr(latents, "detach") else np.asarray(latents, np.float32)
    idx = np.unique(np.linspace(0, len(lat) - 1, min(n, len(lat))).round().astype(int))
    frames = render_frames(G, lat[idx])
    return png_bytes(np.concatenate(list(frames), axis=1))


def check_job(G, spec_dict: dict):
    """``(JobSpec, DiscoveryConfig)`` after ``mgm discover``'s checks of a job (region, settings, reference),
    before anything is written; MGMError (one line) for bad input.  Runs in the worker (needs the generator)."""
    from mgm_analysis.discovery import default_config
    from mgm_analysis.jobs import JobSpec, reference_latent
    from mgm_analysis.masks import default_layout, parse_region

    spec = JobSpec.from_dict(spec_dict)
    reg = parse_region(spec.region, G.resolution, spec.layout or default_layout(G))
    overrides = dict(spec.config)
    cfg = default_config(getattr(G.info, "name", None), overrides.pop("distance", None),
                         region=reg.name if reg.layout else None, preset=spec.preset, **overrides)
    cfg.check_generator(G.num_ws)
    if spec.reference is not None:
        reference_latent(G, file=spec.reference)
    return spec, cfg


class _Worker:
    """The worker's state: the generator, the job queue, the job running now."""

    def __init__(self, root: Path, G, out):
        import queue

        self.root, self.G, self.out = root, G, out
        self.queue: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.running: str | None = None
        self.cancelled: set[str] = set()
        self.closing = False

    def send(self, msg: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(msg, allow_nan=False) + "\n")
            self.out.flush()

    def hello(self) -> dict:
        from mgm_analysis.discovery import default_config
        from mgm_analysis.masks import default_layout
        from mgm_analysis.presets import PRESETS

        G = self.G
        name = getattr(G.info, "name", None)
        layout = default_layout(G)
        return {"op": "hello", "pid": os.getpid(), "generator": name, "resolution": int(G.resolution),
                "num_ws": int(G.num_ws), "w_dim": int(G.w_dim), "layout": layout,
                "presets": sorted(PRESETS.get(layout, {})),
                "defaults": default_config(name).to_dict(),
                "region_defaults": {r: default_config(name, region=r).to_dict() for r in PRESETS.get(layout, {})}}

    def face(self, msg: dict) -> dict:
        """The reference face of a seed (the config's truncation) or of a latent file, as a PNG (base64)."""
        import torch

        from mgm_analysis.discovery import default_config
        from mgm_analysis.jobs import reference_latent
        from mgm_analysis.render import to_unit

        G = self.G
        if msg.get("file") is not None:
            w, _ = reference_latent(G, file=str(msg["file"]))
        else:
            seed = _integral(msg.get("seed"))
            if seed is None or not 0 <= seed <= MAX_SEED:
                raise MGMError(f"seed: give a whole number from 0 to {MAX_SEED}")
            w, _ = reference_latent(G, seed, None, default_config(getattr(G.info, "name", None)).truncation)
        with torch.no_grad():
            img = to_unit(G.synthesis(torch.from_numpy(w)[None].to(G.w_avg.device)))[0]
        scale = max(1, math.ceil(FACE_PX / G.resolution))
        return {"png": base64.b64encode(png_bytes(img, scale)).decode(), "scale": scale}

    def submit(self, msg: dict) -> dict:
        job_id = msg.get("job")
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise MGMError("a job needs an id")
        spec, cfg = check_job(self.G, msg.get("spec") or {})
        d = job_dir(self.root, job_id)
        d.mkdir(parents=True, exist_ok=False)
        _write_json(d / "spec.json", spec.to_dict())
        _write_json(d / "status.json", {"state": "queued", "label": spec.label, "seed": spec.seed,
                                        "epochs": cfg.epochs, "submitted": time.time(), "worker": os.getpid()})
        self.queue.put((job_id, spec, cfg.epochs))
        return {"ok": True, "epochs": cfg.epochs}

    def cancel(self, msg: dict) -> dict:
        job_id = msg.get("job")
        with self.lock:
            self.cancelled.add(job_id)
            if self.running == job_id:  # the job's own signal handlers save the run as interrupted
                os.kill(os.getpid(), signal.SIGINT)
                return {"ok": True, "was": "running"}
        return {"ok": True, "was": "queued"}

    def read_requests(self, stream) -> None:
        """Answer each request line; at the end of input (the dashboard stopped) interrupt the job and quit."""
        for msg in _messages(stream):
            op, reply = msg.get("op"), {"op": "reply", "req": msg.get("req")}
            try:
                handler = {"face": self.face, "submit": self.submit, "cancel": self.cancel}.get(op)
                if handler is None:
                    raise MGMError(f"unknown request {op!r}")
                reply.update(handler(msg))
            except MGMError as exc:
                reply["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - the worker must answer every request
                log.exception("request %s failed", op)
                reply["error"] = f"{type(exc).__name__}: {exc}"
            try:
                self.send(reply)
            except (OSError, ValueError):
                break
        with self.lock:
            self.closing = True
            if self.running is not None:
                os.kill(os.getpid(), signal.SIGINT)
        self.queue.put(None)

    def strip_watcher(self, job_id: str, d: Path):
        """``watch(epoch, ws)`` for the search: redraw the strip of current frames, at most every STRIP_EVERY_S."""
        last = {"t": 0.0}

        def watch(epoch, ws):
            now = time.time()
            if now - last["t"] < STRIP_EVERY_S:
                return
            try:
                _atomic_write(d / "strip.png", _strip_png(self.G, ws))
                last["t"] = now
            except Exception:  # noqa: BLE001 - a strip is a view; the search goes on
                log.exception("strip of %s failed", job_id)

        return watch

    def progress_callback(self, job_id: str, d: Path, epochs: int):
        def progress(epoch, terms):
            now = time.time()
            scalars = {k: float(v) for k, v in terms.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
            _write_json(d / "progress.json", {"epoch": int(epoch), "epochs": int(epochs), "terms": scalars,
                                              "strip": (d / "strip.png").exists(), "t": now})
            return False if job_id in self.cancelled else None

        return progress

    def run_one(self, job_id: str, spec, epochs: int) -> None:
        from mgm_analysis.jobs import RunInterrupted, run_job

        d = job_dir(self.root, job_id)
        status = _read_json(d / "status.json") or {}
        with self.lock:
            if job_id in self.cancelled or self.closing:
                _write_json(d / "status.json", {**status, "state": "cancelled", "finished": time.time(),
                                                "message": "cancelled before it started"})
                return
            self.running = job_id
        status = {**status, "state": "running", "started": time.time()}
        _write_json(d / "status.json", status)
        _write_json(d / "progress.json", {"epoch": 0, "epochs": epochs, "terms": {}, "strip": False,
                                          "t": time.time()})
        result = {"state": "failed"}
        try:
            try:
                path = run_job(spec, self.root, G=self.G, progress=self.progress_callback(job_id, d, epochs),
                               run_id=spec.run_id, watch=self.strip_watcher(job_id, d))
            except RunInterrupted as exc:
                path = exc.path
            from mgm_analysis.store import load_run

            run = load_run(path, arrays=False)
            result = {"state": run.status, "run_id": run.run_id,
                      "message": f"{run.status}: {run.run_id}"}
        except KeyboardInterrupt:  # a signal outside the search: nothing was written
            result = {"state": "cancelled", "message": "cancelled before the search began"}
        except MGMError as exc:
            result = {"state": "failed", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one failed job must not stop the worker
            log.exception("job %s failed", job_id)
            result = {"state": "failed", "message": f"{type(exc).__name__}: {exc}"}
        finally:
            with self.lock:
                self.running = None
            _write_json(d / "status.json", {**status, **result, "finished": time.time()})

    def serve(self) -> None:
        while True:
            try:
                item = self.queue.get()
                if item is None:
                    return
                self.run_one(*item)
            except KeyboardInterrupt:  # a cancel that arrived just after its job ended: nothing to stop
                continue


def worker_main(argv=None) -> int:
    """``python -m dashboards.discover --worker --store ROOT --generator G``: load G, answer, run jobs."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dashboards.discover")
    ap.add_argument("--worker", action="store_true", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--generator", default="toyfaces")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    # The protocol owns the real stdout; anything printed (warnings, the job API's notes) goes to stderr (the log).
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import torch

    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))
    from mgm_analysis.generators import load_generator

    try:
        G = load_generator(args.generator, device=args.device)
        w = _Worker(Path(args.store).resolve(), G, out)
        hello = w.hello()
    except MGMError as exc:
        out.write(json.dumps({"op": "hello", "error": str(exc)}) + "\n")
        out.flush()
        return 2
    w.send(hello)
    threading.Thread(target=w.read_requests, args=(sys.stdin,), name="requests", daemon=True).start()
    w.serve()
    return 0


# ================================================================ the dashboard's side
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
        self.pending: dict[int, tuple[threading.Event, dict]] = {}
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
                [str(Path(__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}
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
                ev, box = self.pending[msg["req"]]
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
        if self.info is None:
            self.info = {"op": "hello", "error": "the worker stopped while starting; see "
                                                 f"{hidden_dir(self.root) / 'worker.log'}"}
        self.ready.set()
        for ev, box in list(self.pending.values()):
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
        self.pending[req] = (ev, box)
        try:
            with self.lock:
                proc = self.proc
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


import atexit  # noqa: E402

atexit.register(_stop_all)


# ================================================================ page
def face_figure(png_b64: str | None, resolution: int, scale: int, shapes=None, message: str = "") -> dict:
    """The face as a plotly figure in pixel coordinates (x right, y down, pixel i spans [i, i+1]), in
    rectangle-drawing mode, with ``shapes`` drawn on it."""
    res = int(resolution)
    layout = {
        "width": FACE_PX, "height": FACE_PX, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "xaxis": {"range": [0, res], "visible": False, "constrain": "domain", "fixedrange": True},
        "yaxis": {"range": [res, 0], "visible": False, "scaleanchor": "x", "fixedrange": True},
        "dragmode": "drawrect", "shapes": [_styled(s) for s in shapes or [] if isinstance(s, dict)],
        "newshape": {"line": {"color": "#ff2d55", "width": 2}, "fillcolor": "rgba(255,45,85,0.18)",
                     "opacity": 1},
        "plot_bgcolor": "#222", "paper_bgcolor": "white",
    }
    data = []
    if png_b64:
        data.append({"type": "image", "source": "data:image/png;base64," + png_b64, "x0": 0.5 / scale,
                     "y0": 0.5 / scale, "dx": 1 / scale, "dy": 1 / scale, "hoverinfo": "skip", "name": "face"})
    if message:
        layout["annotations"] = [{"text": message, "showarrow": False, "x": res / 2, "y": res / 2,
                                  "font": {"color": "white"}}]
    return {"data": data, "layout": layout}


def _styled(shape: dict) -> dict:
    """A shape as the face draws it: the drawing colours, no empty fields."""
    return {"line": {"color": "#ff2d55", "width": 2}, "fillcolor": "rgba(255,45,85,0.18)", "editable": True,
            **{k: v for k, v in shape.items() if v is not None}}


def preset_shapes(name: str, resolution: int, layout: str) -> list[dict]:
    from mgm_analysis.presets import preset_boxes

    return [_styled({"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1})
            for x0, y0, x1, y1 in preset_boxes(name, layout, resolution)]


def mask_preview_png(face: np.ndarray | None, mask: np.ndarray, scale: int) -> bytes:
    """The mask as the engine uses it: the face (or grey) with the outside dimmed, at the generator's pixels."""
    base = np.full(mask.shape + (3,), 0.8, np.float32) if face is None else face
    if base.shape[:2] != mask.shape:
        base = np.full(mask.shape + (3,), 0.8, np.float32)
    img = base * (0.25 + 0.75 * mask[..., None])
    img = img * (1 - 0.25 * mask[..., None]) + np.array([1.0, 0.18, 0.33]) * 0.25 * mask[..., None]
    return png_bytes(img, scale)


def card(snap, options: DiscoverOptions):
    """The Discover card of the page: the view, or why it is off."""
    return panel(snap) if options.enabled else off_panel(options.reason)


def off_panel(reason: str):
    from dash import html

    return html.Div(id=PANEL, className="discover-card", children=[
        html.B("Discover"), html.P(reason, id=OFF, className="discover-off")])


def _number(id_, value=None, step="any", min_=None, width="80px"):
    """A number input.  No bounds but the seed's: the server's checks (``mgm discover``'s) word the ranges."""
    from dash import dcc

    return dcc.Input(id=id_, type="number", value=value, step=step, min=min_, debounce=False,
                     style={"width": width})


def run_options(snap) -> list[dict]:
    """The runs whose reference a search can start from: those made by a generator (they have a reference)."""
    return [{"label": r, "value": r} for r in sorted(snap.runs)]


def panel(snap, info: dict | None = None):
    """The Discover card for one store snapshot (the settings are filled in once the worker has started)."""
    from dash import dcc, html

    def field(label, comp):
        return html.Label([html.Span(label, className="discover-label"), comp], className="discover-field")

    presets = [html.Button(n.replace("_", " "), id=PRESET_PREFIX + n, n_clicks=0, className="discover-preset")
               for n in PRESET_NAMES]
    reference = html.Div(className="discover-col", children=[
        html.Div([html.B("Discover"), html.Span(" — draw the region that should change, then Launch",
                                                className="discover-hint")]),
        dcc.RadioItems(id=REF_KIND, value="seed", inline=True, options=[
            {"label": "seed", "value": "seed"}, {"label": "a run's reference", "value": "run"},
            {"label": "upload w.npy", "value": "upload"}], inputStyle={"marginRight": "3px"},
            labelStyle={"marginRight": "10px"}),
        html.Div(className="discover-row", children=[
            field("seed", _number(SEED, 0, step=1, min_=0)),
            dcc.Dropdown(id=REF_RUN, options=run_options(snap), value=None, placeholder="run", clearable=False,
                         style={"minWidth": "240px", "flex": "1"}),
            dcc.Upload(id=UPLOAD, children=html.Button("w.npy…"), max_size=MAX_UPLOAD_BYTES, multiple=False)]),
        html.Div(id=REF_NOTE, className="discover-note"),
        dcc.Loading(dcc.Graph(id=FACE, figure=face_figure(None, 64, 1, message="loading the generator…"),
                              style={"width": f"{FACE_PX}px", "height": f"{FACE_PX}px"},
                              config={"displaylogo": False, "scrollZoom": False,
                                      "modeBarButtonsToAdd": ["drawrect", "drawcircle", "drawclosedpath",
                                                              "eraseshape"],
                                      "modeBarButtonsToRemove": ["zoom2d", "pan2d", "select2d", "lasso2d",
                                                                 "zoomIn2d", "zoomOut2d", "autoScale2d",
                                                                 "resetScale2d", "toImage"]}),
                    delay_show=600),
        html.Div(className="discover-row", children=[html.Span("presets:", className="discover-label"), *presets,
                                                     html.Button("clear shapes", id=CLEAR_SHAPES, n_clicks=0)]),
    ])
    region = html.Div(className="discover-col", children=[
        html.Div(html.B("Region as the engine uses it")),
        html.Img(id=MASK, className="discover-mask", alt="mask"),
        html.Div(id=REGION, className="discover-note"),
        html.Div(html.B("Settings"), style={"marginTop": "8px"}),
        html.Div(className="discover-settings", children=[
            field("frames", _number(FRAMES, step=1)),
            field("epochs", _number(EPOCHS, step=1)),
            field("offset", _number(OFFSET)),
            field("outside weight", _number(OUTSIDE)),
            field("layers", dcc.Input(id=LAYERS, type="text", value=None, placeholder="2:8",
                                      style={"width": "80px"})),
            field("distance", dcc.RadioItems(id=DISTANCE, value=None, inline=True,
                                             options=[{"label": d, "value": d} for d in DISTANCES],
                                             inputStyle={"marginRight": "3px"}, labelStyle={"marginRight": "8px"})),
        ]),
        html.Div(className="discover-row", children=[
            html.Button("Launch", id=LAUNCH, n_clicks=0, className="discover-launch"),
            html.Button("Cancel", id=CANCEL, n_clicks=0)]),
        html.Div(id=ERROR, className="discover-error", role="alert"),
    ])
    progress = html.Div(className="discover-col discover-wide", children=[
        html.B("Progress"),
        html.Div(id=PROGRESS, className="discover-progress", children="no jobs yet"),
        html.Img(id=STRIP, className="discover-strip", alt="current frames", style={"display": "none"}),
    ])
    return html.Div(id=PANEL, className="discover-card", children=[
        html.Div(className="discover-grid", children=[reference, region, progress]),
        dcc.Store(id=REFERENCE, data=None), dcc.Store(id=SHAPES, data=[]), dcc.Store(id=JOBS, data=[]),
        dcc.Store(id=LANDED, data=[]), dcc.Store(id=INIT, data=None),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=True, n_intervals=0),
    ])


# ---------------------------------------------------------------- progress text
def _terms_text(terms: dict) -> str:
    names = (("total", "E"), ("l_x", "L_X"), ("spring", "spring"), ("stiffener", "stiffener"), ("d_in", "D_in"),
             ("d_out", "D_out"))
    return "  ".join(f"{label} {terms[k]:.4g}" for k, label in names if isinstance(terms.get(k), (int, float)))


def progress_children(states: list[dict]):
    """The progress list: one line per job of this page, newest first; the running one with epoch k/N and terms."""
    from dash import html

    if not states:
        return "no jobs yet"
    rows = []
    for st in reversed(states):
        state = st.get("state", "unknown")
        label = f"{st.get('label', '?')} (seed {st.get('seed')})" if st.get("seed") is not None else st.get(
            "label", "?")
        line = [html.Span(state, className=f"discover-state discover-{state}"), " ", html.Code(label)]
        prog = st.get("progress") or {}
        if state == "running" and "epoch" in prog:
            line += [f" — epoch {prog['epoch']}/{prog.get('epochs', '?')}", html.Br(),
                     html.Span(_terms_text(prog.get("terms") or {}), className="discover-terms")]
        elif state in FINAL:
            if "epoch" in prog and state != "cancelled":
                line += [f" — {prog['epoch']}/{prog.get('epochs', '?')} epochs"]
            line += [" — ", st.get("message", "")]
        rows.append(html.Li(line))
    return html.Ul(rows, className="discover-jobs")


# ================================================================ callbacks
_SHAPES_JS = """
function (_relayout) {
    const g = document.querySelector('#%s .js-plotly-plot');
    if (!g || !g.layout) { return window.dash_clientside.no_update; }
    return (g.layout.shapes || []).map(s => ({type: s.type, x0: s.x0, y0: s.y0, x1: s.x1, y1: s.y1,
                                              path: s.path || null}));
}
""" % FACE


def register(app, root, options: DiscoverOptions) -> None:
    """Attach the Discover view's callbacks to ``app`` and start its worker."""
    from dash import Input, Output, State, ctx, no_update
    from dash.exceptions import PreventUpdate

    from . import data
    from . import layout as L

    root = Path(root).resolve()
    client = _CLIENTS.setdefault(str(root) + "|" + options.generator, WorkerClient(root, options))
    app.discover_client = client
    client.start()

    def info() -> dict:
        try:
            return client.wait_ready()
        except MGMError:
            raise PreventUpdate from None

    @app.callback(Output(INIT, "data"), Output(FRAMES, "value"), Output(EPOCHS, "value"), Output(OFFSET, "value"),
                  Output(OUTSIDE, "value"), Output(LAYERS, "value"), Output(DISTANCE, "value"),
                  Output(JOBS, "data", allow_duplicate=True), Output(POLL, "disabled", allow_duplicate=True),
                  Input(PANEL, "id"), prevent_initial_call="initial_duplicate")
    def init(_):
        # a reload (or another tab) follows the jobs that are queued or running now
        jobs = open_jobs(root)
        try:
            got = client.wait_ready()
        except MGMError as exc:  # the generator did not load: say so where the face would be
            return ({"error": str(exc)}, *([no_update] * 6), jobs, not jobs)
        d = got.get("defaults") or {}
        return ({"resolution": got["resolution"], "layout": got["layout"], "presets": got.get("presets", [])},
                d.get("n_frames"), d.get("epochs"), d.get("offset"), d.get("outside_weight"),
                f"{d.get('layer_start')}:{d.get('layer_end')}", d.get("distance"), jobs, not jobs)

    @app.callback(Output(FACE, "figure"), Output(REFERENCE, "data"), Output(REF_NOTE, "children"),
                  Input(INIT, "data"), Input(SEED, "value"), Input(REF_KIND, "value"), Input(REF_RUN, "value"),
                  Input(UPLOAD, "contents"), State(UPLOAD, "filename"), State(SHAPES, "data"))
    def reference(init_data, seed, kind, run_id, contents, filename, shapes):
        if init_data is None:  # the first call comes again once the generator's facts are in
            raise PreventUpdate
        if isinstance(init_data, dict) and isinstance(init_data.get("error"), str):
            return face_figure(None, 64, 1, message="no generator"), no_update, html_error(init_data["error"])
        got = info()
        res = got["resolution"]
        if kind not in ("seed", "run", "upload") or not isinstance(shapes, (list, type(None))):
            raise PreventUpdate
        shapes = [s for s in (shapes or []) if isinstance(s, dict)]
        scale = max(1, math.ceil(FACE_PX / res))
        try:
            if kind == "seed":
                s = _integral(seed)
                if s is None or not 0 <= s <= MAX_SEED:
                    raise MGMError(f"seed: give a whole number from 0 to {MAX_SEED}")
                ref, reply = {"seed": s}, client.request({"op": "face", "seed": s})
                note = f"seed {s}, ψ {got['defaults'].get('truncation')}"
            elif kind == "run":
                if not isinstance(run_id, str):
                    raise MGMError("pick a run whose reference to start from")
                run = data.snapshot(root).runs.get(run_id)
                if run is None:
                    raise MGMError(f"run {run_id} is not in the store")
                ref = {"run": run_id}
                reply = client.request({"op": "face", "file": str(run.path)})
                note = f"the reference of {run_id}"
            else:
                if not isinstance(contents, str):
                    raise MGMError("upload a w.npy ([num_ws, w_dim] or [w_dim] floats)")
                path, new_file = save_upload(root, contents, filename)
                ref = {"file": str(path)}
                try:
                    reply = client.request({"op": "face", "file": str(path)})
                except MGMError:  # e.g. the wrong shape for this generator: keep nothing
                    if new_file:
                        path.unlink(missing_ok=True)
                    raise
                note = f"uploaded {filename if isinstance(filename, str) else 'w.npy'}"
        except MGMError as exc:
            return no_update, no_update, html_error(str(exc))
        return face_figure(reply["png"], res, int(reply.get("scale", scale)), shapes), ref, note

    preset_inputs = [Input(PRESET_PREFIX + n, "n_clicks") for n in PRESET_NAMES]

    @app.callback(Output(FACE, "figure", allow_duplicate=True), Output(SHAPES, "data", allow_duplicate=True),
                  Input(CLEAR_SHAPES, "n_clicks"), *preset_inputs, State(FACE, "figure"),
                  prevent_initial_call=True)
    def preset(_clear, *rest):
        fig = rest[-1]
        got = info()
        trig = ctx.triggered_id
        if not isinstance(fig, dict) or not isinstance(fig.get("layout"), dict):
            raise PreventUpdate
        if trig == CLEAR_SHAPES:
            shapes = []
        elif isinstance(trig, str) and trig.startswith(PRESET_PREFIX) and trig[len(PRESET_PREFIX):] in got.get(
                "presets", []):
            shapes = preset_shapes(trig[len(PRESET_PREFIX):], got["resolution"], got["layout"])
        else:
            raise PreventUpdate
        new = {**fig, "layout": {**fig["layout"], "shapes": shapes}}
        return new, [{k: s.get(k) for k in ("type", "x0", "y0", "x1", "y1", "path")} for s in shapes]

    app.clientside_callback(_SHAPES_JS, Output(SHAPES, "data"), Input(FACE, "relayoutData"),
                            prevent_initial_call=True)

    @app.callback(Output(MASK, "src"), Output(REGION, "children"), Output(OFFSET, "value", allow_duplicate=True),
                  Input(SHAPES, "data"), Input(REFERENCE, "data"), State(OFFSET, "value"), State(INIT, "data"),
                  prevent_initial_call=True)
    def show_region(shapes, ref, offset, init_data):
        got = info()
        res, layout_name = got["resolution"], got["layout"]
        try:
            spec, reg = resolve_region(shapes, res, layout_name)
        except MGMError as exc:
            return None, html_error(str(exc)), no_update
        face = None
        if isinstance(ref, dict) and "run" in ref:
            run = data.snapshot(root).runs.get(ref["run"]) if isinstance(ref["run"], str) else None
            face = run.reference_img if run is not None else None
        elif isinstance(ref, dict):
            face = _cached_face(client, ref)
        scale = max(1, math.ceil(224 / res))
        src = png_data_uri(mask_preview_png(face, reg.mask, scale))
        shown = spec if len(spec) <= 120 else spec[:117] + "…"
        text = f"{shown} — {reg.mask.sum():.0f} pixels, {100 * reg.area_share:.1f} % of the image"
        # a preset brings its own default offset (calibrated per region); otherwise keep what is there
        new_offset = no_update
        if reg.layout and reg.name in (got.get("region_defaults") or {}):
            new_offset = got["region_defaults"][reg.name]["offset"]
        return src, text, new_offset

    @app.callback(Output(ERROR, "children"), Output(JOBS, "data"), Output(POLL, "disabled"),
                  Input(LAUNCH, "n_clicks"), State(SHAPES, "data"), State(REFERENCE, "data"),
                  *[State(k, "value") for k in SETTINGS], State(JOBS, "data"), prevent_initial_call=True)
    def launch(n_clicks, shapes, ref, *rest):
        *values, jobs = rest
        if _integral(n_clicks) is None or not isinstance(jobs, (list, type(None))):
            raise PreventUpdate
        jobs = [j for j in (jobs or []) if isinstance(j, str) and _JOB_ID.match(j)]
        got = info()
        try:
            spec = page_spec(root, got, options.generator, shapes, ref, dict(zip(SETTINGS, values, strict=True)),
                             data.snapshot(root).runs)
            job_id = new_job_id()
            client.request({"op": "submit", "job": job_id, "spec": spec})
        except MGMError as exc:
            return html_error(str(exc)), no_update, no_update
        return "", [*jobs, job_id][-50:], False

    @app.callback(Output(ERROR, "children", allow_duplicate=True), Input(CANCEL, "n_clicks"),
                  State(JOBS, "data"), prevent_initial_call=True)
    def cancel(n_clicks, jobs):
        if _integral(n_clicks) is None or not isinstance(jobs, (list, type(None))):
            raise PreventUpdate
        open_jobs = [j for j in (jobs or []) if isinstance(j, str) and job_state(root, j).get("state")
                     in ("queued", "running")]
        if not open_jobs:
            return html_error("nothing to cancel: no job of this page is queued or running")
        running = [j for j in open_jobs if job_state(root, j).get("state") == "running"]
        target = (running or open_jobs)[0]
        try:
            client.request({"op": "cancel", "job": target})
        except MGMError as exc:
            return html_error(str(exc))
        return ""

    @app.callback(Output(PROGRESS, "children"), Output(STRIP, "src"), Output(STRIP, "style"),
                  Output(LANDED, "data"), Output(POLL, "disabled", allow_duplicate=True),
                  Output(L.TABLE, "data"), Output(L.TABLE, "columns"),
                  Output(L.TABLE, "selected_rows", allow_duplicate=True),
                  Output(L.TABLE, "selected_row_ids", allow_duplicate=True),
                  Output(L.FRAME, "data", allow_duplicate=True), Output("views", "style"),
                  Output(REF_RUN, "options"),
                  Input(POLL, "n_intervals"), Input(JOBS, "data"), State(LANDED, "data"),
                  State(L.TABLE, "selected_row_ids"), prevent_initial_call=True)
    def poll(_n, jobs, landed, ticked):
        if not isinstance(jobs, (list, type(None))) or not isinstance(landed, (list, type(None))):
            raise PreventUpdate
        jobs = [j for j in (jobs or []) if isinstance(j, str) and _JOB_ID.match(j)]
        landed = [j for j in (landed or []) if isinstance(j, str)]
        states = [job_state(root, j) for j in jobs]
        states = [s for s in states if s.get("state")]
        children = progress_children(states)
        running = [s for s in states if s.get("state") == "running"]
        strip_src, strip_style = None, {"display": "none"}
        if running and (job_dir(root, running[0]["job"]) / "strip.png").is_file():
            try:
                strip_src = png_data_uri((job_dir(root, running[0]["job"]) / "strip.png").read_bytes())
                strip_style = {}
            except OSError:
                pass
        busy = any(s.get("state") in ("queued", "running") for s in states)
        new = [s for s in states if s.get("state") in ("complete", "interrupted") and s.get("run_id")
               and s["job"] not in landed]
        out = [children, strip_src, strip_style, no_update, not busy, *([no_update] * 7)]
        if new:
            snap = data.snapshot(root)
            new = [s for s in new if s["run_id"] in snap.runs]  # listed once the snapshot holds the run
        if new:
            last = new[-1]["run_id"]
            cat = snap.catalog
            records = L.table_records(cat)
            ticked = [t for t in (ticked or []) if isinstance(t, str) and t in snap.runs]
            ticks = sorted({*ticked, last}) if ticked else []
            index = {r["id"]: i for i, r in enumerate(records)}
            out[3] = [*landed, *(s["job"] for s in new)]
            out[5:] = [records, L.table_columns(cat), [index[t] for t in ticks if t in index], ticks,
                       {"run_id": last, "frame": 0}, {}, run_options(snap)]
        return tuple(out)


def html_error(text: str):
    from dash import html

    return html.Span(text, className="discover-error-text")


_FACE_CACHE: dict[str, np.ndarray] = {}


def _cached_face(client: WorkerClient, ref: dict) -> np.ndarray | None:
    """The face of a seed / file reference as floats, for the mask preview (asked of the worker, memoised)."""
    key = json.dumps(ref, sort_keys=True)
    if key not in _FACE_CACHE:
        try:
            if "seed" in ref and _integral(ref["seed"]) is not None:
                reply = client.request({"op": "face", "seed": _integral(ref["seed"])})
            elif isinstance(ref.get("file"), str):
                reply = client.request({"op": "face", "file": ref["file"]})
            else:
                return None
        except MGMError:
            return None
        from PIL import Image

        im = Image.open(io.BytesIO(base64.b64decode(reply["png"]))).convert("RGB")
        s = int(reply.get("scale", 1))
        arr = np.asarray(im, np.float32)[::s, ::s] / 255.0
        if len(_FACE_CACHE) > 64:
            _FACE_CACHE.clear()
        _FACE_CACHE[key] = arr
    return _FACE_CACHE[key]


def save_upload(root, contents: str, filename) -> tuple[Path, bool]:
    """Keep an uploaded latent file in the store's hidden folder (named by its content) after checking it is a
    finite float ``.npy`` (the store's reader); its path and whether it is new there.  MGMError (one line) for
    anything else."""
    from mgm_analysis.store import load_float_npy

    head, _, b64 = contents.partition(",")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise MGMError("the upload is not a file; upload a w.npy") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise MGMError(f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MiB; a latent file is far smaller")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "w.npy"
        probe.write_bytes(raw)
        load_float_npy(probe, f"upload {filename if isinstance(filename, str) else 'w.npy'}")
    d = hidden_dir(root) / "uploads"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"w-{hashlib.sha256(raw).hexdigest()[:16]}.npy"
    new = not path.exists()
    if new:
        _atomic_write(path, raw)
    return path, new


def page_spec(root, got: dict, generator: str, shapes, ref, values: dict, runs) -> dict:
    """The JobSpec (as a dict) of the page's region, reference and settings; MGMError (one line) for bad input.

    The region is checked here with ``--region``'s parser (nothing written for a bad one); the settings'
    ranges and the reference by the worker with ``mgm discover``'s checks.
    """
    ref = valid_reference(ref, runs, hidden_dir(root) / "uploads")
    cfg = settings_config(values)
    res, layout_name = got["resolution"], got["layout"]
    spec, _ = resolve_region(shapes, res, layout_name)  # no shape, empty, whole image: nothing written yet
    if spec.startswith("drawn-"):  # a union of different kinds: now keep its mask as a PNG for the job
        spec, _ = resolve_region(shapes, res, layout_name, mask_dir=hidden_dir(root) / "masks")
    d = {"kind": "discover", "generator": generator, "region": spec, "seed": None, "reference": None,
         "config": cfg}
    if "seed" in ref:
        d["seed"] = ref["seed"]
    elif "run" in ref:
        d["reference"] = str(runs[ref["run"]].path)
    else:
        d["reference"] = ref["file"]
    return d


if __name__ == "__main__":  # the worker: python -m dashboards.discover --worker --store ROOT
    sys.exit(worker_main())
