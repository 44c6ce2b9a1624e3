"""``mgm discover``, ``mgm sweep``, ``mgm render`` and ``mgm demo``: run the engine and write runs."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path

import click
import numpy as np

from ..errors import MGMError
from ._common import main

DEMO_REGIONS = ("mouth", "eyes", "brows")


# ------------------------------------------------------------------ helpers
def _parse_layers(text: str) -> tuple[int, int]:
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        raise MGMError(f"--layers {text!r}: expected START:END, e.g. 2:8") from None


def _parse_seeds(text: str) -> list[int]:
    out = []
    try:
        for part in str(text).split(","):
            if "-" in part.strip()[1:]:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise MGMError(f"--seeds {text!r}: expected numbers and ranges, e.g. 0-9 or 1,4,7") from None
    if not out:
        raise MGMError("--seeds is empty")
    return out


def _split_regions(text: str) -> list[str]:
    """Split a comma-separated list of region specs, keeping the commas inside a spec (rect:1,2,3,4)."""
    out: list[str] = []
    for tok in str(text).split(","):
        tok = tok.strip()
        if not tok:
            continue
        if out and (tok[0].isdigit() or tok[0] in "-.") and ":" in out[-1]:
            out[-1] += "," + tok
        else:
            out.append(tok)
    return out


def _reference(G, seed: int | None, reference: str | None, truncation: float):
    import torch

    if reference:
        path = Path(reference)
        if not path.exists():
            raise MGMError(f"--reference {path}: no such file; give a .npy of shape [{G.num_ws}, {G.w_dim}] or [{G.w_dim}]")
        try:
            w = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise MGMError(f"--reference {path}: not a readable .npy file ({exc})") from None
        w = np.asarray(w, np.float32)
        if w.shape == (1, G.num_ws, G.w_dim):
            w = w[0]
        if w.shape in ((G.w_dim,), (1, G.w_dim)):
            w = np.broadcast_to(w.reshape(1, -1), (G.num_ws, G.w_dim)).copy()
        if w.shape != (G.num_ws, G.w_dim):
            raise MGMError(f"--reference {path} has shape {list(w.shape)}; the generator needs "
                           f"[{G.num_ws}, {G.w_dim}] (W+) or [{G.w_dim}] (w)")
        if not np.isfinite(w).all():
            raise MGMError(f"--reference {path} contains NaN or inf")
        return torch.from_numpy(w), {"seed": None, "truncation": None, "file": str(path.resolve())}
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        w = G.mapping(z.to(G.w_avg.device), truncation)
    return G.broadcast(w)[0].cpu(), {"seed": int(seed), "truncation": truncation, "file": None}


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM behaves like Ctrl-C so the engine can save what it has."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _semantic(G, frames, ref_img, region_name):
    """Semantic locality through the toyfaces factor regressor (None when not applicable)."""
    if getattr(G.info, "name", None) != "toyfaces":
        return None
    import torch

    from ..analysis.metrics import semantic_locality
    from ..generators.toyfaces.regressor import predict_factors
    from ..generators.toyfaces.renderer import FACTORS
    from ..presets import REGION_FACTORS

    names = REGION_FACTORS.get(region_name)
    if not names:
        return None
    to_t = lambda a: torch.from_numpy(np.asarray(a, np.float32)).permute(0, 3, 1, 2) * 2 - 1  # noqa: E731
    f = predict_factors(to_t(frames)).numpy()
    f_ref = predict_factors(to_t(ref_img[None])).numpy()[0]
    return {"semantic_locality": semantic_locality(f, f_ref, [FACTORS.index(n) for n in names]),
            "factor_change": {n: float(np.abs(f[:, i] - f_ref[i]).max()) for i, n in enumerate(FACTORS)}}


def run_discovery(*, generator="toyfaces", region="mouth", seed=0, reference=None, truncation=0.7, out="runs",
                  layout=None, quiet=False, device="cpu", resume=None, G=None, **overrides) -> Path:
    """Everything ``mgm discover`` does; returns the run folder.  Validates all input before any file is written."""
    import torch

    from .. import store
    from ..analysis.metrics import run_metrics
    from ..discovery import DiscoveryConfig, default_config, discover
    from ..generators import load_generator
    from ..losses import make_distance
    from ..masks import parse_region
    from ..render import render_frames, to_unit

    resume_state, run_id, meta_prev = None, None, {}
    if resume is not None:
        prev = store.load_run(resume)
        meta_prev = prev.meta
        if meta_prev.get("status") == "complete":
            raise MGMError(f"{resume}: the run is already complete; nothing to resume")
        cfg = DiscoveryConfig.from_dict(meta_prev["config"])
        gen_meta = meta_prev["generator"]
        generator = gen_meta.get("name") if gen_meta.get("format") == "builtin" else gen_meta.get("path")
        region = meta_prev["region"]["spec"]
        layout = meta_prev["region"].get("layout") or layout
        run_id = prev.run_id
        out = Path(resume).parent
        resume_state = {"ws": prev.latents, "history": meta_prev.get("history"),
                        "epochs_done": meta_prev.get("resume", {}).get("epochs_done", 0)}
        seed = meta_prev.get("seed")
    G = G if G is not None else load_generator(generator, device=device)
    name = getattr(G.info, "name", None)
    if resume is None:
        cfg = default_config(name, overrides.pop("distance", None), **overrides)
    cfg.check_generator(G.num_ws)
    layout = layout or ("toyfaces" if name == "toyfaces" else "ffhq")
    reg = parse_region(region, G.resolution, layout)
    if resume is not None:
        w_ref = torch.from_numpy(prev.reference)
        ref_info = meta_prev.get("reference", {})
    else:
        if reference is None and seed is None:
            raise MGMError("give --seed N or --reference W.npy")
        w_ref, ref_info = _reference(G, seed, reference, truncation)
    dist = make_distance(reg.mask, cfg.distance, cfg.mask_mode, reg.boxes)

    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=(resume_state or {}).get("epochs_done", 0), desc=f"discover {reg.name}",
                   unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def callback(epoch, t):
        if bar is not None:
            bar.update(epoch - bar.n)
            bar.set_postfix(E=f"{t['total']:.4g}", L_X=f"{t['l_x']:.3g}", spring=f"{t['spring']:.3g}",
                            stiff=f"{t['stiffener']:.3g}", D_in=f"{t['d_in']:.3g}", D_out=f"{t['d_out']:.2g}")

    t0 = time.perf_counter()
    with _sigterm_as_interrupt():
        traj = discover(G, w_ref, dist, cfg, resume=resume_state, callback=callback)
    if bar is not None:
        bar.close()
    t_opt = time.perf_counter() - t0
    with _sigterm_as_interrupt():  # rendering and writing are short; a second Ctrl-C still leaves no half run
        frames = render_frames(G, traj.ws)
        ref_img = to_unit(G.synthesis(w_ref[None].to(G.w_avg.device)).detach())[0]
        metrics = run_metrics(traj.ws.numpy(), w_ref.numpy(), frames, ref_img, reg.mask,
                              layers=(cfg.layer_start, cfg.layer_end),
                              offset=cfg.offset if cfg.distance == "l2" else None, closed=cfg.closed_loop)
        sem = _semantic(G, frames, ref_img, reg.name)
        if sem:
            metrics["semantic_locality"] = sem["semantic_locality"]
            metrics["factor_change"] = sem["factor_change"]
        meta = {
            **({k: meta_prev[k] for k in ("created",) if k in meta_prev}),
            "status": traj.status,
            "stop_reason": traj.stop_reason,
            "region": reg.to_dict(),
            "generator": G.info.to_dict(),
            "reference": ref_info,
            "seed": ref_info.get("seed") if ref_info else seed,
            "config": cfg.to_dict(),
            "history": traj.history,
            "timings": {"optimise_s": t_opt, "per_epoch_s": t_opt / max(1, traj.epochs_done - (resume_state or {}).get("epochs_done", 0)),
                        "total_s": time.perf_counter() - t0, "device": str(G.w_avg.device)},
            "metrics": metrics,
            "provenance": {"kind": "discover", "sources": []},
            "resume": {"epochs_done": traj.epochs_done},
        }
        path = store.write_run(out, meta=meta, latents=traj.ws.numpy(), reference=w_ref.numpy(), reference_img=ref_img,
                               mask=reg.mask, frames=frames, run_id=run_id, overwrite=resume is not None)
    if not quiet:
        sl = f", semantic locality {metrics['semantic_locality']:.3f}" if "semantic_locality" in metrics else ""
        click.echo(f"{traj.status}: {path}  ({traj.epochs_done} epochs, {t_opt:.1f} s; locality "
                   f"{metrics['locality']:.3f}{sl}, jump ratio {metrics['jump_ratio']:.2f}, "
                   f"inside RMS {metrics['inside_rms']:.3f})")
        if traj.status == "interrupted":
            click.echo(f"resume with: mgm discover --resume {path}")
    return path


def engine_options(f):
    """Flags mapping 1:1 to DiscoveryConfig fields; unset flags take the generator's defaults."""
    opts = [
        click.option("--frames", "n_frames", type=click.IntRange(min=1), default=None,
                     help="Latents in the chain [default: 16 on toyfaces, 36 otherwise (paper)]."),
        click.option("--layers", default=None, help="Free W+ layers START:END, END exclusive [default: 2:8]."),
        click.option("--alpha", type=float, default=None, help="Primary spring weight α [default: 0.3]."),
        click.option("--beta", type=float, default=None, help="Stiffener spring weight β [default: 0.1]."),
        click.option("--gamma", type=float, default=None, help="Image term weight γ [default: 0.5]."),
        click.option("--prim-dist", type=float, default=None,
                     help="Primary spring rest length σ [default: 0.35 on toyfaces, 4 otherwise (paper)]."),
        click.option("--offset", type=float, default=None,
                     help="Target inside distance c [default: 0.03 (l2, toyfaces), 0.25 otherwise (paper)]."),
        click.option("--outside-weight", type=float, default=None,
                     help="λ on the outside distance [default: 10 on toyfaces+l2, 1 otherwise (paper)]."),
        click.option("--distance", type=click.Choice(["l2", "lpips"]), default=None,
                     help="Image distance [default: l2 on toyfaces, lpips otherwise]."),
        click.option("--mask-mode", type=click.Choice(["map", "paper"]), default=None,
                     help="map: any mask; paper: one rectangle, crop + four strips [default: map]."),
        click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default=None, help="[default: lbfgs]"),
        click.option("--lr", type=float, default=None, help="Step size (L-BFGS 1, Adam e.g. 0.01)."),
        click.option("--epochs", type=click.IntRange(min=1), default=None,
                     help="Maximum epochs [default: 30 on toyfaces, 500 otherwise (paper)]."),
        click.option("--offset-ramp/--no-offset-ramp", default=None, help="Ramp c from 0 to c along the chain."),
        click.option("--closed-loop/--open", "closed_loop", default=None, help="Springs wrap around (loops)."),
        click.option("--chunk-size", type=click.IntRange(min=0), default=None, help="Latents per generator call (0 = auto)."),
        click.option("--patience", type=click.IntRange(min=0), default=None, help="Early-stop patience in epochs (0 = off)."),
        click.option("--init-noise", type=float, default=None, help="Std of the initial perturbation [default: 0.01]."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _overrides(kw) -> dict:
    layers = kw.pop("layers", None)
    if layers:
        kw["layer_start"], kw["layer_end"] = _parse_layers(layers)
    return {k: v for k, v in kw.items() if v is not None}


COMMON = [
    click.option("--generator", default="toyfaces", show_default=True, help="Built-in name or checkpoint path."),
    click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False), help="Run store root."),
    click.option("--truncation", default=0.7, show_default=True, type=click.FloatRange(0, 1),
                 help="Truncation ψ of the reference made from --seed."),
    click.option("--layout", type=click.Choice(["toyfaces", "ffhq"]), default=None,
                 help="Face layout of the region presets [default: toyfaces for the built-in model, else ffhq]."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ..."),
    click.option("--quiet", is_flag=True, help="No progress bar or summary."),
]


