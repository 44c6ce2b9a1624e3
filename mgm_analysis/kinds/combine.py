"""The ``combine`` run kind: the deltas of two runs found on the same reference added,
``w* + Δ_A,i + Δ_B,i``, scored on the union of their masks (``combined_locality``), by the change each run alone
causes inside the other's region (``a_change_in_b``, ``b_change_in_a``) and by how much adding the other run's
deltas disturbs each edit inside its own region (``interference_a``, ``interference_b``:
``RMS_M(x_AB − x_A) / RMS_M(x_A − x*)``, 0 = untouched)."""

from __future__ import annotations

import numpy as np

from ..errors import MGMError
from ..metrics import inside_change, locality

__all__ = ["combine_latents"]


def combine_latents(run_a, run_b, render) -> dict:
    """What the combination of two runs found on the same reference holds: frame i is
    ``w* + (w_A,i − w*) + (w_B,i − w*)`` (the first min(n_A, n_B) frames), the mask ``max(M_A, M_B)``, and the
    scores of the module docstring (``render(ws) -> frames`` draws A and B alone)."""
    if not np.allclose(run_a.reference, run_b.reference, atol=1e-6):
        raise MGMError(f"runs {run_a.run_id} and {run_b.run_id} have different reference latents; combine runs "
                       "discovered on the same reference")
    n = min(len(run_a.latents), len(run_b.latents))
    w_ref = run_a.reference
    da, db = run_a.latents[:n] - w_ref[None], run_b.latents[:n] - w_ref[None]
    ws = (w_ref[None] + da + db).astype(np.float32)
    ma, mb = run_a.mask, run_b.mask
    union = np.maximum(ma, mb)
    fa, fb = render(w_ref[None] + da), render(w_ref[None] + db)

    def rms_in(diff, mask):  # mean_i of each frame's RMS inside the mask, as inside_change's "rms"
        return float(np.sqrt(((diff**2).mean(-1) * mask).sum((1, 2)) / max(mask.sum(), 1e-12)).mean())

    def extra(frames, ref_img):
        a_in_a, b_in_b = inside_change(fa, ref_img, ma)["rms"], inside_change(fb, ref_img, mb)["rms"]
        return {
            "combined_locality": locality(frames, ref_img, union),
            "a_change_in_a": a_in_a,
            "b_change_in_b": b_in_b,
            "a_change_in_b": inside_change(fa, ref_img, mb)["rms"],
            "b_change_in_a": inside_change(fb, ref_img, ma)["rms"],
            "interference_a": rms_in(frames - fa, ma) / a_in_a if a_in_a > 0 else float("nan"),
            "interference_b": rms_in(frames - fb, mb) / b_in_b if b_in_b > 0 else float("nan"),
        }

    spec_a = (run_a.meta.get("region") or {}).get("spec", run_a.region)
    spec_b = (run_b.meta.get("region") or {}).get("spec", run_b.region)
    return {"latents": ws, "mask": union, "region": f"{run_a.region}+{run_b.region}",
            "regions": [run_a.region, run_b.region], "extra_metrics": extra, "region_spec": f"{spec_a} + {spec_b}",
            "provenance": {"regions": [run_a.region, run_b.region], "region_spec": f"{spec_a} + {spec_b}"}}
