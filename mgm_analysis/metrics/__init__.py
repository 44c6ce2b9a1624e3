"""Metrics of a discovered manifold: pure numpy functions, no torch (:mod:`.measures`), and the registry of
run metrics that every list of metrics reads (:mod:`.registry`).

Notation: frames ``x_i`` [n, H, W, 3] in [0, 1], reference ``x*`` [H, W, 3],
mask ``M`` [H, W] in [0, 1] with area share ``A = mean(M)``, latents ``w_i``
[n, ...] (flattened when norms are taken), latent steps
``s_i = ‖w_{i+1} − w_i‖`` and image steps ``d_i = RMS(x_{i+1} − x_i)``.

Every function checks its shapes, returns a float (or a small dict / list) and
never prints.  Undefined values (nothing changes, too few frames, an empty mask,
NaN or infinite input such as a diverged search) are NaN: a metric never raises
on the values it is given, so a run is always saved with its metrics.

>>> import numpy as np
>>> M = np.zeros((4, 4)); M[:2] = 1
>>> ref = np.zeros((4, 4, 3)); fr = np.zeros((2, 4, 4, 3)); fr[:, :2] = 0.5
>>> locality(fr, ref, M)
1.0
"""

from __future__ import annotations

from .measures import (
    change_f1,
    curvature,
    image_step_cv,
    image_steps,
    inside_change,
    inside_path,
    intrinsic_dim,
    jump_ratio,
    layer_profile,
    locality,
    locality_gain,
    loop_closure,
    outside_change,
    path_length,
    perceptual_straightness,
    semantic_locality,
    semantic_ranges,
    spread,
    step_cv,
    step_sizes,
    turning_angle,
)
from .registry import (
    EXTRA_INPUTS,
    INPUTS,
    VIEWS,
    Metric,
    MetricPluginWarning,
    applicable,
    get_metric,
    metric_names,
    metric_options,
    metric_problems,
    register_metric,
    registered_metrics,
    run_metrics,
    unregister_metric,
)
from .verdicts import EXTENT_BARS, QUALITY_BARS, describe_extent, explores, quality_failures

__all__ = [
    "locality", "locality_gain", "outside_change", "inside_change", "change_f1", "step_sizes", "step_cv",
    "image_steps", "image_step_cv", "jump_ratio", "curvature", "turning_angle", "perceptual_straightness",
    "loop_closure", "path_length", "spread", "inside_path", "explores", "EXTENT_BARS", "QUALITY_BARS",
    "quality_failures", "intrinsic_dim",
    "layer_profile", "semantic_locality", "semantic_ranges", "describe_extent", "run_metrics",
    "metric_options", "Metric", "INPUTS", "EXTRA_INPUTS", "VIEWS", "register_metric", "unregister_metric",
    "registered_metrics", "get_metric", "metric_names", "metric_problems", "applicable", "MetricPluginWarning",
]