def common_options(f):
    for o in reversed(COMMON):
        f = o(f)
    return f


@main.command()
@click.option("--region", default="mouth", show_default=True,
              help="Preset (mouth, eyes, left_eye, right_eye, brows, nose, chin), rect:x0,y0,x1,y1, "
                   "rects:...;..., ellipse:cx,cy,rx,ry, poly:x,y,..., or a PNG mask.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the reference latent.")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="Reference latent .npy ([num_ws, w_dim] or [w_dim]); overrides --seed.")
@click.option("--resume", type=click.Path(file_okay=False), default=None, help="Finish an interrupted run.")
@common_options
@engine_options
def discover(region, seed, reference, resume, generator, out, truncation, layout, device, quiet, **kw):
    """Find a smooth chain of latents whose images change only inside a region.

    \b
    Examples:
      mgm discover                                   # mouth of seed 0 on the built-in toyfaces model
      mgm discover --region eyes --seed 3 --frames 24
      mgm discover --region rect:19,42,45,58 --offset-ramp
      mgm discover --generator ffhq.pt --distance lpips --region mouth --device cuda
      mgm discover --resume runs/mouth-s0-20261127T010203-ab12
    """
    run_discovery(generator=generator, region=region, seed=seed, reference=reference, truncation=truncation,
                  out=out, layout=layout, quiet=quiet, device=device, resume=resume, **_overrides(kw))


