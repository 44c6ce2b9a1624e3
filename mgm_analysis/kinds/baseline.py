"""The ``baseline`` run kind: a direction finder's path at equal strength, the oracle's pick.

A method only offers directions (:mod:`mgm_analysis.finders.registry`: built in, an entry point or registered at
run time); what follows is applied by the toolkit to every one of them.  Fairness rules (the same for every method):

* the same free layers, number of frames and target offset as a discovery
  run on that region (``config.default_config``): at strength K the target
  is K·c, c the region's default offset (or ``--offset``);
* equal strength: the straight path through w* is scaled so that its mean
  inside distance on the frames as saved equals K·c (:func:`mgm_analysis.finders.common.equal_strength`);
* unsupervised methods (GANSpace, SeFa, the masked Jacobian) offer their top 10
  components and the one with the best locality on the region at equal
  strength is kept — an oracle choice that favours the baseline; InterFaceGAN
  offers one boundary per factor of the region and the same rule picks among
  them; any other method's directions likewise.  The index and name are recorded;
* a method whose path is a loop (``jacobian_loop``) is a closed path, not a line: the ellipse in the plane of
  the two directions the same oracle ranks best, its axes in
  the ratio of their equal-strength scales (so every frame is at about the same
  inside distance), scaled to equal strength.  *Equal extent*: when the store
  holds a discovered run of the same face, region and target, the ellipse is
  cut to the arc whose inside path (:func:`mgm_analysis.metrics.inside_path`)
  equals that run's; else (or when the run's path is longer than the ellipse's)
  the whole loop.

:func:`baseline_trajectory` is pure (no files).  :func:`build` is the kind: it searches (or, when the spec's
``params`` already hold a component and a scale, rebuilds that path from the method's cached directions) and
hands :func:`mgm_analysis.jobs.run_job` the latents, the provenance and the timings to write — one search, one
write.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MGMError, RunReadError
from ..finders.common import ellipse_t, equal_strength, line_latents, path_t
from ..finders.registry import TOP_K, candidate_directions, get_method

__all__ = ["BaselineResult", "baseline_trajectory", "loop_plane", "discovered_extent", "build"]


#: an arc's inside path is matched to the discovered run's within this share (at most 4 tries)
ARC_TOL = 0.02


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


def baseline_trajectory(method: str, G, w_ref, region, cfg, *, cache_dir=None, labels=None, attributes=None,
                        truncation: float = 0.7, seed: int = 0, k: int = TOP_K,
                        inside_path: float | None = None, stop=None) -> BaselineResult:
    """The method's trajectory at equal strength on ``region`` around ``w_ref`` (no files).

    Args:
        cfg: the :class:`~mgm_analysis.config.DiscoveryConfig` of the region (frames, free layers, target
            offset — K·c at strength K —, distance, mask mode): the same a discovery run would use.
        region: a :class:`~mgm_analysis.masks.Region`.
        inside_path: for a loop method, the inside path of the discovered run to match (equal extent): the
            path is the arc of the ellipse with that inside path; None (or longer than the ellipse's) = the
            whole loop.
        stop: passed to the method (``ctx.stop``; the masked Jacobian polls it).
    Raises MGMError when the method cannot reach the region (no direction's path gets to the target);
    :class:`~mgm_analysis.errors.SearchStopped` when ``stop`` said stop.
    """
    from ..losses import make_distance

    t0 = time.perf_counter()
    cfg.check_generator(G.num_ws)
    layers = (cfg.layer_start, cfg.layer_end)
    w_ref = np.asarray(w_ref, np.float32)
    if w_ref.shape != (G.num_ws, G.w_dim):
        raise MGMError(f"reference latent has shape {list(w_ref.shape)}; the generator needs [{G.num_ws}, {G.w_dim}]")
    dirs, names, info = candidate_directions(method, G, w_ref, region, layers, cache_dir=cache_dir, labels=labels,
                                             attributes=attributes, truncation=truncation, k=k, seed=seed,
                                             stop=stop)
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
    if get_method(method).path == "loop":
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
    """A loop method (``jacobian_loop``): the ellipse (or the equal-extent arc of it) in the plane of the oracle's
    two best directions, at equal strength (see the module docstring)."""
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


def _rebuild(job) -> np.ndarray:
    """The path a spec's ``params`` already name (``component_index``, ``scale`` and for a loop its ``path``),
    rebuilt from the method's cached directions without a search: latents [n, num_ws, w_dim]."""
    p = job.spec.params
    method, cfg = p["method"], job.config
    layers = (cfg.layer_start, cfg.layer_end)
    dirs, names, _ = candidate_directions(method, job.G, job.w_ref, job.region, layers, cache_dir=p.get("cache_dir"),
                                          labels=p.get("labels"), attributes=p.get("attributes"),
                                          truncation=cfg.truncation, seed=int(p.get("search_seed", 0)))
    i = int(p["component_index"])
    loop = get_method(method).path == "loop"
    if not 0 <= i < len(names) or (p.get("component") is not None and names[i] != p["component"] and not loop):
        raise MGMError(f"{method}: component {p.get('component')} (index {i}) is not among this generator's "
                       f"candidates ({', '.join(names)})")
    if loop:
        shape = p.get("path") or {}
        comps = shape.get("components") or []
        if len(comps) != 2 or not all(0 <= int(v) < len(names) for v in comps):
            raise MGMError(f"{method}: the loop's components {comps} are not among this generator's "
                           f"candidates ({', '.join(names)})")
        t = ellipse_t(cfg.n_frames, math.radians(float(shape["sweep_deg"])), bool(shape["closed"]))
        return line_latents(job.w_ref, loop_plane(dirs, comps, shape["axes"]), float(p["scale"]), t, layers)
    return line_latents(job.w_ref, dirs[i], float(p["scale"]), path_t(cfg.n_frames), layers)


def build(job, *, progress=None, watch=None):
    """The ``baseline`` kind: the method's search at the job's target offset (K·c), or the rebuild of a path its
    ``params`` already name.  ``params``: ``method`` (required), ``strength`` K, ``labels``/``attributes``
    (InterFaceGAN), ``cache_dir`` (default ``<store>/.mgm_cache/baselines``).  The search's results (component,
    scale, candidates, the loop's shape and equal extent) are recorded in ``provenance.params``."""
    from ..discovery import Trajectory, with_run_noise
    from . import Built

    p = dict(job.spec.params)
    method, cfg = p["method"], job.config
    loop = get_method(method).path == "loop"  # an unknown method: one line before anything else
    if p.get("component_index") is not None and p.get("scale") is not None:
        ws = _rebuild(job)
        return Built(trajectory=Trajectory(ws=torch.as_tensor(ws)), provenance={
            "method": method, "component": p.get("component"), "scale": p.get("scale"), "params": p})
    cache_dir = p.get("cache_dir") or (Path(job.out) / ".mgm_cache" / "baselines" if job.out is not None else None)
    cache_dir = Path(cache_dir) if cache_dir is not None else None  # None: a run in memory caches nothing
    labels = p.get("labels")
    extent = discovered_extent(job.out, job.G, job.region, job.w_ref, cfg.offset) if loop and job.out else None
    res = baseline_trajectory(method, with_run_noise(job.G, cfg), job.w_ref, job.region, cfg, cache_dir=cache_dir,
                              labels=labels, attributes=p.get("attributes"), truncation=cfg.truncation,
                              seed=int(p.get("search_seed", 0)), inside_path=extent[0] if extent else None,
                              stop=job.stop)
    if res.path:
        res.path["extent"]["source_run"] = extent[1] if extent else None
    params = {**p, "component": res.component, "component_index": res.component_index, "scale": res.scale,
              "d_in": res.d_in, "candidates": res.candidates, "info": res.info,
              "cache_dir": str(cache_dir.resolve()) if cache_dir is not None else None, **({"path": res.path} if res.path else {})}
    return Built(trajectory=Trajectory(ws=torch.as_tensor(res.ws)),
                 provenance={"method": method, "component": res.component, "scale": res.scale, "params": params},
                 config={"closed_loop": res.closed}, timings=dict(res.timings),
                 metrics={"equal_strength_d_in": res.d_in})


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
