"""``mgm sweep``: a grid of jobs, in this process or on a Dask cluster (the library side: the mgm_analysis.sweep package)."""

from __future__ import annotations

import shlex
import sys

import click

from ..config import parse_seeds
from ._common import main
from .discover import (
    DEMO_REGIONS,
    _check_truncation,
    _overrides,
    _split_regions,
    common_options,
    engine_options,
)


@main.command()
@click.option("--regions", default=",".join(DEMO_REGIONS), show_default=True,
              help="Comma-separated region specs (commas inside rect:..., ellipse:... are kept).")
@click.option("--seeds", default="0-1", show_default=True, help="Reference seeds: ranges and lists, e.g. 0-9,12.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=V1,V2",
              help="Sweep a config field over values (repeatable; the grid is the cartesian product), e.g. "
                   "--set offset=0.02,0.04 --set epochs=10,30. Fields: those of the engine flags, by their "
                   "config names (n_frames, layer_start, prim_dist, ...).")
@click.option("--kinds", default="discover", show_default=True,
              help="Job kinds: discover, baseline (with --param method=...), transfer (with --transfer-seeds), "
                   "combine (every pair of regions found on the same face).")
@click.option("--param", "params", multiple=True, metavar="NAME=V1,V2",
              help="Baseline parameters, swept like --set, e.g. --param method=pca --param component=0,1.")
@click.option("--transfer-seeds", default=None, help="Faces the discovered runs are transferred to, e.g. 1000-1001.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Jobs in parallel: 1 runs them in this process; N > 1 starts a Dask LocalCluster on 127.0.0.1 "
                   "with N worker processes sharing the cores.")
@click.option("--scheduler", default=None,
              help="Run on an existing Dask cluster: tcp://HOST:PORT or a scheduler file (--workers is then "
                   "the cluster's).")
@click.option("--gpus-per-job", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Dask resource GPU each job needs (workers started with --resources GPU=1); implies --device "
                   "cuda.")
@common_options
@engine_options
def sweep(regions, seeds, sets, kinds, params, transfer_seeds, workers, scheduler, gpus_per_job, generator, out,
          truncation, truncation_cutoff, layout, device, quiet, **kw):
    """Run a grid of jobs (regions × seeds × --set values × kinds), one run each, into --out.

    Every job's run folder is named by the job's key: a rerun skips the complete jobs, resumes the
    interrupted ones and runs the failed ones again.  The sweep is recorded in <out>/.sweeps/.

    \b
    Examples:
      mgm sweep --regions mouth,eyes,brows --seeds 0-9
      mgm sweep --regions mouth --seeds 0-2 --set offset=0.02,0.04 --workers 2
      mgm sweep --kinds discover,transfer,combine --transfer-seeds 1000-1001
      mgm sweep --scheduler tcp://10.0.0.5:8786 --generator ffhq.pt --gpus-per-job 1
    """
    from .. import sweep as sw

    _check_truncation(truncation)
    config = _overrides(kw)
    preset = config.pop("preset", None)
    config.update({"truncation": truncation, "truncation_cutoff": truncation_cutoff})
    grid = sw.Grid(regions=tuple(_split_regions(regions)), seeds=tuple(parse_seeds(seeds)),
                   kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), generator=generator,
                   layout=layout, preset=preset, config={k: v for k, v in config.items() if v is not None},
                   sets=sw.parse_sets(sets), params=sw.parse_params(params),
                   transfer_seeds=tuple(parse_seeds(transfer_seeds)) if transfer_seeds else ())
    phases = sw.build_jobs(grid, out)
    if scheduler:  # an unreachable scheduler is one line at once, before the generator is loaded
        sw.probe_scheduler(scheduler)
    todo = sw.pending(phases, out)
    if any(todo):  # what will run is checked whole (config, regions, layers) before any job; a rerun with
        sw.check_jobs([s for p in todo for s in p], sw.search_generator(todo))  # nothing to do loads nothing
    command = shlex.join(["mgm", *sys.argv[1:]]) if sys.argv[1:2] == ["sweep"] else None
    n = sum(len(p) for p in phases)
    if not quiet:
        click.echo(f"sweep: {n} jobs into {out}", err=True)
    result = sw.run_sweep(phases, out, grid=grid.to_dict(), workers=workers, scheduler=scheduler,
                          gpus_per_job=gpus_per_job, device=device, quiet=quiet, command=command,
                          echo=lambda line: click.echo(line, err=True))
    jobs = result.record.data["jobs"]
    counts = {}
    for j in jobs:
        counts[j["status"]] = counts.get(j["status"], 0) + 1
    if not quiet:
        click.echo(sw.summary_table(result.record))
    click.echo(f"{n} jobs: {result.executed} run now, {result.skipped} already complete; "
               + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f"  (record: {result.record.path})")
    for j in jobs:
        if j["status"] == "failed":
            click.echo(f"  failed {j['label']} seed {j['seed']}: {j['error']}", err=True)
    if result.interrupted:
        click.echo(f"interrupted: running jobs were saved as interrupted; resume with: "
                   f"{command or 'the same mgm sweep command'}", err=True)
        sys.exit(130)
    if not result.ok:
        sys.exit(1)
