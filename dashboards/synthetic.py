"""A synthetic run store for the dashboard's tests, benchmark and screenshots (no generator, no torch).

Each run looks like a discovery: a smooth, curved trajectory in a few free W+
layers whose direction depends on the region, frames that change mostly inside
the region's box, the real metrics of :func:`mgm_analysis.metrics.run_metrics`,
all written with :func:`mgm_analysis.store.write_run`.  Images are tiny.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mgm_analysis import store
from mgm_analysis.metrics import run_metrics

__all__ = ["make_store", "callback_body", "REGION_BOXES"]

# Relative boxes (x0, y0, x1, y1) of the synthetic regions.
REGION_BOXES = {"mouth": (0.3, 0.65, 0.7, 0.85), "eyes": (0.2, 0.3, 0.8, 0.45), "brows": (0.2, 0.15, 0.8, 0.28)}


def _run_arrays(rng, region_idx, box, *, n_frames, num_ws, w_dim, layers, resolution, leak):
    a, b = layers
    w_ref = rng.normal(size=(num_ws, w_dim)).astype(np.float32)
    # A bent path in a region-specific plane of the free layers.
    d = (b - a) * w_dim
    basis = np.random.default_rng(1000 + region_idx).normal(size=(2, d))
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    t = np.linspace(0, 1, n_frames)
    path = np.outer(np.sin(np.pi * t) * 2, basis[0]) + np.outer(t * 3, basis[1])
    latents = np.repeat(w_ref[None], n_frames, 0)
    latents[:, a:b] += (path + 0.05 * rng.normal(size=path.shape)).reshape(n_frames, b - a, w_dim)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    base = rng.uniform(0.2, 0.8, size=3)
    ref_img = np.clip(base[None, None] + 0.2 * np.stack([xx, yy, xx * yy], -1), 0, 1).astype(np.float32)
    x0, y0, x1, y1 = (int(round(v * resolution)) for v in box)
    mask = np.zeros((resolution, resolution), np.float32)
    mask[y0:y1, x0:x1] = 1
    frames = np.repeat(ref_img[None], n_frames, 0)
    for i, ti in enumerate(t):
        frames[i] += (0.4 * ti * mask + leak * ti * (1 - mask))[..., None] * np.array([1.0, -0.5, -0.5])
    return latents, w_ref, np.clip(frames, 0, 1), ref_img, mask


def make_store(root, n_runs: int = 6, *, regions=("mouth", "eyes", "brows"), n_frames: int = 8,
               num_ws: int = 6, w_dim: int = 8, layers=(2, 5), resolution: int = 16, derived: bool = False,
               seed: int = 0, methods=(), strengths=(1.0,), start: int = 0) -> list[str]:
    """Write ``n_runs`` synthetic runs (regions in turn, references seed 0, 1, …) into ``root``; return their ids.

    With ``derived``, also one transfer run and one combination run made from the first runs.  With ``methods``
    (baseline names), a method comparison as ``mgm compare-methods --strengths`` makes it: each discovery run is
    made at every strength K of ``strengths`` and beside it one baseline run per method (their change leaks
    more outside the region, the more so the larger K), all with K recorded and a ``semantic_locality``.
    ``start``: the index of the first run (its id, region and reference), to add runs to a store run by run.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    ids = []
    for i in range(start, start + n_runs):
        region = regions[i % len(regions)]
        ref_seed = i // len(regions)
        leak = 0.02 + 0.05 * (i % len(regions)) + 0.01 * rng.random()
        for k in strengths if methods else [None]:
            for j, method in enumerate(["discovery", *methods] if methods else [None]):
                lk = leak if k is None else leak * (1 + j) * (1 + 0.2 * np.log2(k))
                latents, w_ref, frames, ref_img, mask = _run_arrays(
                    np.random.default_rng([seed, i]), regions.index(region),
                    REGION_BOXES.get(region, (0.3, 0.3, 0.7, 0.7)), n_frames=n_frames, num_ws=num_ws, w_dim=w_dim,
                    layers=layers, resolution=resolution, leak=lk)
                run_id = f"{region}-s{ref_seed}-synthetic-{i:04d}" if k is None else \
                    f"{method}_{region}-s{ref_seed}-x{k:g}-synthetic-{i:04d}"
                ids.append(_write(root, run_id, region, ref_seed, latents, w_ref, frames, ref_img, mask, layers,
                                  "discover" if method in (None, "discovery") else "baseline", [],
                                  method=method, strength=k))
    if derived and len(ids) >= 2:
        r0, r1 = store.load_run(root / ids[0]), store.load_run(root / ids[1])
        for kind, sources in (("transfer", [ids[0]]), ("combine", [ids[0], ids[1]])):
            delta = sum(store.load_run(root / s).latents - store.load_run(root / s).reference for s in sources)
            w_ref = r1.reference if kind == "transfer" else r0.reference
            mask = np.clip(sum(store.load_run(root / s).mask for s in sources), 0, 1)
            frames = store.load_run(root / sources[-1]).frames
            ids.append(_write(root, f"{kind}-synthetic-{len(ids):04d}", "+".join(
                store.load_run(root / s).region for s in sources), None, w_ref[None] + delta, w_ref, frames,
                r0.reference_img, mask, layers, kind, sources))
    return ids


def _write(root, run_id, region, ref_seed, latents, w_ref, frames, ref_img, mask, layers, kind, sources,
           method=None, strength=None):
    metrics = run_metrics(latents, w_ref, frames, ref_img, mask, layers=layers)
    if strength is not None:  # a method comparison: a semantic score that falls with the leak, as locality does
        metrics["semantic_locality"] = float(metrics["locality"]) ** 2
    n_frames, num_ws, w_dim = latents.shape
    meta = {
        "status": "complete",
        "region": {"name": region, "spec": region, "layout": "synthetic", "area_share": float(mask.mean())},
        "generator": {"name": "synthetic", "format": "synthetic", "resolution": int(mask.shape[0]),
                      "num_ws": num_ws, "w_dim": w_dim},
        "reference": {"seed": ref_seed, "truncation": 0.7, "file": None},
        "seed": ref_seed,
        "config": {"n_frames": n_frames, "layer_start": layers[0], "layer_end": layers[1], "distance": "l2"},
        "metrics": metrics,
        "provenance": {"kind": kind, "sources": list(sources),
                       **({"spec": {"params": {"strength": float(strength)}}} if strength is not None else {}),
                       **({"method": method} if kind == "baseline" else {})},
    }
    store.write_run(root, meta=meta, latents=latents, reference=w_ref, reference_img=ref_img, mask=mask,
                    frames=frames, run_id=run_id, gif=False)
    return run_id


def callback_body(app, output: str, values: dict, trigger: str | None = None) -> dict:
    """The JSON the browser posts to /_dash-update-component to fire the callback whose output key contains
    ``output``; ``values`` maps "id.prop" to the value of every input and state (missing ones are None)."""
    key = next(k for k in app.callback_map if output in k)
    spec = app.callback_map[key]
    multi = key.startswith("..")
    outs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
            for o in (key[2:-2].split("...") if multi else [key])]

    def filled(deps):
        return [{**d, "value": values.get(f"{d['id']}.{d['property']}")} for d in deps]

    return {"output": key, "outputs": outs if multi else outs[0], "inputs": filled(spec["inputs"]),
            "state": filled(spec["state"]), "changedPropIds": [trigger] if trigger else []}
