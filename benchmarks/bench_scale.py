"""mgm analyze against the size of the store: 2 000, 10 000 and 100 000 synthetic runs x 36 frames.

Each store is made fast: 30 runs written by dashboards.synthetic.make_store (W+ [10, 256], free layers 2:8, 32²
frames, real metrics), then copies whose frames, images and latents.npy are hard links to a template's, each with
its own reference.npy (the template's plus seeded noise on the free layers, so that every run's deltas w − w*
differ) and its own run.json: 100 000 runs take minutes and little disk.

For each size: `mgm analyze STORE --quiet` in a fresh process (the store's cache removed first: catalog and
projections built from nothing), its wall time, the peak resident memory of its largest process
(getrusage RUSAGE_CHILDREN of a wrapper process) and the peak of the whole process tree (Dask workers included,
sampled every 0.2 s), and the load average of the machine before it.  Stores above --workers-from runs use
`--workers 2` (a LocalCluster).  Results go to bench_results/scale.json and the plot to docs/scale.png.

Usage: python benchmarks/bench_scale.py [--sizes 2000,10000,100000] [--workers-from 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = 30


def make_fast_store(root: Path, n_runs: int, n_frames: int = 36) -> float:
    """``n_runs`` runs (see the module docstring); returns the seconds it took (0 when the store was there)."""
    import numpy as np

    from dashboards.synthetic import make_store
    from mgm_analysis import store

    done = root / ".complete"
    if done.exists() and done.read_text() == str(n_runs):
        return 0.0
    t0 = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    tpl_root = root.parent / f"{root.name}-templates"
    shutil.rmtree(tpl_root, ignore_errors=True)
    ids = make_store(tpl_root, TEMPLATES, n_frames=n_frames, num_ws=10, w_dim=256, layers=(2, 8), resolution=32)
    tpls = [store.load_run(tpl_root / i) for i in ids]
    frames = [[f.name for f in t.frame_paths] for t in tpls]
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_runs):
        src = tpls[i % TEMPLATES]
        run_id = f"{src.region}-s{i // 3}-copy-{i:06d}"
        d = root / run_id
        (d / "frames").mkdir(parents=True)
        for name in frames[i % TEMPLATES]:
            os.link(src.path / "frames" / name, d / "frames" / name)
        for name in ("reference.png", "mask.png", "latents.npy"):
            os.link(src.path / name, d / name)
        ref = src.reference.copy()
        ref[2:8] += rng.normal(scale=0.1, size=ref[2:8].shape).astype(np.float32)
        np.save(d / "reference.npy", ref)
        meta = dict(src.meta, run_id=run_id, seed=i // 3, reference={"seed": i // 3, "truncation": 0.7, "file": None})
        (d / "run.json").write_text(json.dumps(meta))
    done.write_text(str(n_runs))
    return time.perf_counter() - t0


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def child(argv) -> int:
    """Run ``argv``; print its wall time, its largest process' peak RSS and the tree's sampled peak as JSON."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    peak_tree = 0
    while p.poll() is None:
        peak_tree = max(peak_tree, _tree_rss(p.pid))
        time.sleep(0.2)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"rc": p.returncode, "wall_s": wall, "peak_rss_gb": ru.ru_maxrss * 1024 / 1e9,
                      "peak_tree_gb": peak_tree / 1e9, "cpu_s": ru.ru_utime + ru.ru_stime,
                      "stdout_tail": out[-1500:], "stderr_tail": err[-1500:]}))
    return 0


