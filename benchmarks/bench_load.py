"""Load test of the dashboard: simulated people browsing one store at once (locust, headless, loopback only).

The dashboard is served as ``mgm dashboard`` serves it (waitress, in its own process) over a synthetic store
(2 000 runs by default, 16 frames of 64x64, W+ [10, 256]); ``--users`` (20) simulated users each open the
page (/, the layout, the dependencies), then browse in a loop with short pauses: select runs (all, a region,
a few), draw the projection, the metric bars and the layer heat-map, hover points (thumbnails), click a point,
move the frame slider ("playing frames"), filter the table.  Every request is a real HTTP request with the
JSON body the browser sends.  After ``--seconds`` (60) it prints requests, failures and p50 / p95 latency per
callback, and writes bench_results/load.json.  Not a test: ``make bench`` runs it.

Usage: python benchmarks/bench_load.py [--runs 2000] [--users 20] [--seconds 60] [--keep DIR]
"""

from __future__ import annotations

from gevent import monkey  # locust runs on gevent: patch before anything imports ssl or threading

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dashboard import SHAPE, _free_port, _listening, build_store  # noqa: E402


def _bodies(root: Path, ids: list[str]) -> dict:
    """The callback request bodies a browsing session sends, built from the app's own callback map."""
    import numpy as np

    from dashboards import layout as L
    from dashboards.app import create_app
    from dashboards.synthetic import callback_body

    app = create_app(root)
    rng = np.random.default_rng(0)
    regions = sorted({i.split("-")[0] for i in ids})
    proj = {"projection-method.value": "pca", "projection-dims.value": 2, "projection-space.value": "w_free",
            "projection-relative.value": ["relative"] if L.FIRST_VIEW["relative"] else []}
    sels = {"all": ids, **{r: [i for i in ids if i.startswith(r + "-")] for r in regions},
            "few": sorted(rng.choice(ids, 5, replace=False).tolist())}
    out: dict[str, list] = {}

    def add(name, output, values, trigger):
        out.setdefault(name, []).append(callback_body(app, output, values, trigger))

    for sel in sels.values():
        add("select", "selection.data", {f"{L.TICKED}.data": sel if sel is not ids else [],
                                         f"{L.TABLE}.filter_query": ""}, f"{L.TICKED}.data")
        add("projection", "..projection.figure", {f"{L.SELECTION}.data": sel, **proj}, f"{L.SELECTION}.data")
        add("metric bars", "metric-bars", {f"{L.DRAWN}.data": sel,
                                           f"{L.METRICS_PICK}.value": ["locality", "spread", "jump_ratio"]},
            f"{L.DRAWN}.data")
        add("layer heat-map", "layer-heatmap", {f"{L.DRAWN}.data": sel}, f"{L.DRAWN}.data")
    for _ in range(50):
        run, frame = ids[int(rng.integers(len(ids)))], int(rng.integers(SHAPE["n_frames"]))
        point = {"points": [{"customdata": [run, frame], "bbox": {"x0": 1, "x1": 2, "y0": 1, "y1": 2}}]}
        add("hover", "..projection-tooltip.show", {f"{L.HOVER}.data": point}, f"{L.HOVER}.data")
        add("click", "..current-frame.data", {f"{L.DRAWN}.data": ids, f"{L.CLICK}.data": point}, f"{L.CLICK}.data")
        add("play (slider)", "..current-frame.data",
            {f"{L.DRAWN}.data": ids, f"{L.SLIDER}.value": (frame + 1) % SHAPE["n_frames"],
             f"{L.VIEWER_RUN}.value": run, f"{L.FRAME}.data": {"run_id": run, "frame": frame}}, f"{L.SLIDER}.value")
        add("frame viewer", "..frame-viewer.figure", {f"{L.FRAME}.data": {"run_id": run, "frame": frame}},
            f"{L.FRAME}.data")
    for r in regions:  # a filter typed into the table: the table narrows, the selection follows
        add("filter", "selection.data", {f"{L.TICKED}.data": [], f"{L.TABLE}.filter_query": f"{{region}} = {r}"},
            f"{L.TABLE}.filter_query")
    return out


def run_load(base: str, bodies: dict, users: int, seconds: float) -> dict:
    import gevent
    from locust import HttpUser, between, task
    from locust.env import Environment

    class Browser(HttpUser):
        host = base
        wait_time = between(0.2, 1.0)

        def on_start(self):
            for path in ("/", "/_dash-layout", "/_dash-dependencies"):
                self.client.get(path, name=f"GET {path}")

        def _cb(self, name):
            self.client.post("/_dash-update-component", json=random.choice(bodies[name]), name=name)

        @task(3)
        def browse_selection(self):
            for name in ("select", "projection", "metric bars", "layer heat-map"):
                self._cb(name)

        @task(6)
        def hover_and_play(self):
            self._cb("hover")
            self._cb("click")
            for _ in range(4):
                self._cb("play (slider)")
                self._cb("frame viewer")

        @task(1)
        def filter_table(self):
            self._cb("filter")
            self._cb("projection")

    env = Environment(user_classes=[Browser])
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    stats = {}
    for (name, method), s in sorted(env.stats.entries.items()):
        stats[name] = {"method": method, "requests": s.num_requests, "failures": s.num_failures,
                       "p50_ms": s.get_response_time_percentile(0.5), "p95_ms": s.get_response_time_percentile(0.95),
                       "rps": round(s.total_rps, 2)}
    total = env.stats.total
    return {"users": users, "seconds": seconds, "requests": total.num_requests, "failures": total.num_failures,
            "rps": round(total.total_rps, 2), "p50_ms": total.get_response_time_percentile(0.5),
            "p95_ms": total.get_response_time_percentile(0.95), "per_request": stats,
            "errors": [str(e.error)[:200] for e in env.stats.errors.values()][:10]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--keep", type=Path, default=None, help="Build (or reuse) the store here and keep it.")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="mgm-bench-load-")) / "runs"
    if args.keep and root.is_dir() and any(root.iterdir()):
        ids = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    else:
        ids = build_store(root, args.runs)
    bodies = _bodies(root, ids)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mgm_analysis.cli", "dashboard", str(root), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        t0 = time.perf_counter()
        while not _listening(port):
            if server.poll() is not None or time.perf_counter() - t0 > 300:
                raise SystemExit(f"the dashboard did not start: {server.stderr.read()[-2000:]}")
            time.sleep(0.2)
        res = run_load(f"http://127.0.0.1:{port}", bodies, args.users, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    res["runs"] = len(ids)
    res["server"] = "waitress (mgm dashboard)"
    print(f"{res['users']} users, {res['seconds']:.0f} s, {res['runs']} runs: {res['requests']} requests "
          f"({res['rps']}/s), {res['failures']} failed; p50 {res['p50_ms']} ms, p95 {res['p95_ms']} ms")
    print(f"{'request':28s} {'n':>6s} {'fail':>5s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, s in res["per_request"].items():
        print(f"{name:28s} {s['requests']:6d} {s['failures']:5d} {s['p50_ms']:8.0f} {s['p95_ms']:8.0f}")
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "load.json").write_text(json.dumps(res, indent=1))
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
