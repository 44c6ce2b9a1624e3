"""``mgm analyze``: metrics, projections, comparisons, transfer/combination and an HTML report."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MGMError
from ._common import main


@main.command()
@click.argument("runs", default="runs", type=click.Path(file_okay=False))
@click.option("--out", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for metrics.csv/.parquet, projections, report.html.")
@click.option("--umap/--no-umap", default=False, show_default=True,
              help="Also fit a joint UMAP (first fit in a process compiles for ~20 s).")
@click.option("--k", default=3, show_default=True, type=click.IntRange(min=1), help="Subspace dimension for overlaps.")
@click.option("--transfer", "transfer_k", default=0, show_default=True, type=click.IntRange(min=0),
              help="Apply each run's deltas to K other references (seeds 1000..) and score them (needs torch).")
@click.option("--combine/--no-combine", default=False, show_default=True,
              help="Add the deltas of every pair of regions found on the same reference and score them.")
@click.option("--recompute", is_flag=True, help="Recompute the stored metrics of every run from its arrays first.")
@click.option("--quiet", is_flag=True)
def analyze(runs, out, umap, k, transfer_k, combine, recompute, quiet):
    """Measure and compare the runs of a store; write tables and a self-contained HTML report.

    \b
    Examples:
      mgm analyze runs/ --out report/
      mgm analyze runs/ --umap --transfer 3 --combine
    """
    from ..analysis.report import analyze as run_analysis

    root = Path(runs)
    if not root.is_dir():
        raise MGMError(f"{root}: no such run store; make runs with `mgm discover --out {root}` or `mgm demo`")
    if recompute:
        from ..analysis.metrics import recompute_metrics

        n = recompute_metrics(root)
        if not quiet:
            click.echo(f"recomputed metrics of {n} runs")
    if transfer_k or combine:
        _derived(root, transfer_k, combine, quiet)
    run_analysis(root, out, umap=umap, k=k, quiet=quiet)


def _derived(root: Path, transfer_k: int, combine: bool, quiet: bool) -> None:
    from itertools import combinations

    from .. import store
    from ..analysis.transfer import combine as combine_runs
    from ..analysis.transfer import transfer
    from ..generators import load_generator

    runs = [r for r in store.iter_runs(root) if (r.meta.get("provenance") or {}).get("kind", "discover") == "discover"
            and r.status == "complete"]
    done = {tuple(sorted((r.meta.get("provenance") or {}).get("sources", []))) + ((r.meta.get("provenance") or {}).get("kind"),)
            for r in store.iter_runs(root, warn=False)}
    cache = {}

    def gen(run):
        g = run.meta["generator"]
        spec = g["name"] if g.get("format") == "builtin" else g["path"]
        if spec not in cache:
            cache[spec] = load_generator(spec)
        return cache[spec]

    n = 0
    for run in runs:
        if transfer_k and (run.run_id, "transfer") not in done:
            n += len(transfer(run, gen(run), seeds=range(1000, 1000 + transfer_k)))
    if combine:
        by_ref = {}
        for r in runs:
            by_ref.setdefault((r.meta["generator"].get("sha256"), str(r.meta.get("reference"))), []).append(r)
        for group in by_ref.values():
            for a, b in combinations(sorted(group, key=lambda r: r.region), 2):
                if a.region != b.region and tuple(sorted([a.run_id, b.run_id])) + ("combine",) not in done:
                    combine_runs(a, b, gen(a))
                    n += 1
    if not quiet:
        click.echo(f"wrote {n} transfer/combination runs")
