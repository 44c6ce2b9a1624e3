"""Masked Jacobian: the local direction that changes the region most against the rest of the image.

In the spirit of LowRankGAN (Zhu, Feng, Shen, Zhao, Zhou, "Low-Rank Subspaces
in GANs", NeurIPS 2021, arXiv 2106.04488) and ReSeFa (Zhu, Shen, Xu, Zhao,
Chen, Zhou, "Region-Based Semantic Factorization in GANs", ICML 2022,
arXiv 2202.09649): at the reference w*, with J the Jacobian of the image with
respect to the free W+ layers and M the mask,

    A = Jᵀ diag(M) J / (3 Σ M),    B = Jᵀ diag(1 − M) J / (3 Σ (1 − M)),

so that for a small step d, ``dᵀA d ≈ D_in`` and ``dᵀB d ≈ D_out`` (the
engine's l2 distances).  The direction maximises

    ‖J_in d‖² / ‖J_out d‖² = dᵀA d / dᵀB d,

a generalised eigenproblem ``A d = λ B d``.  It is solved without ever forming
J: products ``J V`` by forward-mode AD (JVPs, :mod:`torch.autograd.forward_ad`)
and ``Jᵀ U`` by reverse mode (VJPs), in blocks of vectors, and

1. a randomised eigen-decomposition of B (Halko, Martinsson, Tropp 2011:
   range finder with power iterations, then Rayleigh–Ritz), rank r, giving
   ``B ≈ U Λ Uᵀ + λ_r (I − U Uᵀ)`` (the tail bounded by the r-th eigenvalue);
2. ``P = B̃^{-1/2}`` of that approximation, and a randomised top-k
   eigen-decomposition of the symmetric operator ``P A P``; ``d = P y``;
3. each direction's exact ratio ``dᵀA d / dᵀB d`` from one more product, by
   which the directions are sorted.

The cost is a few dozen batched JVP/VJP passes; memory is one batch of images.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from .errors import MGMError, SearchStopped

__all__ = ["masked_jacobian", "JacobianOperator"]


class JacobianOperator:
    """Products with A and B (see the module docstring) at w*, for blocks of free-layer vectors [k, F, D]."""

    def __init__(self, G, w_ref, mask, layers: tuple[int, int], stop=None):
        self.G = G
        self.stop = stop  # polled before each batch through the generator: True raises SearchStopped
        dev = G.w_avg.device
        self.w_ref = torch.as_tensor(np.asarray(w_ref, np.float32), device=dev)
        m = torch.as_tensor(np.asarray(mask, np.float32), device=dev)
        if m.shape != (G.resolution, G.resolution):
            raise MGMError(f"mask is {list(m.shape)} but the generator makes {G.resolution}x{G.resolution} images")
        self.m_in = m[None, None] / (3 * m.sum())
        self.m_out = (1 - m)[None, None] / (3 * (1 - m).sum())
        if not (m.sum() > 0 and (1 - m).sum() > 0):
            raise MGMError("the masked Jacobian needs a region that is neither empty nor the whole image")
        self.layers = layers
        self.shape = (layers[1] - layers[0], G.w_dim)
        self.products = 0

    def _assemble(self, free):
        ls, le = self.layers
        k = free.shape[0]
        w = self.w_ref
        return torch.cat([w[None, :ls].expand(k, -1, -1), free, w[None, le:].expand(k, -1, -1)], 1)

    def _poll(self) -> None:
        if self.stop is not None and self.stop():
            raise SearchStopped("stopped during the masked Jacobian")

    def jvp(self, V: torch.Tensor) -> torch.Tensor:
        """J V: image tangents [k, 3, H, W] for free-layer tangents V [k, F, D] (forward mode).

        torch builds some forward-mode formulas from TorchScript graphs of its decompositions the first time they
        are needed, and warns that ``torch.jit.script`` is deprecated while doing so: torch's own affair, not the
        user's, so that one warning is silenced here.
        """
        import warnings

        import torch.autograd.forward_ad as fwAD

        ls, le = self.layers
        out = []
        i = 0
        for size in free_layer_chunks(len(V), self.G):
            self._poll()
            v = V[i:i + size]
            with fwAD.dual_level(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
                free = fwAD.make_dual(self.w_ref[ls:le].expand(size, -1, -1).contiguous(), v.contiguous())
                try:
                    img = self.G.synthesis(self._assemble(free))
                except RuntimeError as exc:
                    raise MGMError(f"the jacobian baseline needs forward-mode AD through the generator: {exc}") from None
                t = fwAD.unpack_dual(img).tangent
            out.append(t if t is not None else torch.zeros_like(img))
            i += size
        return torch.cat(out)

    def vjp(self, U: torch.Tensor) -> torch.Tensor:
        """Jᵀ U: free-layer cotangents [k, F, D] for image cotangents U [k, 3, H, W] (reverse mode)."""
        ls, le = self.layers
        out = []
        i = 0
        for size in free_layer_chunks(len(U), self.G):
            self._poll()
            free = self.w_ref[ls:le].expand(size, -1, -1).clone().requires_grad_(True)
            with torch.enable_grad():
                img = self.G.synthesis(self._assemble(free))
                (g,) = torch.autograd.grad(img, free, U[i:i + size])
            out.append(g)
            i += size
        return torch.cat(out)

    def apply(self, V: np.ndarray, which=("A", "B")) -> dict:
        """{"A": A V, "B": B V} for V [k, F·D] (numpy, float64) -> [k, F·D]."""
        k = len(V)
        Vt = torch.as_tensor(V.reshape(k, *self.shape), dtype=torch.float32, device=self.w_ref.device)
        T = self.jvp(Vt)
        self.products += k
        out = {}
        for name in which:
            w = self.m_in if name == "A" else self.m_out
            out[name] = self.vjp(T * w).reshape(k, -1).double().cpu().numpy()
        return out


def _orth(Y: np.ndarray) -> np.ndarray:
    """Orthonormal basis [n, k] of the columns of Y [n, k]."""
    q, _ = np.linalg.qr(Y)
    return q


def _rand_eig(apply, n: int, k: int, power: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Top-k eigenpairs of a symmetric PSD operator ``apply(X [n, k]) -> [n, k]`` (randomised, Halko et al.)."""
    Q = _orth(apply(rng.standard_normal((n, k))))
    for _ in range(power):
        Q = _orth(apply(Q))
    T = Q.T @ apply(Q)
    lam, vec = np.linalg.eigh((T + T.T) / 2)
    order = np.argsort(lam)[::-1]
    return lam[order], Q @ vec[:, order]


