"""The built-in ``toyfaces`` model: procedural faces with known factors, a small StyleGAN2 trained on
them, and a factor regressor that reads the factors back from any image.

* :mod:`.renderer` — ``render(factors)``: the ground-truth face drawer; ``FACTORS``, ``FACTOR_REGION``.
* :mod:`.prior` — ``factors_from_z(z)``: the fixed, entangling z -> factors map.
* :mod:`.train` — the generator's training recipe (``python -m mgm_analysis.generators.toyfaces.train``).
* :mod:`.regressor` — ``load_regressor()``, ``predict_factors(img)``.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import CheckpointError

__all__ = ["load_toyfaces", "data_path", "WEIGHTS", "REGRESSOR_WEIGHTS"]

WEIGHTS = "toyfaces_G.pt"
REGRESSOR_WEIGHTS = "toyfaces_regressor.pt"


def load_shipped_weights(path: str | None, default: str, what: str, module: str) -> dict:
    """The saved dict of a shipped model (``path`` or ``mgm_analysis/data/<default>``), read with
    ``weights_only=True``.

    A missing file is a :class:`CheckpointError` naming ``what`` and how to retrain it (``python -m module``).
    """
    import torch

    p = Path(path) if path else data_path(default)
    if not p.exists():
        raise CheckpointError(f"{what} weights are missing ({p}); retrain with `python -m {module}`")
    return torch.load(p, map_location="cpu", weights_only=True)


def data_path(name: str) -> Path:
    """Path of a shipped data file: ``mgm_analysis/data/<name>`` (package data, installed or in a checkout)."""
    return Path(__file__).resolve().parents[2] / "data" / name


def load_toyfaces(device: str = "cpu"):
    """The built-in 64×64 StyleGAN2 trained on procedural faces (frozen, eval mode)."""
    from ..checkpoints import load_checkpoint

    path = data_path(WEIGHTS)
    if not path.exists():
        raise CheckpointError(f"the built-in toyfaces weights are missing ({path}); reinstall the package or "
                              "retrain them with `python -m mgm_analysis.generators.toyfaces.train`")
    G = load_checkpoint(path, device=device)
    G.info.name = "toyfaces"
    G.info.format = "builtin"
    G.info.extra["layout"] = "toyfaces"
    return G
