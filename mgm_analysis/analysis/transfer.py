"""Transfer and combination of discovered manifolds: the paper's demos, with numbers.

* :func:`transfer` adds a run's deltas ``Δ_i = w_i − w*`` to K other reference
  latents and scores locality there (``transfer_locality``): high means the
  manifold is a reusable control, not a property of one face.
* :func:`combine` adds the deltas of two runs found on the same reference,
  ``w* + Δ_A,i + Δ_B,i``, and scores locality on the union of their masks
  (``combined_locality``), the change each run alone causes inside the other's
  region (``a_change_in_b``, ``b_change_in_a``) and how much adding the other
  run's deltas disturbs each edit inside its own region (``interference_a``,
  ``interference_b``: ``RMS_M(x_AB − x_A) / RMS_M(x_A − x*)``, 0 = untouched).

Both write ordinary runs (``provenance.kind`` = ``transfer`` | ``combine``,
``provenance.sources`` = the source run ids), so everything downstream reads
them like any other run.  This module runs the generator, so it needs torch;
the rest of :mod:`mgm_analysis.analysis` does not.
"""

from __future__ import annotations

import warnings
from itertools import combinations
from pathlib import Path

import numpy as np

from .. import store
from ..errors import MGMError
from .metrics import inside_change, locality, run_metrics

__all__ = ["transfer", "combine", "derive_runs", "reference_latents", "generator_for"]


# ------------------------------------------------------------------ helpers
def _render(G, ws) -> np.ndarray:
    from ..render import render_frames

    return render_frames(G, np.asarray(ws, np.float32))


def reference_latents(G, references, truncation: float = 0.7) -> list[tuple[np.ndarray, dict]]:
    """W+ reference latents [num_ws, w_dim] with their ``reference`` metadata, from seeds or arrays.

    ``references``: an iterable of int seeds (mapped exactly as ``mgm discover --seed``
    does: ``z ~ N(0, I)`` from ``torch.Generator().manual_seed(seed)``, then the
    mapping network with ``truncation``), and/or arrays ``[num_ws, w_dim]`` or
    ``[w_dim]``; or one array ``[K, num_ws, w_dim]``.
    """
    import torch

    if isinstance(references, np.ndarray) and references.ndim == 3:
        references = list(references)
    out = []
    for ref in references:
        if isinstance(ref, (int, np.integer)):
            z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(ref)))
            with torch.no_grad():
                w = G.broadcast(G.mapping(z.to(G.w_avg.device), truncation))[0].cpu().numpy()
            out.append((w.astype(np.float32), {"seed": int(ref), "truncation": truncation, "file": None}))
            continue
        w = np.asarray(ref, np.float32)
        if w.shape == (G.w_dim,):
            w = np.broadcast_to(w, (G.num_ws, G.w_dim)).copy()
        if w.shape != (G.num_ws, G.w_dim):
            raise MGMError(f"a transfer reference has shape {list(w.shape)}; the generator needs "
                           f"[{G.num_ws}, {G.w_dim}] (W+) or [{G.w_dim}] (w)")
        out.append((w, {"seed": None, "truncation": None, "file": None}))
    return out


def _check_generator(run: store.Run, G) -> None:
    if tuple(run.latents.shape[1:]) != (G.num_ws, G.w_dim):
        raise MGMError(f"run {run.run_id} has W+ latents of {list(run.latents.shape[1:])} but the generator's W+ is "
                       f"[{G.num_ws}, {G.w_dim}]; use the generator that made the run")
    if tuple(run.mask.shape) != (G.resolution, G.resolution):
        raise MGMError(f"run {run.run_id} has a {run.mask.shape[0]}x{run.mask.shape[1]} mask but the generator makes "
                       f"{G.resolution}x{G.resolution} images; use the generator that made the run")


def _semantic(G, frames, ref_img, regions) -> dict:
    """Semantic locality through the toyfaces factor regressor; {} for other generators or without the regressor."""
    if getattr(getattr(G, "info", None), "name", None) != "toyfaces":
        return {}
    try:
        import torch

        from ..generators.toyfaces.regressor import predict_factors
        from ..generators.toyfaces.renderer import FACTORS
        from ..presets import REGION_FACTORS
        from .metrics import semantic_locality

        names = sorted({n for r in regions for n in REGION_FACTORS.get(r, [])})
        if not names:
            return {}

        def to_t(a):
            return torch.from_numpy(np.asarray(a, np.float32)).permute(0, 3, 1, 2) * 2 - 1

        f = predict_factors(to_t(frames)).numpy()
        f_ref = predict_factors(to_t(ref_img[None])).numpy()[0]
        return {"semantic_locality": semantic_locality(f, f_ref, [FACTORS.index(n) for n in names])}
    except (ImportError, OSError, MGMError) as exc:  # no regressor weights: the image metrics still stand
        warnings.warn(f"semantic locality skipped: {exc}", stacklevel=2)
        return {}


