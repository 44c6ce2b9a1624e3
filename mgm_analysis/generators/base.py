"""The generator interface: the only thing the engine and analysis know about a model."""

from __future__ import annotations

from contextlib import contextmanager
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


class LatentSpace:
    """The W-space methods every generator here shares: mapping with truncation, mean w, broadcast to W+.

    A subclass provides ``z_to_w(z)`` (its mapping network, [B, z_dim] -> [B, w_dim]),
    ``z_dim``, ``num_ws``, ``w_dim`` and a ``w_avg`` buffer.
    """

    def z_to_w(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mapping(self, z: torch.Tensor, truncation: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [B, z_dim] -> w [B, w_dim]; ψ = ``truncation`` ≠ 1 moves w towards (ψ < 1) or away from ``w_avg``.

        With ``truncation_cutoff`` (NVIDIA's argument) only the first ``cutoff`` of
        the ``num_ws`` layers are truncated, so the result is W+ [B, num_ws, w_dim]
        (``broadcast`` passes W+ through unchanged).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [B, {self.z_dim}], got {list(z.shape)}")
        w = self.z_to_w(z)
        if truncation_cutoff is None:
            return self.truncate(w, truncation)
        if isinstance(truncation_cutoff, bool) or not isinstance(truncation_cutoff, int) or truncation_cutoff < 0:
            raise ValueError(f"truncation_cutoff must be an integer >= 0 (layers to truncate), got {truncation_cutoff!r}")
        ws = self.broadcast(w).clone()
        ws[:, :truncation_cutoff] = self.truncate(ws[:, :truncation_cutoff], truncation)
        return ws

    def truncate(self, w: torch.Tensor, truncation: float = 1.0, w_avg: torch.Tensor | None = None) -> torch.Tensor:
        """``w_avg + ψ·(w − w_avg)`` for ψ ≠ 1 (w of shape [B, w_dim] or W+ [B, num_ws, w_dim])."""
        if truncation == 1:
            return w
        t = (self.w_avg if w_avg is None else w_avg).reshape(-1)
        return t + truncation * (w - t)

    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean of ``mapping(z)`` over ``n`` seeded normal z, [w_dim]."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g).to(self.w_avg.device)
        with torch.no_grad():
            return self.z_to_w(z).mean(0)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w [B, w_dim] -> ws [B, num_ws, w_dim]; a W+ [B, num_ws, w_dim] (a cut-off truncation) is returned as is."""
        if w.ndim == 3 and w.shape[1:] == (self.num_ws, self.w_dim):
            return w
        return w[:, None, :].expand(-1, self.num_ws, -1)


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


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (None or 0: as they are), then put the count back: a library
    call made in a notebook or another program leaves that process's setting as it found it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
