"""``mgm analyze``: metrics tables, joint projections, region comparison, transfer/combination and an HTML report."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MGMError
from ._common import main


@main.command()
@click.argument("runs", default="runs", type=click.Path(file_okay=False))
@click.option("--out", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for metrics.csv/.parquet, projection and comparison tables, and report.html.")
@click.option("--umap/--no-umap", default=False, show_default=True,
              help="Also fit a joint UMAP; PCA is always fitted. UMAP's first fit in a process compiles for ~20 s.")
@click.option("--k", default=3, show_default=True, type=click.IntRange(min=1),
              help="Dimension of each run's principal subspace in the overlap matrix.")
@click.option("--transfer", "transfer_k", default=0, show_default=True, type=click.IntRange(min=0),
              help="First apply each discovered run's deltas to K other references (seeds 1000, 1001, ...) and "
                   "score them (runs the generator: needs torch).")
@click.option("--combine/--no-combine", default=False, show_default=True,
              help="First add the deltas of every pair of regions found on the same reference and score them.")
@click.option("--generator", default=None,
              help="Generator for --transfer/--combine (built-in name or checkpoint) [default: each run's own].")
@click.option("--device", default="cpu", show_default=True, help="Torch device for --transfer/--combine.")
@click.option("--recompute", is_flag=True, help="Recompute the stored metrics of every run from its arrays first.")
@click.option("--overlap/--no-overlap", default=True, show_default=True,
              help="Measure the subspace overlaps: the summary by group over every pair of runs (never an N x N "
                   "matrix) and the run x run matrix of a sample.")
@click.option("--overlap-runs", default=500, show_default=True, type=click.IntRange(min=2, max=2000),
              help="The run x run overlap matrix (overlap.csv, its figure) holds at most this many runs: a seeded "
                   "sample above it, said in the report.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Run the per-run work (reading, checking, metrics, each run's directions and features) on a "
                   "local Dask cluster of N worker processes.")
@click.option("--scheduler", default=None,
              help="Run the per-run work on the Dask scheduler at tcp://HOST:PORT (or a scheduler file); every "
                   "worker must see the store at the same path.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def analyze(runs, out, umap, k, transfer_k, combine, generator, device, recompute, overlap, overlap_runs, workers,
            scheduler, quiet):
    """Measure and compare the runs of a store; write tables and a self-contained HTML report.

    Writes metrics.csv/.parquet (one row per run), regions.csv, projection_pca.csv/.parquet,
    layer_profiles.csv, overlap.csv, overlap_summary.csv, transfer.csv and combine.csv (when
    there are such runs) and report.html, and prints a summary. Unreadable run folders are
    skipped with one warning line each. The store is read through its catalog
    (<store>/.mgm_cache/catalog.parquet: only changed runs are read again); a step that would
    need more memory than the machine has is refused with one line (MGM_MEMORY_LIMIT, in
    bytes, overrides what is available).

    \b
    Examples:
      mgm analyze runs/ --out report/
      mgm analyze runs/demo --umap --transfer 3 --combine
      mgm analyze big/ --workers 2 --no-overlap
    """
    from ..analysis.report import analyze as run_analysis

    root = Path(runs)
    if not root.is_dir():
        raise MGMError(f"{root}: no such run store; make runs with `mgm discover --out {root}` or `mgm demo`")
    if (root / "run.json").exists():
        raise MGMError(f"{root} is a single run, not a store; pass its folder: mgm analyze {root.parent}")
    G = None
    if generator and (transfer_k or combine):
        from ..generators import load_generator

        G = load_generator(generator, device=device)
    run_analysis(root, out, umap=umap, k=k, transfer=transfer_k, combine=combine, generator=G,
                 device=device, recompute=recompute, quiet=quiet, overlap=overlap, overlap_runs=overlap_runs,
                 workers=workers, scheduler=scheduler)
