"""``mgm compare-methods``: discovered manifolds beside the baselines on the same faces and regions.

For every region × seed it makes what the store lacks — a discovery run
(:func:`mgm_analysis.jobs.run_job`, the region's default settings), one baseline
run per method (:func:`.run.run_baseline`), and transfers of each of them to
other faces (seeds 1000, 1001, …) — then writes the method table
(:func:`.table.method_table`) and, with ``report``, the full analysis report.
Re-running it skips what exists, so an interrupted comparison continues.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import MGMError

__all__ = ["compare_methods", "refresh_semantic"]


def refresh_semantic(root, G=None, force: bool = False) -> int:
    """Re-read the semantic metrics of every toyfaces run in ``root`` that lacks ``semantic_locality_shipped``,
    the semantic extent or the realism (made before those existed; with ``force`` every one, e.g. after new
    reader weights) with :func:`mgm_analysis.jobs.semantic_metrics`; returns the count."""
    from .. import store
    from ..jobs import semantic_metrics

    n = 0
    for r in store.iter_runs(root, warn=False):
        m = r.meta.get("metrics") or {}
        have = all(k in m for k in ("semantic_locality_shipped", "semantic_extent", "realism"))
        if (r.meta.get("generator") or {}).get("name") != "toyfaces" or (have and not force):
            continue
        if G is None:
            from ..generators import load_generator

            G = load_generator("toyfaces")
        regions = (r.meta.get("provenance") or {}).get("regions") or [r.region]
        truncation = (r.meta.get("reference") or {}).get("truncation")
        new = semantic_metrics(G, r.frames, r.reference_img, regions, factor_change="factor_change" in m,
                               mask=r.mask, truncation=truncation if truncation is not None else 0.7,
                               cache_dir=Path(root) / ".mgm_cache")
        reader = new.pop("semantic_reader", None)  # a name: run.json keeps it beside metrics, as run_job does
        if new:
            store.update_run_meta(r.path, {"metrics": new, **({"semantic_reader": reader} if reader else {})})
            n += 1
    return n


def _have(root: Path) -> tuple[set, set, set]:
    """(discover (region, seed), baseline (method, region, seed), transferred source run ids) in a store."""
    from ..store import iter_runs

    disc, base, transferred = set(), set(), set()
    for r in iter_runs(root, warn=False):
        prov = r.meta.get("provenance") or {}
        kind = r.kind
        seed = (r.meta.get("reference") or {}).get("seed")
        if kind == "discover" and r.status == "complete":
            disc.add((r.region, seed))
        elif kind == "baseline" and r.status == "complete":
            base.add((prov.get("method"), r.region, seed))
        elif kind == "transfer":
            for s in prov.get("sources") or []:
                transferred.add(Path(s).name)
    return disc, base, transferred


def compare_methods(regions, seeds, out, *, report=None, methods=None, generator: str = "toyfaces",
                    transfer_k: int = 2, labels=None, quiet: bool = False, device: str = "cpu") -> dict:
    """Make the missing runs and write the method table; returns {"table": DataFrame, "failed": [lines], paths}.

    ``report``: also run :func:`mgm_analysis.analysis.report.analyze` into that folder (methods.csv, report.html).
    """
    from tqdm.auto import tqdm

    from .. import store
    from ..generators import load_generator
    from ..jobs import JobSpec, generator_spec, run_job
    from . import DEFAULT_METHODS
    from .run import parse_methods, run_baseline
    from .table import method_table

    methods = parse_methods(methods or list(DEFAULT_METHODS))
    out = Path(out)
    G = load_generator(generator, device=device)
    gen = generator_spec({"generator": G.info.to_dict()})
    disc, base, _ = _have(out) if out.is_dir() else (set(), set(), set())
    jobs = []  # face by face: a face's discovery, then its baselines, so what finishes is a complete set
    for s in seeds:
        for r in regions:
            if (r, s) not in disc:
                jobs.append(("discover", r, s))
            jobs += [(m, r, s) for m in methods if (m, r, s) not in base]
    failed = []
    t0 = time.perf_counter()
    with tqdm(total=len(jobs), desc="compare-methods", unit="run", disable=quiet, file=sys.stderr) as bar:
        for what, r, s in jobs:
            bar.set_postfix_str(f"{what} {r} s{s}")
            disc, base, _ = _have(out) if out.is_dir() else (set(), set(), set())
            if (what == "discover" and (r, s) in disc) or (what != "discover" and (what, r, s) in base):
                bar.update()  # another worker on the same store made it meanwhile
                continue
            c0 = time.process_time()
            try:
                if what == "discover":
                    path = run_job(JobSpec(kind="discover", generator=gen, region=r, seed=s), out, G=G, quiet=True)
                else:
                    path = run_baseline(G, what, r, seed=s, out=out, labels=labels, quiet=True)
                store.update_run_meta(path, {"timings": {"cpu_s": time.process_time() - c0}})
            except MGMError as exc:
                failed.append(f"{what} / {r} / seed {s}: {exc}")
            bar.update()
    if transfer_k:
        from ..analysis.transfer import transfer

        _, _, transferred = _have(out)
        todo = [r for r in store.iter_runs(out, warn=False)
                if r.kind in ("discover", "baseline")
                and r.status == "complete" and r.run_id not in transferred]
        for r in tqdm(todo, desc="transfer", unit="run", disable=quiet, file=sys.stderr):
            try:
                transfer(r, G, list(range(1000, 1000 + transfer_k)), out=out)
            except MGMError as exc:
                failed.append(f"transfer of {r.run_id}: {exc}")
    refresh_semantic(out, G)
    table = method_table(store.catalog(out, warn=False))
    paths = {}
    if report is not None:
        from ..analysis.report import analyze

        paths = analyze(out, report, quiet=True)
        if "methods" not in paths:  # an analysis without the method section: write the table here
            Path(report).mkdir(parents=True, exist_ok=True)
            table.to_csv(Path(report) / "methods.csv", index=False)
            paths["methods"] = Path(report) / "methods.csv"
    return {"table": table, "failed": failed, "paths": paths, "seconds": time.perf_counter() - t0}
