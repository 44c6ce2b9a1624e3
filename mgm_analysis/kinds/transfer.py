"""The ``transfer`` run kind: a run's deltas ``Δ_i = w_i − w*`` added to another reference latent; its
``transfer_locality`` (locality on the source's mask there) says whether the manifold is a reusable control."""

from __future__ import annotations

import numpy as np

from ..metrics import locality

__all__ = ["transfer_latents"]


def transfer_latents(run, w_ref: np.ndarray) -> dict:
    """What a transfer run of ``run`` onto the reference ``w_ref`` holds (for :func:`mgm_analysis.jobs.run_job`):
    latents ``w_ref + Δ_i``, the run's mask and region, the extra metrics and provenance."""
    deltas = run.latents - run.reference[None]
    ws = (np.asarray(w_ref, np.float32)[None] + deltas).astype(np.float32)
    mask = run.mask
    src_loc = (run.meta.get("metrics") or {}).get("locality")

    def extra(frames, ref_img):
        return {"transfer_locality": locality(frames, ref_img, mask), "source_locality": src_loc}

    return {"latents": ws, "mask": mask, "region": run.region, "regions": [run.region], "extra_metrics": extra,
            "provenance": {"source_region": run.region, "source_reference": (run.meta.get("reference") or {}),
                           "regions": [run.region]}}
