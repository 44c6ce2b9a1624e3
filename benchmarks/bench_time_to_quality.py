"""Time to a good manifold: wall and CPU time until a toyfaces search is good, old defaults against new.

For every region (mouth, eyes, brows) and seed (5, 6, 7) each variant runs
``discovery.discover`` in this process, interleaved (old, new, old, new, ...)
so both see the same machine load.  A ``watch`` hook keeps the chain after
every epoch (a copy; nothing else is done during the search), and afterwards
each checkpoint is rendered and measured.  A checkpoint is *good* when it passes every bar of
``mgm_analysis.metrics.quality_failures`` (the rule behind every "good" the toolkit prints):

* locality >= 0.95,
* |mean D_in − c| <= 5 % of c (``inside_gap`` of the run's metrics, l2),
* jump ratio <= 2.5,
* spread >= 1 and inside path >= 3: the chain explores its region (a chain that stands still is never good).

Time to quality is the search's wall time (and process CPU time, all threads)
at the first good epoch, counting from the start of ``discover`` (so a start
that costs work, such as the masked-Jacobian one, is included); "—" when no
epoch is good.  The final metrics of both variants (locality, semantic
locality, jump ratio, inside gap) are paired by region and seed.  The load
average is recorded with every run: the machine may be shared.

    python benchmarks/bench_time_to_quality.py                      # old vs new, 3 regions x 3 seeds
    python benchmarks/bench_time_to_quality.py --seeds 5 --regions mouth
    python benchmarks/bench_time_to_quality.py --variant new=stop_tol=0.1,epochs=10 --variant old=

A variant is ``name=field=value,field=value`` (DiscoveryConfig fields over the toyfaces defaults); the
defaults are ``old`` (the toyfaces defaults of 2026-11-30, spelled out: the paper's latent springs and every frame
started at the most local edit — chains that stand still) and ``new`` (today's toyfaces defaults: a loop of edits
spaced by image springs, 10 epochs).
With ``--cli`` each run is the bare command in its own process (``mgm discover --region R --seed S`` plus the
variant's flags) and the figures are its wall and CPU time.  ``--init-seeds 0,1,2`` repeats every run with
those seeds of the start's perturbation (``--init-seed``; 0 is the bare command's), paired by region, seed and
init seed: the noise start's result depends on its draw.  Writes ``bench_results/time_to_quality-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: "old": the toyfaces defaults of 2026-11-30 (latent springs, every frame started at one point): the fields of
#: config.TOYFACES_L2_POINT that differ from today's; "new": today's defaults (no overrides)
def _old() -> dict:
    from mgm_analysis.config import TOYFACES_L2, TOYFACES_L2_POINT

    old = {k: v for k, v in TOYFACES_L2_POINT.items() if TOYFACES_L2.get(k) != v}
    # fields today's defaults set that the old ones left at the dataclass default
    from mgm_analysis.config import DiscoveryConfig

    base = DiscoveryConfig()
    old.update({k: getattr(base, k) for k in TOYFACES_L2 if k not in TOYFACES_L2_POINT})
    return old


def _parse_variant(text: str) -> tuple[str, dict]:
    from mgm_analysis.config import parse_config_value

    name, _, rest = text.partition("=")
    cfg = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        cfg[k.strip()] = parse_config_value(k.strip(), v)
    return name.strip(), cfg


def good(m: dict, offset: float) -> bool:
    from mgm_analysis.metrics import quality_failures

    return not quality_failures(m, offset)


def one_run(G, region: str, seed: int, overrides: dict) -> dict:
    import torch

    from mgm_analysis.config import default_config
    from mgm_analysis.discovery import discover
    from mgm_analysis.generators.latents import reference_latent
    from mgm_analysis.masks import parse_region
    from mgm_analysis.metrics import metric_options, run_metrics
    from mgm_analysis.render import render_frames, to_unit
    from mgm_analysis.semantic import semantic_metrics

    reg = parse_region(region, G.resolution, "toyfaces")
    cfg = default_config("toyfaces", region=reg.name, **overrides)
    w_ref, _ = reference_latent(G, seed, None, cfg.truncation)
    with torch.no_grad():
        ref_img = to_unit(G.synthesis(torch.from_numpy(w_ref)[None]))[0]
    marks = []  # (epoch, wall, cpu, ws)
    load = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.perf_counter()

    def watch(epoch, ws):
        marks.append((epoch, time.perf_counter() - t0, time.process_time() - c0, ws))

    traj = discover(G, torch.from_numpy(w_ref), reg, cfg, watch=watch)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    opts = metric_options(cfg.to_dict(), traj.ws.numpy())
    first, curve = None, []
    for epoch, tw, tc, ws in marks:
        frames = render_frames(G, ws)
        m = run_metrics(ws.numpy(), w_ref, frames, ref_img, reg.mask, **opts)
        curve.append({"epoch": epoch, "wall_s": tw, "cpu_s": tc, "locality": m["locality"],
                      "gap_share": m["inside_gap"] / cfg.offset, "jump_ratio": m["jump_ratio"]})
        if first is None and good(m, cfg.offset):
            first = {"epoch": epoch, "wall_s": tw, "cpu_s": tc}
    frames = render_frames(G, traj.ws)
    m = run_metrics(traj.ws.numpy(), w_ref, frames, ref_img, reg.mask, **opts)
    m.update(semantic_metrics(G, frames, ref_img, [reg.name]))
    return {"region": region, "seed": seed, "config": overrides, "epochs": traj.epochs_done,
            "stop_reason": traj.stop_reason, "wall_s": wall, "cpu_s": cpu, "load1": load,
            "first_good": first, "final_good": good(m, cfg.offset),
            "final": {k: m.get(k) for k in ("locality", "semantic_locality", "jump_ratio", "inside_gap",
                                            "inside_rms", "outside_change")},
            "offset": cfg.offset, "curve": curve, "history": traj.history}


def _flags(overrides: dict) -> list[str]:
    """DiscoveryConfig fields as ``mgm discover`` flags."""
    from mgm_analysis.config import FLAG_OF

    negative = {"closed_loop": "--open"}  # the off-switch of a boolean flag, where it is not --no-<flag>
    out = []
    for k, v in overrides.items():
        flag = FLAG_OF.get(k, "--" + k.replace("_", "-"))
        if isinstance(v, bool):
            out.append(flag if v else negative.get(k, "--no-" + flag[2:]))
        else:
            out += [flag, str(v)]
    return out


def cli_run(region: str, seed: int, overrides: dict, store: Path, nice: int | None) -> dict:
    """One bare ``mgm discover --region R --seed S`` (plus the variant's flags) in its own process: wall time,
    CPU time of the process (all threads), load average before it, and the run's metrics from run.json."""
    import resource
    import subprocess

    cmd = [sys.executable, "-m", "mgm_analysis.cli", "discover", "--region", region, "--seed", str(seed),
           "--out", str(store), "--quiet", *_flags(overrides)]
    if nice is not None:
        cmd = ["nice", "-n", str(nice), *cmd]
    before = set(store.iterdir()) if store.exists() else set()
    load = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    (run_dir,) = set(store.iterdir()) - before
    meta = json.loads((run_dir / "run.json").read_text())
    m = meta["metrics"]
    return {"region": region, "seed": seed, "config": overrides, "epochs": len(meta["history"]["epoch"]),
            "stop_reason": meta["stop_reason"], "wall_s": wall,
            "cpu_s": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), "load1": load,
            "search_s": meta["timings"]["optimise_s"], "first_good": None,
            "final_good": good(m, meta["config"]["offset"]), "offset": meta["config"]["offset"],
            "final": {k: m.get(k) for k in ("locality", "semantic_locality", "jump_ratio", "inside_gap",
                                            "inside_rms", "outside_change")}}


