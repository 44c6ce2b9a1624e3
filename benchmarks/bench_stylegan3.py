"""StyleGAN3-T against StyleGAN2 at 256²: forward+backward time of a batch, and what each W+ layer changes.

Both generators have random weights (the timing does not depend on them) and
the sizes of NVIDIA's 256² FFHQ-U models (``--cbase=16384``, channel_max 512,
w_dim 512): StyleGAN3-T with 14 layers + ToRGB (16 W+ layers, 2 mapping
layers), StyleGAN2 with channels 512..64 (14 W+ layers, 8 mapping layers).

* speed: ``G.synthesis(ws)`` forward + backward to ``ws`` for a batch of W+
  latents (what one discovery chunk costs), one warm-up, then the median of
  ``--repeats`` tries; peak memory as ru_maxrss.
* layers (StyleGAN3 only, at ``--layer-resolution``, default 32²): each W+ layer's latent is moved by a random
  direction (norm ``--step`` × ‖w − w_avg‖), everything else fixed; reported per
  layer: the layer's designed cut-off frequency, the RMS image change, and the
  share of the change's energy below 1/8 of the Nyquist frequency (coarse
  structure: position, shape) versus above (texture, detail).

    python benchmarks/bench_stylegan3.py                    # both, 2 threads, batch 2
    python benchmarks/bench_stylegan3.py --batch 4 --threads 2 --repeats 3
    python benchmarks/bench_stylegan3.py --no-speed                     # the layer table only (32²)

Writes ``bench_results/stylegan3-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _models(resolution: int):
    import torch

    from mgm_analysis.generators.stylegan2 import StyleGAN2, rosinality_channels
    from mgm_analysis.generators.stylegan3 import StyleGAN3

    torch.manual_seed(0)
    sg3 = StyleGAN3(resolution, z_dim=512, w_dim=512, channel_base=16384, channel_max=512).eval()
    with torch.no_grad():  # NVIDIA initialises the input's affine to zero (ws[0] unused); a trained model's is not
        sg3.input.affine.weight.normal_()
    sg2 = StyleGAN2(resolution, w_dim=512, n_mlp=8, channels=rosinality_channels(resolution, 1)).eval()
    for G in (sg3, sg2):
        G.requires_grad_(False)
        with torch.no_grad():
            G.w_avg.copy_(G.mean_latent(1024, seed=0))
    return {"stylegan3-t": sg3, "stylegan2": sg2}


def _time_fwd_bwd(G, batch: int, repeats: int) -> list[float]:
    import torch

    g = torch.Generator().manual_seed(1)
    ws = G.broadcast(G.mapping(torch.randn(batch, G.z_dim, generator=g))).detach().clone()
    times = []
    for i in range(repeats + 1):
        w = ws.clone().requires_grad_(True)
        t0 = time.perf_counter()
        G.synthesis(w).square().mean().backward()
        if i:  # the first try warms up
            times.append(time.perf_counter() - t0)
    return times


def _layer_effects(G, step: float, n: int = 2) -> list[dict]:
    import torch

    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        ws = G.broadcast(G.mapping(torch.randn(n, G.z_dim, generator=g))).clone()
        base = G.synthesis(ws)
        scale = float((ws[:, 0] - G.w_avg).norm(dim=1).mean())
        res = G.resolution
        fy = torch.fft.fftfreq(res)[:, None].abs()
        fx = torch.fft.rfftfreq(res)[None, :]
        low = (torch.maximum(fx, fy) < 0.5 / 8)  # below 1/8 of Nyquist (0.5 cycles per pixel)
        out = []
        names = ["input"] + G.layer_names
        cutoffs = [G.input.bandwidth] + [s.out_cutoff for s in G.specs]
        for i in range(G.num_ws):
            d = torch.randn(n, G.w_dim, generator=g)
            w2 = ws.clone()
            w2[:, i] += step * scale * d / d.norm(dim=1, keepdim=True)
            diff = G.synthesis(w2) - base
            energy = torch.fft.rfft2(diff).abs().square().sum((0, 1))
            out.append({"layer": i, "name": names[i], "cutoff": float(cutoffs[i]),
                        "rms_change": float(diff.square().mean().sqrt()),
                        "low_freq_share": float(energy[low].sum() / energy.sum())})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--step", type=float, default=0.5)
    ap.add_argument("--layer-resolution", type=int, default=32,
                    help="resolution of the per-layer table's model (256² took > 50 min on 2 shared cores)")
    ap.add_argument("--no-layers", action="store_true", help="skip the per-layer table")
    ap.add_argument("--no-speed", action="store_true", help="skip the timing")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    models = _models(args.resolution)
    rows = []
    print(f"forward+backward of G.synthesis, batch {args.batch}, {args.resolution}², {args.threads} threads")
    print(f"{'model':<12} {'num_ws':>6} {'params':>10} {'median s':>9} {'tries':>22}")
    for name, G in models.items():
        if args.no_speed:
            break
        times = _time_fwd_bwd(G, args.batch, args.repeats)
        med = statistics.median(times)
        rows.append({"model": name, "num_ws": G.num_ws, "params": sum(p.numel() for p in G.parameters()),
                     "median_s": med, "tries_s": times})
        print(f"{name:<12} {G.num_ws:>6} {rows[-1]['params']:>10,} {med:>9.2f} "
              f"{' '.join(f'{t:.2f}' for t in times):>22}", flush=True)
    ratio = rows[0]["median_s"] / rows[1]["median_s"] if rows else None
    if rows:
        print(f"stylegan3-t / stylegan2: {ratio:.2f}x")
    layers = []
    if not args.no_layers:
        G3 = models["stylegan3-t"] if args.layer_resolution == args.resolution else \
            _models(args.layer_resolution)["stylegan3-t"]
        layers = _layer_effects(G3, args.step)
        print(f"\nStyleGAN3-T at {args.layer_resolution}²: moving one W+ layer by {args.step}·‖w − w_avg‖")
        print(f"{'ws':>3} {'layer':<12} {'cutoff':>7} {'rms change':>11} {'low-freq share':>15}")
        for r in layers:
            print(f"{r['layer']:>3} {r['name']:<12} {r['cutoff']:>7.1f} {r['rms_change']:>11.4f} "
                  f"{r['low_freq_share']:>15.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MiB")
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = out / f"stylegan3-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "speed": rows, "ratio": ratio, "layers": layers,
                                "peak_rss_mib": peak, "torch": torch.__version__, "machine": platform.platform()},
                               indent=1))
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