def masked_jacobian(G, w_ref, mask, layers: tuple[int, int], *, k: int = 10, rank: int = 48,
                    oversample: int = 8, power: int = 1, seed: int = 0, cache_dir=None, stop=None) -> dict:
    """Top-``k`` generalised eigen-directions of (A, B) at w*: {"directions" [k, F, D] unit, "ratios" [k],
    "d_in_rate" [k] (dᵀAd), "d_out_rate" [k] (dᵀBd), "products"}; sorted by the exact ratio, largest first.

    Args:
        rank: rank of the randomised approximation of B (the outside).
        oversample: extra vectors in the block for the top-k of P A P.
        power: power iterations of each randomised range finder.
        cache_dir: keep the result there, keyed by the generator's weights, w*, the mask, the layers and the
            solver settings (a baseline job rebuilds its path from it).
        stop: polled before every batch through the generator; when it returns True,
            :class:`~mgm_analysis.errors.SearchStopped` is raised (a cancel need not wait for the whole solve).
    """
    path = None
    if cache_dir is not None:
        h = hashlib.sha256()
        for part in (generator_key(G), np.asarray(w_ref, np.float32).tobytes(), np.asarray(mask, np.float32).tobytes(),
                     repr((tuple(layers), k, rank, oversample, power, seed)).encode()):
            h.update(part if isinstance(part, bytes) else part.encode())
        path = Path(cache_dir) / f"jacobian-{h.hexdigest()[:24]}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return {key: z[key] for key in z.files} | {"products": int(z["products"]), "rank": int(z["rank"]),
                                                           "floor": float(z["floor"]), "cached": True}
    res = _solve(G, w_ref, mask, layers, k=k, rank=rank, oversample=oversample, power=power, seed=seed, stop=stop)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **{key: np.asarray(v) for key, v in res.items()})
        os.replace(tmp, path)
    return res | {"cached": False}


def _solve(G, w_ref, mask, layers, *, k, rank, oversample, power, seed, stop=None) -> dict:
    op = JacobianOperator(G, w_ref, mask, layers, stop)
    n = op.shape[0] * op.shape[1]
    rank = min(rank, n)
    rng = np.random.default_rng(seed)

    def apply_B(X):  # X [n, m] -> [n, m]
        return op.apply(X.T, ("B",))["B"].T

    lam_b, U = _rand_eig(apply_B, n, rank, power, rng)
    lam_b = np.maximum(lam_b, 0)
    floor = max(lam_b[-1], 1e-6 * lam_b[0], 1e-30)
    lam_eff = np.maximum(lam_b, floor)

    def P(X):  # B̃^{-1/2} X
        c = U.T @ X
        return U @ (c / np.sqrt(lam_eff)[:, None]) + (X - U @ c) / np.sqrt(floor)

    def apply_C(X):
        return P(op.apply(P(X).T, ("A",))["A"].T)

    kk = min(k + oversample, n)
    _, Y = _rand_eig(apply_C, n, kk, power + 1, rng)
    D = P(Y).T                                               # [kk, n]
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    AB = op.apply(D)
    a = (D * AB["A"]).sum(1)
    b = (D * AB["B"]).sum(1)
    ratio = a / np.maximum(b, 1e-30)
    order = np.argsort(ratio)[::-1][:k]
    if not np.isfinite(ratio).all():
        raise MGMError("the masked Jacobian produced NaN or inf; the generator may be broken at this reference")
    return {"directions": D[order].reshape(len(order), *op.shape), "ratios": ratio[order], "d_in_rate": a[order],
            "d_out_rate": b[order], "products": op.products, "rank": rank, "floor": floor}


def chunk_sizes(n: int, chunk_size: int, device_type: str = "cpu", resolution: int = 64) -> list[int]:
    """Split ``n`` latents into near-equal chunks of at most ``chunk_size`` (0 = automatic).

    Automatic: on CPU at most 48 latents per call up to 64² (36 frames in one call ran 0.25–0.30 s per
    energy+gradient against 0.33 s in chunks of 12 on 2 cores; benchmarks/bench_engine.py), 4 up to 256², 1
    above; on a GPU everything up to 256², 4 at 1024².
    """
    if chunk_size <= 0:
        if device_type != "cpu":
            chunk_size = n if resolution <= 256 else 4
        else:
            chunk_size = 48 if resolution <= 64 else 4 if resolution <= 256 else 1
    parts = -(-n // max(1, chunk_size))
    base, extra = divmod(n, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def generator_key(G) -> str:
    """A stable id of a generator's weights: its checkpoint sha256, else the sha256 of its state dict."""
    sha = getattr(getattr(G, "info", None), "sha256", None)
    if sha:
        return str(sha)
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def free_layer_chunks(n: int, G) -> list[int]:
    return chunk_sizes(n, 0, G.w_avg.device.type, G.resolution)
