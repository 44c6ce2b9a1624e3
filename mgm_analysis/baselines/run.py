"""One baseline run: a method's candidate directions -> the oracle's pick at equal strength -> an ordinary run.

:func:`baseline_trajectory` is pure (no files): it returns the latents, the
chosen component, the scale and what was tried.  :func:`run_baseline` writes it
into a store like any discovered run (``provenance.kind = "baseline"``), so
``mgm render``, ``mgm analyze`` and the dashboard read it unchanged.

Fairness rules (the same for every method):

* the same free layers, number of frames and target offset as a discovery
  run on that region (``config.default_config``): at strength K the target
  is K·c, c the region's default offset (or ``--offset``);
* equal strength: the straight path through w* is scaled so that its mean
  inside distance on the frames as saved equals K·c (:func:`.common.equal_strength`);
* unsupervised methods (GANSpace, SeFa, the masked Jacobian) offer their top 10
  components and the one with the best locality on the region at equal
  strength is kept — an oracle choice that favours the baseline; InterFaceGAN
  offers one boundary per factor of the region and the same rule picks among
  them.  The index (or factor) is recorded;
* ``jacobian_loop`` is a closed path, not a line: the ellipse in the plane of
  the two masked-Jacobian directions the same oracle ranks best, its axes in
  the ratio of their equal-strength scales (so every frame is at about the same
  inside distance), scaled to equal strength.  *Equal extent*: when the store
  holds a discovered run of the same face, region and target, the ellipse is
  cut to the arc whose inside path (:func:`mgm_analysis.metrics.inside_path`)
  equals that run's; else (or when the run's path is longer than the ellipse's)
  the whole loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MGMError
from .common import broadcast_direction, ellipse_t, equal_strength, line_latents, path_t, unit_directions

__all__ = ["METHODS", "DEFAULT_METHODS", "LOOP_METHODS", "BaselineResult", "candidate_directions",
           "baseline_trajectory", "run_baseline", "job_baseline", "parse_methods", "parse_strengths",
           "discovered_extent", "MAX_STRENGTHS"]

from ..errors import RunReadError
from . import DEFAULT_METHODS, LOOP_METHODS, METHODS  # noqa: E402  (the names live in the torch-free package root)

TOP_K = 10
#: at most this many strengths in one ``--strengths`` list
MAX_STRENGTHS = 16
#: an arc's inside path is matched to the discovered run's within this share (at most 4 tries)
ARC_TOL = 0.02


def parse_methods(text) -> list[str]:
    """``"ganspace,sefa"`` -> ["ganspace", "sefa"]; an unknown name is one MGMError line."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m and m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise MGMError(f"unknown method(s) {', '.join(bad)}; known: {', '.join(METHODS)}")
    if not names:
        raise MGMError(f"--methods is empty; give some of {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def parse_strengths(text, flag: str = "--strengths", limit: int = MAX_STRENGTHS) -> list[float]:
    """``"1,2,4,8"`` -> [1.0, 2.0, 4.0, 8.0]: multiples K of the region's target c, each finite and > 0, at most
    ``limit`` of them, duplicates dropped; a number or a list of them is taken too.  Anything else is one
    MGMError line that names ``flag`` (nothing has been written when the commands check it)."""
    example = f"e.g. {flag} 1,2,4,8" if limit > 1 else f"e.g. {flag} 2"
    if isinstance(text, str):
        items = [p.strip() for p in text.split(",")]
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        items = [text]
    else:
        items = list(text or [])
    items = [p for p in items if not (isinstance(p, str) and not p)]
    if not items:
        raise MGMError(f"{flag} is empty; give {'multiples' if limit > 1 else 'a multiple'} of the region's "
                       f"target offset c, {example}")
    if len(items) > limit:
        raise MGMError(f"{flag} has {len(items)} values; give at most {limit}, {example}")
    out = []
    for p in items:
        try:
            if isinstance(p, bool):
                raise TypeError
            v = float(p)
        except (TypeError, ValueError):
            raise MGMError(f"{flag} {text}: {p!r} is not a number; a strength is a multiple K > 0 of the region's "
                           f"target offset c, {example}") from None
        if not (math.isfinite(v) and v > 0):
            raise MGMError(f"{flag} {text}: {p} is not a finite number > 0; a strength is a multiple K > 0 of the "
                           f"region's target offset c, {example}")
        out.append(v)
    return list(dict.fromkeys(out))


@dataclass
class BaselineResult:
    """What :func:`baseline_trajectory` returns."""

    method: str
    ws: np.ndarray                     # [n, num_ws, w_dim]
    component: str                     # chosen component ("PC3", "EV0", "mouth_open", "J0")
    component_index: int               # its index among the candidates
    scale: float                       # latent distance of the path's ends from w* (free layers)
    d_in: float                        # mean D_in over the frames reached (≈ c)
    candidates: list = field(default_factory=list)   # [{component, scale, d_in, reached, locality}]
    info: dict = field(default_factory=dict)         # method-specific figures (explained variance, ratios, ...)
    timings: dict = field(default_factory=dict)      # directions_s, strength_s, total_s
    closed: bool = False                             # the path is a closed loop (jacobian_loop's whole ellipse)
    path: dict = field(default_factory=dict)         # a loop's shape: components, axes, sweep, closed, extent


def _region_factors(region_name: str | None) -> list[str]:
    from ..presets import REGION_FACTORS

    return list(REGION_FACTORS.get(region_name or "", []))


def candidate_directions(method: str, G, w_ref, region, layers: tuple[int, int], *, cache_dir=None, labels=None,
                         attributes=None, truncation: float = 0.7, k: int = TOP_K, seed: int = 0):
    """(directions [K, F, w_dim] unit, names [K], info) offered by ``method`` for ``region`` at w*."""
    n_free = layers[1] - layers[0]
    if method == "ganspace":
        from .ganspace import ganspace_components

        pcs = ganspace_components(G, k=k, seed=seed, cache_dir=cache_dir)
        dirs = np.stack([broadcast_direction(v, n_free) for v in pcs["components"]])
        return unit_directions(dirs), [f"PC{i}" for i in range(len(dirs))], {
            "explained_variance": [float(v) for v in pcs["explained"]], "n_samples": pcs["n_samples"],
            "cached": pcs["cached"]}
    if method == "sefa":
        from .sefa import sefa_components

        ev = sefa_components(G, layers, k=k)
        dirs = np.stack([broadcast_direction(v, n_free) for v in ev["components"]])
        return unit_directions(dirs), [f"EV{i}" for i in range(len(dirs))], {
            "eigenvalues": [float(v) for v in ev["eigenvalues"]], "style_layers": ev["layers"]}
    if method in ("interfacegan", "interfacegan_cond"):
        from .interfacegan import boundaries_for, conditional_normal

        if labels is None and getattr(getattr(G, "info", None), "name", None) != "toyfaces":
            raise MGMError(f"{method} needs labels on this generator: pass --labels CSV (columns seed or w, and one "
                           "per attribute); only toyfaces has ground-truth factors built in")
        if labels is None:  # toyfaces: the region's own factors; a region without any cannot be reached
            wanted = _region_factors(getattr(region, "name", None) if getattr(region, "layout", None) else None)
            if not wanted:
                raise MGMError(f"{method} cannot reach region {getattr(region, 'spec', region)!r}: no labelled factor "
                               "belongs to it (toyfaces presets with factors: mouth, eyes, left_eye, right_eye, "
                               "brows, nose); pass --labels with attributes of that region")
        b = boundaries_for(G, labels=labels, seed=seed, cache_dir=cache_dir, truncation=truncation, layers=layers)
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
        if method == "interfacegan_cond":
            others = [i for i in range(len(names)) if i not in idx]
            normals = [conditional_normal(b["normals"], i, others) for i in idx]
        else:
            normals = [b["normals"][i] for i in idx]
        dirs = np.stack([broadcast_direction(v, n_free) for v in normals])
        return unit_directions(dirs), wanted, {
            "accuracy": {a: float(b["accuracy"][i]) for a, i in zip(wanted, idx, strict=True)},
            "labels": b["source"], "conditional_on": [names[i] for i in range(len(names)) if i not in idx]
            if method == "interfacegan_cond" else []}
    if method in ("jacobian", "jacobian_loop"):  # the loop: the same directions, an ellipse instead of a line
        from ..directions import masked_jacobian

        res = masked_jacobian(G, w_ref, region.mask, layers, k=k, seed=seed, cache_dir=cache_dir)
        return unit_directions(res["directions"]), [f"J{i}" for i in range(len(res["directions"]))], {
            "ratios": [float(v) for v in res["ratios"]], "jvp_vjp_vectors": int(res["products"]),
            "rank": int(res["rank"])}
    raise MGMError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def baseline_trajectory(method: str, G, w_ref, region, cfg, *, cache_dir=None, labels=None, attributes=None,
                        truncation: float = 0.7, seed: int = 0, k: int = TOP_K,
                        inside_path: float | None = None) -> BaselineResult:
    """The method's trajectory at equal strength on ``region`` around ``w_ref`` (no files).

    Args:
        cfg: the :class:`~mgm_analysis.config.DiscoveryConfig` of the region (frames, free layers, target
            offset — K·c at strength K —, distance, mask mode): the same a discovery run would use.
        region: a :class:`~mgm_analysis.masks.Region`.
        inside_path: for a loop method, the inside path of the discovered run to match (equal extent): the
            path is the arc of the ellipse with that inside path; None (or longer than the ellipse's) = the
            whole loop.
    Raises MGMError when the method cannot reach the region (no direction's path gets to the target).
    """
    from ..losses import make_distance

    t0 = time.perf_counter()
    cfg.check_generator(G.num_ws)
    layers = (cfg.layer_start, cfg.layer_end)
    w_ref = np.asarray(w_ref, np.float32)
    if w_ref.shape != (G.num_ws, G.w_dim):
        raise MGMError(f"reference latent has shape {list(w_ref.shape)}; the generator needs [{G.num_ws}, {G.w_dim}]")
    dirs, names, info = candidate_directions(method, G, w_ref, region, layers, cache_dir=cache_dir, labels=labels,
                                             attributes=attributes, truncation=truncation, k=k, seed=seed)
    t1 = time.perf_counter()
    dist = make_distance(torch.as_tensor(region.mask, dtype=torch.float32), cfg.distance, cfg.mask_mode,
                         tuple(region.boxes or ())).to(G.w_avg.device)
    t = path_t(cfg.n_frames)
    coarse = equal_strength(G, w_ref, dirs, cfg.offset, t, layers, dist, tol=0.03, mask=region.mask)
    cands = [{"component": name, "scale": float(coarse.scales[i]), "d_in": float(coarse.d_in[i]),
              "reached": bool(coarse.reached[i]),
              "locality": float(coarse.locality[i]) if coarse.reached[i] else None} for i, name in enumerate(names)]
    ok = [i for i, r in enumerate(cands) if r["locality"] is not None and np.isfinite(r["locality"])]
    if not ok:
        raise MGMError(f"{method} cannot reach region {region.spec!r}: none of its {len(names)} directions changes "
                       f"the region by the target offset c = {cfg.offset:g} (largest mean D_in "
                       f"{np.nanmax(coarse.d_in):.3g}); no run written")
    best = max(ok, key=lambda i: cands[i]["locality"])
    if method in LOOP_METHODS:
        return _loop_trajectory(method, G, w_ref, region, cfg, dist, dirs, names, cands, coarse, info,
                                inside_path=inside_path, t0=t0, t1=t1)
    fine = equal_strength(G, w_ref, dirs[best:best + 1], cfg.offset, t, layers, dist, tol=1e-3,
                          start=float(coarse.scales[best]) * 0.98)
    if not fine.reached[0]:
        raise MGMError(f"{method}: the path of {names[best]} does not settle at c = {cfg.offset:g} "
                       f"(reached {fine.d_in[0]:.4g}); no run written")
    t2 = time.perf_counter()
    ws = line_latents(w_ref, dirs[best], float(fine.scales[0]), t, layers)
    return BaselineResult(method=method, ws=ws, component=str(names[best]), component_index=int(best),
                          scale=float(fine.scales[0]), d_in=float(fine.d_in[0]), candidates=cands, info=info,
                          timings={"directions_s": t1 - t0, "strength_s": t2 - t1,
                                   "strength_passes": coarse.evaluations + fine.evaluations})


def loop_plane(dirs, components, axes) -> np.ndarray:
    """The ellipse's two axes [2, F, D] = (d_i, d_j·r) from unit directions [K, F, D], ``components`` (i, j) and
    ``axes`` (1, r): the path w* + s·(cos θ·d_i + sin θ·r·d_j) (:func:`.common.line_latents` with
    :func:`.common.ellipse_t`)."""
    i, j = (int(v) for v in components)
    return np.stack([dirs[i] * float(axes[0]), dirs[j] * float(axes[1])])


def _loop_trajectory(method, G, w_ref, region, cfg, dist, dirs, names, cands, coarse, info, *, inside_path, t0,
                     t1) -> BaselineResult:
    """``jacobian_loop``: the ellipse (or the equal-extent arc of it) in the plane of the oracle's two best
    directions, at equal strength (see the module docstring)."""
    from ..metrics import inside_path as measure_path
    from ..render import render_frames

    layers, n, c = (cfg.layer_start, cfg.layer_end), cfg.n_frames, cfg.offset
    ranked = sorted((i for i, r in enumerate(cands) if r["locality"] is not None and np.isfinite(r["locality"])),
                    key=lambda i: -cands[i]["locality"])
    if len(ranked) < 2:
        raise MGMError(f"{method} needs two directions that change region {region.spec!r} by the target offset "
                       f"{c:g}; {len(ranked)} of {len(names)} do; no run written")
    i, j = ranked[:2]
    # Axes in the ratio of the two lines' equal-strength scales: to second order D_in is then the same on every
    # frame of the ellipse (generalised eigenvectors are A-orthogonal, so no cross term).
    axes = (1.0, float(coarse.scales[j] / coarse.scales[i]))
    plane = loop_plane(dirs, (i, j), axes)[None]
    line_t = path_t(n)
    start = float(coarse.scales[i]) * math.sqrt(float(np.mean(line_t**2)))  # the line's mean t² is the ellipse's 1
    ref01 = render_frames(G, np.asarray(w_ref, np.float32)[None])[0]
    passes = coarse.evaluations

    def at(sweep, closed):
        nonlocal start, passes
        t = ellipse_t(n, sweep, closed)
        st = equal_strength(G, w_ref, plane, c, t, layers, dist, tol=1e-3, start=start * 0.98)
        passes += st.evaluations
        if not st.reached[0]:
            raise MGMError(f"{method}: the ellipse of {names[i]} and {names[j]} does not settle at c = {c:g} "
                           f"(reached {st.d_in[0]:.4g}); no run written")
        start = float(st.scales[0])
        ws = line_latents(w_ref, plane[0], start, t, layers)
        return ws, st, measure_path(render_frames(G, ws), ref01, region.mask, closed)

    full = 2 * math.pi
    extent = {"target_inside_path": None if inside_path is None else float(inside_path)}
    loop = at(full, True)
    chosen, sweep, closed, tries = loop, full, True, 0
    target = float(inside_path) if inside_path is not None and np.isfinite(inside_path) else None
    if target is not None and target < loop[2]:
        # An open arc of n frames over φ: its inside path is about (n − 1)·2·sin(φ / (2(n − 1))) (a circle
        # through the frames), so start there and correct by the measured ratio (the path grows about linearly
        # with φ).  Beyond the whole loop less one step the arc would overlap itself.  Kept: the arc or the loop
        # whose inside path is nearer the target.
        cap = full * (n - 1) / n
        phi = 2 * (n - 1) * math.asin(min(1.0, target / (2 * (n - 1))))
        while tries < 4 and phi < cap:
            tries += 1
            arc = at(phi, False)
            if abs(arc[2] - target) < abs(chosen[2] - target):
                chosen, sweep, closed = arc, phi, False
            if abs(arc[2] - target) <= ARC_TOL * target or not arc[2] > 0:
                break
            phi = min(phi * target / arc[2], cap)
    ws, st, got = chosen
    extent.update(sweep_deg=math.degrees(sweep), closed=closed, inside_path=float(got), tries=tries)
    t2 = time.perf_counter()
    path = {"components": [int(i), int(j)], "axes": list(axes), "sweep_deg": math.degrees(sweep), "closed": closed,
            "extent": extent}
    return BaselineResult(method=method, ws=ws, component=f"{names[i]}+{names[j]}", component_index=int(i),
                          scale=float(st.scales[0]), d_in=float(st.d_in[0]), candidates=cands, info=info,
                          timings={"directions_s": t1 - t0, "strength_s": t2 - t1, "strength_passes": passes},
                          closed=closed, path=path)


def job_baseline(ctx) -> np.ndarray:
    """The registered ``baseline`` job (see :func:`mgm_analysis.jobs.register_baseline`): latents [n, num_ws, w_dim].

    With ``params`` ``component_index`` and ``scale`` (what :func:`run_baseline` found) the path is rebuilt from
    the method's cached directions; without them the whole search runs here.
    """
    p = ctx.spec.params
    method = p["method"]
    cfg = ctx.config
    layers = (cfg.layer_start, cfg.layer_end)
    kw = dict(cache_dir=p.get("cache_dir"), labels=p.get("labels"), attributes=p.get("attributes"),
              truncation=cfg.truncation, seed=int(p.get("search_seed", 0)))
    if p.get("component_index") is not None and p.get("scale") is not None:
        dirs, names, _ = candidate_directions(method, ctx.G, ctx.w_ref, ctx.region, layers, **kw)
        i = int(p["component_index"])
        if not 0 <= i < len(names) or (p.get("component") is not None and names[i] != p["component"]
                                       and method not in LOOP_METHODS):
            raise MGMError(f"{method}: component {p.get('component')} (index {i}) is not among this generator's "
                           f"candidates ({', '.join(names)})")
        if method in LOOP_METHODS:
            shape = p.get("path") or {}
            comps = shape.get("components") or []
            if len(comps) != 2 or not all(0 <= int(v) < len(names) for v in comps):
                raise MGMError(f"{method}: the loop's components {comps} are not among this generator's "
                               f"candidates ({', '.join(names)})")
            t = ellipse_t(cfg.n_frames, math.radians(float(shape["sweep_deg"])), bool(shape["closed"]))
            return line_latents(ctx.w_ref, loop_plane(dirs, comps, shape["axes"]), float(p["scale"]), t, layers)
        return line_latents(ctx.w_ref, dirs[i], float(p["scale"]), path_t(cfg.n_frames), layers)
    return baseline_trajectory(method, ctx.G, ctx.w_ref, ctx.region, cfg, **kw).ws


def discovered_extent(root, G, region, w_ref, offset: float) -> tuple[float, str] | None:
    """(inside path, run id) of the newest complete discovered run in store ``root`` of the same generator,
    region, reference latent and target offset (K·c) — what a loop baseline's arc matches (equal extent) — or
    None when the store has none (or no such folder exists)."""
    from .. import store

    root = Path(root)
    if not root.is_dir():
        return None
    sha = getattr(getattr(G, "info", None), "sha256", None)
    name = getattr(getattr(G, "info", None), "name", None)
    best = None
    for r in store.iter_runs(root, warn=False, data=False):
        m = r.meta
        gen, reg, cfg = m.get("generator") or {}, m.get("region") or {}, m.get("config") or {}
        ip = (m.get("metrics") or {}).get("inside_path")
        if (store.run_kind(m) != "discover" or m.get("status") != "complete" or not isinstance(ip, (int, float))
                or (gen.get("sha256") or gen.get("name")) != (sha or name) or reg.get("spec") != region.spec
                or reg.get("layout") != region.layout or not isinstance(cfg.get("offset"), (int, float))
                or not math.isclose(float(cfg["offset"]), float(offset), rel_tol=1e-6)):
            continue
        try:
            same = np.allclose(np.asarray(r.reference, np.float32), w_ref, rtol=0, atol=1e-6)
        except (OSError, ValueError, RunReadError):
            continue
        if same and (best is None or (str(m.get("created") or ""), r.run_id) > best[0]):
            best = ((str(m.get("created") or ""), r.run_id), float(ip), r.run_id)
    return None if best is None else (best[1], best[2])


def run_baseline(G, method: str, region: str, *, seed: int | None = 0, reference=None, out="runs",
                 layout: str | None = None, cache_dir=None, labels=None, attributes=None, config: dict | None = None,
                 strength: float = 1.0, quiet: bool = True) -> Path:
    """Everything ``mgm baselines`` does for one method: check input, search, and write the run through
    :func:`mgm_analysis.jobs.run_job` (``kind = "baseline"``).

    Args:
        region: a region spec (preset, rect:..., PNG mask, ...).
        seed / reference: the reference latent (a seed mapped with the config's truncation, or a .npy / run folder).
        cache_dir: where per-generator caches go (default ``<out>/.mgm_cache/baselines``).
        config: DiscoveryConfig overrides (offset c, n_frames, layer_start/layer_end, truncation, ...) — the
            same a discovery run of this region would take.
        strength: K > 0: the path's mean inside distance is K·c, c = the config's offset (the region's default
            unless ``config["offset"]``); recorded as ``params.strength`` (and the offset K·c in ``config``).
    Returns the run folder.  Bad input or an unreachable region: MGMError, nothing written.
    """
    from .. import store
    from ..config import default_config
    from ..generators.latents import generator_spec, reference_latent
    from ..jobs import JobSpec, prepare_out, run_job
    from ..masks import default_layout, parse_region

    t0 = time.perf_counter()
    if method not in METHODS:
        raise MGMError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    strength = parse_strengths(strength, "--strength", 1)[0]
    name = getattr(getattr(G, "info", None), "name", None)
    gen = generator_spec({"generator": G.info.to_dict()}) if getattr(G, "info", None) is not None else None
    if not gen:
        raise MGMError("the generator has no name or checkpoint path to record in the run")
    config = {k: v for k, v in (config or {}).items() if v is not None}
    reg = parse_region(region, G.resolution, layout or default_layout(G))
    region_name = reg.name if reg.layout else None
    rest = {k: v for k, v in config.items() if k != "distance"}
    c = default_config(name, config.get("distance"), region=region_name, **rest).offset
    config["offset"] = strength * c
    try:
        cfg = default_config(name, config.get("distance"), region=region_name, **{**rest, "offset": config["offset"]})
    except MGMError as exc:
        raise MGMError(f"--strength {strength:g} on region {region} (c = {c:g}): {exc}") from None
    cfg.check_generator(G.num_ws)
    if labels is not None:
        labels = str(Path(labels).expanduser().resolve())
    w_ref, _ = reference_latent(G, seed, reference, cfg.truncation)
    out_path = Path(out).expanduser()
    created = not out_path.exists()
    out_path = prepare_out(out_path)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_path / ".mgm_cache" / "baselines"
    try:
        from ..discovery import with_run_noise
    except ImportError:  # a DiscoveryConfig without noise modes
        def with_run_noise(G, cfg):
            return G
    extent = discovered_extent(out_path, G, reg, w_ref, cfg.offset) if method in LOOP_METHODS else None
    try:
        res = baseline_trajectory(method, with_run_noise(G, cfg), w_ref, reg, cfg, cache_dir=cache_dir,
                                  labels=labels, attributes=attributes, truncation=cfg.truncation,
                                  inside_path=extent[0] if extent else None)
    except MGMError:
        if created:
            import shutil

            shutil.rmtree(out_path / ".mgm_cache", ignore_errors=True)
            try:
                out_path.rmdir()
            except OSError:
                pass
        raise
    if res.path:
        res.path["extent"]["source_run"] = extent[1] if extent else None
    params = {"method": method, "component": res.component, "component_index": res.component_index,
              "scale": res.scale, "d_in": res.d_in, "candidates": res.candidates, "info": res.info,
              "cache_dir": str(cache_dir.resolve()), "labels": labels,
              "attributes": list(attributes) if attributes else None, "strength": strength, "c": c,
              **({"path": res.path} if res.path else {})}
    # the run's config says what the path is: an open line or arc (its metrics count no closing step), or a loop
    spec = JobSpec(kind="baseline", generator=gen, region=region, seed=None if reference is not None else seed,
                   reference=str(reference) if reference is not None else None, layout=layout,
                   config={**config, "closed_loop": res.closed}, params=params)
    path = run_job(spec, out_path, G=G, quiet=True)
    total = time.perf_counter() - t0
    meta = store.update_run_meta(path, {"timings": {**res.timings, "baseline_s": total},
                                        "metrics": {"equal_strength_d_in": res.d_in}})
    if not quiet:
        import click

        m = meta.get("metrics", {})
        sl = f", semantic locality {m['semantic_locality']:.3f}" if "semantic_locality" in m else ""
        click.echo(f"{method}: {path}  ({res.component}, scale {res.scale:.3g}, {total:.1f} s; locality "
                   f"{m.get('locality', float('nan')):.3f}{sl}, jump ratio {m.get('jump_ratio', float('nan')):.2f})")
    return path
