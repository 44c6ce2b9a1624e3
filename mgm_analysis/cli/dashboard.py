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
@click.option("--generator", default="toyfaces", show_default=True,
              help="Generator of the Discover view: built-in name or checkpoint (.pkl/.pt).")
@click.option("--allow-discover", is_flag=True,
              help="Keep the Discover view (launching searches) on when --host is not a loopback address.")
@click.option("--no-discover", is_flag=True, help="Leave the Discover view out (browse only; no worker process).")
def dashboard(runs, port, host, cache_dir, debug, generator, allow_discover, no_discover):
    """Serve the dashboard on the run store RUNS (a folder of runs).

    \b
    Run table with filters, joint PCA/UMAP projection of the trajectories,
    frame viewer, region comparison (metrics, layer profile, subspace overlap),
    and Discover: draw a region on a face and launch a search (a worker process
    loads the generator; on 127.0.0.1 only, unless --allow-discover):
      mgm dashboard runs/            # then open http://127.0.0.1:8050/
      mgm dashboard runs/demo --port 8051
      mgm dashboard runs/ --generator ffhq.pkl
      mgm dashboard runs/ --host 0.0.0.0 --allow-discover
    """
    if not runs.is_dir():
        what = "is a file, not a folder of runs" if runs.exists() else "does not exist"
        raise MGMError(f"run store {runs} {what}; make runs with `mgm demo --no-serve --out {runs}` "
                       "or give the folder that holds your runs")
    from ..generators import BUILTIN

    if generator not in BUILTIN and not Path(generator).expanduser().is_file():
        raise MGMError(f"--generator {generator}: neither a built-in generator ({', '.join(sorted(BUILTIN))}) "
                       "nor a checkpoint file; give one of those")
    from dashboards.app import serve
    from dashboards.discover import DiscoverOptions

    if generator not in BUILTIN:
        generator = str(Path(generator).expanduser().resolve())
    discover = None if no_discover else DiscoverOptions.for_host(host, generator, allow_discover)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"dashboard: http://{shown}:{port}/  (runs in {runs}; Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: bound to {host}: anyone who can reach this machine can browse these runs", err=True)
        if discover is not None and not discover.enabled:
            click.echo("note: the Discover view is off on this address (--allow-discover turns it on)", err=True)
    serve(runs, host=host, port=port, debug=debug, cache_dir=cache_dir, discover=discover)
