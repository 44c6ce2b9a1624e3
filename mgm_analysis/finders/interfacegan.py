"""InterFaceGAN: a linear boundary in W per attribute; its normal is the edit direction.

Shen, Gu, Tang, Zhou, "Interpreting the Latent Space of GANs for Semantic Face
Editing", CVPR 2020 (arXiv 1907.10786).

For an attribute with labels on sampled latents, fit a linear classifier (a
linear SVM, as the paper) separating the latents with the attribute high from
those with it low; the unit normal n of its hyperplane ``nᵀw + b = 0`` is the
direction, ``w' = w + x·n``.  The *conditional* variant removes the other
attributes' normals N = [n_1 … n_m] from it,

    n_cond = (I − N (NᵀN)⁻¹ Nᵀ) n,   normalised,

so that moving along n_cond leaves their classifiers' scores unchanged.

Labels: on toyfaces the ground truth — the prior gives each z its factors,
``factors(z)``, and ``w = mapping(z)``; on other models a CSV of seeds or w
files with attribute columns (:func:`labels_from_csv`).  Continuous labels are
split into the top and bottom ``extreme`` fraction (the middle is ambiguous and
left out), binary labels are used as they are.  Features are standardised for
the SVM and the normal mapped back to w.

The methods (:data:`METHODS`): ``interfacegan`` offers one normal per factor of the region (or per ``--attributes``
column), ``interfacegan_cond`` the same normals conditioned on the other attributes; each is applied to every free
layer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import MGMError
from ..generators.latents import reference_latent
from .registry import Method

__all__ = ["fit_boundaries", "conditional_normal", "toyfaces_samples", "labels_from_csv", "boundaries_for",
           "interfacegan_directions", "METHODS"]


def _binary(y: np.ndarray, extreme: float) -> tuple[np.ndarray, np.ndarray]:
    """(selected rows, 0/1 labels): binary labels as they are, else the bottom/top ``extreme`` quantiles."""
    vals = np.unique(y[np.isfinite(y)])
    if len(vals) <= 2:
        sel = np.flatnonzero(np.isfinite(y))
        return sel, (y[sel] == vals.max()).astype(int)
    lo, hi = np.quantile(y, [extreme, 1 - extreme])
    sel = np.flatnonzero((y <= lo) | (y >= hi))
    return sel, (y[sel] >= hi).astype(int)


def fit_boundaries(w, labels, *, extreme: float = 0.3, C: float = 0.1, seed: int = 0) -> dict:
    """One linear SVM per label column: {"normals" [F, D] unit, "accuracy" [F] (held-out 20 %), "n" [F]}.

    Args:
        w: latents [N, D]; labels: [N, F] numbers (binary or continuous).
        extreme: fraction at each end of a continuous label used as negatives/positives.
        C: SVM regularisation (on standardised features).
    """
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    w, labels = np.asarray(w, np.float64), np.asarray(labels, np.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    if w.ndim != 2 or labels.ndim != 2 or len(w) != len(labels):
        raise ValueError(f"expected w [N, D] and labels [N, F], got {list(w.shape)} and {list(labels.shape)}")
    if not 0 < extreme <= 0.5:
        raise ValueError(f"extreme must be in (0, 0.5], got {extreme}")
    rng = np.random.default_rng(seed)
    normals, acc, counts = [], [], []
    for f in range(labels.shape[1]):
        sel, y = _binary(labels[:, f], extreme)
        if len(np.unique(y)) < 2 or min(np.bincount(y)) < 5:
            raise MGMError(f"label column {f} has fewer than 5 examples of one class; it cannot train a boundary")
        perm = rng.permutation(len(sel))
        n_test = max(1, len(sel) // 5)
        test, train = perm[:n_test], perm[n_test:]
        x = w[sel]
        scaler = StandardScaler().fit(x[train])
        svm = LinearSVC(C=C, dual=False, max_iter=5000).fit(scaler.transform(x[train]), y[train])
        acc.append(float(svm.score(scaler.transform(x[test]), y[test])))
        n = svm.coef_[0] / scaler.scale_          # the hyperplane in the original w coordinates
        normals.append(n / np.linalg.norm(n))
        counts.append(len(sel))
    return {"normals": np.stack(normals), "accuracy": np.asarray(acc), "n": np.asarray(counts)}


def conditional_normal(normals, target: int, others) -> np.ndarray:
    """The target normal with the span of the ``others`` normals projected out, unit length."""
    normals = np.asarray(normals, np.float64)
    n = normals[target]
    others = [int(o) for o in others if int(o) != target]
    if others:
        N = normals[others].T                                  # [D, m]
        n = n - N @ np.linalg.lstsq(N, n, rcond=None)[0]
    norm = np.linalg.norm(n)
    if norm < 1e-8:
        raise MGMError("the conditional boundary vanished: the other attributes' normals span the target's")
    return n / norm


def toyfaces_samples(G, n: int = 20_000, seed: int = 0, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(w [n, w_dim], ground-truth factors [n, 17]) of sampled z: w = mapping(z), factors = the prior's factors(z)."""
    import torch

    from ..generators.toyfaces.prior import factors_from_z

    g = torch.Generator().manual_seed(seed)
    ws, fs = [], []
    with torch.no_grad():
        for i in range(0, n, batch):
            z = torch.randn(min(batch, n - i), G.z_dim, generator=g)
            ws.append(G.mapping(z.to(G.w_avg.device)).double().cpu().numpy())
            fs.append(factors_from_z(z).double().numpy())
    return np.concatenate(ws), np.concatenate(fs)


