"""Sweeps: a grid of jobs (regions × seeds × config values × kinds) run in-process or on a Dask cluster.

Every job is a :class:`~mgm_analysis.jobs.JobSpec` run by :func:`~mgm_analysis.jobs.run_job` into the folder
``<store>/<spec.run_id>`` — a function of the job's key — so a job can never leave two run folders, and a
rerun of the same sweep finds its finished jobs by key and skips them, resumes interrupted ones and runs
failed ones again.  The sweep itself is recorded in ``<store>/.sweeps/<sweep_id>.json`` (the grid, every job's
key, run folder, status and error), rewritten atomically as jobs finish.

Executors:

* in-process (``workers=1``, no scheduler): one job after the other (:class:`~mgm_analysis.executor.Executor`),
  the generator loaded once;
* a Dask ``LocalCluster`` on 127.0.0.1 (``workers=N``): N worker processes, one job at a time each, torch
  using cores // N threads per job;
* an existing Dask cluster (``scheduler="tcp://HOST:PORT"`` or a scheduler file); with ``gpus_per_job`` the
  jobs ask for Dask resources ``GPU`` (start workers with ``--resources GPU=1``).

Dask reruns a job whose worker died on another worker; an exception in a job is retried once.  Ctrl-C sets a
Dask event that running jobs check every epoch: they stop, save their run as ``interrupted`` and the sweep
prints how to resume.
"""

from __future__ import annotations

from .cluster import CONNECT_TIMEOUT_S, connect, execute, probe_scheduler
from .grid import Grid, build_jobs, check_jobs, parse_params, parse_sets, search_generator
from .record import SWEEP_DIR, SweepRecord, pending
from .run import SweepResult, run_sweep, summary_table

__all__ = ["Grid", "parse_sets", "parse_params", "build_jobs", "check_jobs", "search_generator", "SweepRecord",
           "run_sweep", "SweepResult", "connect", "probe_scheduler", "execute", "summary_table", "pending", "SWEEP_DIR",
           "CONNECT_TIMEOUT_S"]
