"""The generator interface (DESIGN §2): the only thing the engine and analysis know about a model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Generator(Protocol):
    """A ``torch.nn.Module`` in eval mode with a W+ latent space.

    Attributes: ``w_dim`` (width of w), ``num_ws`` (W+ layers), ``resolution``
    (image side), ``w_avg`` ([w_dim] mean w, for truncation), ``info``
    (a :class:`GeneratorInfo` filled by the loader).
    """

    w_dim: int
    num_ws: int
    resolution: int
    w_avg: torch.Tensor

    def mapping(self, z: torch.Tensor, truncation: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [B, z_dim] -> w [B, w_dim]; truncation ψ < 1 pulls w towards ``w_avg``.

        With ``truncation_cutoff`` only the first ``cutoff`` layers are truncated
        (NVIDIA's meaning) and the result is W+ [B, num_ws, w_dim].
        """

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w [B, w_dim] -> ws [B, num_ws, w_dim]; W+ passes through."""

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [B, num_ws, w_dim] -> images [B, 3, H, W], nominally in [-1, 1]."""


@dataclass
class GeneratorInfo:
    """What a run records about the generator that made it."""

    name: str                      # registered name ("toyfaces") or file stem
    format: str                    # "rosinality", "rosinality-state-dict", "rosinality-training", "nvidia-pickle", "builtin"
    path: str | None               # checkpoint file, None for in-memory models
    sha256: str | None             # of the checkpoint file
    resolution: int
    num_ws: int
    w_dim: int
    num_params: int
    extra: dict = field(default_factory=dict)  # format-specific notes (fp16 layers, conv_clamp, ...)

    def to_dict(self) -> dict:
        return asdict(self)
