"""``mgm demo``: the whole pipeline on the built-in model, as a library call.

Discovers the regions' manifolds on the given faces (the toyfaces defaults), then runs the analysis report
with transfers and combinations.  Every run goes through :func:`mgm_analysis.jobs.run_job`, so a second demo in
the same store finds its runs already made (the one "already done" rule) and only redoes the report.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEMO_REGIONS", "run_demo"]

DEMO_REGIONS = ("mouth", "eyes", "brows")


def run_demo(out="runs/demo", report="report/demo", *, seeds=(0, 1), regions=DEMO_REGIONS, epochs: int | None = None,
             transfer: int = 2, combine: bool = True, quiet: bool = False, echo=print) -> list[Path]:
    """Discover every region on every seed's face, transfer and combine them, write the report; returns the
    discovered runs' folders.  ``epochs``: None = ``mgm discover``'s toyfaces default."""
    from .analysis.report import analyze
    from .generators import load_generator
    from .jobs import JobSpec, prepare_out, run_job

    prepare_out(out)
    G = load_generator("toyfaces")
    config = {"epochs": epochs} if epochs else {}  # no epochs: mgm discover's toyfaces default
    specs = [JobSpec(kind="discover", generator="toyfaces", region=r, seed=s, config=config)
             for s in seeds for r in regions]
    paths = []
    for k, spec in enumerate(specs, 1):
        if not quiet:
            echo(f"[{k}/{len(specs)}] {spec.region}, seed {spec.seed}")
        paths.append(run_job(spec, out, G=G, quiet=quiet))
    echo(f"\n{len(paths)} runs in {out}/")
    analyze(out, report, quiet=quiet, transfer=transfer, combine=combine)
    return paths
