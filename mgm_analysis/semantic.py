"""What the toyfaces ground truth says of a run's frames: semantic locality, the factor ranges the chain covers
(semantic extent) and realism, read by the independent second reader (and the shipped regressor beside it).

Only the built-in toyfaces generator has factors; for every other generator :func:`semantic_metrics` is {}.
"""

from __future__ import annotations

import numpy as np

from .errors import MGMError

__all__ = ["semantic_metrics"]

def semantic_metrics(G, frames, ref_img, regions, factor_change: bool = False, mask=None,
                     truncation: float | None = 0.7, cache_dir=None) -> dict:
    """Semantic locality of a toyfaces run for the union of the regions' factors; {} for other generators or
    regions without factors.

    ``semantic_locality`` (and with ``factor_change`` the largest change of each factor) is read by the
    independent second reader (:mod:`mgm_analysis.generators.toyfaces.reader2`, never used in training the
    generator); ``semantic_locality_shipped`` by the shipped factor regressor, which stage B of the generator's
    recipe was tuned against.  When the second reader's weights are missing, ``semantic_locality`` falls back to
    the shipped regressor with a warning (``semantic_reader`` says which read it; :func:`run_job` stores that
    name in run.json beside ``metrics``, which hold numbers only); without either, {}.

    The same reader gives the *semantic extent* of the regions' factors over the frames: ``semantic_low`` and
    ``semantic_high`` ({factor: min} and {factor: max}) and ``semantic_extent`` ({factor: max − min}).  With
    ``mask``, the frames' realism (:mod:`mgm_analysis.generators.toyfaces.realism`, against G's own samples at ψ
    ``truncation``; their error maps kept in ``cache_dir``) comes along.
    """
    if getattr(getattr(G, "info", None), "name", None) != "toyfaces":
        return {}
    from .presets import REGION_FACTORS

    names = sorted({n for r in regions for n in REGION_FACTORS.get(r, [])})
    if not names:
        return {}
    import warnings

    try:
        import torch

        from .generators.toyfaces.regressor import predict_factors
        from .generators.toyfaces.renderer import FACTORS
        from .metrics import semantic_locality

        def to_t(a):
            return torch.from_numpy(np.asarray(a, np.float32)).permute(0, 3, 1, 2) * 2 - 1

        x, x_ref = to_t(frames), to_t(np.asarray(ref_img)[None])
        f, f_ref = predict_factors(x).numpy(), predict_factors(x_ref).numpy()[0]
    except (ImportError, OSError, MGMError) as exc:  # no regressor weights: the image metrics still stand
        warnings.warn(f"semantic locality skipped: {exc}", stacklevel=2)
        return {}
    idx = [FACTORS.index(n) for n in names]
    out = {"semantic_locality_shipped": semantic_locality(f, f_ref, idx), "semantic_reader": "reader2"}
    keep = list(range(len(FACTORS)))
    try:
        from .generators.toyfaces.reader2 import predict_factors2, readable_factors

        f, f_ref = predict_factors2(x).numpy(), predict_factors2(x_ref).numpy()[0]
        keep = [i for i, ok in enumerate(readable_factors()) if ok]  # a factor it cannot read is only noise
    except (OSError, MGMError) as exc:
        warnings.warn(f"semantic locality from the shipped regressor only: {exc}", stacklevel=2)
        out["semantic_reader"] = "shipped"
    out["semantic_locality"] = semantic_locality(f[:, keep], f_ref[keep], [keep.index(i) for i in idx if i in keep])
    from .metrics import semantic_ranges

    ranges = semantic_ranges(f[:, idx], names)
    out["semantic_low"] = {n: lo for n, (lo, _) in ranges.items()}
    out["semantic_high"] = {n: hi for n, (_, hi) in ranges.items()}
    out["semantic_extent"] = {n: hi - lo for n, (lo, hi) in ranges.items()}
    if mask is not None:
        from .generators.toyfaces.realism import realism_metrics

        out.update(realism_metrics(G, frames, mask, 0.7 if truncation is None else truncation, cache_dir))
    if factor_change:
        out["factor_change"] = {n: float(np.abs(f[:, i] - f_ref[i]).max()) for i, n in enumerate(FACTORS)}
    return out
