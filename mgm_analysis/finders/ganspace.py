"""GANSpace: principal components of W as edit directions.

Härkönen, Hertzmann, Lehtinen, Paris, "GANSpace: Discovering Interpretable GAN
Controls", NeurIPS 2020 (arXiv 2004.02546).

Sample ``z_j ~ N(0, I)`` (j = 1..N, N ≥ 10 000), map ``w_j = f(z_j)`` and take
the principal directions of the w's:

    μ = (1/N) Σ_j w_j,    C = (1/N) Σ_j (w_j − μ)(w_j − μ)ᵀ = V Λ Vᵀ,

the columns ``v_k`` of V by decreasing variance ``λ_k``.  An edit is
``w' = w + x·v_k`` on a range of layers (here: the free W+ layers).  The PCA
depends only on the generator, so it is computed once per generator and cached
(keyed by the weights' sha256) in a cache folder.

The method: the top 10 components, each applied to every free layer (:data:`METHOD`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import MGMError
from .registry import Method

__all__ = ["ganspace_components", "pca_components", "ganspace_directions", "MIN_SAMPLES", "METHOD"]

MIN_SAMPLES = 10_000


def pca_components(w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` principal directions of samples w [N, D]: (components [k, D] unit rows, variances [k], mean [D]).

    Eigen-decomposition of the sample covariance (D ≤ a few thousand), signs
    fixed so each component's largest-magnitude entry is positive.
    """
    w = np.asarray(w, np.float64)
    if w.ndim != 2 or len(w) < 2:
        raise ValueError(f"expected samples [N >= 2, D], got shape {list(w.shape)}")
    mu = w.mean(0)
    x = w - mu
    cov = x.T @ x / len(w)
    lam, vec = np.linalg.eigh(cov)
    order = np.argsort(lam)[::-1][:k]
    comps = vec[:, order].T
    flip = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
    return comps * flip[:, None], lam[order], mu


def ganspace_components(G, k: int = 10, n_samples: int = MIN_SAMPLES, seed: int = 0, cache_dir=None,
                        batch: int = 2048) -> dict:
    """PCA of W for generator ``G``: {"components" [k, w_dim], "variance" [k], "explained" [k], "mean", "n_samples"}.

    Cached as ``<cache_dir>/ganspace-<sha256[:16]>-n<N>-s<seed>.npz`` when ``cache_dir`` is given.
    """
    import torch

    with torch.no_grad():
        return _components(G, k, n_samples, seed, cache_dir, batch)


def _components(G, k, n_samples, seed, cache_dir, batch) -> dict:
    import torch

    from ..directions import generator_key

    if n_samples < MIN_SAMPLES:
        raise MGMError(f"GANSpace needs at least {MIN_SAMPLES} samples of w, got {n_samples}")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"ganspace-{generator_key(G)[:16]}-n{n_samples}-s{seed}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                if len(z["components"]) >= k:
                    return {"components": z["components"][:k], "variance": z["variance"][:k],
                            "explained": z["explained"][:k], "mean": z["mean"], "n_samples": int(z["n_samples"]),
                            "cached": True}
    g = torch.Generator().manual_seed(seed)
    dev = G.w_avg.device
    ws = []
    for i in range(0, n_samples, batch):
        z = torch.randn(min(batch, n_samples - i), G.z_dim, generator=g).to(dev)
        ws.append(G.mapping(z).double().cpu().numpy())
    w = np.concatenate(ws)
    kk = max(k, 10)
    comps, lam, mu = pca_components(w, kk)
    total = float(((w - mu) ** 2).sum(1).mean())
    out = {"components": comps, "variance": lam, "explained": lam / total, "mean": mu, "n_samples": n_samples}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **{k_: np.asarray(v) for k_, v in out.items()},
                 meta=np.asarray(json.dumps({"generator": generator_key(G), "seed": seed})))
        tmp.replace(path)
    out = {k_: (v[:k] if k_ in ("components", "variance", "explained") else v) for k_, v in out.items()}
    out["cached"] = False
    return out


def ganspace_directions(ctx):
    """The method: the top ``ctx.k`` principal components of W, named PC0, PC1, ... (each applied to every free
    layer by the toolkit), with their explained variance."""
    pcs = ganspace_components(ctx.G, k=ctx.k, seed=ctx.seed, cache_dir=ctx.cache_dir)
    return pcs["components"], [f"PC{i}" for i in range(len(pcs["components"]))], {
        "explained_variance": [float(v) for v in pcs["explained"]], "n_samples": pcs["n_samples"],
        "cached": pcs["cached"]}


METHOD = Method("ganspace", ganspace_directions, default=True, order=50,
                description="principal components of W (Härkönen et al. 2020), each on every free layer")