@main.command()
@click.option("--regions", default=",".join(DEMO_REGIONS), show_default=True, help="Comma-separated region specs.")
@click.option("--seeds", default="0-1", show_default=True, help="Reference seeds: ranges and lists, e.g. 0-9,12.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Runs in parallel (processes); on 2 cores 1 is fastest.")
@common_options
@engine_options
def sweep(regions, seeds, workers, generator, out, truncation, layout, device, quiet, **kw):
    """Discover every region on every reference seed.

    \b
    Example:
      mgm sweep --regions mouth,eyes,brows --seeds 0-9 --out runs/
    """
    jobs = [dict(generator=generator, region=r.strip(), seed=s, truncation=truncation, out=out, layout=layout,
                 device=device, quiet=True, **_overrides(dict(kw)))
            for s in _parse_seeds(seeds) for r in _split_regions(regions)]
    from tqdm.auto import tqdm

    done, failed = [], []
    with tqdm(total=len(jobs), desc="sweep", unit="run", disable=quiet, file=sys.stderr) as bar:
        if workers == 1:
            from ..generators import load_generator

            G = load_generator(generator, device=device)
            for job in jobs:
                try:
                    done.append(run_discovery(G=G, **job))
                except MGMError as exc:
                    failed.append(f"{job['region']}/seed {job['seed']}: {exc}")
                bar.update()
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers) as pool:
                futs = {pool.submit(run_discovery, **job): job for job in jobs}
                for fut in as_completed(futs):
                    try:
                        done.append(fut.result())
                    except MGMError as exc:
                        failed.append(f"{futs[fut]['region']}/seed {futs[fut]['seed']}: {exc}")
                    bar.update()
    click.echo(f"{len(done)} runs written to {out}" + (f"; {len(failed)} failed:" if failed else ""))
    for line in failed:
        click.echo(f"  {line}", err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--gif/--no-gif", default=True, show_default=True, help="Write animation.gif.")
@click.option("--mp4", is_flag=True, help="Write animation.mp4 (needs ffmpeg).")
@click.option("--sheet", is_flag=True, help="Write sheet.png: reference + frames, mask outlined.")
@click.option("--frames-from-latents", is_flag=True, help="Re-render frames with the generator first.")
@click.option("--device", default="cpu", show_default=True)
def render(run, gif, mp4, sheet, frames_from_latents, device):
    """Animations and a contact sheet of a run.

    \b
    Examples:
      mgm render runs/mouth-s0-...            # animation.gif
      mgm render runs/mouth-s0-... --mp4 --sheet
    """
    from .. import store
    from ..render import contact_sheet, write_mp4

    r = store.load_run(run)
    if frames_from_latents or not r.frame_paths:
        from ..generators import load_generator
        from ..render import render_frames

        g = r.meta["generator"]
        G = load_generator(g["name"] if g.get("format") == "builtin" else g["path"], device=device)
        frames = render_frames(G, r.latents)
        (r.path / "frames").mkdir(exist_ok=True)
        for i, f in enumerate(frames):
            store.write_png(r.path / "frames" / f"{i:03d}.png", f)
    else:
        frames = r.frames
    written = []
    if gif:
        store.write_gif(r.path / "animation.gif", frames, scale=max(1, 256 // frames.shape[1]))
        written.append("animation.gif")
    if mp4:
        write_mp4(r.path / "animation.mp4", frames)
        written.append("animation.mp4")
    if sheet:
        store.write_png(r.path / "sheet.png", contact_sheet(frames, r.mask, r.reference_img))
        written.append("sheet.png")
    click.echo(f"{r.path}: {', '.join(written) or 'nothing to write'}")


@main.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--report", default="report/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--seeds", default="0,1", show_default=True, help="Reference seeds (two references by default).")
@click.option("--regions", default=",".join(DEMO_REGIONS), show_default=True)
@click.option("--epochs", default=None, type=int, help="Epochs per run [default: the toyfaces default].")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the dashboard at the end.")
@click.option("--port", default=8050, show_default=True)
@click.option("--quiet", is_flag=True)
def demo(out, report, seeds, regions, epochs, serve, port, quiet):
    """The whole pipeline on the built-in model: discover, analyse, browse.

    Discovers the mouth, eyes and brows manifolds of two toyfaces references,
    writes an analysis report, and serves the dashboard on the runs.
    """
    from ..generators import load_generator

    G = load_generator("toyfaces")
    paths = []
    for s in _parse_seeds(seeds):
        for r in _split_regions(regions):
            paths.append(run_discovery(G=G, region=r, seed=s, out=out, quiet=quiet,
                                       **({"epochs": epochs} if epochs else {})))
    click.echo(f"\n{len(paths)} runs in {out}/")
    try:
        from ..analysis.report import analyze
    except ImportError:
        analyze = None
    if analyze is not None:
        analyze(out, report, quiet=quiet)
        click.echo(f"report: {Path(report) / 'report.html'}")
    click.echo(f"next: mgm analyze {out} --out {report}   |   mgm dashboard {out}   |   mgm render {paths[0]} --sheet")
    if serve:
        try:
            from dashboards.app import serve as serve_dashboard
        except ImportError:
            click.echo("the dashboard is not installed in this environment", err=True)
            return
        click.echo(f"dashboard: http://127.0.0.1:{port}  (Ctrl-C to stop)")
        serve_dashboard(out, port=port)
