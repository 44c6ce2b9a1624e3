"""Benchmark of the built-in toyfaces model against its acceptance figures (issue 3).

* PSNR of G(z) against render(factors(z)) on held-out z, overall and per region (mean, 5th percentile);
* factor-regressor R² per factor on held-out renders and on generated images;
* share of each region factor's sweep energy inside its region preset;
* forward+backward time through the generator for a batch of 24 latents (W+), 2 threads.

Prints a table and writes bench_results/toyfaces.json.
Usage: python benchmarks/bench_toyfaces.py [--n 512] [--threads 2] [--out bench_results/toyfaces.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mgm_analysis.generators import load_generator  # noqa: E402
from mgm_analysis.generators.toyfaces.evaluate import (  # noqa: E402
    hardware,
    heldout_psnr,
    regressor_r2,
    sweep_energy_share,
)

TARGETS = {"overall": 26.0, "mouth": 22.0, "eyes": 22.0, "brows": 22.0, "nose": 22.0}


def fwd_bwd_seconds(G, batch: int = 24, repeats: int = 5) -> float:
    """Median seconds of one forward+backward wrt W+ latents for ``batch`` latents."""
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = G.broadcast(G.mapping(z))
    ws = ws.clone().requires_grad_(True)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        G.synthesis(ws).square().mean().backward()
        times.append(time.perf_counter() - t0)
        ws.grad = None
    times = sorted(times[1:])  # first call warms up
    return times[len(times) // 2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="held-out z for the PSNR figures (>= 500 for acceptance)")
    ap.add_argument("--n-r2", type=int, default=1000, help="held-out faces for the regressor R² table")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", default=str(ROOT / "bench_results" / "toyfaces.json"), help="JSON result file")
    ap.add_argument("--check-regressor", default=None,
                    help="a second regressor (e.g. trained with --seed 1) for an independent R² on generated images: "
                         "the shipped generator was fine-tuned against the shipped regressor")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    G = load_generator("toyfaces")
    G.requires_grad_(False)
    res: dict = {"hardware": hardware(), "generator": G.info.to_dict()}

    t0 = time.perf_counter()
    res["psnr"] = heldout_psnr(G, n=args.n)
    res["psnr_n"] = args.n
    print(f"\nPSNR of G(z) vs render(factors(z)), {args.n} held-out z (dB)   [{time.perf_counter() - t0:.1f} s]")
    print(f"{'region':<10}{'mean':>8}{'p5':>8}{'min':>8}{'target':>8}  ok")
    for k, v in res["psnr"].items():
        ok = v["mean"] >= TARGETS[k]
        print(f"{k:<10}{v['mean']:>8.2f}{v['p5']:>8.2f}{v['min']:>8.2f}{TARGETS[k]:>8.1f}  {'yes' if ok else 'NO'}")

    t0 = time.perf_counter()
    res["regressor_r2"] = regressor_r2(G, n=args.n_r2)
    print(f"\nfactor regressor R² ({args.n_r2} held-out faces; targets 0.95 renders, 0.90 generated)"
          f"   [{time.perf_counter() - t0:.1f} s]")
    print(f"{'factor':<14}{'renders':>9}{'generated':>11}")
    for k, v in res["regressor_r2"].items():
        print(f"{k:<14}{v['renders']:>9.4f}{v['generated']:>11.4f}")

    if args.check_regressor:
        from mgm_analysis.generators.toyfaces.regressor import load_regressor

        check = regressor_r2(G, n=args.n_r2, regressor=load_regressor(args.check_regressor))
        res["regressor_r2_independent"] = {k: v["generated"] for k, v in check.items()}
        print(f"\nindependent regressor ({args.check_regressor}), R² on generated images: min "
              f"{min(res['regressor_r2_independent'].values()):.4f}")
        for k, v in res["regressor_r2_independent"].items():
            print(f"{k:<14}{v:>11.4f}")

    res["sweep_share"] = sweep_energy_share()
    print("\nshare of sweep energy inside the region preset (target 0.95)")
    for k, v in res["sweep_share"].items():
        print(f"{k:<14}{v:>9.4f}")

    res["fwd_bwd_24_s"] = fwd_bwd_seconds(G)
    print(f"\nforward+backward, 24 latents W+, {args.threads} threads: {res['fwd_bwd_24_s'] * 1000:.0f} ms (target 300)")

    worst_gen = min(v["generated"] for v in res["regressor_r2"].values())
    worst_ren = min(v["renders"] for v in res["regressor_r2"].values())
    res["acceptance"] = {
        "psnr": all(res["psnr"][k]["mean"] >= t for k, t in TARGETS.items()),
        "regressor_renders": worst_ren >= 0.95,
        "regressor_generated": worst_gen >= 0.90,
        "sweep_share": min(res["sweep_share"].values()) >= 0.95,
        "fwd_bwd": res["fwd_bwd_24_s"] <= 0.3,
    }
    print("\nacceptance:", ", ".join(f"{k} {'ok' if v else 'NOT MET'}" for k, v in res["acceptance"].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
