"""Dash callbacks: each reads the store through :mod:`dashboards.data` and draws with :mod:`dashboards.figures`.

Callbacks keep no state between calls: the browser holds the selection (run ids)
and the frame on show in ``dcc.Store`` components, the server memoises heavy
data by store signature.  The decisions callbacks make are plain functions
(``selection_from_table``, ``next_frame``, ``tooltip_target``, ``frame_url``)
that tests call without a server.

Every value a callback receives comes from the browser, so anyone can post
anything: each is checked by one of the ``valid_*`` functions below, and a value
of the wrong type or out of range leaves the view as it was (``PreventUpdate``,
HTTP 204) instead of failing with a server error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from mgm_analysis.metrics import describe_extent

from . import clientside as JS
from . import data, figures, memo, table
from . import layout as L
from .table import valid_names

log = logging.getLogger(__name__)

FILE_ROUTE = "/runs"  # run files are served at /runs/<run_id>/<path inside the run folder>
MAX_K = 16  # the overlap's subspace dimension, as the number input allows
_MAX_FRAME = 1_000_000


# ---------------------------------------------------------------- input checks
def _integral(value) -> int | None:
    """``value`` as an int when it is a JSON number with an integer value (not a bool, string, NaN or 1e300)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (value.is_integer() and abs(value) <= 2**53):
        return None
    return int(value)


def valid_int(value, low: int, high: int, default: int | None = None) -> int:
    """An integer in [low, high] (None gives ``default``); anything else leaves the view as it was."""
    if value is None and default is not None:
        return default
    v = _integral(value)
    if v is None or not low <= v <= high:
        raise PreventUpdate
    return v


def valid_choice(value, choices):
    """One of ``choices`` (e.g. the projection methods); anything else leaves the view as it was."""
    if not isinstance(value, str) or value not in choices:
        raise PreventUpdate
    return value


def valid_frame(value) -> dict | None:
    """A frame on show, ``{"run_id": str, "frame": int >= 0}``, or None; anything else leaves the view as it was."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("run_id"), str):
        raise PreventUpdate
    frame = _integral(value.get("frame"))
    if frame is None or not 0 <= frame <= _MAX_FRAME:
        raise PreventUpdate
    return {"run_id": value["run_id"], "frame": frame}


def event_point(event) -> tuple[str, int, dict] | None:
    """(run_id, frame, bbox) of the first point of a projection click/hover event, or None when the event is
    not one (a gap between runs carries no run; a malformed event carries nothing).

    The event is plotly's, as the browser translated it (:data:`JS.EVENT_RUN`): each point's
    ``customdata`` is ``[run_id, frame]``.
    """
    if not isinstance(event, dict):
        return None
    points = event.get("points")
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    custom = points[0].get("customdata")
    if not isinstance(custom, list) or len(custom) < 2 or not isinstance(custom[0], str):
        return None
    frame = _integral(custom[1])
    if frame is None or not 0 <= frame <= _MAX_FRAME:
        return None
    bbox = points[0].get("bbox")
    if not (isinstance(bbox, dict) and bbox and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in bbox.values())):
        bbox = {"x0": 0, "x1": 0, "y0": 0, "y1": 0}  # 3-D points may come without one
    return custom[0], frame, bbox


# ------------------------------------------------------------ pure decisions
def selection_from_table(ticked, visible, known) -> list[str]:
    """The selected run ids: ticked rows that pass the filters, or every row that passes them if none is ticked.

    ``visible`` is the ids of the rows that pass the table's filter (:func:`dashboards.table.filtered_ids`;
    None: every ``known`` id).  The result is sorted, so sorting the
    table does not change the selection.
    """
    known = set(known)
    visible = [r for r in (known if visible is None else visible) if isinstance(r, str) and r in known]
    ticked = [r for r in (ticked or []) if isinstance(r, str) and r in known]
    shown = set(visible)  # once (a set per ticked row made ticking 2 000 rows cost 90 ms)
    return sorted(shown.intersection(ticked) if ticked else shown)


def next_frame(trigger, selection, click, run_value, slider, current, count) -> dict | None:
    """The frame to show after an event: {"run_id", "frame"}, or None when nothing is selected.

    Args:
        trigger: id of the component that fired (projection click, run dropdown, slider, the selection);
            play moves the slider, so a play step arrives as a slider event.
        click: the projection's click event with run ids (:data:`L.CLICK`).
        count: run_id -> number of frames of that run.
    """
    sel = [r for r in (selection or []) if isinstance(r, str)]
    cur = dict(current) if isinstance(current, dict) and current.get("run_id") in sel else None
    if trigger == L.CLICK and click:
        point = event_point(click)
        if point is not None and point[0] in sel:  # the projection shows only selected runs
            return {"run_id": point[0], "frame": point[1]}
    if trigger == L.VIEWER_RUN and isinstance(run_value, str) and run_value in sel:
        return cur if cur and cur["run_id"] == run_value else {"run_id": run_value, "frame": 0}
    if cur is None:
        return {"run_id": sel[0], "frame": 0} if sel else None
    n = max(int(count(cur["run_id"])), 1)
    if trigger == L.SLIDER and _integral(slider) is not None:
        return {**cur, "frame": int(min(max(_integral(slider), 0), n - 1))}
    return cur


def tooltip_target(hover) -> tuple[str, int, dict] | None:
    """(run_id, frame, bbox) of the hovered projection point, or None (the gaps between runs carry no run)."""
    return event_point(hover)


def frame_url(snap: data.Snapshot, run_id: str, frame: int) -> str | None:
    """URL path (below the app) of a run's frame PNG, or None when the run has no such frame."""
    run = snap.runs.get(run_id) if isinstance(run_id, str) else None
    paths = run.frame_paths if run is not None else []
    if not 0 <= frame < len(paths):
        return None
    rel = paths[frame].relative_to(run.path).as_posix()
    return f"{FILE_ROUTE}/{quote(run_id)}/{quote(rel)}"


