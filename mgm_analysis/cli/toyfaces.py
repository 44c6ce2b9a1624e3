"""``mgm toyfaces-train``, ``mgm toyfaces-regressor`` and ``mgm toyfaces-report``: rebuild the built-in model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import MGMError
from ._common import main

POSITIVE = click.IntRange(min=1)
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)


def _logger(log_file: Path | None, quiet: bool):
    fh = open(log_file, "a", buffering=1) if log_file else None  # noqa: SIM115  closed at exit

    def log(line: str):
        if fh:
            fh.write(line + "\n")
        if not quiet:
            click.echo(line)

    return log


def _channels(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        return {int(a): int(b) for a, b in (p.split(":") for p in text.split(","))}
    except ValueError:
        raise MGMError(f"--channels {text!r} is not a list like 4:128,8:128,16:128,32:64,64:32; "
                       "give resolution:channels pairs separated by commas") from None


@main.command("toyfaces-train")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("mgm_analysis/data/toyfaces_G.pt"),
              help="Checkpoint to write (rewritten at every evaluation, so a stopped run is usable).")
@click.option("--minutes", type=POSITIVE_FLOAT, default=90.0,
              help="Time budget; the learning-rate schedule fits into it.")
@click.option("--steps", type=POSITIVE, default=100_000,
              help="Step budget (whichever budget ends first stops training).")
@click.option("--batch", type=POSITIVE, default=16, help="Faces per optimiser step.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0,
              help="Seeds the initialisation and the stream of training z.")
@click.option("--channels", default=None, help="Channels per resolution, e.g. 4:128,8:128,16:128,32:64,64:32.")
@click.option("--eval-every", type=POSITIVE, default=500, help="Steps between held-out evaluations and checkpoints.")
@click.option("--threads", type=POSITIVE, default=2, help="torch CPU threads.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option("--lr", type=POSITIVE_FLOAT, default=None, help="Adam learning rate [default: the recipe's 2e-3].")
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Start from this checkpoint (same architecture): the recipe's second, fine-tuning stage.")
@click.option("--consistency-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Weight of the factor-regressor consistency term (uses mgm_analysis/data/toyfaces_regressor.pt).")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also append the log lines (JSON) to this file.")
@click.option("--quiet", is_flag=True, help="Print nothing (the log file still gets every line).")
def toyfaces_train(out, minutes, steps, batch, seed, channels, eval_every, threads, device, lr, init,
                   consistency_weight, log_file, quiet):
    """Train the built-in toyfaces generator by regression on (z, render(factors(z))).

    \b
    The shipped weights (docs/toyfaces.md): stage A from scratch, stage B fine-tunes A with the
    factor-regressor consistency term:
      mgm toyfaces-regressor --device cuda --steps 8000 --batch 128 --minutes 2
      mgm toyfaces-train --device cuda --batch 32 --minutes 5.3 --eval-every 1000 --out stageA.pt
      mgm toyfaces-train --device cuda --batch 64 --minutes 2.7 --lr 5e-4 --init stageA.pt \\
          --consistency-weight 8 --eval-every 500
    \b
    Examples:
      mgm toyfaces-train --minutes 90 --log artifacts/toyfaces_train.log
      mgm toyfaces-train --minutes 2 --out /tmp/g.pt          # smoke run
    """
    from dataclasses import asdict

    from ..generators.toyfaces.train import TrainConfig, train

    kw = dict(steps=steps, batch=batch, seed=seed, eval_every=eval_every, consistency_weight=consistency_weight)
    if lr is not None:
        kw["lr"] = lr
    ch = _channels(channels)
    if ch:
        kw["channels"] = ch
    try:
        cfg = TrainConfig(**kw)
    except ValueError as exc:
        raise MGMError(str(exc)) from None
    log = _logger(log_file, quiet)
    log(json.dumps({"config": asdict(cfg), "minutes": minutes}))
    res = train(cfg, out, log=log, max_minutes=minutes, threads=threads, device=device, init=init)
    log(json.dumps({"done": res}))


@main.command("toyfaces-regressor")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("mgm_analysis/data/toyfaces_regressor.pt"),
              help="Regressor weights to write.")
@click.option("--steps", type=POSITIVE, default=3000, help="Optimiser steps.")
@click.option("--minutes", type=POSITIVE_FLOAT, default=None, help="Optional time budget.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, help="Seed.")
@click.option("--threads", type=POSITIVE, default=2, help="torch CPU threads.")
@click.option("--batch", type=POSITIVE, default=64, show_default=True, help="Renders per step.")
@click.option("--blur", type=click.FloatRange(0, 16), default=1.0, show_default=True,
              help="Largest Gaussian blur sigma (px) of the training augmentation.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
def toyfaces_regressor(out, steps, minutes, seed, threads, batch, blur, device):
    """Train the factor regressor (a small CNN that reads the factors back from a face) on renders."""
    from ..generators.toyfaces import regressor

    argv = ["--out", str(out), "--steps", str(steps), "--seed", str(seed), "--threads", str(threads),
            "--batch", str(batch), "--blur", str(blur), "--device", device]
    if minutes:
        argv += ["--max-minutes", str(minutes)]
    regressor.main(argv)


@main.command("toyfaces-report")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Generator checkpoint (default: the shipped mgm_analysis/data/toyfaces_G.pt).")
@click.option("--n", type=click.IntRange(1, 100_000), default=512, help="Held-out z for the PSNR figures.")
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path), default=Path("mgm_analysis/data/toyfaces_recipe.json"),
              help="Recipe record to write (config, time, hardware, figures).")
@click.option("--samples", type=click.Path(dir_okay=False, path_type=Path), default=Path("mgm_analysis/data/toyfaces_samples.png"),
              help="PNG to write: renders (top) next to generator outputs (bottom) for the same z.")
@click.option("--from-bench", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Take the figures from a benchmarks/bench_toyfaces.py JSON instead of measuring again.")
@click.option("--threads", type=POSITIVE, default=2, help="torch CPU threads.")
def toyfaces_report(weights, n, recipe, samples, from_bench, threads):
    """Measure the toyfaces generator against its renders; write the recipe record and the sample picture."""
    import torch

    from ..generators import load_generator
    from ..generators.base import torch_threads
    from ..generators.toyfaces.evaluate import heldout_psnr, regressor_r2, sample_grid, write_recipe

    bench = _bench_json(from_bench) if from_bench else None  # before the slow part
    with torch_threads(threads):
        G = load_generator(str(weights) if weights else "toyfaces")
        path = weights or Path(G.info.path)
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # an NVIDIA pickle or a bare state dict loads as a generator but carries no recipe
            saved = None
        extra = saved.get("mgm_extra", {}) if isinstance(saved, dict) else {}
        if bench is not None:
            figures = {k: bench[k] for k in ("psnr_n", "psnr", "regressor_r2", "sweep_share", "fwd_bwd_24_s",
                                             "acceptance", "hardware", "regressor_r2_independent") if k in bench}
        else:
            figures = {"psnr_n": n, "psnr": heldout_psnr(G, n=n), "regressor_r2": regressor_r2(G)}
        write_recipe(recipe, extra, figures)
        sample_grid(G, samples)
        click.echo(json.dumps(figures["psnr"]))
        click.echo(f"wrote {recipe} and {samples}")


def _bench_json(path: Path) -> dict:
    """The figures of a benchmarks/bench_toyfaces.py JSON file; MGMError (one line) when it is not one."""
    try:
        if path.stat().st_size > 64 * 2**20:
            raise MGMError(f"--from-bench {path} is larger than 64 MiB; give the JSON that "
                           "benchmarks/bench_toyfaces.py writes")
        bench = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MGMError(f"--from-bench {path} is not a JSON file ({why}); give the JSON that "
                       "benchmarks/bench_toyfaces.py writes") from None
    if not isinstance(bench, dict) or not isinstance(bench.get("psnr"), dict):
        raise MGMError(f"--from-bench {path} is not a toyfaces benchmark (no 'psnr' figures); give the JSON that "
                       "benchmarks/bench_toyfaces.py writes")
    return bench