def _write(G, out, *, ws, w_ref, mask, source_meta, region, ref_info, seed, provenance, extra_metrics) -> Path:
    frames = _render(G, ws)
    ref_img = _render(G, w_ref[None])[0]
    cfg = dict(source_meta.get("config") or {})
    layers = (cfg.get("layer_start", 0), cfg.get("layer_end", ws.shape[1]))
    metrics = run_metrics(ws, w_ref, frames, ref_img, mask, layers=layers, closed=bool(cfg.get("closed_loop")))
    regions = provenance.get("regions") or [region]
    metrics.update(_semantic(G, frames, ref_img, regions))
    metrics.update(extra_metrics(frames, ref_img))
    src_region = source_meta.get("region") or {}
    meta = {
        "status": "complete",
        "region": {**src_region, "name": region, "spec": provenance.get("region_spec", src_region.get("spec", region)),
                   "area_share": float(np.mean(mask))},
        "generator": G.info.to_dict() if getattr(G, "info", None) is not None else source_meta.get("generator", {}),
        "reference": ref_info, "seed": seed, "config": cfg, "history": {}, "timings": {},
        "metrics": metrics, "provenance": provenance,
    }
    run_id = store.new_run_id(f"{provenance['kind']}_{region}", seed)
    return store.write_run(out, meta=meta, latents=ws, reference=w_ref, reference_img=ref_img, mask=mask,
                           frames=frames, run_id=run_id)


# ----------------------------------------------------------------- transfer
def transfer(run: store.Run, G, references, *, truncation: float | None = None, out=None) -> list[Path]:
    """Apply ``run``'s deltas to other references; write and return one new run per reference.

    Args:
        run: a discovered run.
        G: the generator that made it.
        references: seeds and/or W+ latents (see :func:`reference_latents`); a
            seed equal to the run's own reference seed is skipped.
        truncation: for seeds; defaults to the run's own reference truncation (else 0.7).
        out: store folder for the new runs (default: the run's own store).

    Each new run has ``metrics.transfer_locality`` (its locality on the run's
    mask) next to every ordinary metric, and ``metrics.source_locality``.
    """
    _check_generator(run, G)
    if truncation is None:
        truncation = (run.meta.get("reference") or {}).get("truncation") or 0.7
    out = Path(out) if out is not None else run.path.parent
    deltas = run.latents - run.reference[None]
    own_seed = (run.meta.get("reference") or {}).get("seed")
    src_loc = (run.meta.get("metrics") or {}).get("locality")
    paths = []
    for w_ref, ref_info in reference_latents(G, references, truncation):
        if own_seed is not None and ref_info["seed"] == own_seed:
            continue
        ws = (w_ref[None] + deltas).astype(np.float32)
        mask = run.mask

        def extra(frames, ref_img, mask=mask):
            return {"transfer_locality": locality(frames, ref_img, mask), "source_locality": src_loc}

        paths.append(_write(G, out, ws=ws, w_ref=w_ref, mask=mask, source_meta=run.meta, region=run.region,
                            ref_info=ref_info, seed=ref_info["seed"], extra_metrics=extra,
                            provenance={"kind": "transfer", "sources": [run.run_id], "source_region": run.region,
                                        "source_reference": (run.meta.get("reference") or {}),
                                        "regions": [run.region]}))
    return paths