# ------------------------------------------------------------------ the projection's figure
def projection_view(s: data.Snapshot, ids: tuple, method: str, dims: int, space: str, relative: bool,
                    cache_dir=None) -> tuple[dict, pd.DataFrame]:
    """(the projection figure of the runs ``ids`` without its ring, the projection's frame), built once per store
    state and inputs (the ring is moved per request: :func:`figures.with_current`)."""
    key = ("projection", str(s.root), s.signature, ids, method, int(dims), space, bool(relative), str(cache_dir))
    return memo.built(key, lambda: _projection_of(s, ids, method, int(dims), space, bool(relative), cache_dir))


def region_palette(s: data.Snapshot) -> dict:
    """Region -> colour over the whole store (every view colours a region the same)."""
    return figures.region_colors(s.catalog["region"].dropna()) if len(s.catalog) else {}


def _projection_of(s, ids, method, dims, space, relative, cache_dir):
    df = data.projection(s, ids, method, dims, space, cache_dir, relative)
    pal = region_palette(s)
    methods = dict(zip(s.catalog["run_id"], s.catalog["method"], strict=True)) if "method" in s.catalog else {}
    per_run = df.drop_duplicates("run_id")[["run_id", "region"]] if len(df) else df
    if any(isinstance(methods.get(r), str) and methods[r] != "discovery" for r in per_run["run_id"]):
        # baselines among the runs: one colour (and legend entry: click to hide) per region · method
        label = {r: f"{g} · {methods.get(r) or '-'}" for r, g in zip(per_run["run_id"], per_run["region"],
                                                                      strict=True)}
        df = df.assign(region=df["run_id"].map(label))
        pal = None
    return figures.projection_figure(df, dims=dims, method=method, colors=pal,
                                     space=data.SPACES.get(space, space)), df


