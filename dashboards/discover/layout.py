"""The Discover card: the face to draw on, the region as the engine uses it, the settings, the progress."""

from __future__ import annotations

import numpy as np

from mgm_analysis.store import png_bytes

from .form import DISTANCES, MAX_UPLOAD_BYTES
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
    OFF,
    OFFSET,
    OUTSIDE,
    PANEL,
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
from .options import DiscoverOptions
from .protocol import FACE_PX, FINAL

POLL_MS = 1000          # the page reads the job files this often (≤ 2 s between strip refreshes)


def face_figure(png_b64: str | None, resolution: int, scale: int, shapes=None, message: str = "") -> dict:
    """The face as a plotly figure in pixel coordinates (x right, y down, pixel i spans [i, i+1]), in
    rectangle-drawing mode, with ``shapes`` drawn on it."""
    res = int(resolution)
    layout = {
        "width": FACE_PX, "height": FACE_PX, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "xaxis": {"range": [0, res], "visible": False, "constrain": "domain", "fixedrange": True},
        "yaxis": {"range": [res, 0], "visible": False, "scaleanchor": "x", "fixedrange": True},
        "dragmode": "drawrect", "shapes": [_styled(s) for s in shapes or [] if isinstance(s, dict)],
        "newshape": {"line": {"color": "#ff2d55", "width": 2}, "fillcolor": "rgba(255,45,85,0.18)",
                     "opacity": 1},
        "plot_bgcolor": "#222", "paper_bgcolor": "white",
    }
    data = []
    if png_b64:
        data.append({"type": "image", "source": "data:image/png;base64," + png_b64, "x0": 0.5 / scale,
                     "y0": 0.5 / scale, "dx": 1 / scale, "dy": 1 / scale, "hoverinfo": "skip", "name": "face"})
    if message:
        layout["annotations"] = [{"text": message, "showarrow": False, "x": res / 2, "y": res / 2,
                                  "font": {"color": "white"}}]
    return {"data": data, "layout": layout}


def _styled(shape: dict) -> dict:
    """A shape as the face draws it: the drawing colours, no empty fields."""
    return {"line": {"color": "#ff2d55", "width": 2}, "fillcolor": "rgba(255,45,85,0.18)", "editable": True,
            **{k: v for k, v in shape.items() if v is not None}}


