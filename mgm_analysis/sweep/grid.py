"""A sweep grid: parsing --set/--param values, the grid of job specs in phases (search jobs first, derived ones after), and their checks before anything runs."""


from __future__ import annotations

import contextlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import parse_config_value
from ..errors import MGMError
from ..jobs import JobSpec
from ..kinds import KINDS, SEARCH_KINDS
from .cluster import _generator


# ------------------------------------------------------------------ the grid
def _split_values(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def parse_sets(items) -> dict[str, list]:
    """``["offset=0.02,0.04", "epochs=10"]`` -> {"offset": [0.02, 0.04], "epochs": [10]}: DiscoveryConfig fields,
    values typed by the field (MGMError naming the item for an unknown field or a bad value)."""
    out: dict[str, list] = {}
    for item in items or ():
        name, eq, values = str(item).partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name or not _split_values(values):
            raise MGMError(f"--set {item!r}: expected FIELD=v1,v2,... e.g. --set offset=0.02,0.04")
        try:  # parse_config_value refuses an unknown field or a bad value in one line
            out[name] = [parse_config_value(name, v) for v in _split_values(values)]
        except MGMError as exc:
            raise MGMError(f"--set {item!r}: {exc}") from None
    return out


def _auto(v: str):
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(v)
    return v


def parse_params(items) -> dict[str, list]:
    """``["method=pca", "component=0,1,2"]`` -> baseline parameter grid (numbers where they parse)."""
    out: dict[str, list] = {}
    for item in items or ():
        name, eq, values = str(item).partition("=")
        if not eq or not name.strip() or not _split_values(values):
            raise MGMError(f"--param {item!r}: expected NAME=v1,v2,... e.g. --param method=pca")
        out[name.strip()] = [_auto(v) for v in _split_values(values)]
    return out


def _product(grid: dict) -> list[dict]:
    names = sorted(grid)
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(grid[n] for n in names))]


@dataclass(frozen=True)
class Grid:
    """What ``mgm sweep`` asks for; :func:`build_jobs` turns it into job specs."""

    regions: tuple = ("mouth",)
    seeds: tuple = (0,)
    kinds: tuple = ("discover",)
    generator: str = "toyfaces"
    layout: str | None = None
    preset: str | None = None
    config: dict = field(default_factory=dict)      # fixed DiscoveryConfig fields
    sets: dict = field(default_factory=dict)        # field -> values (cartesian product)
    params: dict = field(default_factory=dict)      # baseline parameter -> values (cartesian product)
    transfer_seeds: tuple = ()

    def to_dict(self) -> dict:
        return {"regions": list(self.regions), "seeds": list(self.seeds), "kinds": list(self.kinds),
                "generator": self.generator, "layout": self.layout, "preset": self.preset,
                "config": dict(self.config), "sets": {k: list(v) for k, v in self.sets.items()},
                "params": {k: list(v) for k, v in self.params.items()}, "transfer_seeds": list(self.transfer_seeds)}


def build_jobs(grid: Grid, out) -> list[list[JobSpec]]:
    """The sweep's jobs in phases: searches (discover, baseline) first, then what derives from their runs
    (transfer onto ``transfer_seeds``, combine every pair of regions found on the same face and settings)."""
    out = Path(out).expanduser().resolve()
    unknown = set(grid.kinds) - set(KINDS)
    if unknown:
        raise MGMError(f"--kinds: unknown job kind {', '.join(sorted(unknown))}; use discover, baseline, transfer, "
                       "combine")
    if ("transfer" in grid.kinds or "combine" in grid.kinds) and "discover" not in grid.kinds:
        raise MGMError("--kinds transfer/combine derive from discovered runs; add discover to --kinds")
    if "transfer" in grid.kinds and not grid.transfer_seeds:
        raise MGMError("--kinds transfer needs --transfer-seeds (the faces to transfer to), e.g. 1000-1001")
    if "baseline" in grid.kinds and "method" not in grid.params:
        raise MGMError("--kinds baseline needs --param method=NAME (a registered baseline)")
    searches, derived = [], []
    discovered: dict = {}
    for combo in _product(grid.sets):
        cfg = {**grid.config, **combo}
        for seed in grid.seeds:
            for region in grid.regions:
                common = dict(generator=grid.generator, region=region, seed=seed, layout=grid.layout,
                              preset=grid.preset, config=cfg)
                if "discover" in grid.kinds:
                    spec = JobSpec(kind="discover", **common)
                    searches.append(spec)
                    discovered.setdefault((json.dumps(combo, sort_keys=True), seed), []).append(spec)
                if "baseline" in grid.kinds:
                    for params in _product(grid.params):
                        searches.append(JobSpec(kind="baseline", params=params, **common))
    for (_, seed), specs in discovered.items():
        if "transfer" in grid.kinds:
            for spec in specs:
                for t in grid.transfer_seeds:
                    if t != seed:
                        derived.append(JobSpec(kind="transfer", generator=grid.generator, region=None, seed=t,
                                               sources=(str(out / spec.run_id),)))
        if "combine" in grid.kinds:
            for a, b in itertools.combinations(specs, 2):
                if a.region != b.region:
                    derived.append(JobSpec(kind="combine", generator=grid.generator, region=None, seed=None,
                                           sources=(str(out / a.run_id), str(out / b.run_id))))
    if not searches:
        raise MGMError("the sweep is empty: give --regions, --seeds and --kinds")
    return [searches] + ([derived] if derived else [])


def check_jobs(specs, G=None) -> None:
    """Every search job's configuration (DiscoveryConfig's checks) and, given the generator ``G``, its region and
    layers must be valid before anything is written: bad input is one MGMError, not a failed job later.  The
    configuration is resolved as the job itself will resolve it (:func:`mgm_analysis.jobs.spec_config`)."""
    from ..jobs import spec_config, spec_region

    seen, regions = set(), {}
    for spec in specs:
        if spec.kind not in SEARCH_KINDS:
            continue
        reg = None
        if G is not None:
            if (spec.region, spec.layout) not in regions:
                regions[(spec.region, spec.layout)] = spec_region(spec, G)
            reg = regions[(spec.region, spec.layout)]
        sig = (spec.generator, spec.region, spec.preset, json.dumps(spec.config, sort_keys=True))
        if sig in seen:
            continue
        seen.add(sig)
        c = spec_config(spec, G, reg)
        if G is not None:
            c.check_generator(G.num_ws)


def search_generator(phases):
    """The generator of the sweep's search jobs, loaded on the CPU (and kept for in-process jobs on the CPU)."""
    searches = [s for phase in phases for s in phase if s.kind in SEARCH_KINDS]
    return _generator(searches[0], "cpu") if searches else None


