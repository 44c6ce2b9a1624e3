"""The dashboard application: ``create_app(root)`` builds it, ``serve(root)`` runs it.

The app reads a run store and never writes it (projections are cached by the
analysis module under ``<root>/.mgm_cache``).  Run files (frames, reference,
mask) are served at ``/runs/<run_id>/<file>`` from inside run folders only;
every other path that is not one of Dash's own answers 404.  A callback request
whose body does not match a registered callback answers 400 before Dash reads
it.  It binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import threading
from pathlib import Path

import dash
from flask import abort, has_request_context, request, send_file

from mgm_analysis.errors import MGMError

from . import data, layout, memo
from .callbacks import FILE_ROUTE, first_projection, register_callbacks, warm_up

__all__ = ["create_app", "serve"]

ASSETS = Path(__file__).resolve().parent / "assets"


def check_root(root) -> Path:
    """``root`` as a Path if it is a folder; otherwise an MGMError that says how to make one."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder of runs" if root.exists() else "does not exist"
        raise MGMError(f"run store {root} {what}; make runs with `mgm demo --no-serve --out {root}` "
                       "or give the folder that holds your runs")
    return root


def add_file_route(server, root) -> None:
    """Serve ``<root>/<run_id>/<relpath>`` at ``/runs/<run_id>/<relpath>``; anything outside a run folder is 404."""

    def run_file(run_id: str, relpath: str):
        path = data.safe_run_file(root, run_id, relpath)
        if path is None:
            abort(404)
        try:
            return send_file(path, max_age=60)
        except OSError:  # removed or made unreadable since the check
            abort(404)

    def confine():
        # Anything under /runs that the rule above does not match (e.g. "/runs/x//etc/passwd", whose
        # absolute part no rule accepts) and any other path (the page is "/" only) would reach Dash's
        # catch-all page: answer 404 instead.
        if request.path == FILE_ROUTE or request.path.startswith(FILE_ROUTE + "/"):
            if request.endpoint != "run_file":
                abort(404)
        elif request.endpoint is None or request.endpoint.endswith("<path:path>"):
            abort(404)

    server.add_url_rule(f"{FILE_ROUTE}/<run_id>/<path:relpath>", endpoint="run_file", view_func=run_file,
                        merge_slashes=False)
    server.before_request(confine)


def _is_dep(d) -> bool:
    return isinstance(d, dict) and isinstance(d.get("id"), (str, dict)) and isinstance(d.get("property"), str)


def callback_body_problem(app: dash.Dash, body) -> str | None:
    """Why a POST body to ``/_dash-update-component`` is not a call of one of ``app``'s callbacks, or None.

    The body must be a JSON object naming a registered output, with inputs and states that are the
    callback's own (same ids and properties, in order) and ``changedPropIds`` a list of strings.  Values
    are not judged here; the callbacks check those.
    """
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in app.callback_map:
        return "no such callback output"
    spec = app.callback_map[output]
    for key in ("inputs", "state"):
        got, want = body.get(key, []), spec.get(key, [])
        if not isinstance(got, list) or len(got) != len(want) or not all(map(_is_dep, got)):
            return f"{key} do not match the callback"
        if [(d["id"], d["property"]) for d in got] != [(d["id"], d["property"]) for d in want]:
            return f"{key} do not match the callback"
    outputs = body.get("outputs")
    if not (_is_dep(outputs) or (isinstance(outputs, list) and outputs and all(map(_is_dep, outputs)))):
        return "outputs do not match the callback"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds is not a list of strings"
    return None


def add_callback_guard(app: dash.Dash) -> None:
    """Answer 400 to a callback request whose body :func:`callback_body_problem` refuses (Dash would fail with
    a server error on it)."""
    route = app.config.routes_pathname_prefix + "_dash-update-component"

    def guard():
        if request.path == route and request.method == "POST":
            try:
                body = request.get_json(silent=True)
            except RecursionError:  # "[[[[…" nested past the parser's depth
                abort(400, description="the body nests too deeply")
            problem = callback_body_problem(app, body)
            if problem:
                abort(400, description=problem)

    app.server.before_request(guard)


#: Dash's lazily loaded components on the first screen (the browser fetches them when the layout first renders)
FIRST_SCREEN_CHUNKS = ("dcc/async-graph", "dcc/async-dropdown", "dcc/async-slider", "dash_table/async-table",
                       "dash_table/async-highlight")


_NATIVES = "[window.parseFloat, window.parseInt, Number.parseFloat, Number.parseInt, String.prototype.trim]"
_KEEP_NATIVES = f"window.__mgm_natives = {_NATIVES};"
_RESTORE_NATIVES = f"{_NATIVES} = window.__mgm_natives;"