def preset_shapes(name: str, resolution: int, layout: str) -> list[dict]:
    from mgm_analysis.presets import preset_boxes

    return [_styled({"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1})
            for x0, y0, x1, y1 in preset_boxes(name, layout, resolution)]


def mask_preview_png(face: np.ndarray | None, mask: np.ndarray, scale: int) -> bytes:
    """The mask as the engine uses it: the face (or grey) with the outside dimmed, at the generator's pixels."""
    base = np.full(mask.shape + (3,), 0.8, np.float32) if face is None else face
    if base.shape[:2] != mask.shape:
        base = np.full(mask.shape + (3,), 0.8, np.float32)
    img = base * (0.25 + 0.75 * mask[..., None])
    img = img * (1 - 0.25 * mask[..., None]) + np.array([1.0, 0.18, 0.33]) * 0.25 * mask[..., None]
    return png_bytes(img, scale)


def card(snap, options: DiscoverOptions):
    """The Discover card of the page: the view, or why it is off."""
    return panel(snap) if options.enabled else off_panel(options.reason)


def off_panel(reason: str):
    from dash import html

    return html.Div(id=PANEL, className="discover-card", children=[
        html.B("Discover"), html.P(reason, id=OFF, className="discover-off")])


def _number(id_, value=None, step="any", min_=None, width="80px"):
    """A number input.  No bounds but the seed's: the server's checks (``mgm discover``'s) word the ranges."""
    from dash import dcc

    return dcc.Input(id=id_, type="number", value=value, step=step, min=min_, debounce=False,
                     style={"width": width})


def run_options(snap, current=None, search: str = "") -> list[dict]:
    """The runs whose reference a search can start from, as the reference-run dropdown lists them: at most
    :data:`dashboards.layout.MAX_RUN_OPTIONS` and the one picked; typing searches the rest
    (:func:`dashboards.layout.run_options`)."""
    from .. import layout as L

    return L.run_options(sorted(snap.runs), current, search)


def panel(snap, info: dict | None = None):
    """The Discover card for one store snapshot (the settings are filled in once the worker has started)."""
    from dash import dcc, html

    def field(label, comp):
        return html.Label([html.Span(label, className="discover-label"), comp], className="discover-field")

    presets = [html.Button(n.replace("_", " "), id=PRESET_PREFIX + n, n_clicks=0, className="discover-preset")
               for n in PRESET_NAMES]
    reference = html.Div(className="discover-col", children=[
        html.Div([html.B("Discover"), html.Span(" — draw the region that should change, then Launch",
                                                className="discover-hint")]),
        dcc.RadioItems(id=REF_KIND, value="seed", inline=True, options=[
            {"label": "seed", "value": "seed"}, {"label": "a run's reference", "value": "run"},
            {"label": "upload w.npy", "value": "upload"}], inputStyle={"marginRight": "3px"},
            labelStyle={"marginRight": "10px"}),
        html.Div(className="discover-row", children=[
            field("seed", _number(SEED, 0, step=1, min_=0)),
            dcc.Dropdown(id=REF_RUN, options=run_options(snap), value=None, placeholder="run", clearable=False,
                         style={"minWidth": "240px", "flex": "1"}),
            dcc.Upload(id=UPLOAD, children=html.Button("w.npy…"), max_size=MAX_UPLOAD_BYTES, multiple=False)]),
        html.Div(id=REF_NOTE, className="discover-note"),
        dcc.Loading(dcc.Graph(id=FACE, figure=face_figure(None, 64, 1, message="loading the generator…"),
                              style={"width": f"{FACE_PX}px", "height": f"{FACE_PX}px"},
                              config={"displaylogo": False, "scrollZoom": False,
                                      "modeBarButtonsToAdd": ["drawrect", "drawcircle", "drawclosedpath",
                                                              "eraseshape"],
                                      "modeBarButtonsToRemove": ["zoom2d", "pan2d", "select2d", "lasso2d",
                                                                 "zoomIn2d", "zoomOut2d", "autoScale2d",
                                                                 "resetScale2d", "toImage"]}),
                    delay_show=600),
        html.Div(className="discover-row", children=[html.Span("presets:", className="discover-label"), *presets,
                                                     html.Button("clear shapes", id=CLEAR_SHAPES, n_clicks=0)]),
    ])
    region = html.Div(className="discover-col", children=[
        html.Div(html.B("Region as the engine uses it")),
        html.Img(id=MASK, className="discover-mask", alt="mask", hidden=True),  # shown once there is a region
        html.Div(id=REGION, className="discover-note"),
        html.Div(html.B("Settings"), style={"marginTop": "8px"}),
        html.Div(className="discover-settings", children=[
            field("frames", _number(FRAMES, step=1)),
            field("epochs", _number(EPOCHS, step=1)),
            field("offset", _number(OFFSET)),
            field("outside weight", _number(OUTSIDE)),
            field("layers", dcc.Input(id=LAYERS, type="text", value=None, placeholder="2:8",
                                      style={"width": "80px"})),
            field("distance", dcc.RadioItems(id=DISTANCE, value=None, inline=True,
                                             options=[{"label": d, "value": d} for d in DISTANCES],
                                             inputStyle={"marginRight": "3px"}, labelStyle={"marginRight": "8px"})),
        ]),
        html.Div(className="discover-row", children=[
            html.Button("Launch", id=LAUNCH, n_clicks=0, className="discover-launch"),
            html.Button("Cancel", id=CANCEL, n_clicks=0)]),
        html.Div(id=ERROR, className="discover-error", role="alert"),
    ])
    progress = html.Div(className="discover-col discover-wide", children=[
        html.B("Progress"),
        html.Div(id=PROGRESS, className="discover-progress", children="no jobs yet"),
        html.Img(id=STRIP, className="discover-strip", alt="current frames", style={"display": "none"}),
    ])
    return html.Div(id=PANEL, className="discover-card", children=[
        html.Div(className="discover-grid", children=[reference, region, progress]),
        dcc.Store(id=REFERENCE, data=None), dcc.Store(id=SHAPES, data=[]), dcc.Store(id=JOBS, data=[]),
        dcc.Store(id=LANDED, data=[]), dcc.Store(id=INIT, data=None),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=True, n_intervals=0),
    ])


# ---------------------------------------------------------------- progress text
def _terms_text(terms: dict) -> str:
    names = (("total", "E"), ("l_x", "L_X"), ("spring", "spring"), ("stiffener", "stiffener"), ("d_in", "D_in"),
             ("d_out", "D_out"))
    return "  ".join(f"{label} {terms[k]:.4g}" for k, label in names if isinstance(terms.get(k), (int, float)))


def progress_children(states: list[dict]):
    """The progress list: one line per job of this page, newest first; the running one with epoch k/N and terms."""
    from dash import html

    if not states:
        return "no jobs yet"
    rows = []
    for st in reversed(states):
        state = st.get("state", "unknown")
        label = f"{st.get('label', '?')} (seed {st.get('seed')})" if st.get("seed") is not None else st.get(
            "label", "?")
        line = [html.Span(state, className=f"discover-state discover-{state}"), " ", html.Code(label)]
        prog = st.get("progress") or {}
        if state == "running" and "epoch" in prog:
            line += [f" — epoch {prog['epoch']}/{prog.get('epochs', '?')}", html.Br(),
                     html.Span(_terms_text(prog.get("terms") or {}), className="discover-terms")]
        elif state in FINAL:
            if "epoch" in prog and state != "cancelled" and not st.get("existed"):
                line += [f" — {prog['epoch']}/{prog.get('epochs', '?')} epochs"]
            line += [" — ", st.get("message", "")]
        rows.append(html.Li(line))
    return html.Ul(rows, className="discover-jobs")