def labels_from_csv(path, G, *, truncation: float = 0.7, layers: tuple[int, int] | None = None,
                    attributes=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a labels CSV: (w [N, w_dim], labels [N, F], attribute names).

    Columns: ``seed`` (z from ``torch.randn`` seeded so, mapped with ``truncation``,
    as ``mgm discover --seed``) or ``w`` (a .npy path, [w_dim] or [num_ws, w_dim];
    W+ rows are averaged over ``layers``), plus one numeric column per attribute
    (0/1 or continuous).  ``attributes`` picks columns (default: all others).
    """
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise MGMError(f"--labels {path}: not a readable CSV ({exc})") from None
    key = "seed" if "seed" in df.columns else "w" if "w" in df.columns else None
    if key is None:
        raise MGMError(f"--labels {path}: missing column 'seed' or 'w' (columns: {', '.join(map(str, df.columns))}); "
                       "give one latent per row as a seed or a .npy path")
    names = [c for c in df.columns if c not in ("seed", "w")]
    if attributes:
        missing = [a for a in attributes if a not in df.columns]
        if missing:
            raise MGMError(f"--labels {path}: missing attribute column(s) {', '.join(missing)} "
                           f"(columns: {', '.join(map(str, df.columns))})")
        names = list(attributes)
    if not names:
        raise MGMError(f"--labels {path}: no attribute columns besides '{key}'; add one numeric column per attribute")
    try:
        labels = df[names].to_numpy(np.float64)
    except ValueError:
        raise MGMError(f"--labels {path}: attribute columns must be numbers (0/1 or scores)") from None
    if len(df) < 20:
        raise MGMError(f"--labels {path}: {len(df)} rows; a boundary needs at least 20 labelled latents")
    ws = []
    if key == "seed":
        try:
            seeds = df["seed"].astype(int).tolist()
        except ValueError:
            raise MGMError(f"--labels {path}: the seed column must hold integers") from None
        for s in seeds:  # seed -> w exactly as a run's reference (its W+ rows are that w)
            ws.append(reference_latent(G, int(s), truncation=truncation)[0][0].astype(np.float64))
    else:
        for p in df["w"].astype(str):
            f = (path.parent / p) if not Path(p).is_absolute() else Path(p)
            try:
                a = np.asarray(np.load(f, allow_pickle=False), np.float64)
            except (OSError, ValueError) as exc:
                raise MGMError(f"--labels {path}: cannot read w file {f} ({exc})") from None
            if a.shape == (G.num_ws, G.w_dim):
                ls, le = layers or (0, G.num_ws)
                a = a[ls:le].mean(0)
            if a.shape != (G.w_dim,):
                raise MGMError(f"--labels {path}: w file {f} has shape {list(a.shape)}; need [{G.w_dim}] or "
                               f"[{G.num_ws}, {G.w_dim}]")
            ws.append(a)
    return np.stack(ws), labels, names


def boundaries_for(G, *, labels=None, n_samples: int = 20_000, seed: int = 0, cache_dir=None, extreme: float = 0.3,
                   truncation: float = 0.7, layers=None) -> dict:
    """Boundaries of every attribute: {"names", "normals" [F, w_dim], "accuracy" [F], "source"}.

    ``labels``: a CSV path (any generator), or None for toyfaces' ground-truth factors (cached per generator).
    """
    from ..directions import generator_key
    from ..generators.toyfaces.renderer import FACTORS

    if labels is not None:
        w, y, names = labels_from_csv(labels, G, truncation=truncation, layers=layers)
        fit = fit_boundaries(w, y, extreme=extreme, seed=seed)
        return {"names": names, **fit, "source": str(labels)}
    if getattr(getattr(G, "info", None), "name", None) != "toyfaces":
        raise MGMError("interfacegan needs labels on this generator: pass --labels CSV (columns seed or w, and one "
                       "per attribute); only toyfaces has ground-truth factors built in")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"interfacegan-{generator_key(G)[:16]}-n{n_samples}-s{seed}-e{extreme}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return {"names": list(FACTORS), "normals": z["normals"], "accuracy": z["accuracy"], "n": z["n"],
                        "source": "toyfaces prior", "cached": True}
    w, y = toyfaces_samples(G, n_samples, seed)
    fit = fit_boundaries(w, y, extreme=extreme, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, normals=fit["normals"], accuracy=fit["accuracy"], n=fit["n"],
                 meta=np.asarray(json.dumps({"generator": generator_key(G), "seed": seed})))
        tmp.replace(path)
    return {"names": list(FACTORS), **fit, "source": "toyfaces prior", "cached": False}


def _region_factors(region_name: str | None) -> list[str]:
    from ..presets import REGION_FACTORS

    return list(REGION_FACTORS.get(region_name or "", []))


def interfacegan_directions(ctx, conditional: bool = False):
    """The method: one boundary normal per attribute of the region — toyfaces' ground-truth factors of a preset
    region, or the ``--labels`` CSV's columns (``--attributes``) — named by the attribute, with each boundary's
    held-out accuracy; ``conditional``: each normal with the other attributes' projected out."""
    method, region = ctx.method or ("interfacegan_cond" if conditional else "interfacegan"), ctx.region
    G, labels, attributes = ctx.G, ctx.labels, ctx.attributes
    if labels is None and getattr(getattr(G, "info", None), "name", None) != "toyfaces":
        raise MGMError(f"{method} needs labels on this generator: pass --labels CSV (columns seed or w, and one "
                       "per attribute); only toyfaces has ground-truth factors built in")
    if labels is None:  # toyfaces: the region's own factors; a region without any cannot be reached
        wanted = _region_factors(getattr(region, "name", None) if getattr(region, "layout", None) else None)
        if not wanted:
            raise MGMError(f"{method} cannot reach region {getattr(region, 'spec', region)!r}: no labelled factor "
                           "belongs to it (toyfaces presets with factors: mouth, eyes, left_eye, right_eye, "
                           "brows, nose); pass --labels with attributes of that region")
    b = boundaries_for(G, labels=labels, seed=ctx.seed, cache_dir=ctx.cache_dir, truncation=ctx.truncation,
                       layers=ctx.layers)
    names = b["names"]
    if labels is not None:
        wanted = list(attributes) if attributes else list(names)
    missing = [a for a in wanted if a not in names]
    if missing:
        raise MGMError(f"{method}: attribute(s) {', '.join(missing)} are not in the labels "
                       f"({', '.join(names)})")
    if not wanted:
        raise MGMError(f"{method} cannot reach region {getattr(region, 'spec', region)!r}: no labelled factor "
                       "belongs to it (toyfaces presets with factors: mouth, eyes, left_eye, right_eye, brows, "
                       "nose); pass --labels with attributes of that region")
    idx = [names.index(a) for a in wanted]
    if conditional:
        others = [i for i in range(len(names)) if i not in idx]
        normals = [conditional_normal(b["normals"], i, others) for i in idx]
    else:
        normals = [b["normals"][i] for i in idx]
    return np.stack([np.asarray(v, np.float64) for v in normals]), wanted, {
        "accuracy": {a: float(b["accuracy"][i]) for a, i in zip(wanted, idx, strict=True)},
        "labels": b["source"], "conditional_on": [names[i] for i in range(len(names)) if i not in idx]
        if conditional else []}


def _conditional_directions(ctx):
    return interfacegan_directions(ctx, conditional=True)


METHODS = (
    Method("interfacegan", interfacegan_directions, default=True, order=30,
           description="a linear SVM boundary in W per factor of the region (Shen et al. 2020; --labels "
                       "except on toyfaces)"),
    Method("interfacegan_cond", _conditional_directions, default=False, order=40,
           description="InterFaceGAN's conditional variant: each boundary with the other attributes' projected out"),
)
