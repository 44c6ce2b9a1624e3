"""Jobs: one way from "a request for a run" to "a run folder".

A :class:`JobSpec` says what to compute — the kind of run (``discover``,
``transfer``, ``combine``, ``baseline``), the generator, the reference (a seed,
a latent file, or a source run), the region, the configuration and, for the
derived kinds, the source runs — and has a deterministic :attr:`~JobSpec.key`
(the SHA-256 of its canonical JSON).  :func:`run_job` runs one spec and writes
exactly one run, atomically (temp folder + rename), recording the spec under
``run.json`` ``provenance``; every entry point calls it: ``mgm discover``,
``mgm sweep`` (in-process or on Dask workers), ``mgm demo``, the analysis'
transfer and combination, and the baselines.

    >>> spec = JobSpec(region="mouth", seed=3, config={"epochs": 5})
    >>> spec.key == JobSpec(region="mouth", seed=3, config={"epochs": 5}).key
    True
    >>> path = run_job(spec, "runs/")            # doctest: +SKIP

Failure modes are handled in one place: the output folder is created and
write-tested before any search; Ctrl-C or SIGTERM during the search saves the
run with status ``interrupted`` and then raises :class:`RunInterrupted`
(``mgm`` exits 130 / 143); a non-finite trajectory is saved ``interrupted``
(stop reason ``nan``) and a metric that raises becomes NaN, so a run is never
lost for its numbers.

What each kind computes lives in :mod:`mgm_analysis.kinds`; this package resolves a spec once (:mod:`.spec`), identifies its
run (one rule for every caller) and renders, measures and writes it (:mod:`.run`).
"""

from __future__ import annotations

from ..kinds import KINDS
from ..store import run_kind  # noqa: F401 (re-exported: a run's kind has one owner, the store)
from .run import run_job
from .spec import (
           JobSpec,
           complete_run,
           discover_spec,
           done,
           prepare_out,
           resume_spec,
           spec_config,
           spec_region,
)

__all__ = ["KINDS", "JobSpec", "run_job", "done", "spec_config", "spec_region", "resume_spec", "prepare_out", "discover_spec",
           "complete_run"]
