"""Transfer and combination of discovered manifolds (the paper's demos, here with numbers).

* :func:`transfer` adds a run's deltas ``w_i − w*`` to other reference latents
  and scores locality there: a high score means the manifold is a reusable
  control, not a property of one face.
* :func:`combine` adds the deltas of two runs found on the same reference and
  scores locality on the union of their masks, plus the change each run alone
  causes inside the other's region.

Both write ordinary runs (``provenance.kind`` = transfer | combine) so every
downstream tool reads them like any other.  This module needs torch (it runs
the generator); the rest of ``analysis`` does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import store
from ..errors import MGMError
from .metrics import inside_change, locality, run_metrics

__all__ = ["transfer", "combine"]


def _reference_from_seed(G, seed: int, truncation: float):
    import torch

    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        return G.broadcast(G.mapping(z.to(G.w_avg.device), truncation))[0].cpu().numpy()


def _write(G, root, ws, w_ref, mask, meta_base, provenance, metrics_extra, region_name, seed, ref_info):
    from ..render import render_frames

    frames = render_frames(G, ws)
    ref_img = render_frames(G, w_ref[None])[0]
    cfg = meta_base.get("config", {})
    metrics = run_metrics(ws, w_ref, frames, ref_img, mask,
                          layers=(cfg.get("layer_start", 0), cfg.get("layer_end", ws.shape[1])))
    metrics.update(metrics_extra(frames, ref_img))
    meta = {
        "status": "complete", "region": {**meta_base["region"], "name": region_name},
        "generator": meta_base["generator"], "reference": ref_info, "seed": seed, "config": cfg,
        "history": {}, "timings": {}, "metrics": metrics, "provenance": provenance,
    }
    return store.write_run(root, meta=meta, latents=ws, reference=w_ref, reference_img=ref_img, mask=mask,
                           frames=frames, run_id=store.new_run_id(f"{provenance['kind']}-{region_name}", seed))


def transfer(run: store.Run, G, seeds, *, truncation: float = 0.7, out=None) -> list[Path]:
    """Apply ``run``'s deltas to the references of ``seeds``; one new run per seed (written under ``out``)."""
    out = Path(out or run.path.parent)
    deltas = run.latents - run.reference[None]
    if deltas.shape[1:] != (G.num_ws, G.w_dim):
        raise MGMError(f"run {run.run_id} has latents of {list(deltas.shape[1:])} but the generator's W+ is "
                       f"[{G.num_ws}, {G.w_dim}]; transfer with the generator that made the run")
    paths = []
    for seed in seeds:
        w_ref = _reference_from_seed(G, seed, truncation)
        ws = (w_ref[None] + deltas).astype(np.float32)
        paths.append(_write(G, out, ws, w_ref, run.mask, run.meta,
                            {"kind": "transfer", "sources": [run.run_id], "source_region": run.region,
                             "target_seed": int(seed)},
                            lambda f, r: {}, run.region, int(seed),
                            {"seed": int(seed), "truncation": truncation, "file": None}))
    return paths


def combine(run_a: store.Run, run_b: store.Run, G, *, out=None) -> Path:
    """Add the deltas of two runs on the same reference; write and return the combined run."""
    if run_a.reference.shape != run_b.reference.shape or not np.allclose(run_a.reference, run_b.reference, atol=1e-6):
        raise MGMError(f"runs {run_a.run_id} and {run_b.run_id} have different reference latents; combine runs "
                       "discovered on the same reference")
    n = min(len(run_a.latents), len(run_b.latents))
    w_ref = run_a.reference
    ws = (w_ref[None] + (run_a.latents[:n] - w_ref) + (run_b.latents[:n] - w_ref)).astype(np.float32)
    union = np.maximum(run_a.mask, run_b.mask)
    fa, fb = run_a.frames[:n], run_b.frames[:n]
    ref_a = run_a.reference_img

    def extra(frames, ref_img):
        return {
            "union_locality": locality(frames, ref_img, union),
            "a_change_in_b": inside_change(fa, ref_a, run_b.mask)["rms"],
            "b_change_in_a": inside_change(fb, ref_a, run_a.mask)["rms"],
            "a_alone_inside_a": inside_change(fa, ref_a, run_a.mask)["rms"],
            "b_alone_inside_b": inside_change(fb, ref_a, run_b.mask)["rms"],
        }

    out = Path(out or run_a.path.parent)
    return _write(G, out, ws, w_ref, union, run_a.meta,
                  {"kind": "combine", "sources": [run_a.run_id, run_b.run_id], "regions": [run_a.region, run_b.region]},
                  extra, f"{run_a.region}+{run_b.region}", run_a.meta.get("seed"), run_a.meta.get("reference", {}))
