"""Benchmark of the analysis against its acceptance figures (issue 5).

* joint PCA of 100 runs x 36 frames (W+ [10, 256], free layers 2:8), cold (latents read from disk) — target <= 2 s;
* joint UMAP of the same in a fresh process, including ``import umap`` and numba's first-fit compilation — <= 60 s;
* catalog, overlap matrix and layer profiles of the 100 runs;
* ``mgm analyze`` (a fresh process, imports included) of a demo-sized store (3 regions x 2 references x 16
  frames at 64x64) — target <= 90 s — and of the 100-run store;
* optionally ``mgm analyze`` of a real store (``--store runs/demo``).

Synthetic runs have realistic shapes: each region moves along its own smooth curve in a few W+ directions,
with the frames changing inside the region's box.  Prints a table and writes bench_results/analysis.json.
Usage: python benchmarks/bench_analysis.py [--runs 100] [--frames 36] [--store PATH] [--no-umap]
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
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mgm_analysis import store  # noqa: E402

REGIONS = {"mouth": (16, 40, 48, 56), "eyes": (12, 21, 52, 36), "brows": (14, 12, 50, 22)}
NUM_WS, W_DIM, RES, LAYERS = 10, 256, 64, (2, 8)
TARGETS = {"pca_100x36_s": 2.0, "umap_100x36_fresh_process_s": 60.0, "analyze_demo_store_s": 90.0}


def synthetic_store(root: Path, n_runs: int, n_frames: int, seed: int = 0) -> Path:
    """``n_runs`` runs cycling over the regions and references, written with store.write_run (no GIFs)."""
    rng = np.random.default_rng(seed)
    free = (LAYERS[1] - LAYERS[0]) * W_DIM
    directions = {r: np.linalg.qr(rng.normal(size=(free, 3)))[0].T * 4.0 for r in REGIONS}
    t = np.linspace(0, 1, n_frames)
    for i in range(n_runs):
        region = list(REGIONS)[i % len(REGIONS)]
        ref_seed = i // len(REGIONS)
        r = np.random.default_rng(1000 + ref_seed)
        w_ref = np.repeat(r.normal(size=(1, W_DIM)), NUM_WS, 0).astype(np.float32)
        ref_img = r.uniform(0.2, 0.8, size=(RES, RES, 3)).astype(np.float32)
        coef = np.stack([t, np.sin(np.pi * t) * 0.5, t**2 * 0.2], 1) * rng.uniform(0.8, 1.2)
        delta = (coef @ directions[region]).reshape(n_frames, LAYERS[1] - LAYERS[0], W_DIM)
        lat = np.repeat(w_ref[None], n_frames, 0)
        lat[:, LAYERS[0]:LAYERS[1]] += delta + rng.normal(scale=0.01, size=delta.shape)
        x0, y0, x1, y1 = REGIONS[region]
        mask = np.zeros((RES, RES), np.float32)
        mask[y0:y1, x0:x1] = 1
        frames = np.repeat(ref_img[None], n_frames, 0)
        frames[:, y0:y1, x0:x1] += (t[:, None, None, None] * 0.2 * np.sin(np.arange(x1 - x0) / 3.0)[None, None, :, None])
        frames += rng.normal(scale=0.002, size=frames.shape)
        frames = np.clip(frames, 0, 1)
        from mgm_analysis.metrics import run_metrics

        meta = {"status": "complete", "region": {"name": region, "spec": region, "layout": "toyfaces"},
                "generator": {"name": "synthetic", "format": "builtin"},
                "reference": {"seed": ref_seed, "truncation": 0.7, "file": None}, "seed": ref_seed,
                "config": {"n_frames": n_frames, "layer_start": LAYERS[0], "layer_end": LAYERS[1], "distance": "l2",
                           "offset": 0.03},
                "metrics": run_metrics(lat, w_ref, frames, ref_img, mask, layers=LAYERS, offset=0.03),
                "provenance": {"kind": "discover", "sources": []}}
        store.write_run(root, meta=meta, latents=lat, reference=w_ref, reference_img=ref_img, mask=mask,
                        frames=frames, gif=False, run_id=f"{region}-s{ref_seed}-bench-{i:03d}")
    return root


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def fresh_process(code: str, timeout: int = 900) -> float:
    """Wall time of ``python -c code`` in a new process (so imports and compilation count)."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--frames", type=int, default=36)
    ap.add_argument("--store", default=None, help="also time `mgm analyze` of this real store")
    ap.add_argument("--no-umap", action="store_true", help="skip the UMAP timing (~20-60 s)")
    ap.add_argument("--build-only", action="store_true", help="only write the synthetic stores (with --workdir)")
    ap.add_argument("--analyze-umap", action="store_true", help="also time `mgm analyze --umap` of the demo store")
    ap.add_argument("--workdir", default=None,
                    help="keep the synthetic stores here and reuse them on the next run [default: a temp folder]")
    ap.add_argument("--out", default=str(ROOT / "bench_results" / "analysis.json"))
    args = ap.parse_args(argv)
    res: dict = {"n_runs": args.runs, "n_frames": args.frames, "w_plus": [NUM_WS, W_DIM], "resolution": RES}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        big = tmp / f"big-{args.runs}x{args.frames}"
        if not (big / ".complete").exists():
            shutil.rmtree(big, ignore_errors=True)
            _, res["write_synthetic_store_s"] = timed(synthetic_store, big, args.runs, args.frames)
            (big / ".complete").touch()
        demo = tmp / "demo-6x16"
        if not (demo / ".complete").exists():
            shutil.rmtree(demo, ignore_errors=True)
            synthetic_store(demo, 6, 16, 1)
            (demo / ".complete").touch()
        shutil.rmtree(big / ".mgm_cache", ignore_errors=True)  # time cold projections
        shutil.rmtree(demo / ".mgm_cache", ignore_errors=True)
        shutil.rmtree(tmp / "cache", ignore_errors=True)
        if args.build_only:
            print(f"stores ready in {tmp}")
            return

        from mgm_analysis.analysis.compare import layer_profiles, overlap_matrix
        from mgm_analysis.analysis.projection import project

        runs, res["iter_runs_s"] = timed(lambda: list(store.iter_runs(big)))
        _, res["catalog_s"] = timed(store.catalog, big)
        df, res["pca_100x36_s"] = timed(project, runs, "pca", "w_free")  # latents read from disk here
        res["pca_rows"], res["pca_features"] = len(df), (LAYERS[1] - LAYERS[0]) * W_DIM
        _, res["pca_100x36_warm_s"] = timed(project, runs, "pca", "w_free")
        _, res["pca_cached_s"] = timed(project, runs, "pca", "w_free", cache_dir=tmp / "cache")
        _, res["pca_cache_hit_s"] = timed(project, runs, "pca", "w_free", cache_dir=tmp / "cache")
        M, res["overlap_matrix_100_s"] = timed(overlap_matrix, runs, 3)
        _, res["layer_profiles_100_s"] = timed(layer_profiles, runs)
        from mgm_analysis.analysis.compare import region_overlap_summary

        summ = region_overlap_summary(M).set_index("pair")["mean"].to_dict()
        res["overlap_same_region_other_reference"] = summ.get("same region, other reference")
        res["overlap_different_regions"] = summ.get("different regions, other reference")
        res["overlap_random_baseline"] = M.attrs["random_baseline"]
        if not args.no_umap:
            res["umap_100x36_fresh_process_s"] = fresh_process(
                "import warnings; warnings.simplefilter('ignore')\n"
                "from mgm_analysis import store\n"
                "from mgm_analysis.analysis.projection import project\n"
                f"runs = list(store.iter_runs({str(big)!r}))\n"
                "import time; t0 = time.perf_counter()\n"
                "df = project(runs, 'umap', 'w_free')\n"
                "assert len(df) == len(runs) * runs[0].latents.shape[0]\n")
        cli = "from mgm_analysis.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res["analyze_demo_store_s"] = fresh_process(
                f"import sys; sys.argv = ['mgm', 'analyze', {str(demo)!r}, '--out', {str(tmp / 'rep_demo')!r}, "
                f"'--quiet']\n" + cli)
            res["analyze_100_runs_s"] = fresh_process(
                f"import sys; sys.argv = ['mgm', 'analyze', {str(big)!r}, '--out', {str(tmp / 'rep_big')!r}, "
                f"'--quiet']\n" + cli)
            res["report_html_mb_100_runs"] = (tmp / "rep_big" / "report.html").stat().st_size / 2**20
            if args.analyze_umap:
                res["analyze_demo_store_umap_s"] = fresh_process(
                    f"import sys; sys.argv = ['mgm', 'analyze', {str(demo)!r}, '--out', {str(tmp / 'rep_u')!r}, "
                    f"'--umap', '--quiet']\n" + cli)
            if args.store:
                res["analyze_given_store"] = str(args.store)
                res["analyze_given_store_s"] = fresh_process(
                    f"import sys; sys.argv = ['mgm', 'analyze', {str(args.store)!r}, '--out', "
                    f"{str(tmp / 'rep_given')!r}, '--quiet']\n" + cli)
    res["load_average_1min"] = os.getloadavg()[0]
    res["cpus"] = os.cpu_count()
    res["machine"] = platform.platform()
    print(f"{'measure':42s} {'value':>10s}  target")
    for k, v in res.items():
        if isinstance(v, float):
            target = TARGETS.get(k)
            verdict = "" if target is None else f"<= {target:g} s  {'ok' if v <= target else 'MISSED'}"
            print(f"{k:42s} {v:10.3f}  {verdict}")
    print(f"(1-min load average {res['load_average_1min']:.1f} on {res['cpus']} CPUs while measuring)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
