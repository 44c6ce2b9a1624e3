"""``mgm dashboard``: browse and compare the runs of a store in the browser."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MGMError
from ._common import main


@main.command()
@click.argument("runs", default="runs", type=click.Path(file_okay=False))
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; the default keeps the dashboard on this machine.")
@click.option("--debug", is_flag=True, help="Dash debug mode (reloader, error pop-ups).")
def dashboard(runs, port, host, debug):
    """Serve the dashboard: run table, joint projection, frame viewer, region comparison.

    \b
    Example:
      mgm dashboard runs/            # then open http://127.0.0.1:8050
    """
    root = Path(runs)
    if not root.is_dir():
        raise MGMError(f"{root}: no such run store; make runs with `mgm demo` or `mgm discover --out {root}`")
    from dashboards.app import serve

    click.echo(f"dashboard on http://{host}:{port}  (Ctrl-C to stop)")
    serve(root, host=host, port=port, debug=debug)
