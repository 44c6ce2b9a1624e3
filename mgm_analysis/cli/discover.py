"""``mgm discover``, ``mgm render`` and ``mgm demo``: run the engine and write runs (``mgm sweep``: cli/sweep.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import CONFIG_PRESETS, parse_layers, parse_seeds
from ..demo import DEMO_REGIONS
from ..errors import MGMError
from ._common import main


def _split_regions(text: str) -> list[str]:
    """Split a comma-separated list of region specs (see :func:`mgm_analysis.masks.split_regions`)."""
    from ..masks import split_regions

    return split_regions(text)


def run_discovery(*, generator="toyfaces", region="mouth", seed=0, reference=None, truncation=None, out="runs",
                  layout=None, quiet=False, device="cpu", resume=None, G=None, preset=None, config=None, given=None,
                  given_config=None, **overrides) -> Path:
    """``mgm discover``'s flags as a :class:`~mgm_analysis.jobs.JobSpec`, run by :func:`~mgm_analysis.jobs.run_job`;
    returns the run folder.

    ``config`` and ``overrides`` are DiscoveryConfig fields (None = default; ``seed`` there is the init seed,
    ``seed`` here the reference's); ``preset`` names a configuration (config.CONFIG_PRESETS) that they
    override; ``truncation`` is the config's ψ of the reference.  With ``resume``, ``given`` (generator, region,
    seed, reference, layout, preset, out) and ``given_config`` (config fields) hold what the user gave
    explicitly: what differs from the saved run is refused (see :func:`~mgm_analysis.jobs.resume_spec`).
    """
    from ..jobs import discover_spec, resume_spec, run_job

    config = {**(config or {}), **overrides}
    if resume is not None:
        config["truncation"] = truncation
        given = dict(given or {})
        if given.pop("out", None) is not None and Path(out).resolve() != Path(resume).resolve().parent:
            raise MGMError(f"--resume {resume}: --out {out} differs from the run's store; a run resumes in place")
        spec = resume_spec(resume, **given, config=dict(given_config or {}))
        return run_job(spec, Path(resume).parent, G=G, quiet=quiet, device=device, resume=resume)
    spec = discover_spec(generator=generator, region=region, seed=seed, reference=reference, truncation=truncation,
                         layout=layout, preset=preset, config=config)
    return run_job(spec, out, G=G, quiet=quiet, device=device)


def _dflt(field: str) -> str:
    """The ``[default: ...]`` of a flag's help, read from the configuration's own defaults (one owner: config)."""
    from ..config import CHECKPOINT_DEFAULTS, TOYFACES_L2, DiscoveryConfig

    base = getattr(DiscoveryConfig(), field)

    def fmt(v):
        return ("on" if v else "off") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)

    toy, ckpt = TOYFACES_L2.get(field, base), CHECKPOINT_DEFAULTS.get(field, base)
    if toy == ckpt:
        return f"[default: {fmt(toy)}]"
    return f"[default: {fmt(toy)} for toyfaces+l2, {fmt(ckpt)} otherwise (the paper's)]"


def _offset_default() -> str:
    from ..config import CHECKPOINT_DEFAULTS, TOYFACES_L2, TOYFACES_OFFSETS

    per = ", ".join(f"{k} {v:g}" for k, v in TOYFACES_OFFSETS.items() if k in ("mouth", "eyes", "brows"))
    return (f"[default for toyfaces+l2: per preset, {per}, else {TOYFACES_L2['offset']:g}; otherwise "
            f"{CHECKPOINT_DEFAULTS['offset']:g} (the paper's)].")


def engine_options(f):
    """Flags mapping 1:1 to DiscoveryConfig fields; an unset flag takes the generator's default."""
    opts = [
        click.option("--preset", type=click.Choice(sorted(CONFIG_PRESETS)), default=None,
                     help="A named configuration; the flags below override it. paper: exactly the reference "
                          "code (bmolab/masked-gan-manifold run.py), see docs/discover.md."),
        click.option("--frames", "n_frames", type=int, default=None,
                     help="Latents in the chain, >= 3 " + _dflt("n_frames") + "."),
        click.option("--layers", default=None, help="Free W+ layers START:END, END exclusive [default: 2:8]."),
        click.option("--alpha", type=float, default=None,
                     help="Primary (latent) spring weight α " + _dflt("alpha") + "."),
        click.option("--beta", type=float, default=None,
                     help="Stiffener (latent) spring weight β " + _dflt("beta") + "."),
        click.option("--gamma", type=float, default=None, help="Image term weight γ " + _dflt("gamma") + "."),
        click.option("--prim-dist", type=float, default=None,
                     help="Primary spring rest length σ " + _dflt("prim_dist") + "."),
        click.option("--offset", type=float, default=None,
                     help="Target inside distance c " + _offset_default()),
        click.option("--outside-weight", type=float, default=None,
                     help="λ on the outside distance " + _dflt("outside_weight") + "."),
        click.option("--image-spring", type=float, default=None,
                     help="Weight δ of the image springs, which space the frames by their distance inside the region "
                          "(the chain explores instead of standing still); 0 = off " + _dflt("image_spring") + "."),
        click.option("--cone", type=float, default=None,
                     help="Degrees (0-90) between the most local edit and the others on the circle of edits the "
                          "chain follows; 90 = a great circle through that edit and its opposite " + _dflt("cone") + "."),
        click.option("--sweep", type=float, default=None,
                     help="Degrees (0-360) of that circle an open chain covers; 0 = every frame starts at the "
                          "most local edit " + _dflt("sweep") + "."),
        click.option("--clip/--no-clip", default=None,
                     help="Measure distances on the frames clipped to the display range, as saved " + _dflt("clip") + "."),
        click.option("--distance", type=click.Choice(["l2", "lpips"]), default=None,
                     help="Image distance " + _dflt("distance") + "."),
        click.option("--mask-mode", type=click.Choice(["map", "paper"]), default=None,
                     help="map: any mask, distance map weighted by it; paper: one rectangle, crop + four outside "
                          "strips weighted by area " + _dflt("mask_mode") + "."),
        click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default=None,
                     help="" + _dflt("optimizer") + ""),
        click.option("--lr", type=float, default=None, help="Step size: L-BFGS 1 (paper), Adam e.g. 0.01 " + _dflt("lr") + "."),
        click.option("--history-size", type=int, default=None, help="L-BFGS history " + _dflt("history_size") + "."),
        click.option("--max-iter", type=int, default=None, help="L-BFGS iterations per epoch " + _dflt("max_iter") + "."),
        click.option("--line-search", type=click.Choice(["strong_wolfe", "none"]), default=None,
                     help="L-BFGS line search; none = fixed step --lr, as the paper's code " + _dflt("line_search") + "."),
        click.option("--epochs", type=int, default=None,
                     help="Maximum epochs " + _dflt("epochs") + "; with --resume, a new "
                          "maximum."),
        click.option("--init-noise", type=float, default=None,
                     help="Scale of the initial perturbation of the free layers [default: 0.01; 0.001 with "
                          "--preset paper]."),
        click.option("--init-mode", type=click.Choice(["noise", "paper", "jacobian"]), default=None,
                     help="noise: independent N(0, init-noise²) per latent; paper: one shared direction scaled "
                          "by N(0, 1) per latent, as the reference code; jacobian: the frames on the circle of edits "
                          "(--cone, --sweep) at D_in = c around the most local masked-Jacobian direction "
                          "" + _dflt("init_mode") + "."),
        click.option("--noise-mode", type=click.Choice(["const", "random"]), default=None,
                     help="const: the generator's fixed noise; random: noise drawn once per run from --init-seed, "
                          "as the reference code " + _dflt("noise_mode") + "."),
        click.option("--init-seed", "init_seed", type=int, default=None,
                     help="Seed of that perturbation and of --noise-mode random " + _dflt("seed") + "."),
        click.option("--offset-ramp/--no-offset-ramp", default=None,
                     help="Ramp c from 0 to c along the chain " + _dflt("offset_ramp") + "."),
        click.option("--closed-loop/--open", "closed_loop", default=None,
                     help="Springs wrap around for seamless loops " + _dflt("closed_loop") + "."),
        click.option("--chunk-size", type=int, default=None, help="Latents per generator call, 0 = auto " + _dflt("chunk_size") + "."),
        click.option("--patience", type=int, default=None,
                     help="Stop when E improved less than --tol over this many epochs, 0 = never " + _dflt("patience") + "."),
        click.option("--tol", type=float, default=None, help="Relative improvement for --patience " + _dflt("tol") + "."),
        click.option("--stop-tol", type=float, default=None,
                     help="Stop by quality: every frame's |D_in - c| <= this x c and the outside and spring terms "
                          "no longer falling (--stop-window, --stop-rel); --epochs stays the cap; 0 = off "
                          "[default: see docs/discover.md]."),
        click.option("--stop-window", type=int, default=None,
                     help="Epochs over which 'no longer falling' is judged " + _dflt("stop_window") + "."),
        click.option("--stop-rel", type=float, default=None,
                     help="A fall of the outside or spring term below this share of the energy E over the window "
                          "counts as stopped " + _dflt("stop_rel") + "."),
        click.option("--coarse-frames", type=int, default=None,
                     help="Coarse-to-fine: search a chain of this many frames first, then subdivide it to "
                          "--frames; 0 = off [default: see docs/discover.md]."),
        click.option("--coarse-epochs", type=int, default=None, help="Epoch cap of the coarse chain."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _overrides(kw) -> dict:
    kw = dict(kw)
    kw["seed"] = kw.pop("init_seed", None)  # DiscoveryConfig.seed; --seed is the reference's seed
    layers = kw.pop("layers", None)
    if layers:
        kw["layer_start"], kw["layer_end"] = parse_layers(layers)
    return {k: v for k, v in kw.items() if v is not None}


COMMON = [
    click.option("--generator", default="toyfaces", show_default=True,
                 help="Built-in name (toyfaces) or checkpoint path (.pt rosinality, .pkl NVIDIA)."),
    click.option("--out", default="runs", show_default=True, type=click.Path(),
                 help="Run store root (created; it must be writable)."),
    click.option("--truncation", default=None, type=float,
                 help="Truncation ψ in [0, 1] of the reference made from a seed [default: 0.7; 1 with --preset "
                      "paper]."),
    click.option("--truncation-cutoff", type=click.IntRange(min=0), default=None,
                 help="Truncate only the first N W+ layers of that reference (NVIDIA's truncation_cutoff) "
                      "[default: all layers]."),
    click.option("--layout", type=click.Choice(["toyfaces", "ffhq"]), default=None,
                 help="Face layout of the region presets [default: toyfaces for the built-in model, else ffhq]."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ..."),
    click.option("--quiet", is_flag=True, help="No progress bar or summary."),
]


def common_options(f):
    for o in reversed(COMMON):
        f = o(f)
    return f


def _check_truncation(truncation):
    if truncation is not None and not 0 <= truncation <= 1:
        raise MGMError(f"--truncation must be in [0, 1], got {truncation}")


@main.command()
@click.option("--region", default="mouth", show_default=True,
              help="Preset (mouth, eyes, left_eye, right_eye, brows, nose, chin), rect:x0,y0,x1,y1, "
                   "rects:x0,y0,x1,y1;..., ellipse:cx,cy,rx,ry, poly:x,y,x,y,x,y,..., or a PNG mask (white = "
                   "region). Pixels at the generator's resolution, x1/y1 exclusive.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the reference latent (z -> w).")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="Reference latent .npy ([num_ws, w_dim] or [w_dim]); overrides --seed.")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Finish an interrupted run (its saved config is used; --epochs may raise the maximum).")
@common_options
@engine_options
def discover(region, seed, reference, resume, generator, out, truncation, truncation_cutoff, layout, device, quiet,
             **kw):
    """Find a smooth chain of latents whose images change only inside a region.

    \b
    Examples:
      mgm discover                                   # mouth of seed 0 on the built-in toyfaces model
      mgm discover --region eyes --seed 3 --frames 24
      mgm discover --region rect:19,42,45,58 --offset-ramp
      mgm discover --generator ffhq.pt --region mouth --device cuda   # paper settings, LPIPS
      mgm discover --generator ffhq.pt --preset paper --device cuda   # exactly the paper's code
      mgm discover --resume runs/mouth-s0-20261127T010203-ab12
    """
    from ..errors import RunInterrupted

    _check_truncation(truncation)
    config = _overrides(kw)
    preset = config.pop("preset", None)
    config["truncation_cutoff"] = truncation_cutoff
    given = given_config = None
    if resume is not None:  # the flags typed on the command line: --resume refuses those it would ignore
        ctx = click.get_current_context()
        explicit = {name for name in ctx.params
                    if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)}
        given = {k: v for k, v in dict(region=region, seed=seed, reference=reference, generator=generator,
                                       layout=layout, out=out, preset=preset).items() if k in explicit}
        given_config = _overrides({k: v for k, v in kw.items() if k in explicit and k != "preset"})
        given_config.update({k: v for k, v in dict(truncation=truncation,
                                                   truncation_cutoff=truncation_cutoff).items() if k in explicit})
    try:
        run_discovery(generator=generator, region=region, seed=seed, reference=reference, truncation=truncation,
                      out=out, layout=layout, quiet=quiet, device=device, resume=resume, preset=preset,
                      config=config, given=given, given_config=given_config)
    except RunInterrupted as exc:  # saved; the exit status says which signal stopped it
        sys.exit(exc.exit_code)


