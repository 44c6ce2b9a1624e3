"""``mgm compare-methods``: discovered manifolds beside the baselines on the same faces and regions.

For every region × seed × strength K it makes what the store lacks — a
discovery run (:func:`mgm_analysis.jobs.run_job`, the region's default settings
with the target offset K·c), one baseline run per method at K·c
(:func:`.run.run_baseline`; the loop baseline after the discovery, whose inside
path its arc matches), and transfers of each of them to other faces (seeds
1000, 1001, …) — then writes the method table (:func:`.table.method_table`,
one row per method × region × strength) and, with ``report``, the full
analysis report.  Re-running it skips what exists, so an interrupted
comparison continues.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from . import store
from .errors import MGMError
from .measure import refresh_semantic

__all__ = ["compare_methods", "run_baseline", "baseline_spec"]


def compare_methods(regions, seeds, out, *, methods=None, generator: str = "toyfaces",
                    transfer_k: int = 2, labels=None, quiet: bool = False, device: str = "cpu", strengths=(1.0,),
                    config: dict | None = None) -> dict:
    """Make the runs the method table needs that the store lacks; returns {"failed": [lines], "seconds"}.

    The table itself is :func:`mgm_analysis.analysis.table.method_table` of the store's catalog (``mgm
    compare-methods`` prints it; ``--report`` writes the analysis report, :func:`mgm_analysis.analysis.report.analyze`).

    ``strengths``: multiples K of each region's target offset c (``config.default_config``; ``config``'s
    ``offset`` when given): every run of a region is made at K·c for every K, with K recorded
    (``params.strength``).  ``config``: DiscoveryConfig overrides for every run (frames, layers, distance, epochs
    of the discovery, ...).  Bad strengths, a strength whose K·c the config refuses, or an unknown method:
    MGMError before anything is written.
    """
    from tqdm.auto import tqdm

    from . import store
    from .config import default_config
    from .finders.methods import parse_methods, parse_strengths
    from .finders.registry import default_methods
    from .generators import load_generator
    from .generators.latents import generator_spec
    from .jobs import JobSpec, done, run_job
    from .kinds import SEARCH_KINDS
    from .masks import default_layout, parse_region

    methods = parse_methods(methods or list(default_methods()))
    strengths = parse_strengths(strengths)
    config = {k: v for k, v in (config or {}).items() if v is not None}
    out = Path(out)
    G = load_generator(generator, device=device)
    gen = generator_spec({"generator": G.info.to_dict()})
    # Each region's c and every K·c, checked before anything is written (an offset the config refuses: one line).
    rest = {k: v for k, v in config.items() if k not in ("distance", "offset")}
    offsets = {}
    for r in regions:
        reg = parse_region(r, G.resolution, default_layout(G))
        c = default_config(G.info.name, config.get("distance"), region=reg.name if reg.layout else None,
                           **{**rest, "offset": config.get("offset")}).offset
        for k in strengths:
            try:
                default_config(G.info.name, config.get("distance"), region=reg.name if reg.layout else None,
                               **{**rest, "offset": k * c})
            except MGMError as exc:
                raise MGMError(f"--strengths {k:g} on region {r} (c = {c:g}): {exc}; nothing was made") from None
            offsets[(r, k)] = (reg.name, k * c)
    planned = []  # face by face: a face's discovery, then its baselines, so what finishes is a complete set
    for s in seeds:
        for r in regions:
            for k in strengths:
                _, off = offsets[(r, k)]
                planned.append(("discover", r, s, k, JobSpec(kind="discover", generator=gen, region=r, seed=s,
                                                             config={**config, "offset": off},
                                                             params={"strength": k})))
                planned += [(m, r, s, k, baseline_spec(G, m, r, seed=s, out=out, labels=labels, config=config,
                                                       strength=k)) for m in methods]
    todo = [job for job in planned if done(job[-1], out) is None]  # the one "already done" rule
    failed = []
    t0 = time.perf_counter()
    with tqdm(total=len(todo), desc="compare-methods", unit="run", disable=quiet, file=sys.stderr) as bar:
        for what, r, s, k, spec in todo:
            bar.set_postfix_str(f"{what} {r} s{s} x{k:g}")
            if done(spec, out) is not None:
                bar.update()  # another worker on the same store made it meanwhile
                continue
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                path = run_job(spec, out, G=G, quiet=True)
                timings = {"cpu_s": time.process_time() - c0}
                if what != "discover":
                    timings["baseline_s"] = time.perf_counter() - w0
                store.update_run_meta(path, {"timings": timings})
            except MGMError as exc:
                failed.append(f"{what} / {r} / seed {s} / strength {k:g}: {exc}")
            bar.update()
    if transfer_k:
        from .derive import transfer

        made = [r for r in store.iter_runs(out, warn=False)
                if r.kind in SEARCH_KINDS and r.status == "complete"]
        for r in tqdm(made, desc="transfer", unit="run", disable=quiet, file=sys.stderr):
            try:
                transfer(r, G, list(range(1000, 1000 + transfer_k)), out=out)  # a transfer made before: kept
            except MGMError as exc:
                failed.append(f"transfer of {r.run_id}: {exc}")
    if out.is_dir():
        refresh_semantic(out, G)
    return {"failed": failed, "seconds": time.perf_counter() - t0}


def baseline_spec(G, method: str, region: str, *, seed: int | None = 0, reference=None, out="runs",
                  layout: str | None = None, cache_dir=None, labels=None, attributes=None, config: dict | None = None,
                  strength: float = 1.0):
    """The ``baseline`` job of one method on one face and region at strength K (see :func:`run_baseline`), its
    input checked; nothing is written.  Its key names the run: :func:`mgm_analysis.jobs.done` finds it."""
    from .config import default_config
    from .finders.methods import parse_strengths
    from .finders.registry import get_method
    from .generators.latents import generator_spec
    from .jobs import JobSpec
    from .masks import default_layout, parse_region

    get_method(method)  # an unknown method (or a plugin left out): one line, nothing written
    strength = parse_strengths(strength, "--strength", 1)[0]
    name = getattr(getattr(G, "info", None), "name", None)
    gen = generator_spec({"generator": G.info.to_dict()}) if getattr(G, "info", None) is not None else None
    if not gen:
        raise MGMError("the generator has no name or checkpoint path to record in the run")
    config = {k: v for k, v in (config or {}).items() if v is not None}
    reg = parse_region(region, G.resolution, layout or default_layout(G))
    region_name = reg.name if reg.layout else None
    rest = {k: v for k, v in config.items() if k != "distance"}
    c = default_config(name, config.get("distance"), region=region_name, **rest).offset
    config["offset"] = strength * c
    try:
        cfg = default_config(name, config.get("distance"), region=region_name, **{**rest, "offset": config["offset"]})
    except MGMError as exc:
        raise MGMError(f"--strength {strength:g} on region {region} (c = {c:g}): {exc}") from None
    cfg.check_generator(G.num_ws)
    if labels is not None:
        labels = str(Path(labels).expanduser().resolve())
    if cache_dir is None and out is not None:
        cache_dir = Path(out).expanduser() / ".mgm_cache" / "baselines"
    params = {"method": method, "strength": strength, "c": c, "labels": labels,
              "attributes": list(attributes) if attributes else None,
              "cache_dir": str(Path(cache_dir).resolve()) if cache_dir is not None else None}
    return JobSpec(kind="baseline", generator=gen, region=region, seed=None if reference is not None else seed,
                   reference=str(reference) if reference is not None else None, layout=layout, config=config,
                   params=params)


def run_baseline(G, method: str, region: str, *, seed: int | None = 0, reference=None, out="runs",
                 layout: str | None = None, cache_dir=None, labels=None, attributes=None, config: dict | None = None,
                 strength: float = 1.0, quiet: bool = True) -> Path:
    """Everything ``mgm baselines`` does for one method: check the input, then one ``baseline`` job through
    :func:`mgm_analysis.jobs.run_job`, which searches once and writes the run once (:mod:`mgm_analysis.kinds.baseline`).

    Args:
        region: a region spec (preset, rect:..., PNG mask, ...).
        seed / reference: the reference latent (a seed mapped with the config's truncation, or a .npy / run folder).
        cache_dir: where per-generator caches go (default ``<out>/.mgm_cache/baselines``).
        config: DiscoveryConfig overrides (offset c, n_frames, layer_start/layer_end, truncation, ...) — the
            same a discovery run of this region would take.
        strength: K > 0: the path's mean inside distance is K·c, c = the config's offset (the region's default
            unless ``config["offset"]``); recorded as ``params.strength`` (and the offset K·c in ``config``).
    Returns the run folder.  Bad input or an unreachable region: MGMError, nothing written.
    """
    import shutil

    from .jobs import done, prepare_out, run_job

    t0 = time.perf_counter()
    spec = baseline_spec(G, method, region, seed=seed, reference=reference, out=out, layout=layout,
                         cache_dir=cache_dir, labels=labels, attributes=attributes, config=config, strength=strength)
    made = done(spec, out)
    if made is not None:
        if not quiet:
            import click

            click.echo(f"{method}: already in the store: {made}  (the same job; move it away to make it again)")
        return made
    out_path = Path(out).expanduser()
    created = not out_path.exists()
    out_path = prepare_out(out_path)
    try:
        path = run_job(spec, out_path, G=G, quiet=True)
    except MGMError:
        if created:  # nothing left behind: the caches made for this store go with it
            shutil.rmtree(out_path / ".mgm_cache", ignore_errors=True)
            with contextlib.suppress(OSError):
                out_path.rmdir()
        raise
    meta = store.update_run_meta(path, {"timings": {"baseline_s": time.perf_counter() - t0}})
    if not quiet:
        import click

        m, prov = meta.get("metrics", {}), meta.get("provenance", {})
        sl = f", semantic locality {m['semantic_locality']:.3f}" if "semantic_locality" in m else ""
        click.echo(f"{method}: {path}  ({prov.get('component')}, scale {prov.get('scale', float('nan')):.3g}, "
                   f"{time.perf_counter() - t0:.1f} s; locality {m.get('locality', float('nan')):.3f}{sl}, "
                   f"jump ratio {m.get('jump_ratio', float('nan')):.2f})")
    return path
