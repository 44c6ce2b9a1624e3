"""SeFa: closed-form factorisation of the style affine weights.

Shen, Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021
(arXiv 2007.06600).

Every modulated convolution of the layers being edited turns w into a style
``y_l = A_l w + b_l``.  A unit direction n changes the styles by ``A_l n``;
SeFa takes the directions that change them most,

    n* = argmax_{‖n‖ = 1} Σ_l ‖A_l n‖²,

i.e. the eigenvectors of ``Σ_l A_lᵀ A_l`` by decreasing eigenvalue, with no
sampling and no training.  Here ``A_l`` are the style affine layers that read
the free W+ layers (the modulation of every convolution and toRGB layer fed by
``layer_start:layer_end``), each with its equalised-learning-rate scale.

The method: the top 10 eigenvectors, each applied to every free layer (:data:`METHOD`).
"""

from __future__ import annotations

import numpy as np

from ..errors import MGMError
from .registry import Method

__all__ = ["style_affines", "sefa_components", "sefa_directions", "METHOD"]


def style_affines(G, layers: tuple[int, int]) -> list[tuple[str, int, np.ndarray]]:
    """(module name, W+ layer, A [style_dim, w_dim]) of every style affine layer that reads a W+ layer in ``layers``.

    In the StyleGAN2 synthesis W+ layer 0 feeds ``conv1``, layer 1 ``to_rgb1``,
    layer j+1 ``convs[j]`` and layer 2j+3 ``to_rgbs[j]``.
    """
    if not all(hasattr(G, a) for a in ("conv1", "to_rgb1", "convs", "to_rgbs")):
        raise MGMError(f"sefa needs a StyleGAN2 with style affine layers; {type(G).__name__} has none")
    feeds = [("conv1", 0, G.conv1.conv), ("to_rgb1", 1, G.to_rgb1.conv)]
    feeds += [(f"convs.{j}", j + 1, c.conv) for j, c in enumerate(G.convs)]
    feeds += [(f"to_rgbs.{j}", 2 * j + 3, c.conv) for j, c in enumerate(G.to_rgbs)]
    ls, le = layers
    out = []
    for name, layer, conv in sorted(feeds, key=lambda f: (f[1], f[0])):
        if ls <= layer < le:
            lin = conv.modulation
            a = (lin.weight.detach().double() * lin.scale).cpu().numpy()
            out.append((name, layer, a))
    if not out:
        raise MGMError(f"no style layer reads the W+ layers {ls}:{le}")
    return out


def sefa_components(G, layers: tuple[int, int], k: int = 10) -> dict:
    """{"components" [k, w_dim], "eigenvalues" [k], "layers": [module names]}: top eigenvectors of Σ_l A_lᵀA_l."""
    affines = style_affines(G, layers)
    m = sum(a.T @ a for _, _, a in affines)
    lam, vec = np.linalg.eigh(m)
    order = np.argsort(lam)[::-1][:k]
    comps = vec[:, order].T
    flip = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
    return {"components": comps * flip[:, None], "eigenvalues": lam[order], "layers": [n for n, _, _ in affines]}


def sefa_directions(ctx):
    """The method: the top ``ctx.k`` eigenvectors of Σ_l A_lᵀA_l over the style layers that read the free W+
    layers, named EV0, EV1, ..., with their eigenvalues."""
    ev = sefa_components(ctx.G, ctx.layers, k=ctx.k)
    return ev["components"], [f"EV{i}" for i in range(len(ev["components"]))], {
        "eigenvalues": [float(v) for v in ev["eigenvalues"]], "style_layers": ev["layers"]}


METHOD = Method("sefa", sefa_directions, default=True, order=60,
                description="eigenvectors of the style affine weights (Shen & Zhou 2021), each on every free layer")
