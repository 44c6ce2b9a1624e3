"""Transfer and combination of discovered manifolds: the paper's demos, with numbers.

* :func:`transfer` adds a run's deltas ``Δ_i = w_i − w*`` to K other reference
  latents and scores locality there (``transfer_locality``): high means the
  manifold is a reusable control, not a property of one face.
* :func:`combine` adds the deltas of two runs found on the same reference,
  ``w* + Δ_A,i + Δ_B,i``, and scores locality on the union of their masks
  (``combined_locality``), the change each run alone causes inside the other's
  region (``a_change_in_b``, ``b_change_in_a``) and how much adding the other
  run's deltas disturbs each edit inside its own region (``interference_a``,
  ``interference_b``: ``RMS_M(x_AB − x_A) / RMS_M(x_A − x*)``, 0 = untouched).

Both write ordinary runs (``provenance.kind`` = ``transfer`` | ``combine``,
``provenance.sources`` = the source run ids), so everything downstream reads
them like any other run.  This module runs the generator, so it needs torch;
the rest of :mod:`mgm_analysis.analysis` does not.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from . import store
from .errors import MGMError
from .generators.latents import check_generator, generator_for, generator_spec
from .jobs import JobSpec, run_job
from .store import run_kind

__all__ = ["transfer", "combine", "derive_runs"]


def _spec_generator(run: store.Run) -> str:
    return generator_spec(run.meta) or (run.meta.get("generator") or {}).get("name") or "unknown"


# ----------------------------------------------------------------- transfer
def transfer(run: store.Run, G, references, *, truncation: float | None = None, out=None) -> list[Path]:
    """Apply ``run``'s deltas to other references; write and return one new run per reference (one
    ``transfer`` job each, through :func:`mgm_analysis.jobs.run_job`).

    Args:
        run: a discovered run.
        G: the generator that made it.
        references: seeds and/or reference latent files (``.npy``); a seed equal to the run's own reference
            seed is skipped.
        truncation: for seeds; defaults to the run's own reference truncation (else 0.7).
        out: store folder for the new runs (default: the run's own store).

    Each new run has ``metrics.transfer_locality`` (its locality on the run's
    mask) next to every ordinary metric, and ``metrics.source_locality``.
    """
    check_generator(run, G)
    out = Path(out) if out is not None else run.path.parent
    own_seed = (run.meta.get("reference") or {}).get("seed")
    cfg = {"truncation": truncation} if truncation is not None else {}
    paths = []
    for ref in references:
        if isinstance(ref, (int, np.integer)):
            if own_seed is not None and int(ref) == own_seed:
                continue
            where = {"seed": int(ref)}
        elif isinstance(ref, (str, Path)):
            where = {"seed": None, "reference": str(ref)}
        else:
            raise MGMError(f"a transfer reference is a seed or a latent .npy file, got {type(ref).__name__}; save "
                           "an array with numpy.save first")
        spec = JobSpec(kind="transfer", generator=_spec_generator(run), region=None, sources=(str(run.path),),
                       config=cfg, **where)
        paths.append(run_job(spec, out, G=G))
    return paths


# ---------------------------------------------------------------- combine
def combine(run_a: store.Run, run_b: store.Run, G, *, out=None) -> Path:
    """Add the deltas of two runs found on the same reference; write and return the combined run (one
    ``combine`` job through :func:`mgm_analysis.jobs.run_job`; see :func:`combine_latents`)."""
    out = Path(out) if out is not None else run_a.path.parent
    spec = JobSpec(kind="combine", generator=_spec_generator(run_a), region=None, seed=None,
                   sources=(str(run_a.path), str(run_b.path)))
    return run_job(spec, out, G=G)


# ------------------------------------------------------------- whole store
def derive_runs(root, *, transfer_k: int = 0, combine_pairs: bool = False, G=None, seeds=None,
                device: str = "cpu", quiet: bool = True) -> list[Path]:
    """Transfer every complete discovered run to ``transfer_k`` references and/or combine every pair of regions
    found on the same reference; returns the new run folders.

    Idempotent: a transfer or combination job already in the store is not made again (the one "already done"
    rule, :func:`mgm_analysis.jobs.done`).  Transfer seeds default to 1000, 1001, …  ``G``: one
    generator for every run (default: each run's own, from its run.json).
    """
    runs = [r for r in store.iter_runs(root) if run_kind(r.meta) == "discover" and r.status == "complete"]
    seeds = list(seeds) if seeds is not None else list(range(1000, 1000 + transfer_k))[:transfer_k]
    cache: dict = {}

    def gen(run):
        return G if G is not None else generator_for(run, cache, device)

    todo_t = runs if transfer_k else []
    pairs = []
    if combine_pairs:
        groups: dict = {}
        for r in runs:
            key = ((r.meta.get("generator") or {}).get("name"), (r.meta.get("generator") or {}).get("sha256"),
                   r.reference.shape, np.round(r.reference, 4).tobytes())
            groups.setdefault(key, []).append(r)
        for group in groups.values():
            pairs += [(a, b) for a, b in combinations(sorted(group, key=lambda r: (r.region, r.run_id)), 2)
                      if a.region != b.region]
    from tqdm.auto import tqdm

    before = {p.name for p in Path(root).iterdir()} if Path(root).is_dir() else set()
    new = []
    with tqdm(total=len(todo_t) + len(pairs), desc="transfer/combine", unit="run", disable=quiet) as bar:
        for r in todo_t:
            new += transfer(r, gen(r), seeds[:transfer_k])  # a run made before is returned as it is (its key)
            bar.update()
        for a, b in pairs:
            new.append(combine(a, b, gen(a)))
            bar.update()
    return [p for p in new if p.name not in before]
