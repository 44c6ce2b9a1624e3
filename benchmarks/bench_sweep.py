"""Benchmark of the job API and `mgm sweep` (issue 13), and of the read side at sweep scale.

* scheduling overhead per job: the same tiny jobs (16² seeded StyleGAN2, 8 frames, a few epochs) run by calling
  ``discover()`` directly, by ``run_job`` (adds the reference, rendering, metrics and the atomic write), by the
  in-process sweep and by a 2-worker Dask LocalCluster; the overhead is the in-process sweep's wall time less
  the search time each run.json records (the same jobs, so a busy machine slows both alike) — target <= 0.5 s;
* throughput with 2 workers against 1 (jobs/s; the cluster's start-up reported apart);
* a rerun of a finished 12-job sweep in a fresh process (nothing runs) — target <= 10 s;
* a synthetic store of 2 000 runs × 36 frames (30 runs of dashboards.synthetic, copied with their own latents):
  `mgm analyze` (PCA) in a fresh process
  — target <= 60 s — and the dashboard's cold start to first paint (benchmarks/bench_dashboard.py's
  measurement on that store) — target <= 5 s.

Prints a table and writes bench_results/sweep.json.
Usage: python benchmarks/bench_sweep.py [--jobs 12] [--epochs 4] [--store-runs 2000] [--no-store] [--no-browser]
       [--parts overhead,rerun,store] [--json sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"sweep_overhead_per_job_s": 0.5, "rerun_nothing_to_do_s": 10.0, "analyze_2000x36_s": 60.0,
           "dashboard_first_paint_s": 5.0}
REGION = "rect:4,8,12,14"


def _config(epochs: int) -> dict:
    return {"n_frames": 8, "epochs": epochs, "layer_start": 1, "layer_end": 4, "prim_dist": 0.2, "offset": 0.05,
            "outside_weight": 5.0, "distance": "l2"}


def tiny_checkpoint(tmp: Path) -> Path:
    from mgm_analysis.generators.checkpoints import save_checkpoint
    from mgm_analysis.generators.stylegan2 import tiny_generator

    path = tmp / "tiny.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), path)
    return path


def overhead(tmp: Path, ckpt: Path, n_jobs: int, epochs: int) -> dict:
    import torch

    from mgm_analysis.config import default_config
    from mgm_analysis.discovery import discover
    from mgm_analysis.generators import load_generator
    from mgm_analysis.generators.latents import reference_latent
    from mgm_analysis.jobs import JobSpec, run_job
    from mgm_analysis.masks import parse_region
    from mgm_analysis.sweep import connect, run_sweep

    G = load_generator(str(ckpt))
    specs = [JobSpec(generator=str(ckpt), region=REGION, seed=s, config=_config(epochs)) for s in range(n_jobs)]
    out = {"jobs": n_jobs, "epochs": epochs, "torch_threads": torch.get_num_threads()}

    t_direct = []
    for spec in specs:  # what a script calling the engine itself does
        t0 = time.perf_counter()
        cfg = default_config(None, **spec.config)
        w, _ = reference_latent(G, spec.seed, truncation=cfg.truncation)
        discover(G, torch.from_numpy(w), parse_region(REGION, G.resolution), cfg)
        t_direct.append(time.perf_counter() - t0)
    t_job = []
    for spec in specs:
        t0 = time.perf_counter()
        run_job(spec, tmp / "run_job", G=G)
        t_job.append(time.perf_counter() - t0)
    t0, c0 = time.perf_counter(), time.process_time()
    r1 = run_sweep([specs], tmp / "sweep1", workers=1, quiet=True, echo=lambda s: None)
    t_sweep1, c_sweep1 = time.perf_counter() - t0, time.process_time() - c0
    assert r1.ok and r1.executed == n_jobs
    t0 = time.perf_counter()
    client, cluster, _ = connect(workers=2)
    t_start = time.perf_counter() - t0
    client.close()
    cluster.close()
    t0 = time.perf_counter()
    r2 = run_sweep([specs], tmp / "sweep2", workers=2, quiet=True, echo=lambda s: None)
    t_sweep2 = time.perf_counter() - t0
    assert r2.ok and r2.executed == n_jobs
    from mgm_analysis import store

    search_s = sum(store.load_run(tmp / "sweep1" / s.run_id).meta["timings"]["optimise_s"] for s in specs)
    direct = sum(t_direct) / n_jobs
    out.update({
        "sweep_1_search_per_job_s": search_s / n_jobs,
        "sweep_1_cpu_per_job_s": c_sweep1 / n_jobs,
        "sweep_overhead_per_job_s": (t_sweep1 - search_s) / n_jobs,
        "direct_discover_per_job_s": direct,
        "run_job_per_job_s": sum(t_job) / n_jobs,
        "sweep_1_worker_per_job_s": t_sweep1 / n_jobs,
        "sweep_minus_direct_per_job_s": t_sweep1 / n_jobs - direct,
        "run_job_overhead_per_job_s": sum(t_job) / n_jobs - direct,
        "local_cluster_2_start_s": t_start,
        "sweep_2_workers_wall_s": t_sweep2,
        "sweep_1_worker_wall_s": t_sweep1,
        "throughput_1_worker_jobs_per_s": n_jobs / t_sweep1,
        "throughput_2_workers_jobs_per_s": n_jobs / t_sweep2,
        "throughput_2_workers_after_start_jobs_per_s": n_jobs / max(1e-9, t_sweep2 - t_start),
    })
    return out


def rerun(tmp: Path, ckpt: Path, epochs: int) -> dict:
    """A 12-job grid (2 regions x 3 seeds x 2 offsets) run once, then rerun in a fresh process: nothing runs."""
    args = [sys.executable, "-m", "mgm_analysis.cli", "sweep", "--generator", str(ckpt), "--regions",
            f"{REGION},ellipse:8,5,4,3", "--seeds", "0-2", "--set", "offset=0.05,0.08", "--out", str(tmp / "grid"),
            "--frames", "8", "--epochs", str(epochs), "--layers", "1:4", "--prim-dist", "0.2", "--outside-weight",
            "5", "--distance", "l2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    first = subprocess.run(args, capture_output=True, text=True, env=env)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = subprocess.run(args, capture_output=True, text=True, env=env)
    t_again = time.perf_counter() - t0
    return {"grid_jobs": 12, "first_run_s": t_first, "first_rc": first.returncode, "rerun_nothing_to_do_s": t_again,
            "rerun_rc": again.returncode, "rerun_says": again.stdout.strip().splitlines()[-1:]}


TEMPLATES = 30  # distinct synthetic runs; the others are copies with their own latents


def fast_store(root: Path, n_runs: int, n_frames: int) -> None:
    """``n_runs`` runs: :data:`TEMPLATES` written by dashboards.synthetic.make_store (real metrics, frames), then
    copies of them, each with its own latents (the template's trajectory, scaled and shifted by a seeded random
    amount: the projections see 2 000 different paths) and frames hard-linked from the template.  Writing all
    2 000 through make_store takes over an hour on a busy 2-core machine; this takes about a minute."""
    import numpy as np

    from dashboards.synthetic import make_store
    from mgm_analysis import store

    tpl_root = root.parent / "templates"
    ids = make_store(tpl_root, TEMPLATES, n_frames=n_frames, num_ws=10, w_dim=256, layers=(2, 8), resolution=32)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n_runs):
        src = store.load_run(tpl_root / ids[i % TEMPLATES])
        run_id = f"{src.region}-s{i // 3}-copy-{i:04d}"
        tmp = root / f".tmp-{run_id}"
        tmp.mkdir()
        (tmp / "frames").mkdir()
        for f in src.frame_paths:
            os.link(f, tmp / "frames" / f.name)
        for name in ("reference.png", "mask.png"):
            os.link(src.path / name, tmp / name)
        ref = src.reference + rng.normal(scale=0.1, size=src.reference.shape).astype(np.float32)
        lat = ref[None] + (src.latents - src.reference[None]) * rng.uniform(0.5, 1.5)
        np.save(tmp / "latents.npy", lat.astype(np.float32))
        np.save(tmp / "reference.npy", ref.astype(np.float32))
        meta = dict(src.meta, run_id=run_id, seed=i // 3, reference={"seed": i // 3, "truncation": 0.7, "file": None})
        (tmp / "run.json").write_text(json.dumps(meta))
        os.rename(tmp, root / run_id)


def big_store(root: Path, n_runs: int, n_frames: int, browser: bool) -> dict:
    out = {"runs": n_runs, "frames": n_frames}
    if not (root.is_dir() and len([p for p in root.iterdir() if not p.name.startswith(".")]) >= n_runs):
        t0 = time.perf_counter()
        fast_store(root, n_runs, n_frames)
        out["store_write_s"] = time.perf_counter() - t0
    rep = root.parent / "report"
    shutil.rmtree(rep, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    import resource

    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "mgm_analysis.cli", "analyze", str(root), "--out", str(rep), "--quiet"],
                       capture_output=True, text=True, env=env)
    out["analyze_2000x36_s"] = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU seconds: what a busy machine does not inflate
    out["analyze_cpu_s"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    out["analyze_rc"] = p.returncode
    if p.returncode:
        out["analyze_error"] = (p.stderr or p.stdout)[-500:]
    if browser and shutil.which("chromedriver"):
        shutil.rmtree(root / ".mgm_cache", ignore_errors=True)  # the dashboard bench fits and caches its own view
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_dashboard.py"), "--keep", str(root),
                            "--cold-starts", "3"], capture_output=True, text=True, env=env)
        out["dashboard_bench_s"] = time.perf_counter() - t0
        res = ROOT / "bench_results" / "dashboard.json"
        if p.returncode in (0, 1) and res.exists():
            d = json.loads(res.read_text())
            cs = d.get("cold_start") or {}
            out.update({"dashboard_first_paint_s": cs.get("cold_start_to_first_paint_s"),
                        "dashboard_first_paint_all_s": cs.get("first_paint_all_s"),
                        "dashboard_table_painted_s": cs.get("table_painted_s"),
                        "dashboard_median_callback_ms": (d.get("callbacks") or {}).get("median_ms")})
        else:
            out["dashboard_error"] = (p.stderr or p.stdout)[-500:]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--store-runs", type=int, default=2000)
    ap.add_argument("--store-frames", type=int, default=36)
    ap.add_argument("--keep", type=Path, default=None, help="Build (or reuse) the big store here.")
    ap.add_argument("--no-store", action="store_true", help="Skip the 2 000-run store.")
    ap.add_argument("--no-browser", action="store_true", help="Skip the dashboard's first paint (needs chromium).")
    ap.add_argument("--parts", default="overhead,rerun,store",
                    help="Which parts to run (comma-separated: overhead, rerun, store).")
    ap.add_argument("--json", default="sweep.json", help="File name of the results under bench_results/.")
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",")}
    if args.no_store:
        parts.discard("store")

    tmp = Path(tempfile.mkdtemp(prefix="mgm-bench-sweep-"))
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]},
              "targets": TARGETS}
    try:
        ckpt = tiny_checkpoint(tmp)
        if "overhead" in parts:
            result["overhead"] = overhead(tmp, ckpt, args.jobs, args.epochs)
        if "rerun" in parts:
            result["rerun"] = rerun(tmp, ckpt, args.epochs)
        if "store" in parts:
            root = args.keep or tmp / "big" / "runs"
            root.parent.mkdir(parents=True, exist_ok=True)
            result["store"] = big_store(root, args.store_runs, args.store_frames, not args.no_browser)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["machine"]["load_avg_1m_after"] = os.getloadavg()[0]

    o, r = result.get("overhead"), result.get("rerun")
    rows = []
    if o:
        rows += [
        (f"discover() called directly, per job ({o['jobs']} jobs, {o['epochs']} epochs)",
         f"{o['direct_discover_per_job_s']:.2f} s", ""),
        ("run_job (reference, render, metrics, atomic write), per job", f"{o['run_job_per_job_s']:.2f} s", ""),
        ("mgm sweep in-process, per job", f"{o['sweep_1_worker_per_job_s']:.2f} s", ""),
        ("  of which the search (discover, as run.json times it)", f"{o['sweep_1_search_per_job_s']:.2f} s", ""),
        ("  overhead per job: the rest (reference, frames, metrics, write, record)",
         f"{o['sweep_overhead_per_job_s']:.2f} s", f"<= {TARGETS['sweep_overhead_per_job_s']} s"),
        ("Dask LocalCluster (2 workers) start", f"{o['local_cluster_2_start_s']:.2f} s", ""),
        ("throughput 1 worker / 2 workers (start included)",
         f"{o['throughput_1_worker_jobs_per_s']:.2f} / {o['throughput_2_workers_jobs_per_s']:.2f} jobs/s", ""),
        ("  2 workers, start excluded", f"{o['throughput_2_workers_after_start_jobs_per_s']:.2f} jobs/s", ""),
        ]
    if r:
        rows += [
        ("12-job grid, first run (fresh process)", f"{r['first_run_s']:.1f} s", ""),
        ("  rerun: nothing to do", f"{r['rerun_nothing_to_do_s']:.1f} s", f"<= {TARGETS['rerun_nothing_to_do_s']:.0f} s"),
        ]
    if "store" in result:
        s = result["store"]
        if "store_write_s" in s:
            rows.append((f"synthetic store {s['runs']} runs x {s['frames']} frames written", f"{s['store_write_s']:.0f} s", ""))
        rows.append(("mgm analyze (PCA, fresh process)", f"{s['analyze_2000x36_s']:.1f} s (rc {s['analyze_rc']})",
                     f"<= {TARGETS['analyze_2000x36_s']:.0f} s"))
        rows.append(("  its CPU time", f"{s['analyze_cpu_s']:.1f} s", ""))
        if s.get("dashboard_first_paint_s") is not None:
            rows.append(("dashboard cold start to first paint (median of 3)", f"{s['dashboard_first_paint_s']:.2f} s "
                         f"{s['dashboard_first_paint_all_s']}", f"<= {TARGETS['dashboard_first_paint_s']:.0f} s"))
    m = result["machine"]
    print(f"\nJobs and sweeps ({m['cpus']} CPUs, load average {m['load_avg_1m']:.1f} -> {m['load_avg_1m_after']:.1f})")
    w = max(len(a) for a, _, _ in rows)
    for a, b, c in rows:
        print(f"  {a:<{w}}  {b:>22}  {c}")
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / args.json).write_text(json.dumps(result, indent=1, default=str))
    ok = ((not o or o["sweep_overhead_per_job_s"] <= TARGETS["sweep_overhead_per_job_s"])
          and (not r or r["rerun_nothing_to_do_s"] <= TARGETS["rerun_nothing_to_do_s"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