def view_token(selection, method, dims, space, relative) -> str:
    """A short name of the projection's inputs as the browser holds them (the selection as a list, the view's
    controls): the page's embedded figure is named so, and the projection callback's first call with the same
    inputs leaves that figure as it is."""
    import hashlib

    text = json.dumps([selection, method, dims, space, bool(relative)], separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


def first_projection(snap: data.Snapshot, cache_dir=None) -> tuple[dict, str, str] | None:
    """(figure, note, :func:`view_token`) of the projection a page opens with (every run, :data:`layout.FIRST_VIEW`)
    when it can be had without a fit: in memory (:func:`warm_up` reads it while the browser loads the page's
    scripts) or in the analysis cache; None while it must be fitted (the page then asks the projection callback
    for it, which waits for the fit)."""
    if snap.empty:
        return None
    ids, v = tuple(sorted(snap.runs)), L.FIRST_VIEW
    if data.projection(snap, ids, v["method"], v["dims"], v["space"], cache_dir, v["relative"], fit=False) is None:
        return None
    try:
        fig, df = projection_view(snap, ids, v["method"], v["dims"], v["space"], v["relative"], cache_dir)
    except Exception as exc:  # noqa: BLE001 - the callback meets (and shows) it
        log.warning("the first projection's figure failed: %s", exc)
        return None
    fig = figures.with_current(fig, df, None, v["dims"]) if len(df) else fig
    relative = ["relative"] if v["relative"] else []
    return fig, df.attrs.get("note", ""), view_token(list(ids), v["method"], v["dims"], v["space"], relative)


# ------------------------------------------------------------------ start-up
def warm_up(root, cache_dir=None) -> None:
    """What the first page load needs, done while the browser loads the page's scripts: the store's snapshot,
    the imports that reading a cached projection needs, and the projection the page opens with (every run,
    :data:`layout.FIRST_VIEW`; read from the cache on disk, or fitted) and its figure, which the page then
    holds (:func:`first_projection`).  Requests that need one of these meanwhile wait for it (see
    :mod:`dashboards.data`) instead of doing it again.  Problems are logged: the page's own requests meet (and
    show) them."""
    try:
        snap = memo.snapshot(root)
        data.preload()
        if snap.runs:
            v = L.FIRST_VIEW
            projection_view(snap, tuple(sorted(snap.runs)), v["method"], v["dims"], v["space"], v["relative"],
                            cache_dir)
    except Exception as exc:
        log.warning("warming up for the first page failed: %s", exc)


# ------------------------------------------------------------------ wiring
MAX_QUERY = 20_000  # the longest address query read (characters)


def view_of_query(search, snap) -> dict:
    """The view a query string asks for, each part checked (anything unknown is left as the page has it):
    the ``tab``, ``method``, ``dims``, ``space``, ``relative`` (the checklist's value), ``filter`` and the ticked runs'
    ids (runs the store does not hold are dropped)."""
    from urllib.parse import parse_qs

    if not isinstance(search, str) or not search.strip("?") or len(search) > MAX_QUERY:
        return {}
    q = {k: v[-1] for k, v in parse_qs(search.lstrip("?"), keep_blank_values=False).items()}
    got: dict = {}
    if q.get("tab") in L.TAB_VALUES:
        got["tab"] = q["tab"]
    if q.get("view") in ("pca", "umap"):
        got["method"] = q["view"]
    if q.get("dims") in ("2", "3"):
        got["dims"] = int(q["dims"])
    if q.get("space") in data.SPACES:
        got["space"] = q["space"]
    if q.get("rel") in ("0", "1"):
        got["relative"] = ["relative"] if q["rel"] == "1" else []
    if "filter" in q and len(q["filter"]) <= 500:
        got["filter"] = q["filter"]
    if "sel" in q:
        got["ids"] = [i for i in dict.fromkeys(q["sel"].split(",")) if i in snap.runs]
    return got


def register_callbacks(app, root, cache_dir=None) -> None:
    """Attach every callback to ``app``; ``root`` is the run store, ``cache_dir`` the projection cache."""
    root = Path(root)

    def snap() -> data.Snapshot:  # the store now, one look shared by the requests that arrive together
        return memo.snapshot(root)

    def discovered(s, sel):
        """Selected discovery runs (transfer/combination runs have their own panel)."""
        if not len(s.catalog):
            return []
        kinds = dict(zip(s.catalog["run_id"], s.catalog["kind"], strict=True))
        return [r for r in sel or [] if kinds.get(r, "discover") == "discover"]

    table.register_table_callbacks(app, snap, selection_from_table)

    app.clientside_callback(JS.TAB, Output(L.DISCOVER_PANEL, "style"), Output(L.RUNS_PANEL, "style"),
                            Output(L.BROWSE_PANEL, "style"), Output(L.COMPARE_PANEL, "style"),
                            Input(L.TABS, "value"))

    # The address keeps the view: ?tab=browse&view=pca&dims=2&space=w_free&rel=1&filter=...&sel=id,id (a link reopens it).
    # Read once when the page loads (a query the page did not write is checked like any input); written by the
    # browser itself as the view changes (history.replaceState: no reload, no callback loop).
    @app.callback(Output(L.TABS, "value"), Output(L.METHOD, "value"), Output(L.DIMS, "value"),
                  Output(L.SPACE, "value"),
                  Output(L.RELATIVE, "value"), Output(L.TABLE, "filter_query"),
                  Output(L.TICKED, "data", allow_duplicate=True),
                  Input(L.URL, "search"), prevent_initial_call="initial_duplicate")
    def view_from_address(search):
        got = view_of_query(search, snap())
        if not got:
            raise PreventUpdate
        return tuple(got.get(k, no_update) for k in ("tab", "method", "dims", "space", "relative", "filter", "ids"))

    app.clientside_callback(JS.ADDRESS, Output(L.URL_SYNC, "data"),
                            Input(L.METHOD, "value"), Input(L.DIMS, "value"), Input(L.SPACE, "value"),
                            Input(L.RELATIVE, "value"), Input(L.TABLE, "filter_query"),
                            Input(L.TICKED, "data"), Input(L.TABS, "value"), prevent_initial_call=True)

    # The page may hold the figure of its first view already (app: first_projection, named by its view_token in
    # EMBEDDED): the first call with those inputs leaves it as it is instead of sending it again, and any call
    # forgets the name, so coming back to the same inputs later draws them.
    @app.callback(Output(L.PROJECTION, "figure"), Output(L.PROJECTION_NOTE, "children"),
                  Output(L.EMBEDDED, "data"),
                  Input(L.SELECTION, "data"), Input(L.METHOD, "value"), Input(L.DIMS, "value"),
                  Input(L.SPACE, "value"), Input(L.RELATIVE, "value"), State(L.FRAME, "data"),
                  State(L.EMBEDDED, "data"))
    def draw_projection(sel, method, dims, space, relative, frame, embedded):
        sel, method = valid_names(sel), valid_choice(method, ("pca", "umap"))
        dims, space = valid_int(dims, 2, 3), valid_choice(space, data.SPACES)
        if not isinstance(relative, (list, bool, type(None))):
            raise PreventUpdate
        if embedded is not None and embedded == view_token(sel, method, dims, space, relative):
            return no_update, no_update, None
        forget = no_update if embedded is None else None
        try:
            frame = valid_frame(frame)
        except PreventUpdate:
            frame = None  # a state, not the event: draw without the ring
        s = snap()
        ids = tuple(sorted(set(sel).intersection(s.runs)))
        try:  # the figure of a selection is built once per store state (the ring is moved per request)
            fig, df = projection_view(s, ids, method, int(dims), space, bool(relative), cache_dir)
        except Exception as exc:  # a bad run or an impossible fit must not take the page down
            log.warning("projection failed: %s", exc)
            return figures.message_figure(f"Cannot project these runs: {exc}"), str(exc), forget
        current = (frame["run_id"], frame["frame"]) if frame else None
        return (figures.with_current(fig, df, current, int(dims)) if len(df) else fig, df.attrs.get("note", ""),
                forget)

    # The other views follow the selection once its projection has arrived (DRAWN holds that selection), so
    # the first paint is the table and the projection, and the viewer and comparison come right after.  A page
    # that came with its figure learns it from EMBEDDED: the projection callback leaves the figure as it is then.
    app.clientside_callback(JS.DRAWN, Output(L.DRAWN, "data"), Input(L.PROJECTION, "figure"),
                            Input(L.EMBEDDED, "data"), State(L.SELECTION, "data"), State(L.DRAWN, "data"))

    # Moving the ring to the frame on show happens in the browser: it needs only the figure already there, and
    # it must not touch a figure that is not drawn yet (a server-side Patch would).
    app.clientside_callback(JS.MARK_FRAME, Output(L.PROJECTION, "figure", allow_duplicate=True),
                            Input(L.FRAME, "data"), State(L.PROJECTION, "figure"), prevent_initial_call=True)

    for event, store in (("hoverData", L.HOVER), ("clickData", L.CLICK)):
        app.clientside_callback(JS.EVENT_RUN, Output(store, "data"), Input(L.PROJECTION, event),
                                State(L.PROJECTION, "figure"), prevent_initial_call=True)

    @app.callback(Output(L.TOOLTIP, "show"), Output(L.TOOLTIP, "bbox"), Output(L.TOOLTIP, "children"),
                  Input(L.HOVER, "data"))
    def hover(hover_data):
        target = tooltip_target(hover_data)
        if target is None:
            return False, no_update, no_update
        run_id, frame, bbox = target
        url = frame_url(snap(), run_id, frame)
        img = html.Img(src=app.get_relative_path(url), className="thumb") if url else html.I("no frame on disk")
        return True, bbox, html.Div([img, html.Div(run_id, className="thumb-caption"),
                                     html.Div(f"frame {frame}", className="thumb-caption")])

    @app.callback(Output(L.FRAME, "data"), Output(L.VIEWER_RUN, "options"), Output(L.VIEWER_RUN, "value"),
                  Output(L.SLIDER, "max"), Output(L.SLIDER, "value"),
                  Input(L.DRAWN, "data"), Input(L.CLICK, "data"), Input(L.VIEWER_RUN, "value"),
                  Input(L.SLIDER, "value"), State(L.FRAME, "data"))
    def navigate(sel, click, run_value, slider, current):
        sel, current = valid_names(sel), valid_frame(current)
        if not isinstance(run_value, (str, type(None))) or not (slider is None or _integral(slider) is not None):
            raise PreventUpdate
        s = snap()
        trigger = ctx.triggered_id
        new = next_frame(trigger, sel, click, run_value, slider, current, lambda r: data.n_frames(s, r))
        if new is None:
            return None, (L.run_options(sel, None) if trigger in (None, L.DRAWN) else no_update), None, 1, 0
        # the run list: for a new selection, and when the run on show changes other than by picking it in the list
        # (a click in the projection may show a run the list did not hold)
        options = (L.run_options(sel, new["run_id"]) if trigger in (None, L.DRAWN) or new["run_id"] != run_value
                   else no_update)
        n = data.n_frames(s, new["run_id"])
        return (no_update if new == current else new, options,
                no_update if new["run_id"] == run_value else new["run_id"],
                max(n - 1, 1), no_update if new["frame"] == slider else new["frame"])

    @app.callback(Output(L.VIEWER_RUN, "options", allow_duplicate=True), Input(L.VIEWER_RUN, "search_value"),
                  State(L.DRAWN, "data"), State(L.VIEWER_RUN, "value"), prevent_initial_call=True)
    def search_runs(search, sel, value):
        """The run list for what is typed in it (the list holds at most L.MAX_RUN_OPTIONS runs)."""
        if not isinstance(search, (str, type(None))) or not isinstance(value, (str, type(None))):
            raise PreventUpdate
        return L.run_options(valid_names(sel), value, search or "")

    @app.callback(Output(L.VIEWER, "figure"), Output(L.VIEWER_NOTE, "children"), Output(L.SHOWN, "data"),
                  Input(L.FRAME, "data"))
    def show_frame(frame):
        frame = valid_frame(frame)
        if not frame:
            return figures.message_figure("Pick a run, or click a point in the projection."), "", frame
        s = snap()
        run_id, i = frame["run_id"], int(frame["frame"])
        try:
            ref, img, mask = data.frame_images(s, run_id, i)
        except Exception as exc:
            return figures.message_figure(str(exc)), "", frame
        row = s.catalog[s.catalog["run_id"] == run_id]
        info = row.iloc[0] if len(row) else {}
        note = (f"{run_id}: region {info.get('region', '?')}, reference {info.get('reference', '?')}, "
                f"frame {i} (of 0–{data.n_frames(s, run_id) - 1})")
        extent = describe_extent(dict(info)) if len(row) else ""
        if len(row) and pd.notna(info.get("spread")):
            extent = f"spread {info['spread']:.2f}, inside path {info.get('inside_path', float('nan')):.2f}" + (
                f"; {extent}" if extent else "")
        if extent:
            note += f" — this manifold {extent}" if extent.startswith("spans") else f" — {extent}"
        return figures.frame_figure(ref, img, mask), note, frame

    # Play: each tick moves the slider one frame on, but only once the viewer shows the frame asked for last,
    # so a slow server makes the animation slower instead of dropping every frame.
    app.clientside_callback(JS.PLAY_STEP, Output(L.SLIDER, "value", allow_duplicate=True),
                            Input(L.TICK, "n_intervals"), State(L.FRAME, "data"), State(L.SHOWN, "data"),
                            State(L.SLIDER, "max"), State(L.SLIDER, "value"), prevent_initial_call=True)

    @app.callback(Output(L.TICK, "disabled"), Output(L.PLAY, "children"), Input(L.PLAY, "n_clicks"),
                  prevent_initial_call=True)
    def play(n_clicks):
        playing = bool(valid_int(n_clicks, 0, 2**53, default=0) % 2)
        return not playing, "⏸ pause" if playing else "▶ play"

    @app.callback(Output(L.COMPARE_GRAPHS, "children"), Output(L.METHODS_GRAPHS, "children"),
                  Output(L.COMPARE_MOUNTED, "data"), Input(L.TABS, "value"), State(L.COMPARE_MOUNTED, "data"))
    def mount_compare(tab, mounted):
        """The Compare tab's graphs, put in the page when the tab is first shown (layout.compare_graphs); their
        callbacks then run for the selection drawn."""
        if tab != L.COMPARE or mounted is True:
            raise PreventUpdate
        return L.compare_graphs(), L.methods_graphs(), True

    @app.callback(Output(L.METRIC_BARS, "figure"), Input(L.DRAWN, "data"), Input(L.METRICS_PICK, "value"))
    def metric_bars(sel, metrics):
        sel, metrics = valid_names(sel), valid_names(metrics)
        s = snap()
        ids = tuple(discovered(s, sorted(set(sel))))
        return memo.built(("metric bars", str(s.root), s.signature, ids, tuple(metrics)), lambda: figures.metric_bars(
            data.metric_frame(s, ids), list(metrics), region_palette(s)))

    @app.callback(Output(L.LAYERS, "figure"), Input(L.DRAWN, "data"))
    def layers(sel):
        sel = valid_names(sel)
        s = snap()
        ids = tuple(discovered(s, sorted(set(sel))))
        try:
            return memo.built(("layers", str(s.root), s.signature, ids),
                               lambda: figures.layer_heatmap(data.layer_profiles(s, ids)).to_plotly_json())
        except Exception as exc:
            return figures.message_figure(f"Cannot compute layer profiles: {exc}", "Layer profile")

    @app.callback(Output(L.OVERLAP, "figure"), Input(L.DRAWN, "data"), Input(L.OVERLAP_K, "value"))
    def overlap(sel, k):
        sel, k = valid_names(sel), valid_int(k, 1, MAX_K, default=3)
        s = snap()
        ids = discovered(s, sel)
        try:
            mat, baseline = data.overlap(s, ids, k), data.overlap_baseline(s, ids, k)
        except Exception as exc:
            return figures.message_figure(f"Cannot compare subspaces: {exc}", "Subspace overlap")
        return figures.overlap_figure(mat, k, baseline)

    @app.callback(Output(L.METHODS_TABLE, "columns"), Output(L.METHODS_TABLE, "data"), Output(L.FRONTIER, "figure"),
                  Input(L.DRAWN, "data"), Input(L.METHODS_PICK, "value"))
    def methods(sel, picked):
        sel, picked = valid_names(sel), valid_names(picked)
        s = snap()
        if not data.has_methods(s):  # the box is hidden: nothing to compute
            raise PreventUpdate
        try:
            table = data.method_table(s, sel)
        except Exception as exc:  # a run.json that changed under us must not take the page down
            log.warning("method table failed: %s", exc)
            return [], [], figures.message_figure(f"Cannot compare methods: {exc}", "Locality against strength")
        if picked:  # the methods card's filter: only the methods picked (none picked: every one)
            table = table[table["method"].isin(picked)].reset_index(drop=True)
        return L.method_table_columns(table), L.records(table), figures.frontier_figure(table)

    @app.callback(Output(L.DERIVED, "figure"), Output(L.DERIVED_BOX, "style"), Input(L.DRAWN, "data"))
    def derived(sel):
        sel = valid_names(sel)
        s = snap()
        if not len(data.derived_runs(s)):
            return figures.message_figure("No transfer or combination runs."), {"display": "none"}
        return figures.derived_figure(data.derived_runs(s, sel)), {}
