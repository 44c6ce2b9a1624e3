"""Run kinds: what one job of each kind computes from its resolved inputs.

A job (:class:`mgm_analysis.jobs.JobSpec`) names its kind; :func:`mgm_analysis.jobs.run_job` resolves the spec
once (generator, region, configuration, reference, sources: :class:`Job`), asks the kind's module to build the
trajectory, and renders, measures and writes the run the same way for every kind.  The kinds:

* ``discover`` (:mod:`.discover`) — the mask-guided search (the paper's method);
* ``baseline`` (:mod:`.baseline`) — a direction finder's path at equal strength;
* ``transfer`` (:mod:`.transfer`) — a run's deltas on another reference;
* ``combine`` (:mod:`.combine`) — the deltas of two runs of one reference added.

A search kind's module has ``build(job, *, progress=None, watch=None) -> Built``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["KINDS", "SEARCH_KINDS", "DERIVED_KINDS", "N_SOURCES", "Job", "Built", "module"]

#: every kind of run, the kinds that search (a discovery or a baseline), those derived from stored runs
KINDS = ("discover", "transfer", "combine", "baseline")
SEARCH_KINDS = ("discover", "baseline")
DERIVED_KINDS = ("transfer", "combine")
#: (fewest, most) source runs a job of each kind names
N_SOURCES = {"discover": (0, 0), "transfer": (1, 1), "combine": (2, 2), "baseline": (0, 1)}


@dataclass
class Job:
    """A spec resolved once, for every kind: what a kind's ``build`` gets."""

    spec: Any                    # the JobSpec
    G: Any                       # the generator
    out: Any                     # the store folder (pathlib.Path)
    config: Any = None           # config.DiscoveryConfig (search kinds)
    region: Any = None           # masks.Region (search kinds)
    w_ref: Any = None            # [num_ws, w_dim] float32
    reference: dict = field(default_factory=dict)   # run.json "reference"
    sources: list = field(default_factory=list)     # store.Run of spec.sources
    state: dict | None = None    # a resumed search's {"ws", "history", "epochs_done"}
    stop: Callable | None = None  # the caller's stop predicate (run_job's ``stop``), for the search to poll


@dataclass
class Built:
    """What a search kind hands back: the trajectory and what run.json should say of it beyond the common."""

    trajectory: Any                                     # discovery.Trajectory
    provenance: dict = field(default_factory=dict)      # merged into run.json "provenance"
    config: dict = field(default_factory=dict)          # DiscoveryConfig fields the path changed (closed_loop)
    timings: dict = field(default_factory=dict)         # merged into run.json "timings"
    metrics: dict = field(default_factory=dict)         # extra numbers for run.json "metrics"
    extra_metrics: Callable | None = None               # (frames, ref_img) -> dict, after rendering


def module(kind: str):
    """The module that builds runs of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; known: {', '.join(KINDS)}")
    return importlib.import_module(f".{kind}", __name__)
