"""The Discover worker: its own process (``python -m dashboards.discover --worker``), the one that imports torch.

It loads the generator once, answers the page's requests (the reference face, a job's checks) and runs the
launched jobs one after the other through the shared job executor (:class:`mgm_analysis.executor.Executor`),
writing what each job does to its folder (:mod:`.protocol`).  A cancel stops a running search at once
(saved ``interrupted`` with its last finished epoch, resumable); a queued job is cancelled at once.  At the
end of its input (the dashboard stopped) the worker cancels what is queued, stops the running job the same way
and exits.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from mgm_analysis.config import MAX_SEED
from mgm_analysis.errors import MGMError
from mgm_analysis.executor import Executor
from mgm_analysis.store import png_bytes

from .form import _integral
from .protocol import (
    _JOB_ID,
    FACE_PX,
    STRIP_EVERY_S,
    STRIP_FRAMES,
    _atomic_write,
    _messages,
    _write_json,
    job_dir,
)

#: the worker's niceness (POSIX): its start-up (torch, the generator) and its searches yield the CPU to the
#: dashboard's server and the browser (10 000 runs on 2 cores: the first paint 3.1 s with the worker at the same
#: priority, see docs/dashboard.md)
WORKER_NICE = 10

log = logging.getLogger(__name__)


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
    from mgm_analysis.config import default_config
    from mgm_analysis.generators.latents import reference_latent
    from mgm_analysis.jobs import JobSpec
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
    """The worker's state: the generator, the executor that runs the jobs, the job files it keeps up to date."""

    def __init__(self, root: Path, G, out):
        self.root, self.G, self.out = root, G, out
        self.lock = threading.Lock()  # one reply line at a time
        self.epochs: dict[str, int] = {}  # job id -> its epoch count (the config's), for progress.json
        self.executor = Executor(root, generator=lambda spec: G, listener=self.on_job)

    def send(self, msg: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(msg, allow_nan=False) + "\n")
            self.out.flush()

    def hello(self) -> dict:
        from mgm_analysis.config import default_config
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

        from mgm_analysis.config import default_config
        from mgm_analysis.generators.latents import reference_latent
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
        self.epochs[job_id] = cfg.epochs
        self.executor.submit(spec, job_id=job_id, watch=self.strip_watcher(job_id, d))  # status.json: on_job
        return {"ok": True, "epochs": cfg.epochs}

    def cancel(self, msg: dict) -> dict:
        return {"ok": True, "was": self.executor.cancel(msg.get("job"))}

    def read_requests(self, stream) -> None:
        """Answer each request line; at the end of input (the dashboard stopped) stop the jobs and quit."""
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
        self.executor.close(cancel=True)  # queued jobs cancelled, the running one stopped

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

    def on_job(self, job, event: str) -> None:
        """The executor's listener: the job's status.json (every transition) and progress.json (every epoch)."""
        d = job_dir(self.root, job.id)
        epochs = self.epochs.get(job.id)
        if event == "progress":
            scalars = {k: v for k, v in job.terms.items() if math.isfinite(v)}
            _write_json(d / "progress.json", {"epoch": job.epoch, "epochs": epochs, "terms": scalars,
                                              "strip": (d / "strip.png").exists(), "t": time.time()})
            return
        status = {"state": job.state, "label": job.spec.label, "seed": job.spec.seed, "epochs": epochs,
                  "submitted": job.submitted, "worker": os.getpid()}
        if job.started is not None:
            status["started"] = job.started
        if job.final:
            if job.existed:  # a repeated launch: the run the same settings made before, opened again
                status.update(run_id=job.run_id, existed=True,
                              message=f"already in the store: {job.run_id} (the same settings; opened)")
            elif job.run_id is not None and job.state in ("complete", "interrupted"):
                status.update(run_id=job.run_id, message=f"{job.state}: {job.run_id}")
            else:
                status["message"] = job.error or job.state
            status["finished"] = job.finished
            self.epochs.pop(job.id, None)
        _write_json(d / "status.json", status)
        if event == "started":
            _write_json(d / "progress.json", {"epoch": 0, "epochs": epochs, "terms": {}, "strip": False,
                                              "t": time.time()})


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
    if hasattr(os, "nice"):  # background work: the dashboard's server and the browser come first
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICE)
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
    while True:  # the jobs run here, in the main thread: a signal saves the running one (run_job)
        try:
            w.executor.serve()
            return 0
        except KeyboardInterrupt:  # a signal stopped a job (its status says so): go on with the next
            continue
