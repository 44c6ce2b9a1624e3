"""``mgm info``: what a generator checkpoint is, without running it."""

from __future__ import annotations

import click

from ._common import main


@main.command()
@click.argument("spec", default="toyfaces")
@click.option("--device", default="cpu", help="Device to load on (cpu, cuda, cuda:1).")
def info(spec, device):
    """Print format, resolution, W+ shape, parameter count and sha256 of a generator.

    \b
    SPEC is a built-in name (toyfaces) or a checkpoint file:
      mgm info toyfaces
      mgm info stylegan2-ffhq-config-f.pt      # rosinality format
      mgm info network-snapshot.pkl            # NVIDIA stylegan2-ada-pytorch pickle
    """
    from ..generators import load_generator

    G = load_generator(spec, device=device)
    i = G.info
    rows = [
        ("name", i.name),
        ("format", i.format),
        ("path", i.path or "-"),
        ("sha256", i.sha256 or "-"),
        ("resolution", f"{i.resolution}x{i.resolution}"),
        ("num_ws", i.num_ws),
        ("w_dim", i.w_dim),
        ("z_dim", getattr(G, "z_dim", "-")),
        ("mapping layers", getattr(G, "n_mlp", "-")),
        ("channels", " ".join(f"{r}:{c}" for r, c in getattr(G, "channels", {}).items()) or "-"),
        ("parameters", f"{i.num_params:,}"),
    ]
    for k, v in (i.extra or {}).items():
        rows.append((k, v))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v}")