def _median(xs):
    import numpy as np

    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else float("nan")


def table(rows: list[dict], names: list[str]) -> str:
    lines = ["| region | seed (init) | variant | epochs (stop) | wall s | cpu s | load | good at epoch | "
             "to quality wall s | cpu s | locality | sem. locality | jump ratio | gap / c |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, g = r["final"], r["first_good"]
        lines.append(
            f"| {r['region']} | {r['seed']} ({r['init_seed']}) | {r['variant']} | {r['epochs']} ({r['stop_reason']}) | "
            f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['load1']:.1f} | {g['epoch'] if g else '—'} | "
            f"{g['wall_s']:.1f} | {g['cpu_s']:.1f} | " if g else
            f"| {r['region']} | {r['seed']} ({r['init_seed']}) | {r['variant']} | {r['epochs']} ({r['stop_reason']}) | "
            f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['load1']:.1f} | — | — | — | ")
        lines[-1] += (f"{f['locality']:.3f} | {f.get('semantic_locality') or float('nan'):.3f} | "
                      f"{f['jump_ratio']:.2f} | {f['inside_gap'] / r['offset']:.3f} |")
    lines.append("")
    lines.append("| variant | median wall s | median cpu s | median to-quality wall s | runs good at the end |")
    lines.append("|---|---|---|---|---|")
    for n in names:
        rs = [r for r in rows if r["variant"] == n]
        lines.append(f"| {n} | {_median([r['wall_s'] for r in rs]):.1f} | {_median([r['cpu_s'] for r in rs]):.1f} | "
                     f"{_median([r['first_good']['wall_s'] if r['first_good'] else None for r in rs]):.1f} | "
                     f"{sum(r['final_good'] for r in rs)}/{len(rs)} |")
    if len(names) == 2:
        a, b = names
        lines.append("")
        lines.append(f"paired ({b} − {a}) by region, seed and init seed: locality, semantic locality, jump ratio")
        keys = ("locality", "semantic_locality", "jump_ratio")
        diffs = []
        for r in rows:
            if r["variant"] != b:
                continue
            o = next(x for x in rows if x["variant"] == a and x["region"] == r["region"] and x["seed"] == r["seed"]
                     and x["init_seed"] == r["init_seed"])
            d = {k: (r["final"].get(k) or float("nan")) - (o["final"].get(k) or float("nan")) for k in keys}
            diffs.append(d)
            lines.append(f"  {r['region']:6s} s{r['seed']} i{r['init_seed']}: {d['locality']:+.3f} "
                         f"{d['semantic_locality']:+.3f} {d['jump_ratio']:+.2f}")
        lines.append("  median: " + " ".join(f"{_median([d[k] for d in diffs]):+.3f}" for k in keys)
                     + "; better or equal in: " + ", ".join(
                         f"{sum((d[k] <= 0) if k == 'jump_ratio' else (d[k] >= 0) for d in diffs)}/{len(diffs)}"
                         for k in keys))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--regions", default="mouth,eyes,brows")
    ap.add_argument("--seeds", default="5,6,7")
    ap.add_argument("--init-seeds", default="0",
                    help="seeds of the start's perturbation (--init-seed), each run repeated with each (default 0)")
    ap.add_argument("--variant", action="append", default=None,
                    help="name=field=value,... (repeatable); default: old and new")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--cli", action="store_true",
                    help="time the bare command (mgm discover --region R --seed S, one process per run) instead")
    ap.add_argument("--curve", action="store_true", help="print every epoch's metrics and rule terms")
    ap.add_argument("--nice", type=int, default=None, help="with --cli: run each command under nice -n N")
    args = ap.parse_args(argv)
    import torch

    from mgm_analysis.generators import load_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    variants = dict(_parse_variant(v) for v in (args.variant or ["old=", "new="]))
    if "old" in variants and not variants["old"]:
        variants["old"] = _old()
    init_seeds = [int(s) for s in args.init_seeds.split(",")]
    G = None if args.cli else load_generator("toyfaces").requires_grad_(False)
    rows = []
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="mgm-ttq-"))
    for region in args.regions.split(","):
        for seed, init in ((int(s), i) for s in args.seeds.split(",") for i in init_seeds):
            for name, base in variants.items():
                overrides = {**base, "seed": init} if init else dict(base)
                if args.cli:
                    r = cli_run(region, seed, overrides, tmp / name, args.nice)
                else:
                    r = one_run(G, region, seed, overrides)
                r["variant"], r["init_seed"] = name, init
                rows.append(r)
                g = r["first_good"]
                print(f"{region:6s} s{seed} i{init} {name:8s} {r['epochs']:3d} ep ({r['stop_reason']}) {r['wall_s']:6.1f} s "
                      f"cpu {r['cpu_s']:6.1f} load {r['load1']:.1f}  good@{g['epoch'] if g else '-'} "
                      f"{'%.1f s' % g['wall_s'] if g else ''}  loc {r['final']['locality']:.3f} "
                      f"sem {r['final'].get('semantic_locality') or float('nan'):.3f} "
                      f"jump {r['final']['jump_ratio']:.2f} gap/c {r['final']['inside_gap'] / r['offset']:.3f}",
                      flush=True)
                if args.curve and not args.cli:
                    print("   " + " ".join(f"{c['epoch']}:{c['locality']:.3f}/{c['gap_share']:.2f}/"
                                          f"{c['jump_ratio']:.1f}" for c in r["curve"]), flush=True)
                    h = r["history"]
                    print("   rule terms (gap/c, d_out, springs): " + " ".join(
                        f"{g / r['offset']:.2f}/{o:.2e}/{a + b:.2e}" for g, o, a, b in
                        zip(h["d_in_gap"], h["d_out"], h["spring"], h["stiffener"], strict=True)), flush=True)
    print()
    print(table(rows, list(variants)))
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = out / f"time_to_quality{'-cli' if args.cli else ''}-{stamp}.json"
    path.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "cli": args.cli,
                                "threads": torch.get_num_threads(), "good": __import__("mgm_analysis.metrics", fromlist=["QUALITY_BARS"]).QUALITY_BARS, "variants": variants,
                                "rows": rows}, indent=1, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