@main.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--gif/--no-gif", default=True, show_default=True, help="Write animation.gif (forth and back).")
@click.option("--mp4", is_flag=True, help="Write animation.mp4 (needs ffmpeg or imageio-ffmpeg).")
@click.option("--sheet", is_flag=True, help="Write sheet.png: the reference, then every frame, mask outlined.")
@click.option("--fps", default=12, show_default=True, type=click.IntRange(min=1), help="Frames per second.")
@click.option("--rerender", is_flag=True, help="Render the frames from latents.npy with the generator first.")
@click.option("--device", default="cpu", show_default=True)
def render(run, gif, mp4, sheet, fps, rerender, device):
    """Animations and a contact sheet of a run.

    \b
    Examples:
      mgm render runs/mouth-s0-...            # animation.gif
      mgm render runs/mouth-s0-... --mp4 --sheet
    """
    from .. import store
    from ..render import contact_sheet, write_mp4
    from ..store import write_gif

    r = store.load_run(run)
    if rerender or not r.frame_paths:
        from ..generators.latents import generator_for
        from ..render import render_frames


        G = generator_for(r, device=device)
        from ..config import DiscoveryConfig
        from ..discovery import with_run_noise

        G = with_run_noise(G, DiscoveryConfig.from_dict(r.meta.get("config") or {}))  # the noise of the run
        frames = render_frames(G, r.latents)
        (r.path / "frames").mkdir(exist_ok=True)
        for i, f in enumerate(frames):
            store.write_png(r.path / "frames" / f"{i:03d}.png", f)
    else:
        frames = r.frames
    loop = bool(r.meta.get("config", {}).get("closed_loop"))
    written = []
    if mp4:  # first: the one that can fail for want of an encoder
        write_mp4(r.path / "animation.mp4", frames, fps=fps, bounce=not loop)
        written.append("animation.mp4")
    if gif:
        write_gif(r.path / "animation.gif", frames, duration_ms=int(round(1000 / fps)), bounce=not loop)
        written.append("animation.gif")
    if sheet:
        store.write_png(r.path / "sheet.png", contact_sheet(frames, r.mask, r.reference_img))
        written.append("sheet.png")
    click.echo(f"{r.path}: {', '.join(written) or 'nothing to write'}")


