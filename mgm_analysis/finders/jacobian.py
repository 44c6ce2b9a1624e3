"""The masked Jacobian as a direction finder: ``jacobian`` (a line) and ``jacobian_loop`` (a loop).

The directions are the generalised eigen-directions of the region's Jacobian against the rest of the image at
w* (:func:`mgm_analysis.directions.masked_jacobian`: JVP/VJP products and randomised eigen-solvers, in the spirit
of LowRankGAN / ReSeFa), one per free layer each, cached per generator, w*, mask and layers.  ``jacobian`` is the
straight line along the best one at equal strength; ``jacobian_loop`` the ellipse in the plane of the best two (or
the arc of it as long as the discovered chain: equal extent) — the toolkit draws both paths
(:mod:`mgm_analysis.kinds.baseline`); both offer the same directions.
"""

from __future__ import annotations

from .registry import Method

__all__ = ["jacobian_directions", "METHODS"]


def jacobian_directions(ctx):
    """The method: the top ``ctx.k`` masked-Jacobian directions [k, F, w_dim], named J0, J1, ..., with their
    inside/outside ratios."""
    from ..directions import masked_jacobian

    w_ref = ctx.w_ref.detach().cpu().numpy()
    mask = ctx.mask.detach().cpu().numpy()
    res = masked_jacobian(ctx.G, w_ref, mask, ctx.layers, k=ctx.k, seed=ctx.seed, cache_dir=ctx.cache_dir,
                          stop=ctx.stop)
    return res["directions"], [f"J{i}" for i in range(len(res["directions"]))], {
        "ratios": [float(v) for v in res["ratios"]], "jvp_vjp_vectors": int(res["products"]),
        "rank": int(res["rank"])}


METHODS = (
    Method("jacobian_loop", jacobian_directions, default=True, order=10, path="loop",
           description="the ellipse in the plane of the two best masked-Jacobian directions, cut to the "
                       "discovered run's extent when the store has one"),
    Method("jacobian", jacobian_directions, default=True, order=20,
           description="the masked Jacobian's generalised eigen-directions at the reference (in the spirit of "
                       "LowRankGAN / ReSeFa), a straight line"),
)
