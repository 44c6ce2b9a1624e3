"""The ``discover`` run kind: the mask-guided search of :func:`mgm_analysis.discovery.discover` (the paper's
method, with our image springs and start), continued from a saved state on resume."""

from __future__ import annotations

import torch

__all__ = ["prepare", "build"]


def prepare(job) -> None:
    """Build the run's distance before anything is shown or searched (LPIPS fetches its weights here: a missing
    file is one line before the progress bar)."""
    from ..losses import make_distance

    reg, cfg = job.region, job.config
    job.distance = make_distance(reg.mask, cfg.distance, cfg.mask_mode, reg.boxes)


def build(job, *, progress=None, watch=None):
    from ..discovery import discover
    from . import Built

    if getattr(job, "distance", None) is None:
        prepare(job)
    traj = discover(job.G, torch.from_numpy(job.w_ref), job.distance, job.config, callback=progress,
                    state=job.state, watch=watch, stop=job.stop)
    return Built(trajectory=traj)
