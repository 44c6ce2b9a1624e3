"""Engine speed: the batched engine against a per-latent loop and against the bare generator.

For each case (generator size, number of frames) this measures, in one process
per case so peak memory is that case's own:

* ``engine``: ``discovery.discover`` — all latents in one batch, split into
  chunks, gradients accumulated; L-BFGS(history 20, max_iter 8, strong Wolfe).
* ``loop``: the same energy and the same L-BFGS, but the generator runs on one
  latent at a time, as the reference implementation (bmolab/masked-gan-manifold)
  does.  Same start, same loss: the difference is only how the generator is fed.
* ``floor``: bare ``G.synthesis(ws)`` forward + backward for the same latents in
  the engine's chunks: the cost no engine can go below.

Reported: seconds per epoch, energy+gradient evaluations per epoch, seconds per
evaluation, loop/engine ratio (target ≥ 3 at 36 frames on CPU), engine per
evaluation / floor (target ≤ 1.2), and peak memory (ru_maxrss on CPU, CUDA
max_memory_allocated on a GPU).  On CPU each mode runs 3 times, interleaved, and the
median try counts (``--repeats``).  At 64² the generator is the built-in toyfaces
model (or, without its weights, a random-weight StyleGAN2 of similar size:
w_dim 256, channels 128..32); on CUDA also 256² and 1024² random-weight
StyleGAN2 with rosinality's default channels (w_dim 512).

    python benchmarks/bench_engine.py                 # all cases for this machine, table + JSON
    python benchmarks/bench_engine.py --quick         # fewer epochs
    python benchmarks/bench_engine.py --case 64:36    # one case (resolution:frames)

Writes ``bench_results/engine-<device>-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MASK_MODE = os.environ.get("MGM_BENCH_MASK_MODE", "paper")
TOY_CHANNELS = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32}


def _generator(resolution: int, device: str):
    import torch

    from mgm_analysis.generators.stylegan2 import StyleGAN2

    torch.manual_seed(0)
    if resolution == 64:  # the built-in model when it is there (weights do not change the timing)
        from mgm_analysis.errors import MGMError
        from mgm_analysis.generators import load_generator

        try:
            return load_generator("toyfaces", device=device).requires_grad_(False)
        except MGMError:
            G = StyleGAN2(64, w_dim=256, n_mlp=4, channels=TOY_CHANNELS, lr_mlp=0.1)
    else:
        G = StyleGAN2(resolution)  # rosinality's default channels, w_dim 512
    return G.eval().requires_grad_(False).to(device)


def _peak_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def _sync(device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_case(mode: str, resolution: int, frames: int, epochs: int, device: str, threads: int) -> dict:
    """One measurement in this process: mode is engine | loop | floor."""
    import torch

    from mgm_analysis.config import DiscoveryConfig
    from mgm_analysis.directions import chunk_sizes
    from mgm_analysis.discovery import discover, energy
    from mgm_analysis.losses import make_distance, offsets_for
    from mgm_analysis.masks import parse_region

    torch.set_num_threads(threads)
    G = _generator(resolution, device)
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device), 0.7)
        w_ref = G.broadcast(w)[0]
    layout = "toyfaces" if resolution == 64 else "ffhq"
    region = parse_region("mouth", resolution, layout)
    cfg = DiscoveryConfig(n_frames=frames, distance="l2", epochs=epochs, prim_dist=0.35 if resolution == 64 else 4.0,
                          offset=0.03, outside_weight=10.0)
    # "paper": the reference implementation's loss (the box crop and the four outside strips, area-weighted);
    # "map": the spatial-map mode (one masked mean over the whole image)
    dist = make_distance(region.mask, "l2", MASK_MODE, region.boxes if MASK_MODE == "paper" else ()).to(device)
    chunks = chunk_sizes(frames, 0, torch.device(device).type, resolution)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    if mode == "floor":
        ws = w_ref[None].expand(frames, -1, -1).clone()
        reps = max(3, epochs)
        for r in range(reps + 1):  # first one warms up
            if r == 1:
                _sync(device)
                t0 = time.perf_counter()
            i = 0
            for size in chunks:
                x = ws[i:i + size].clone().requires_grad_(True)
                G.synthesis(x).sum().backward()
                i += size
        _sync(device)
        per_eval = (time.perf_counter() - t0) / reps
        return {"mode": mode, "s_per_eval": per_eval, "peak_mb": _peak_mb(device), "chunks": chunks}

    if mode == "engine":
        discover(G, w_ref, dist, DiscoveryConfig(**{**cfg.to_dict(), "epochs": 1}))  # warm-up
        _sync(device)
        traj = discover(G, w_ref, dist, cfg)
        _sync(device)
        return {"mode": mode, "epochs": traj.epochs_done, "s_per_epoch": traj.seconds / traj.epochs_done,
                "evals_per_epoch": traj.evaluations / traj.epochs_done,
                "s_per_eval": traj.seconds / traj.evaluations, "final_energy": traj.history["total"][-1],
                "peak_mb": _peak_mb(device), "chunks": chunks}

    # mode == "loop": the reference implementation's way, one latent per generator call, same L-BFGS
    with torch.no_grad():
        ref_img = G.synthesis(w_ref[None])
    g = torch.Generator().manual_seed(cfg.seed)
    noise = torch.randn(frames, cfg.n_free, G.w_dim, generator=g) * cfg.init_noise
    noise[0] = 0
    w_free = (w_ref[cfg.layer_start:cfg.layer_end].expand(frames, -1, -1) + noise.to(device)).requires_grad_(True)
    offsets = offsets_for(frames, cfg.offset, False).to(device)
    opt = torch.optim.LBFGS([w_free], lr=1.0, history_size=20, max_iter=8, line_search_fn="strong_wolfe")
    n_evals = 0

    def closure():
        nonlocal n_evals
        n_evals += 1
        w_free.grad = None
        return torch.tensor(energy(G, w_free, w_ref, ref_img, dist, cfg, offsets, backward=True,
                                   per_latent=True)["total"], dtype=torch.float64)

    closure()  # warm-up
    n_evals = 0
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        opt.step(closure)
        energy(G, w_free.detach(), w_ref, ref_img, dist, cfg, offsets, per_latent=True)  # the per-epoch record
    _sync(device)
    dt = time.perf_counter() - t0
    return {"mode": mode, "epochs": epochs, "s_per_epoch": dt / epochs, "evals_per_epoch": n_evals / epochs,
            "s_per_eval": dt / n_evals, "peak_mb": _peak_mb(device)}


def _child(mode, resolution, frames, epochs, device, threads) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--case", f"{resolution}:{frames}", "--epochs", str(epochs),
           "--device", device, "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{mode} {resolution}:{frames} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", help="resolution:frames, e.g. 64:36 (repeatable)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per measurement")
    ap.add_argument("--quick", action="store_true", help="fewer epochs, one try per mode")
    ap.add_argument("--repeats", type=int, default=None,
                    help="tries per mode, interleaved; the median counts [default: 3 on CPU, 1 on a GPU or --quick]")
    ap.add_argument("--device", default=None, help="cpu or cuda [default: cuda when available]")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on CPU [default: all cores]")
    ap.add_argument("--out", default=str(ROOT / "bench_results"))
    ap.add_argument("--child", choices=["engine", "loop", "floor"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    if args.child:
        res, frames = (int(v) for v in args.case[0].split(":"))
        print(json.dumps(run_case(args.child, res, frames, args.epochs or 2, device, threads)))
        return 0

    if args.case:
        cases = [tuple(int(v) for v in c.split(":")) for c in args.case]
    elif device.startswith("cuda"):
        cases = [(64, 16), (64, 36), (256, 36), (1024, 36)]
    else:
        cases = [(64, 16), (64, 36)]
    repeats = args.repeats or (1 if args.quick or device.startswith("cuda") else 3)
    rows = []
    for res, frames in cases:
        epochs = args.epochs or (1 if args.quick or res >= 1024 else 2 if res >= 256 else 3)
        r = {"resolution": res, "frames": frames, "epochs": epochs, "repeats": repeats}
        # the three modes interleaved, each `repeats` times in its own process; per mode the try with the
        # median time counts (a shared machine's speed drifts: single tries of the loop ranged 6.2-8.4 s/epoch)
        tries = {mode: [] for mode in ("floor", "engine", "loop")}
        for _ in range(repeats):
            for mode in tries:
                tries[mode].append(_child(mode, res, frames, epochs, device, threads))
        for mode, ms in tries.items():
            ms = sorted(ms, key=lambda m: m["s_per_eval"])
            r[mode] = {**ms[len(ms) // 2], "s_per_eval_all": [m["s_per_eval"] for m in ms]}
        r["loop_over_engine_epoch"] = r["loop"]["s_per_epoch"] / r["engine"]["s_per_epoch"]
        r["loop_over_engine_eval"] = r["loop"]["s_per_eval"] / r["engine"]["s_per_eval"]
        r["engine_over_floor"] = r["engine"]["s_per_eval"] / r["floor"]["s_per_eval"]
        rows.append(r)
        print(f"{res}² × {frames}: engine {r['engine']['s_per_epoch']:.2f} s/epoch "
              f"({r['engine']['evals_per_epoch']:.1f} evals), loop {r['loop']['s_per_epoch']:.2f} s/epoch, "
              f"floor {r['floor']['s_per_eval']:.3f} s/eval", flush=True)

    head = (f"{'case':>10} {'engine s/ep':>11} {'loop s/ep':>10} {'ratio ep':>8} {'ratio eval':>10} "
            f"{'eng s/eval':>10} {'floor s':>8} {'eng/floor':>9} {'engine MB':>9} {'loop MB':>8}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['resolution']:>5}²×{r['frames']:<3} {r['engine']['s_per_epoch']:>11.3f} "
              f"{r['loop']['s_per_epoch']:>10.3f} {r['loop_over_engine_epoch']:>8.2f} "
              f"{r['loop_over_engine_eval']:>10.2f} {r['engine']['s_per_eval']:>10.4f} "
              f"{r['floor']['s_per_eval']:>8.4f} {r['engine_over_floor']:>9.2f} {r['engine']['peak_mb']:>9.0f} "
              f"{r['loop']['peak_mb']:>8.0f}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"benchmark": "engine", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "device": device, "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
              "threads": threads, "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
              "load_avg": load, "targets": {"loop_over_engine_at_36": ">= 3 (CPU)", "engine_over_floor": "<= 1.2"},
              "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"engine-{device.replace(':', '')}-{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nload average during the run: {load}\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
