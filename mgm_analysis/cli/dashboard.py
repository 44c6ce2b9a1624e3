"""``mgm dashboard``: browse and compare the runs of a store in the browser."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MGMError
from ._common import main


@main.command()
@click.argument("runs", default="runs", type=click.Path(path_type=Path))
@click.option("--port", default=8050, type=click.IntRange(1, 65535), help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1",
              help="Address to bind; the default keeps the dashboard on this machine (0.0.0.0 exposes it to "
                   "your network).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where projections are cached [default: RUNS/.mgm_cache].")
@click.option("--debug", is_flag=True, help="Dash debug mode (reloader and in-page error pop-ups).")
def dashboard(runs, port, host, cache_dir, debug):
    """Serve the dashboard on the run store RUNS (a folder of runs).

    \b
    Run table with filters, joint PCA/UMAP projection of the trajectories,
    frame viewer, and region comparison (metrics, layer profile, subspace overlap):
      mgm dashboard runs/            # then open http://127.0.0.1:8050/
      mgm dashboard runs/demo --port 8051
    """
    if not runs.is_dir():
        what = "is a file, not a folder of runs" if runs.exists() else "does not exist"
        raise MGMError(f"run store {runs} {what}; make runs with `mgm demo --no-serve --out {runs}` "
                       "or give the folder that holds your runs")
    from dashboards.app import serve

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"dashboard: http://{shown}:{port}/  (runs in {runs}; Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: bound to {host}: anyone who can reach this machine can browse these runs", err=True)
    serve(runs, host=host, port=port, debug=debug, cache_dir=cache_dir)