def analyze(store_dir: Path, out: Path, workers: int | None) -> dict:
    shutil.rmtree(store_dir / ".mgm_cache", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mgm_analysis.cli", "analyze", str(store_dir), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    load = os.getloadavg()[0]
    p = subprocess.run([sys.executable, __file__, "--child", "--", *cmd], capture_output=True, text=True)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.update(load_before=load, workers=workers or 0)
    return res


def plot(results: list[dict], path: Path) -> None:
    """Two panels (wall time, peak memory) against the number of runs, log-log, drawn with Pillow."""
    import math

    from PIL import Image, ImageDraw

    ok = [r for r in results if r.get("rc") == 0]
    if not ok:
        return
    W, H, pad = 1000, 420, 70
    img = Image.new("RGB", (W, H), "white")
    dr = ImageDraw.Draw(img)
    panels = [("mgm analyze wall time (s)", "wall_s", (60.0, "10 000-run target 60 s")),
              ("peak memory (GB): largest process / whole tree", "peak_rss_gb", (4.0, "target 4 GB"))]
    xs = [r["runs"] for r in ok]
    x0, x1 = math.log10(min(xs)) - 0.15, math.log10(max(xs)) + 0.15
    for k, (title, key, (target, tlabel)) in enumerate(panels):
        left, right, top, bottom = k * W // 2 + pad, (k + 1) * W // 2 - 20, 40, H - pad
        series = [[r[key] for r in ok]] + ([[r["peak_tree_gb"] for r in ok]] if key == "peak_rss_gb" else [])
        vals = [v for s in series for v in s] + [target]
        y0, y1 = math.log10(min(vals)) - 0.2, math.log10(max(vals)) + 0.2

        def px(x, y, left=left, right=right, top=top, bottom=bottom, y0=y0, y1=y1):
            return (left + (math.log10(x) - x0) / (x1 - x0) * (right - left),
                    bottom - (math.log10(y) - y0) / (y1 - y0) * (bottom - top))

        dr.rectangle([left, top, right, bottom], outline="black")
        dr.text((left, 12), title, fill="black")
        for n in xs:
            x, _ = px(n, 10**y0)
            dr.line([x, bottom, x, bottom + 5], fill="black")
            dr.text((x - 18, bottom + 8), f"{n:,}", fill="black")
        for e in range(math.floor(y0), math.ceil(y1) + 1):
            for m in (1, 2, 5):
                v = m * 10**e
                if y0 <= math.log10(v) <= y1:
                    _, y = px(xs[0], v)
                    dr.line([left - 5, y, left, y], fill="black")
                    dr.text((left - 45, y - 6), f"{v:g}", fill="black")
        _, ty = px(xs[0], target)
        dr.line([left, ty, right, ty], fill=(200, 60, 60))
        dr.text((right - 150, ty - 14), tlabel, fill=(200, 60, 60))
        for s, colour in zip(series, [(31, 119, 180), (44, 160, 44)], strict=False):
            pts = [px(n, v) for n, v in zip(xs, s, strict=True)]
            dr.line(pts, fill=colour, width=3)
            for x, y in pts:
                dr.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        dr.text(((left + right) / 2 - 40, H - 25), "runs (x 36 frames)", fill="black")
    img.save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2000,10000,100000")
    ap.add_argument("--workers-from", type=int, default=100000, help="Stores of at least this many runs use "
                                                                      "--workers 2.")
    ap.add_argument("--keep", type=Path, default=None, help="Build (or reuse) the stores under this folder.")
    ap.add_argument("--json", default="scale.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "scale.png")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("cmd", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.cmd)
    base = args.keep or Path(tempfile.mkdtemp(prefix="mgm-scale-"))
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        store_dir = base / f"store-{n}"
        build = make_fast_store(store_dir, n)
        res = analyze(store_dir, base / f"report-{n}", 2 if n >= args.workers_from else None)
        res.update(runs=n, frames=36, store_build_s=build)
        results.append(res)
        print(f"{n:>7} runs: analyze {res['wall_s']:.1f} s (rc {res['rc']}), peak {res['peak_rss_gb']:.2f} GB "
              f"(tree {res['peak_tree_gb']:.2f} GB), load before {res['load_before']:.2f}"
              + (f", store built in {build:.0f} s" if build else ""), flush=True)
        if res["rc"]:
            print(res["stderr_tail"], file=sys.stderr)
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / args.json).write_text(json.dumps({"results": results, "cores": os.cpu_count()}, indent=1))
    plot(results, args.plot)
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