@main.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(),
              help="Run store for the demo runs.")
@click.option("--report", default="report/demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the analysis report goes.")
@click.option("--seeds", default="0,1", show_default=True, help="Reference seeds (two faces).")
@click.option("--regions", default=",".join(DEMO_REGIONS), show_default=True, help="Regions to discover.")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="Epochs per run  [default: mgm discover's for toyfaces]")
@click.option("--transfer", default=2, show_default=True, type=click.IntRange(min=0),
              help="Apply each run's deltas to this many other faces (0 = none).")
@click.option("--combine/--no-combine", default=True, show_default=True,
              help="Add the deltas of every pair of regions found on the same face.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the dashboard at the end.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Dashboard address.")
@click.option("--port", default=8050, show_default=True, type=int, help="Dashboard port.")
@click.option("--quiet", is_flag=True, help="Only the summary lines.")
def demo(out, report, seeds, regions, epochs, transfer, combine, serve, host, port, quiet):
    """The whole pipeline on the built-in model: discover, analyse, browse.

    Discovers the mouth, eyes and brows manifolds of two toyfaces faces (six
    runs, a few minutes on 2 cores), transfers each to two other faces and
    combines the regions found on the same face, writes an analysis report, and
    serves the dashboard on the runs.
    """
    from ..demo import run_demo

    paths = run_demo(out, report, seeds=parse_seeds(seeds), regions=_split_regions(regions), epochs=epochs,
                     transfer=transfer, combine=combine, quiet=quiet, echo=click.echo)
    click.echo(f"report: {Path(report) / 'report.html'}")
    click.echo("next:")
    click.echo(f"  mgm render {paths[0]} --sheet     # contact sheet of one run")
    click.echo(f"  mgm analyze {out} --out {report}   # metrics, projections, plots")
    click.echo(f"  mgm dashboard {out}                # browse the runs")
    click.echo("  mgm discover --region nose --seed 7  # your own run into runs/")
    if serve:
        try:
            from dashboards.app import serve as serve_dashboard
            from dashboards.discover import DiscoverOptions
        except ImportError:
            click.echo("the dashboard is not available in this environment; skipped", err=True)
            return
        click.echo(f"dashboard: http://{host}:{port}  (Ctrl-C to stop)")
        # as `mgm dashboard` serves it: with the Discover tab (draw a region, launch a search), on loopback only
        serve_dashboard(out, host, port, discover=DiscoverOptions.for_host(host, "toyfaces"))
