"""The Discover view's callbacks: the face and its shapes, the region shown, launch, cancel, the progress poll.

:func:`register` attaches them to the app and starts the worker; they talk to it only through its
:class:`~.client.WorkerClient` and read what the jobs do from the job folders (:mod:`.protocol`).
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np

from mgm_analysis.config import MAX_SEED
from mgm_analysis.errors import MGMError
from mgm_analysis.masks import resolve_region
from mgm_analysis.store import png_data_uri

from .client import _CLIENTS, WorkerClient
from .form import SETTINGS, _integral, page_spec, save_upload
from .ids import (
    CANCEL,
    CLEAR_SHAPES,
    DISTANCE,
    EPOCHS,
    ERROR,
    FACE,
    FRAMES,
    INIT,
    JOBS,
    LANDED,
    LAUNCH,
    LAYERS,
    MASK,
    OFFSET,
    OUTSIDE,
    POLL,
    PRESET_NAMES,
    PRESET_PREFIX,
    PROGRESS,
    REF_KIND,
    REF_NOTE,
    REF_RUN,
    REFERENCE,
    REGION,
    SEED,
    SHAPES,
    STRIP,
    UPLOAD,
)
from .layout import FACE_PX, face_figure, mask_preview_png, preset_shapes, progress_children, run_options
from .options import DiscoverOptions
from .protocol import _JOB_ID, job_dir, job_state, new_job_id, open_jobs

_SHAPES_JS = """
function (_relayout) {
    const g = document.querySelector('#%s .js-plotly-plot');
    if (!g || !g.layout) { return window.dash_clientside.no_update; }
    return (g.layout.shapes || []).map(s => ({type: s.type, x0: s.x0, y0: s.y0, x1: s.x1, y1: s.y1,
                                              path: s.path || null}));
}
""" % FACE


#: seconds after the app is made that the worker starts when the page opens on Browse (a store with runs): loading
#: torch and the generator (2-3 s of CPU) then does not share a 2-core machine with the page's first paint
#: (10 000 runs: 3.1 s with the worker starting at once, 2.4 s without it); opening the Discover tab starts it
#: at once
WORKER_START_DELAY_S = 5.0


def _has_runs(root: Path) -> bool:
    """Whether the store holds a run folder (stops at the first: no snapshot of 10 000 runs before listening)."""
    try:
        return any((p / "run.json").is_file() for p in root.iterdir() if not p.name.startswith("."))
    except OSError:
        return False


def register(app, root, options: DiscoverOptions) -> None:
    """Attach the Discover view's callbacks to ``app`` and start its worker: at once over an empty store or while
    a search of the store runs (the page opens on Discover), else :data:`WORKER_START_DELAY_S` later or when
    the Discover tab is first shown, whichever comes first."""
    import threading

    from dash import Input, Output, State, ctx, no_update
    from dash.exceptions import PreventUpdate

    from .. import data
    from .. import layout as L

    root = Path(root).resolve()
    client = _CLIENTS.setdefault(str(root) + "|" + options.generator, WorkerClient(root, options))
    app.discover_client = client
    if L.opens_on_discover(not _has_runs(root), root):
        client.start()
    else:
        timer = app.discover_start_timer = threading.Timer(WORKER_START_DELAY_S, client.start)
        timer.daemon = True
        timer.start()

    def info() -> dict:
        try:
            return client.wait_ready()
        except MGMError:
            raise PreventUpdate from None

    @app.callback(Output(L.DISCOVER_PANEL, "children"), Output(L.DISCOVER_MOUNTED, "data"), Input(L.TABS, "value"),
                  State(L.DISCOVER_MOUNTED, "data"))
    def mount_card(tab, mounted):
        """The Discover card of a page that opened on Browse, when the Discover tab is first shown."""
        if tab != L.DISCOVER or mounted is not False:
            raise PreventUpdate
        from .layout import card

        return card(data.snapshot(root), options), True

    @app.callback(Output(INIT, "data"), Output(FRAMES, "value"), Output(EPOCHS, "value"), Output(OFFSET, "value"),
                  Output(OUTSIDE, "value"), Output(LAYERS, "value"), Output(DISTANCE, "value"),
                  Output(JOBS, "data", allow_duplicate=True), Output(POLL, "disabled", allow_duplicate=True),
                  Input(L.TABS, "value"), State(INIT, "data"), prevent_initial_call="initial_duplicate")
    def init(tab, done):
        # once per page, when the Discover tab is first shown (the page opens on it over an empty store or while a
        # search runs): it waits for the worker, which a page opened on Browse need not start yet
        if tab != L.DISCOVER or done is not None:
            raise PreventUpdate
        # a reload (or another tab) follows the jobs that are queued or running now
        jobs = open_jobs(root)
        try:
            got = client.wait_ready()
        except MGMError as exc:  # the generator did not load: say so where the face would be
            return ({"error": str(exc)}, *([no_update] * 6), jobs, not jobs)
        d = got.get("defaults") or {}
        return ({"resolution": got["resolution"], "layout": got["layout"], "presets": got.get("presets", [])},
                d.get("n_frames"), d.get("epochs"), d.get("offset"), d.get("outside_weight"),
                f"{d.get('layer_start')}:{d.get('layer_end')}", d.get("distance"), jobs, not jobs)

    @app.callback(Output(FACE, "figure"), Output(REFERENCE, "data"), Output(REF_NOTE, "children"),
                  Input(INIT, "data"), Input(SEED, "value"), Input(REF_KIND, "value"), Input(REF_RUN, "value"),
                  Input(UPLOAD, "contents"), State(UPLOAD, "filename"), State(SHAPES, "data"))
    def reference(init_data, seed, kind, run_id, contents, filename, shapes):
        if init_data is None:  # the first call comes again once the generator's facts are in
            raise PreventUpdate
        if isinstance(init_data, dict) and isinstance(init_data.get("error"), str):
            return face_figure(None, 64, 1, message="no generator"), no_update, html_error(init_data["error"])
        got = info()
        res = got["resolution"]
        if kind not in ("seed", "run", "upload") or not isinstance(shapes, (list, type(None))):
            raise PreventUpdate
        shapes = [s for s in (shapes or []) if isinstance(s, dict)]
        scale = max(1, math.ceil(FACE_PX / res))
        try:
            if kind == "seed":
                s = _integral(seed)
                if s is None or not 0 <= s <= MAX_SEED:
                    raise MGMError(f"seed: give a whole number from 0 to {MAX_SEED}")
                ref, reply = {"seed": s}, client.request({"op": "face", "seed": s})
                note = f"seed {s}, ψ {got['defaults'].get('truncation')}"
            elif kind == "run":
                if not isinstance(run_id, str):
                    raise MGMError("pick a run whose reference to start from")
                run = data.snapshot(root).runs.get(run_id)
                if run is None:
                    raise MGMError(f"run {run_id} is not in the store")
                ref = {"run": run_id}
                reply = client.request({"op": "face", "file": str(run.path)})
                note = f"the reference of {run_id}"
            else:
                if not isinstance(contents, str):
                    raise MGMError("upload a w.npy ([num_ws, w_dim] or [w_dim] floats)")
                path, new_file = save_upload(root, contents, filename)
                ref = {"file": str(path)}
                try:
                    reply = client.request({"op": "face", "file": str(path)})
                except MGMError:  # e.g. the wrong shape for this generator: keep nothing
                    if new_file:
                        path.unlink(missing_ok=True)
                    raise
                note = f"uploaded {filename if isinstance(filename, str) else 'w.npy'}"
        except MGMError as exc:
            return no_update, no_update, html_error(str(exc))
        return face_figure(reply["png"], res, int(reply.get("scale", scale)), shapes), ref, note

    preset_inputs = [Input(PRESET_PREFIX + n, "n_clicks") for n in PRESET_NAMES]

    @app.callback(Output(FACE, "figure", allow_duplicate=True), Output(SHAPES, "data", allow_duplicate=True),
                  Input(CLEAR_SHAPES, "n_clicks"), *preset_inputs, State(FACE, "figure"),
                  prevent_initial_call=True)
    def preset(_clear, *rest):
        fig = rest[-1]
        got = info()
        trig = ctx.triggered_id
        if not isinstance(fig, dict) or not isinstance(fig.get("layout"), dict):
            raise PreventUpdate
        if trig == CLEAR_SHAPES:
            shapes = []
        elif isinstance(trig, str) and trig.startswith(PRESET_PREFIX) and trig[len(PRESET_PREFIX):] in got.get(
                "presets", []):
            shapes = preset_shapes(trig[len(PRESET_PREFIX):], got["resolution"], got["layout"])
        else:
            raise PreventUpdate
        new = {**fig, "layout": {**fig["layout"], "shapes": shapes}}
        return new, [{k: s.get(k) for k in ("type", "x0", "y0", "x1", "y1", "path")} for s in shapes]

    app.clientside_callback(_SHAPES_JS, Output(SHAPES, "data"), Input(FACE, "relayoutData"),
                            prevent_initial_call=True)

    @app.callback(Output(MASK, "src"), Output(MASK, "hidden"), Output(REGION, "children"),
                  Output(OFFSET, "value", allow_duplicate=True),
                  Input(SHAPES, "data"), Input(REFERENCE, "data"), State(OFFSET, "value"), State(INIT, "data"),
                  prevent_initial_call=True)
    def show_region(shapes, ref, offset, init_data):
        got = info()
        res, layout_name = got["resolution"], got["layout"]
        try:
            spec, reg = resolve_region(shapes, res, layout_name)
        except MGMError as exc:
            return None, True, html_error(str(exc)), no_update  # no region: no preview (never a broken image)
        face = None
        if isinstance(ref, dict) and "run" in ref:
            run = data.snapshot(root).runs.get(ref["run"]) if isinstance(ref["run"], str) else None
            face = run.reference_img if run is not None else None
        elif isinstance(ref, dict):
            face = _cached_face(client, ref)
        scale = max(1, math.ceil(224 / res))
        src = png_data_uri(mask_preview_png(face, reg.mask, scale))
        shown = spec if len(spec) <= 120 else spec[:117] + "…"
        text = f"{shown} — {reg.mask.sum():.0f} pixels, {100 * reg.area_share:.1f} % of the image"
        # a preset brings its own default offset (calibrated per region); otherwise keep what is there
        new_offset = no_update
        if reg.layout and reg.name in (got.get("region_defaults") or {}):
            new_offset = got["region_defaults"][reg.name]["offset"]
        return src, False, text, new_offset

    @app.callback(Output(ERROR, "children"), Output(JOBS, "data"), Output(POLL, "disabled"),
                  Input(LAUNCH, "n_clicks"), State(SHAPES, "data"), State(REFERENCE, "data"),
                  *[State(k, "value") for k in SETTINGS], State(JOBS, "data"), prevent_initial_call=True)
    def launch(n_clicks, shapes, ref, *rest):
        *values, jobs = rest
        if _integral(n_clicks) is None or not isinstance(jobs, (list, type(None))):
            raise PreventUpdate
        jobs = [j for j in (jobs or []) if isinstance(j, str) and _JOB_ID.match(j)]
        got = info()
        try:
            spec = page_spec(root, got, options.generator, shapes, ref, dict(zip(SETTINGS, values, strict=True)),
                             data.snapshot(root).runs)
            job_id = new_job_id()
            client.request({"op": "submit", "job": job_id, "spec": spec})
        except MGMError as exc:
            return html_error(str(exc)), no_update, no_update
        return "", [*jobs, job_id][-50:], False

    @app.callback(Output(ERROR, "children", allow_duplicate=True), Input(CANCEL, "n_clicks"),
                  State(JOBS, "data"), prevent_initial_call=True)
    def cancel(n_clicks, jobs):
        if _integral(n_clicks) is None or not isinstance(jobs, (list, type(None))):
            raise PreventUpdate
        open_jobs = [j for j in (jobs or []) if isinstance(j, str) and job_state(root, j).get("state")
                     in ("queued", "running")]
        if not open_jobs:
            return html_error("nothing to cancel: no job of this page is queued or running")
        running = [j for j in open_jobs if job_state(root, j).get("state") == "running"]
        target = (running or open_jobs)[0]
        try:
            client.request({"op": "cancel", "job": target})
        except MGMError as exc:
            return html_error(str(exc))
        return ""

    @app.callback(Output(REF_RUN, "options", allow_duplicate=True), Input(REF_RUN, "search_value"),
                  State(REF_RUN, "value"), prevent_initial_call=True)
    def search_ref_runs(search, value):
        """The reference-run list for what is typed in it (it holds at most L.MAX_RUN_OPTIONS runs)."""
        if not isinstance(search, (str, type(None))) or not isinstance(value, (str, type(None))):
            raise PreventUpdate
        return run_options(data.snapshot(root), value, search or "")

    @app.callback(Output(PROGRESS, "children"), Output(STRIP, "src"), Output(STRIP, "style"),
                  Output(LANDED, "data"), Output(POLL, "disabled", allow_duplicate=True),
                  Output(L.TABLE, "page_current", allow_duplicate=True), Output(L.TABLE, "columns"),
                  Output(L.TICKED, "data", allow_duplicate=True),
                  Output(L.FRAME, "data", allow_duplicate=True), Output("views", "style"),
                  Output(REF_RUN, "options"), Output(L.COUNT, "children"), Output(L.EMPTY, "style"),
                  Input(POLL, "n_intervals"), Input(JOBS, "data"), State(LANDED, "data"),
                  State(L.TICKED, "data"), State(L.TABLE, "page_current"), State(REF_RUN, "value"),
                  prevent_initial_call=True)
    def poll(_n, jobs, landed, ticked, page, ref_run=None):
        if not isinstance(jobs, (list, type(None))) or not isinstance(landed, (list, type(None))):
            raise PreventUpdate
        jobs = [j for j in (jobs or []) if isinstance(j, str) and _JOB_ID.match(j)]
        landed = [j for j in (landed or []) if isinstance(j, str)]
        states = [job_state(root, j) for j in jobs]
        states = [s for s in states if s.get("state")]
        children = progress_children(states)
        running = [s for s in states if s.get("state") == "running"]
        strip_src, strip_style = None, {"display": "none"}
        if running and (job_dir(root, running[0]["job"]) / "strip.png").is_file():
            try:
                strip_src = png_data_uri((job_dir(root, running[0]["job"]) / "strip.png").read_bytes())
                strip_style = {}
            except OSError:
                pass
        busy = any(s.get("state") in ("queued", "running") for s in states)
        new = [s for s in states if s.get("state") in ("complete", "interrupted") and s.get("run_id")
               and s["job"] not in landed]
        out = [children, strip_src, strip_style, no_update, not busy, *([no_update] * 8)]
        if new:
            snap = data.snapshot(root)
            new = [s for s in new if s["run_id"] in snap.runs]  # listed once the snapshot holds the run
        if new:
            last = new[-1]["run_id"]
            ticked = [t for t in (ticked or []) if isinstance(t, str) and t in snap.runs] \
                if isinstance(ticked, list) else []
            ticks = sorted({*ticked, last}) if ticked else []
            out[3] = [*landed, *(s["job"] for s in new)]
            # the page shown is asked for again (the table's rows are sent by the server, dashboards.table) and the
            # ticks are set again (the selection follows them and the filter): the new run reaches both
            out[5:] = [page if isinstance(page, int) and not isinstance(page, bool) and page >= 0 else 0,
                       L.table_columns(snap.catalog), ticks, {"run_id": last, "frame": 0}, {},
                       run_options(snap, ref_run if isinstance(ref_run, str) else None),
                       L.count_text(len(snap.runs)), {"display": "none"}]  # the empty-store message goes
        return tuple(out)


def html_error(text: str):
    from dash import html

    return html.Span(text, className="discover-error-text")


_FACE_CACHE: dict[str, np.ndarray] = {}


def _cached_face(client: WorkerClient, ref: dict) -> np.ndarray | None:
    """The face of a seed / file reference as floats, for the mask preview (asked of the worker, memoised)."""
    key = json.dumps(ref, sort_keys=True)
    if key not in _FACE_CACHE:
        try:
            if "seed" in ref and _integral(ref["seed"]) is not None:
                reply = client.request({"op": "face", "seed": _integral(ref["seed"])})
            elif isinstance(ref.get("file"), str):
                reply = client.request({"op": "face", "file": ref["file"]})
            else:
                return None
        except MGMError:
            return None
        from PIL import Image

        im = Image.open(io.BytesIO(base64.b64decode(reply["png"]))).convert("RGB")
        s = int(reply.get("scale", 1))
        arr = np.asarray(im, np.float32)[::s, ::s] / 255.0
        if len(_FACE_CACHE) > 64:
            _FACE_CACHE.clear()
        _FACE_CACHE[key] = arr
    return _FACE_CACHE[key]

