"""Synthetic runs for the store and analysis tests: tiny arrays written with ``store.write_run``."""

import numpy as np

from mgm_analysis import store

#: prepend to a ``python -c`` script: any import of torch then fails as if torch were not installed.
#: (``sys.modules["torch"] = None`` would also block it, but scipy then trips over the None entry.)
BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
"""


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


def discovered_run(root, G, region, seed, direction_seed, n=5, scale=1.0, box=(2, 2, 10, 8)):
    """A run as ``mgm discover`` writes it with generator ``G``: w* from the seed, a straight path on W+ layers 1:3."""
    from mgm_analysis.generators.latents import reference_latents
    from mgm_analysis.render import render_frames

    (w_ref, ref_info), = reference_latents(G, [seed], 0.7)
    d = np.random.default_rng(direction_seed).normal(size=(2, G.w_dim)).astype(np.float32) * scale
    ws = np.repeat(w_ref[None], n, 0)
    ws[:, 1:3] += np.linspace(0, 1, n, dtype=np.float32)[:, None, None] * d
    frames = render_frames(G, ws)
    ref_img = render_frames(G, w_ref[None])[0]
    x0, y0, x1, y1 = box
    mask = np.zeros((G.resolution, G.resolution), np.float32)
    mask[y0:y1, x0:x1] = 1
    meta = fake_meta(region, seed, generator=G.info.to_dict(), reference=ref_info)
    meta["config"] = {"n_frames": n, "layer_start": 1, "layer_end": 3, "distance": "l2"}
    return store.load_run(store.write_run(root, meta=meta, latents=ws, reference=w_ref, reference_img=ref_img,
                                          mask=mask, frames=frames))