# ---------------------------------------------------------------- combine
def combine(run_a: store.Run, run_b: store.Run, G, *, out=None) -> Path:
    """Add the deltas of two runs found on the same reference; write and return the combined run.

    Frame i of the new run is ``w* + (w_A,i − w*) + (w_B,i − w*)`` (the first
    min(n_A, n_B) frames), its mask the union ``max(M_A, M_B)``.
    """
    for r in (run_a, run_b):
        _check_generator(r, G)
    if not np.allclose(run_a.reference, run_b.reference, atol=1e-6):
        raise MGMError(f"runs {run_a.run_id} and {run_b.run_id} have different reference latents; combine runs "
                       "discovered on the same reference")
    n = min(len(run_a.latents), len(run_b.latents))
    w_ref = run_a.reference
    da, db = run_a.latents[:n] - w_ref[None], run_b.latents[:n] - w_ref[None]
    ws = (w_ref[None] + da + db).astype(np.float32)
    ma, mb = run_a.mask, run_b.mask
    union = np.maximum(ma, mb)
    fa, fb = _render(G, w_ref[None] + da), _render(G, w_ref[None] + db)

    def rms_in(diff, mask):
        return float(np.sqrt((((diff**2).mean(-1) * mask).sum((1, 2)) / max(mask.sum(), 1e-12)).mean()))

    def extra(frames, ref_img):
        a_in_a, b_in_b = inside_change(fa, ref_img, ma)["rms"], inside_change(fb, ref_img, mb)["rms"]
        return {
            "combined_locality": locality(frames, ref_img, union),
            "a_change_in_a": a_in_a,
            "b_change_in_b": b_in_b,
            "a_change_in_b": inside_change(fa, ref_img, mb)["rms"],
            "b_change_in_a": inside_change(fb, ref_img, ma)["rms"],
            "interference_a": rms_in(frames - fa, ma) / a_in_a if a_in_a > 0 else float("nan"),
            "interference_b": rms_in(frames - fb, mb) / b_in_b if b_in_b > 0 else float("nan"),
        }

    out = Path(out) if out is not None else run_a.path.parent
    region = f"{run_a.region}+{run_b.region}"
    spec_a = (run_a.meta.get("region") or {}).get("spec", run_a.region)
    spec_b = (run_b.meta.get("region") or {}).get("spec", run_b.region)
    return _write(G, out, ws=ws, w_ref=w_ref, mask=union, source_meta=run_a.meta, region=region,
                  ref_info=run_a.meta.get("reference") or {}, seed=run_a.meta.get("seed"), extra_metrics=extra,
                  provenance={"kind": "combine", "sources": [run_a.run_id, run_b.run_id],
                              "regions": [run_a.region, run_b.region], "region_spec": f"{spec_a} + {spec_b}"})


# ------------------------------------------------------------- whole store
def generator_for(run: store.Run, cache: dict | None = None, device: str = "cpu"):
    """Load the generator recorded in a run's ``run.json`` (built-in name or checkpoint path), memoised in ``cache``."""
    from ..generators import BUILTIN, load_generator

    g = run.meta.get("generator") or {}
    spec = g.get("name") if g.get("name") in BUILTIN else g.get("path")
    if not spec:
        raise MGMError(f"run {run.run_id} was made by {g.get('name', 'an unknown generator')!r}, which is neither "
                       "built in nor a checkpoint on disk; pass the generator explicitly")
    cache = {} if cache is None else cache
    if spec not in cache:
        cache[spec] = load_generator(spec, device=device)
    return cache[spec]


def _kind(run) -> str:
    return (run.meta.get("provenance") or {}).get("kind", "discover")


def derive_runs(root, *, transfer_k: int = 0, combine_pairs: bool = False, G=None, seeds=None,
                device: str = "cpu", quiet: bool = True) -> list[Path]:
    """Transfer every complete discovered run to ``transfer_k`` references and/or combine every pair of regions
    found on the same reference; returns the new run folders.

    Idempotent: sources that already have a transfer (or a combination) in the
    store are skipped.  Transfer seeds default to 1000, 1001, …  ``G``: one
    generator for every run (default: each run's own, from its run.json).
    """
    runs = [r for r in store.iter_runs(root) if _kind(r) == "discover" and r.status == "complete"]
    done = set()
    for r in store.iter_runs(root, warn=False):
        prov = r.meta.get("provenance") or {}
        if prov.get("kind") in ("transfer", "combine"):
            done.add((prov["kind"], tuple(sorted(prov.get("sources", [])))))
    seeds = list(seeds) if seeds is not None else list(range(1000, 1000 + transfer_k))[:transfer_k]
    cache: dict = {}

    def gen(run):
        return G if G is not None else generator_for(run, cache, device)

    todo_t = [r for r in runs if transfer_k and ("transfer", (r.run_id,)) not in done]
    pairs = []
    if combine_pairs:
        groups: dict = {}
        for r in runs:
            key = ((r.meta.get("generator") or {}).get("name"), (r.meta.get("generator") or {}).get("sha256"),
                   r.reference.shape, np.round(r.reference, 4).tobytes())
            groups.setdefault(key, []).append(r)
        for group in groups.values():
            for a, b in combinations(sorted(group, key=lambda r: (r.region, r.run_id)), 2):
                if a.region != b.region and ("combine", tuple(sorted([a.run_id, b.run_id]))) not in done:
                    pairs.append((a, b))
    from tqdm.auto import tqdm

    new = []
    with tqdm(total=len(todo_t) + len(pairs), desc="transfer/combine", unit="run", disable=quiet) as bar:
        for r in todo_t:
            new += transfer(r, gen(r), seeds[:transfer_k])
            bar.update()
        for a, b in pairs:
            new.append(combine(a, b, gen(a)))
            bar.update()
    return new
