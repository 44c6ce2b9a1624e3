"""The toyfaces ground-truth prior: z ∈ R^512 ~ N(0, I) -> factors in [0, 1].

``factors = Φ(A z)`` with ``A`` a fixed, seeded F×512 Gaussian matrix whose rows
have unit norm, so each ``(A z)_f`` is standard normal and each factor is
uniform on [0, 1] (Φ is the normal CDF).  Every z direction moves every factor:
the factors are as entangled in z as a real GAN's attributes are.
"""

from __future__ import annotations

import functools
import math

import torch

from .renderer import NUM_FACTORS

__all__ = ["Z_DIM", "PRIOR_SEED", "factor_matrix", "factors_from_z"]

Z_DIM = 512
PRIOR_SEED = 20200514  # fixed: the prior is part of the model's definition


@functools.lru_cache(maxsize=4)
def factor_matrix(seed: int = PRIOR_SEED, z_dim: int = Z_DIM) -> torch.Tensor:
    """A [NUM_FACTORS, z_dim], rows normalised to unit length."""
    a = torch.randn(NUM_FACTORS, z_dim, generator=torch.Generator().manual_seed(seed))
    return a / a.norm(dim=1, keepdim=True)


def factors_from_z(z: torch.Tensor) -> torch.Tensor:
    """z [B, 512] -> factors [B, NUM_FACTORS] in [0, 1]."""
    if z.ndim != 2 or z.shape[1] != Z_DIM:
        raise ValueError(f"z must be [B, {Z_DIM}], got {list(z.shape)}")
    u = z.float() @ factor_matrix().to(z.device).t()
    return 0.5 * (1 + torch.erf(u / math.sqrt(2.0)))
