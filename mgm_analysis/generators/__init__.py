"""Generators: the interface, StyleGAN2, checkpoint formats, and the built-in ``toyfaces`` model.

``load_generator(spec)`` takes a registered name (see :data:`BUILTIN`) or a
checkpoint path and returns a frozen generator in eval mode with ``.info``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError

__all__ = ["Generator", "GeneratorInfo", "load_generator", "BUILTIN"]


def __getattr__(name):
    """``Generator`` and ``GeneratorInfo`` come from :mod:`.base` on first use, so that importing this package
    (for :data:`BUILTIN`, e.g. to build a job spec and its key) does not import torch."""
    if name in ("Generator", "GeneratorInfo"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load_toyfaces(device):
    from .toyfaces import load_toyfaces

    return load_toyfaces(device=device)


#: built-in generators by name -> loader(device)
BUILTIN = {"toyfaces": _load_toyfaces}


def load_generator(spec: str | Path = "toyfaces", device: str = "cpu"):
    """Load a generator by registered name or checkpoint path (.pt rosinality, .pkl NVIDIA)."""
    spec_str = str(spec)
    if spec_str in BUILTIN:
        return BUILTIN[spec_str](device)
    path = Path(spec_str).expanduser()
    if not path.exists() and path.suffix == "" and "/" not in spec_str:
        names = ", ".join(sorted(BUILTIN))
        raise CheckpointError(f"unknown generator {spec_str!r}: not a built-in name ({names}) and no such file; "
                              "pass a built-in name or a checkpoint path")
    from .checkpoints import load_checkpoint

    G = load_checkpoint(path, device=device)
    _check_finite(G, path)
    return G


def _check_finite(G, path) -> None:
    """A generator whose weights hold NaN or infinity cannot make an image: one line, before any search."""
    import torch

    with torch.no_grad():
        bad = sum(int((~torch.isfinite(t)).sum()) for t in [*G.parameters(), *G.buffers()] if t.is_floating_point())
        total = sum(t.numel() for t in [*G.parameters(), *G.buffers()] if t.is_floating_point())
    if bad:
        raise CheckpointError(f"{path}: {bad} of {total} weights are NaN or infinite, so it cannot make an image "
                              "(a diverged or damaged checkpoint); use another checkpoint")