def create_app(root, *, cache_dir=None, discover=None) -> dash.Dash:
    """The dashboard over the run store at ``root`` (an existing folder, possibly empty).

    Args:
        cache_dir: where projections are cached (default ``<root>/.mgm_cache``).
        discover: a :class:`dashboards.discover.DiscoverOptions` to add the Discover view (its worker
            process starts now over an empty store, else a few seconds later or with the Discover tab); None
            leaves it out.
    Raises:
        MGMError: ``root`` is not a folder.
    """
    root = check_root(root).resolve()
    app = dash.Dash(__name__, title="mgm dashboard", assets_folder=str(ASSETS), update_title=None)
    from . import discover as disc

    def build(snap, projection=None, compare_mounted=False, discover_mounted=True):
        card = None if discover is None or not discover_mounted else disc.card(snap, discover)
        return layout.build_layout(snap, card, discover_on=discover is not None and discover.enabled,
                                   projection=projection, compare_mounted=compare_mounted,
                                   discover_mounted=discover_mounted)

    # The page's structure: what an empty store shows has every component.  Dash checks callbacks and the layout
    # against it and sends it inside every page; with the runs in it, Dash read the whole store before the server
    # listened and again on its first request, and sent each browser the run table twice (1.5 MB for 2 000 runs).
    structure = build(data.empty_snapshot(root), compare_mounted=True)

    def page():  # a function, so every page load shows the store as it is now (kept per store state)
        if not (has_request_context() and request.path.endswith("/_dash-layout")):
            return structure  # Dash checking the structure
        snap = memo.snapshot(root)
        tab = layout.first_tab(snap, discover is not None and discover.enabled)
        # the first view's figure comes with the page when the warm-up has it (no round trip for it, and plotly
        # draws it as soon as the page renders); else the projection callback sends it
        first = first_projection(snap, cache_dir)
        # a page that opens on Browse gets the Discover card when that tab is first shown (discover.register)
        card_now = not (discover is not None and discover.enabled and tab != layout.DISCOVER)
        return memo.built(("page", str(root), snap.signature, tab, first is not None),
                          lambda: build(snap, first, discover_mounted=card_now))

    app.validation_layout = structure
    app.layout = page
    # plotly.js (4.7 MB) compiles while the page waits for its layout instead of after it: dcc.Graph uses the
    # window.Plotly it finds (the first paint of 2 000 runs came 0.5-1 s sooner)
    plotly_js = app.get_relative_path("/_dash-component-suites/plotly/package_data/plotly.min.js")
    app.index_string = app.index_string.replace("{%renderer%}", f'{{%renderer%}}\n<script src="{plotly_js}"></script>')
    # Dash's polyfill (babel-polyfill 7, core-js 2) replaces parseFloat, parseInt and String.prototype.trim with
    # slower JavaScript versions in every current browser (its list of white space predates ES2016's); plotly calls
    # them all through drawing, so the page keeps the browser's own
    app.index_string = app.index_string.replace("{%scripts%}", f"<script>{_KEEP_NATIVES}</script>\n{{%scripts%}}\n"
                                                               f"<script>{_RESTORE_NATIVES}</script>")
    # the lazily loaded parts of the first screen (graphs, dropdowns, the slider, the run table) are fetched with the
    # page's scripts, not once the layout has rendered and asks for them
    app.index_string = app.index_string.replace("{%css%}", "{%css%}\n" + "\n".join(
        f'<link rel="preload" as="script" href="{app.get_relative_path(f"/_dash-component-suites/dash/{c}.js")}">'
        for c in FIRST_SCREEN_CHUNKS))
    register_callbacks(app, root, cache_dir)
    if discover is not None and discover.enabled:
        disc.register(app, root, discover)
    add_file_route(app.server, root)
    add_callback_guard(app)
    return app


#: request threads of the dashboard's server (waitress)
WSGI_THREADS = 8


def serve(root, host: str = "127.0.0.1", port: int = 8050, debug: bool = False, *, cache_dir=None,
          discover=None) -> None:
    """Build the app for ``root`` and serve it until interrupted (waitress; Flask's development server with
    ``debug``).

    Listens at once; :func:`dashboards.callbacks.warm_up` runs in a background thread, started once the app is
    built.
    ``discover``: see :func:`create_app`.
    """
    root = check_root(root).resolve()
    app = create_app(root, cache_dir=cache_dir, discover=discover)
    # the warm-up starts after the app is built, not beside it: on CPython 3.11 two threads compiling Python at
    # once (werkzeug compiles the app's URL rules; the warm-up imports modules) can fail with "SystemError: AST
    # constructor recursion depth mismatch" (CPython gh-106905); overlapping them saved at most 0.1 s
    threading.Thread(target=warm_up, args=(root, cache_dir), name="mgm-warm-up", daemon=True).start()
    if debug:  # Flask's development server: reloads on code changes, shows tracebacks in the page
        app.run(host=host, port=int(port), debug=True)
        return
    # a production WSGI server (waitress: pure Python, threaded); several people can browse at once
    from waitress import serve as wsgi_serve

    wsgi_serve(app.server, host=host, port=int(port), threads=WSGI_THREADS, ident="mgm-dashboard",
               _quiet=True)
