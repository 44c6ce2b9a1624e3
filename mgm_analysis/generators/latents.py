"""Latents of a generator and the generator of a run: seed → reference latent (one owner), and which
generator made a stored run (by its run.json), loaded when needed.

Torch is imported inside the functions that run a generator, so reading a run's generator spec needs none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MGMError

__all__ = ["reference_latent", "reference_latents", "generator_spec", "generator_for", "check_generator"]

def reference_latent(G, seed: int | None = None, file=None, truncation: float = 0.7,
                     truncation_cutoff: int | None = None) -> tuple[np.ndarray, dict]:
    """The W+ reference latent [num_ws, w_dim] (float32) and its ``reference`` metadata.

    From ``file`` (a ``.npy`` of [num_ws, w_dim], [1, num_ws, w_dim], [w_dim] or [1, w_dim], or a run folder,
    whose ``reference.npy`` is used), else from ``seed``: ``z ~ N(0, I)`` drawn by
    ``torch.Generator().manual_seed(seed)``, then the mapping network with ``truncation`` (on the first
    ``truncation_cutoff`` W+ layers only, when given: NVIDIA's meaning).
    """
    import torch

    if file is not None:
        path = Path(file)
        if path.is_dir():
            path = path / "reference.npy"
        if not path.exists():
            raise MGMError(f"--reference {path}: no such file; give a .npy of shape [{G.num_ws}, {G.w_dim}] or "
                           f"[{G.w_dim}]")
        from ..run_schema import load_float_npy

        w = np.array(load_float_npy(path, f"--reference {path}"), np.float32, order="C")
        if w.shape == (1, G.num_ws, G.w_dim):
            w = w[0]
        if w.shape in ((G.w_dim,), (1, G.w_dim)):
            w = np.broadcast_to(w.reshape(1, -1), (G.num_ws, G.w_dim)).copy()
        if w.shape != (G.num_ws, G.w_dim):
            raise MGMError(f"--reference {path} has shape {list(w.shape)}; the generator needs "
                           f"[{G.num_ws}, {G.w_dim}] (W+) or [{G.w_dim}] (w)")
        return w, {"seed": None, "truncation": None, "file": str(path.resolve())}
    if seed is None:
        raise MGMError("give --seed N or --reference W.npy")
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        if truncation_cutoff is None:
            w = G.mapping(z.to(G.w_avg.device), truncation)
        else:
            w = G.mapping(z.to(G.w_avg.device), truncation, truncation_cutoff=truncation_cutoff)
        w = G.broadcast(w)[0].cpu().numpy()
    info = {"seed": int(seed), "truncation": truncation, "file": None}
    if truncation_cutoff is not None:
        info["truncation_cutoff"] = int(truncation_cutoff)
    return np.array(w, np.float32, order="C"), info


def generator_spec(meta: dict) -> str | None:
    """What ``load_generator`` needs to rebuild a run's generator from its run.json: the built-in name, or the
    checkpoint path; None when neither is known."""
    from . import BUILTIN

    g = (meta or {}).get("generator") or {}
    if g.get("name") in BUILTIN and (g.get("format") == "builtin" or not g.get("path")):
        return g["name"]
    return g.get("path") or None


def generator_for(run, cache: dict | None = None, device: str = "cpu"):
    """Load the generator recorded in a run's ``run.json``, memoised in ``cache`` (by spec and device)."""
    from . import load_generator

    spec = generator_spec(run.meta)
    if not spec:
        g = run.meta.get("generator") or {}
        raise MGMError(f"run {run.run_id} was made by {g.get('name', 'an unknown generator')!r}, which is neither "
                       "built in nor a checkpoint on disk; pass the generator explicitly")
    cache = {} if cache is None else cache
    if (spec, device) not in cache:
        cache[(spec, device)] = load_generator(spec, device=device)
    return cache[(spec, device)]


# ------------------------------------------------------------------ helpers
def reference_latents(G, references, truncation: float = 0.7) -> list[tuple[np.ndarray, dict]]:
    """W+ reference latents [num_ws, w_dim] with their ``reference`` metadata, from seeds or arrays.

    ``references``: an iterable of int seeds (mapped exactly as ``mgm discover --seed``
    does, by :func:`mgm_analysis.generators.latents.reference_latent`), and/or arrays ``[num_ws, w_dim]`` or
    ``[w_dim]``; or one array ``[K, num_ws, w_dim]``.
    """
    if isinstance(references, np.ndarray) and references.ndim == 3:
        references = list(references)
    out = []
    for ref in references:
        if isinstance(ref, (int, np.integer)):
            out.append(reference_latent(G, int(ref), truncation=truncation))
            continue
        w = np.asarray(ref, np.float32)
        if w.shape == (G.w_dim,):
            w = np.broadcast_to(w, (G.num_ws, G.w_dim)).copy()
        if w.shape != (G.num_ws, G.w_dim):
            raise MGMError(f"a transfer reference has shape {list(w.shape)}; the generator needs "
                           f"[{G.num_ws}, {G.w_dim}] (W+) or [{G.w_dim}] (w)")
        out.append((w, {"seed": None, "truncation": None, "file": None}))
    return out


def check_generator(run, G) -> None:
    """MGMError unless ``G`` makes latents and images of the shapes the run has."""
    if tuple(run.latents.shape[1:]) != (G.num_ws, G.w_dim):
        raise MGMError(f"run {run.run_id} has W+ latents of {list(run.latents.shape[1:])} but the generator's W+ is "
                       f"[{G.num_ws}, {G.w_dim}]; use the generator that made the run")
    if tuple(run.mask.shape) != (G.resolution, G.resolution):
        raise MGMError(f"run {run.run_id} has a {run.mask.shape[0]}x{run.mask.shape[1]} mask but the generator makes "
                       f"{G.resolution}x{G.resolution} images; use the generator that made the run")
