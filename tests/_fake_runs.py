"""Synthetic runs for the store and analysis tests: tiny arrays written with ``store.write_run``."""

import numpy as np

from mgm_analysis import store


def fake_meta(region="mouth", seed=0, **extra):
    return {"status": "complete", "region": {"name": region, "spec": region, "layout": "toyfaces", "area_share": 0.1875},
            "generator": {"name": "synthetic", "format": "builtin", "sha256": None},
            "reference": {"seed": seed, "truncation": 0.7, "file": None}, "seed": seed,
            "config": {"n_frames": 6, "layer_start": 1, "layer_end": 3, "distance": "l2", "offset": 0.03},
            "metrics": {"locality": 0.5}, "provenance": {"kind": "discover", "sources": []}, **extra}


def make_run(root, region="mouth", seed=0, n=6, res=8, direction=None, num_ws=4, w_dim=5, box=(2, 2, 6, 5),
             meta=None, **kw):
    """A straight trajectory of ``n`` latents on W+ layers 1:3 and frames that change only inside ``box``."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(num_ws, w_dim)).astype(np.float32)
    d = direction if direction is not None else rng.normal(size=(2, w_dim))
    t = np.linspace(0, 1, n)[:, None, None]
    lat = np.repeat(ref[None], n, 0)
    lat[:, 1:3] += t * d
    x0, y0, x1, y1 = box
    mask = np.zeros((res, res), np.float32)
    mask[y0:y1, x0:x1] = 1
    ref_img = rng.uniform(0.1, 0.8, size=(res, res, 3)).astype(np.float32)
    frames = np.repeat(ref_img[None], n, 0)
    frames[:, y0:y1, x0:x1] += t[..., None] * 0.15
    return store.write_run(root, meta=meta or fake_meta(region, seed), latents=lat, reference=ref,
                           reference_img=ref_img, mask=mask, frames=frames, **kw)
