"""``mgm baselines`` and ``mgm compare-methods``: the established direction finders beside mask-guided discovery."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MGMError
from ._common import main


def _default_methods() -> str:
    from ..finders.registry import default_methods

    return ",".join(default_methods())


class _MethodsOption(click.Option):
    """``--methods``: its default and help come from the method registry (built-ins, entry points, run-time
    registrations) when they are needed, not when the command line is imported."""

    def get_help_record(self, ctx):
        from ..finders.registry import describe_methods

        self.help = f"Comma-separated methods among: {describe_methods()}."
        default, self.default, self.show_default = self.default, _default_methods(), True
        try:
            return super().get_help_record(ctx)
        finally:
            self.default = default


def _methods_option():
    return click.option("--methods", cls=_MethodsOption, default=_default_methods, help="Comma-separated methods.")


def _layers(text):
    if text is None:
        return {}
    from ..config import parse_layers

    a, b = parse_layers(text)
    return {"layer_start": a, "layer_end": b}


@main.command()
@click.option("--region", default="mouth", show_default=True,
              help="Region spec: a preset (mouth, eyes, brows, ...), rect:x0,y0,x1,y1, ellipse:..., or a PNG mask.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the reference latent (z -> w).")
@click.option("--reference", type=click.Path(dir_okay=True), default=None,
              help="Reference latent .npy ([num_ws, w_dim] or [w_dim]) or a run folder; overrides --seed.")
@_methods_option()
@click.option("--generator", default="toyfaces", show_default=True,
              help="Built-in name (toyfaces) or checkpoint path (.pt rosinality, .pkl NVIDIA).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False), help="Run store root.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="InterFaceGAN labels CSV: a 'seed' or 'w' (.npy path) column and one numeric column per "
                   "attribute [default on toyfaces: the ground-truth factors of the region].")
@click.option("--attributes", default=None, help="With --labels: the attribute columns of the region [default: all].")
@click.option("--offset", type=float, default=None,
              help="Target mean inside distance c of the path [default: the region's discovery default].")
@click.option("--strength", default="1", show_default=True,
              help="K > 0: the path's mean inside distance is K·c (c: --offset or the region's default); "
                   "recorded in the run so the method table groups by it.")
@click.option("--frames", "n_frames", type=int, default=None, help="Frames of the path [default: as discovery].")
@click.option("--distance", type=click.Choice(["l2", "lpips"]), default=None,
              help="Image distance of equal strength [default: as discovery: l2 on toyfaces, lpips otherwise].")
@click.option("--layers", default=None, help="Free W+ layers START:END [default: as discovery, 2:8].")
@click.option("--truncation", type=float, default=None, help="Truncation ψ of the reference from a seed [default: 0.7].")
@click.option("--layout", type=click.Choice(["toyfaces", "ffhq"]), default=None,
              help="Face layout of the region presets [default: the generator's].")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Cache folder for per-generator directions [default: STORE/.mgm_cache/baselines].")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--quiet", is_flag=True, help="Print only errors.")
def baselines(region, seed, reference, methods, generator, out, labels, attributes, offset, strength, n_frames,
              distance, layers, truncation, layout, cache_dir, device, quiet):
    """Runs of the established direction finders at equal strength, one per method, on one face and region.

    Each method offers directions (GANSpace: PCA of W; SeFa: eigenvectors of the style
    affine weights; InterFaceGAN: a linear boundary per factor of the region; jacobian:
    the masked Jacobian's generalised eigenvectors at the reference; any method installed
    as a plugin or registered at run time, see --methods). The straight path
    through the reference is scaled so that its mean inside distance on the frames as
    saved equals K·c (--strength K, c the region's target offset, as a discovery run's);
    of the top 10 components the one with the best locality is kept (an oracle choice that
    favours the baseline). jacobian_loop is the ellipse in the plane of the two best
    Jacobian directions at the same strength; when the store holds a discovered run of
    this face, region and K·c, the arc of it with that run's inside path (equal extent).
    Each run is an ordinary run (provenance.kind = baseline): render, analyze and the
    dashboard read it.

    \b
    Examples:
      mgm baselines --region mouth --seed 3
      mgm baselines --region mouth --seed 3 --strength 4
      mgm baselines --region eyes --methods jacobian,sefa --out runs/cmp
      mgm baselines --generator ffhq.pt --region mouth --labels smile.csv --methods interfacegan
    """
    from ..finders.methods import parse_methods, parse_strengths
    from ..generators import load_generator
    from ..method_runs import run_baseline

    names = parse_methods(methods)
    (k,) = parse_strengths(strength, "--strength", 1)
    if attributes and not labels:
        raise MGMError("--attributes needs --labels (the CSV whose columns they name)")
    G = load_generator(generator, device=device)
    config = {"offset": offset, "n_frames": n_frames, "truncation": truncation, "distance": distance,
              **_layers(layers)}
    attrs = [a.strip() for a in attributes.split(",") if a.strip()] if attributes else None
    failed = []
    for m in names:
        try:
            run_baseline(G, m, region, seed=None if reference else seed, reference=reference, out=out,
                         layout=layout, cache_dir=cache_dir, labels=labels, attributes=attrs, config=config,
                         strength=k, quiet=quiet)
        except MGMError as exc:
            if len(names) == 1:
                raise
            failed.append(f"{m}: {exc}")
    if failed:
        raise MGMError("; ".join(failed))


@main.command("compare-methods")
@click.option("--regions", default="mouth,eyes,brows", show_default=True, help="Comma-separated region specs.")
@click.option("--seeds", default="0-4", show_default=True, help="Reference seeds: ranges and lists, e.g. 0-4 or 1,4,7.")
@_methods_option()
@click.option("--generator", default="toyfaces", show_default=True, help="Built-in name or checkpoint path.")
@click.option("--out", default="runs/methods", show_default=True, type=click.Path(file_okay=False),
              help="Run store (what it already holds is kept and not made again).")
@click.option("--report", default=None, type=click.Path(file_okay=False),
              help="Also write the analysis report (methods.csv, report.html) into this folder.")
@click.option("--strengths", default="1", show_default=True,
              help="Comma-separated multiples K > 0 of each region's target offset c (at most 16), e.g. 1,2,4,8: "
                   "every method, discovery included, is run at K·c for each K; the table has one row per "
                   "method, region and strength.")
@click.option("--transfer", "transfer_k", default=2, show_default=True, type=click.IntRange(min=0),
              help="Apply each run's deltas to this many other faces (seeds 1000, ...) for the transfer locality.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None, help="InterFaceGAN labels CSV (see baselines).")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--quiet", is_flag=True, help="Print only the table and errors.")
def compare_methods(regions, seeds, methods, generator, out, report, strengths, transfer_k, labels, device, quiet):
    """Discovered manifolds beside the baselines at equal strength and extent: the method table.

    Makes what the store lacks — for every region, seed and strength K a discovery run
    at K·c, then one run per method at K·c (the loop baseline cut to the discovered
    chain's inside path), and transfers of each to other faces — and prints the mean per
    method, region and strength of locality, semantic locality, spread, inside path,
    realism, outside change, inside RMS, jump ratio, image-step CV, transfer locality and
    seconds per run.

    \b
    Examples:
      mgm compare-methods --regions mouth,eyes,brows --seeds 0-4 --out runs/methods --report report/methods
      mgm compare-methods --regions mouth,eyes,brows --seeds 0-4 --strengths 1,2,4,8 --out runs/methods
    """
    from ..config import parse_seeds
    from ..finders.methods import parse_methods, parse_strengths
    from ..method_runs import compare_methods as run_compare
    from .discover import _split_regions

    names = parse_methods(methods)
    ks = parse_strengths(strengths, "--strengths")
    res = run_compare(_split_regions(regions), parse_seeds(seeds), out, methods=names, generator=generator,
                      transfer_k=transfer_k, labels=labels, quiet=quiet, device=device, strengths=ks)
    from .. import store
    from ..analysis.table import method_table

    cat = store.catalog(out, warn=False) if Path(out).is_dir() else store.catalog_of([])
    table = method_table(cat)
    if table.empty:
        click.echo("no baseline runs were made")
    else:
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for line in res["failed"]:
        click.echo(f"  not made: {line}", err=True)
    if report is not None:
        from ..analysis.report import analyze

        paths = analyze(out, report, quiet=True)
        if "methods" not in paths:  # an analysis without the method section: the table beside the report
            Path(report).mkdir(parents=True, exist_ok=True)
            table.to_csv(Path(report) / "methods.csv", index=False)
        click.echo(f"report: {paths.get('report', report)}")
