"""The dashboard's page: tabs Browse (projection, frame viewer, run table), Discover and Compare (regions, methods).

``build_layout(snap)`` returns the component tree for one store snapshot; the
app calls it on every page load so a reload shows new runs.  Component ids are
the constants below (callbacks and tests use them, never string literals).
"""

from __future__ import annotations

import math

from dash import dash_table, dcc, html
from dash.dash_table.Format import Format, Scheme

from mgm_analysis.metrics import metric_names

from . import data

# Component ids.
TABLE = "run-table"
SELECTION = "selection"          # dcc.Store: sorted list of selected run ids (what every view shows)
FRAME = "current-frame"          # dcc.Store: {"run_id": ..., "frame": ...} or None: the frame asked for
SHOWN = "shown-frame"            # dcc.Store: the frame the viewer last drew (play waits for it)
DRAWN = "projection-drawn"       # dcc.Store: the selection whose projection has arrived (drives the other views)
PROJECTION = "projection"
HOVER = "projection-hover"       # dcc.Store: the projection's hoverData with each point's run id (see callbacks)
CLICK = "projection-click"       # dcc.Store: the same for clickData
TOOLTIP = "projection-tooltip"
METHOD, DIMS, SPACE, RELATIVE = "projection-method", "projection-dims", "projection-space", "projection-relative"
URL, URL_SYNC = "url", "url-sync"  # the page's address: the view, the table's filter and the ticked runs (a link)
PROJECTION_NOTE = "projection-note"
VIEWER = "frame-viewer"
VIEWER_RUN, SLIDER, PLAY, TICK = "viewer-run", "frame-slider", "play-button", "play-interval"
VIEWER_NOTE = "viewer-note"
METRICS_PICK, METRIC_BARS = "metrics-pick", "metric-bars"
LAYERS, OVERLAP, OVERLAP_K = "layer-heatmap", "overlap-matrix", "overlap-k"
DERIVED, DERIVED_BOX = "derived-runs", "derived-box"
METHODS_BOX, METHODS_TABLE, FRONTIER, METHODS_PICK = "methods-box", "methods-table", "frontier", "methods-pick"
CLEAR, TICK_ALL = "clear-selection", "tick-filtered"
TICKED = "ticked"                # dcc.Store: the ticked run ids, on every page of the table (the table sees one page)
EMBEDDED = "projection-embedded"  # dcc.Store: callbacks.view_token of the figure the page came with, until used
EMPTY, WARNINGS, COUNT = "empty-store", "store-warnings", "store-count"
# the Compare tab's graphs and method table go into these when the tab is first shown (:func:`compare_graphs`)
COMPARE_GRAPHS, METHODS_GRAPHS, COMPARE_MOUNTED = "compare-graphs", "methods-graphs", "compare-mounted"
DISCOVER_MOUNTED = "discover-mounted"  # dcc.Store: whether the Discover card is in the page (see build_layout)

PLAY_MS = 200  # frame interval while playing
MAX_RUN_OPTIONS = 100  # a run dropdown holds at most this many runs; typing searches the rest (run_options)
MORE_RUNS = "\x00more"  # the value of its last, disabled entry when more runs match than it shows
# the projection a page opens with: the deltas w − w* (a joint fit over positions is dominated by which face a run
# started from, so runs of one face collapse to a dot); positions are one click away
FIRST_VIEW = {"method": "pca", "dims": 2, "space": "w_free", "relative": True}
PAGE_SIZE = 12

_CARD = {"border": "1px solid #ddd", "borderRadius": "6px", "padding": "10px", "margin": "8px 0",
         "background": "white"}
_PAGE = {"fontFamily": "system-ui, sans-serif", "maxWidth": "1500px", "margin": "0 auto", "padding": "10px",
         "background": "#fafafa"}
_GRAPH_CONFIG = {"displaylogo": False}


def count_text(n: int) -> str:
    """The header's run count."""
    return f" — {n} run{'s' * (n != 1)}"


# The page's three tabs (dcc.Tabs): Browse (projection, frame viewer, run table), Discover (the Discover card),
# Compare (region comparison, methods).  Every view stays mounted under its tab (hidden, not removed), so the
# selection, the Discover poll and drawn shapes keep working while another tab is shown, and a switch redraws
# nothing; the Compare tab's graphs join the page when that tab is first shown (:func:`compare_graphs`), and so
# does the Discover card of a page that opens on Browse.  The tab is in the address like the rest of the view
# (callbacks.view_of_query).
TABS = "tabs"
BROWSE, DISCOVER, COMPARE = "browse", "discover", "compare"
TAB_VALUES = (BROWSE, DISCOVER, COMPARE)
BROWSE_PANEL, COMPARE_PANEL, DISCOVER_PANEL = "browse-panel", "compare-panel", "discover-tab"
RUNS_PANEL = "runs-panel"  # Browse and Compare: the empty-store how-to and the views


def opens_on_discover(empty: bool, root) -> bool:
    """Whether a page with Discover on opens on its tab: over an empty store (it is how to begin) or while a
    Discover job of the store is queued or running (a reloaded page follows it); else it opens on Browse, so
    that someone who came to browse sees the runs first."""
    from .discover.protocol import open_jobs

    return empty or bool(open_jobs(root))


def first_tab(snap, discover_on: bool) -> str:
    """The tab a page opens on (:func:`opens_on_discover`)."""
    return DISCOVER if discover_on and opens_on_discover(snap.empty, snap.root) else BROWSE


def panel_styles(tab) -> list[dict]:
    """The styles of the Discover panel, the runs panel, Browse and Compare for the tab shown (the layout's
    first styles; :data:`clientside.TAB` does the same in the browser)."""
    hide = {"display": "none"}
    return [{} if tab == DISCOVER else hide, hide if tab == DISCOVER else {}, {} if tab == BROWSE else hide,
            {} if tab == COMPARE else hide]


def run_options(selection, current, search: str = "", limit: int | None = None) -> list[dict]:
    """A run dropdown's options (the frame viewer's runs, Discover's reference run): the runs whose id contains
    ``search`` (any case), the first ``limit`` (:data:`MAX_RUN_OPTIONS`) of them in the given order, the one
    picked (``current``) always among them, and when more match, a last entry that cannot be picked saying how
    many more and to type (the callbacks answer the dropdown's ``search_value`` with this list).  Dash's
    dropdown builds a full-text index of its options: 10 000 of them took the browser's main thread for
    seconds (the frame viewer's, after the first paint) to half a minute (Discover's, on every page load)."""
    limit = MAX_RUN_OPTIONS if limit is None else limit
    needle = search.casefold() if isinstance(search, str) else ""
    match = [r for r in (selection or []) if isinstance(r, str) and needle in r.casefold()]
    shown = match[:limit]
    if isinstance(current, str) and current in (selection or []) and current not in shown:
        shown = [current, *shown[:limit - 1]]
    out = [{"label": r, "value": r} for r in shown]
    matched = set(match)
    more = len(match) - sum(r in matched for r in shown)
    if more > 0:  # while typing, the entry names the text typed (the dropdown's own filter then keeps it)
        what = f" with “{search}”: type more" if needle else ": type to search"
        out.append({"label": f"… {more:,} more{what}", "value": MORE_RUNS, "disabled": True})
    return out


def tabs(tab: str) -> dcc.Tabs:
    return dcc.Tabs(id=TABS, value=tab, style={"margin": "8px 0"}, children=[
        dcc.Tab(label="Browse", value=BROWSE, id=f"tab-{BROWSE}"),
        dcc.Tab(label="Discover", value=DISCOVER, id=f"tab-{DISCOVER}"),
        dcc.Tab(label="Compare", value=COMPARE, id=f"tab-{COMPARE}"),
    ])


def discover_off() -> html.Div:
    """The Discover tab of a dashboard made without it (``--no-discover``, ``create_app(root)``)."""
    return html.Div(className="discover-card", children=html.P(
        "Discover is not on in this dashboard: `mgm dashboard STORE` starts it (not with --no-discover), "
        "or make runs with `mgm discover`.", className="discover-off"))


def empty_store_message(root, hidden: bool = False) -> html.Div:
    """What to show when the store has no runs: how to make some (kept, hidden, once runs exist, so that a
    run landing from Discover hides it without a reload)."""
    return html.Div(id=EMPTY, className="empty-store", style={**_CARD, **({"display": "none"} if hidden else {})},
                    children=[
        html.H3("No runs yet"),
        html.P(["There are no runs in ", html.Code(str(root)), ". Make some on the Discover tab, or with:"]),
        html.Pre(f"mgm demo --no-serve --out {root}                  # mouth, eyes, brows on the built-in model\n"
                 f"mgm discover --region mouth --seed 0 --out {root}   # one run\n"
                 f"mgm sweep --regions mouth,eyes,brows --seeds 0-4 --out {root}"),
    ])


def problems_banner(problems) -> html.Details | None:
    """A warning listing the run folders that could not be read (everything else still works)."""
    if not problems:
        return None
    n = len(problems)
    return html.Details(id=WARNINGS, className="store-warning", open=n <= 3,
                        style={**_CARD, "background": "#fff6e0", "borderColor": "#f0c36d"}, children=[
        html.Summary(f"⚠ {n} run folder{'s' * (n != 1)} could not be read and {'are' if n != 1 else 'is'} left out"),
        html.Ul([html.Li(p) for p in problems]),
    ])


def table_columns(cat) -> list[dict]:
    """DataTable columns: identity columns as text, metrics as numbers shown with 3 decimals."""
    cols = [{"name": c, "id": c, "type": "numeric" if c in ("n_frames", "strength") else "text"}
            for c in data.TABLE_COLUMNS if c in cat.columns]
    fmt = Format(precision=3, scheme=Scheme.fixed)
    cols += [{"name": c, "id": c, "type": "numeric", "format": fmt} for c in data.metric_columns(cat)]
    return cols


def records(df) -> list[dict]:
    """A DataFrame's rows for a DataTable, NaN as empty cells (JSON has no NaN)."""
    rows = df.to_dict("records")
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and math.isnan(v):
                r[k] = None
    return rows


def table_records(cat) -> list[dict]:
    """Rows for the run table: row ``id`` = run_id, NaN as empty cells."""
    keep = [c["id"] for c in table_columns(cat)]
    rows = records(cat[keep])
    for r in rows:
        r["id"] = r["run_id"]
    return rows


def run_table(cat) -> dash_table.DataTable:
    """The run table, paged, filtered and sorted on the server (:mod:`dashboards.table`): the page holds the first
    page of rows; ``callbacks`` sends the others as the table asks for them."""
    return dash_table.DataTable(
        id=TABLE, columns=table_columns(cat), data=table_records(cat.iloc[:PAGE_SIZE]),
        sort_action="custom", sort_mode="single", sort_by=[], filter_action="custom", filter_query="",
        page_action="custom", page_current=0, page_size=PAGE_SIZE, page_count=max(1, -(-len(cat) // PAGE_SIZE)),
        row_selectable="multi", selected_rows=[], selected_row_ids=[],
        filter_options={"case": "insensitive", "placeholder_text": "filter…"},
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "monospace", "fontSize": "12px", "padding": "2px 6px", "maxWidth": "260px",
                    "overflow": "hidden", "textOverflow": "ellipsis"},
        style_header={"fontWeight": "bold", "background": "#f4f4f4"},
        style_data_conditional=[{"if": {"filter_query": '{status} != "complete"', "column_id": "status"},
                                 "color": "#b35c00"}],
    )


def methods_box(shown: bool, methods=(), mounted: bool = False) -> html.Div:
    """The method comparison (stores with baseline runs): the method table of the selection, method × region ×
    strength, and locality against strength (the callbacks fill both; hidden when the store has no baselines);
    ``methods`` (:func:`data.method_options`): the filter's choices, none picked = every method; ``mounted``: with
    the table and the graph (:func:`methods_graphs`; else they come when the Compare tab is first shown)."""
    from mgm_analysis.analysis.table import TABLE_NOTES

    return html.Div(id=METHODS_BOX, style=_CARD if shown else {**_CARD, "display": "none"}, children=[
        html.Div([html.B("Methods at equal strength and extent"),
                  dcc.Dropdown(id=METHODS_PICK, options=[{"label": m, "value": m} for m in methods], value=[],
                               multi=True, placeholder="every method", style={"flex": "1", "minWidth": "240px"})],
                 style={"display": "flex", "alignItems": "center", "gap": "8px"}),
        html.Div(TABLE_NOTES, style={"color": "#666", "fontSize": "12px", "margin": "4px 0 6px"}),
        html.Div(id=METHODS_GRAPHS, children=methods_graphs() if mounted else []),
    ])


def methods_graphs() -> list:
    """The method table and locality against strength (see :func:`methods_box`)."""
    return [dash_table.DataTable(id=METHODS_TABLE, columns=[], data=[], sort_action="native", page_size=24,
                                 style_table={"overflowX": "auto"},
                                 style_cell={"fontFamily": "monospace", "fontSize": "12px", "padding": "2px 6px"},
                                 style_header={"fontWeight": "bold", "background": "#f4f4f4"}),
            dcc.Graph(id=FRONTIER, config=_GRAPH_CONFIG)]


def compare_graphs() -> list:
    """The region comparison's graphs: metric bars, layer heat-map, subspace overlap (and its k), transfer and
    combination runs.  Like :func:`methods_graphs` they are put in the page when the Compare tab is first shown
    (callbacks: ``mount_compare``), not with the page: a page that opens on Browse neither draws them nor
    computes them (10 000 runs: the layer heat-map alone reads every run's latents) before it is asked to; once
    in, they stay and follow the selection like every view."""
    return [
        dcc.Graph(id=METRIC_BARS, config=_GRAPH_CONFIG),
        html.Div(style={"display": "flex", "flexWrap": "wrap", "gap": "8px"}, children=[
            html.Div(dcc.Graph(id=LAYERS, config=_GRAPH_CONFIG), style={"flex": "1 1 480px", "minWidth": "0"}),
            html.Div([html.Span("subspace dimension k = "),
                      dcc.Input(id=OVERLAP_K, type="number", min=1, max=16, step=1, value=3, debounce=True,
                                style={"width": "60px"}),
                      dcc.Graph(id=OVERLAP, config=_GRAPH_CONFIG)],
                     style={"flex": "1 1 420px", "minWidth": "0"}),
        ]),
        html.Div(id=DERIVED_BOX, style={"display": "none"}, children=dcc.Graph(id=DERIVED, config=_GRAPH_CONFIG)),
    ]


def method_table_columns(table) -> list[dict]:
    """Columns of the method table: method and region as text, strength and runs as plain numbers, metrics
    with 3 decimals."""
    fmt = Format(precision=3, scheme=Scheme.fixed)
    return [{"name": c, "id": c, "type": "text"} if c in ("method", "region") else
            {"name": c, "id": c, "type": "numeric"} if c in ("strength", "runs") else
            {"name": c, "id": c, "type": "numeric", "format": fmt} for c in table.columns]


def _radio(id_, options, value):
    return dcc.RadioItems(id=id_, options=options, value=value, inline=True,
                          inputStyle={"marginRight": "3px"}, labelStyle={"marginRight": "12px"})


def build_layout(snap: data.Snapshot, discover=None, discover_on: bool | None = None, projection=None,
                 compare_mounted: bool = False, discover_mounted: bool = True) -> html.Div:
    """The page for one store snapshot, in three tabs (:func:`tabs`); ``discover``: the Discover card
    (dashboards.discover) for its tab, None when the dashboard has none; ``discover_on``: whether it can launch
    searches (default: whether there is a card), which decides the first tab (:func:`first_tab`);
    ``projection``: (figure, note, token) of the first view (:func:`dashboards.callbacks.first_projection`), drawn
    as soon as the page is, or None (the projection callback draws it); ``compare_mounted``: with the Compare
    tab's graphs in it (:func:`compare_graphs`; the app's structure has them, a page gets them when the tab is
    first shown); ``discover_mounted`` False: the Discover tab's panel is left empty, for the Discover callbacks
    to fill when the tab is first shown (a page that opens on Browse: the card's face graph and controls were
    0.5 s of a 10 000-run page's first paint).

    The views exist even for an empty store (hidden under the how-to message), so
    every callback always finds its components.
    """
    n = len(snap.runs)
    header = html.Div([
        html.H2("Mask-guided semantic manifolds", style={"margin": "0"}),
        html.Div([html.Code(str(snap.root)), html.Span(count_text(n), id=COUNT)], style={"color": "#555"}),
    ])
    banner = problems_banner(snap.problems)
    cat = snap.catalog
    metrics = data.metric_columns(cat)
    default_metrics = [m for m in metric_names("picked") if m in metrics]  # what the comparison opens with
    hint = {"color": "#666"}
    table_box = html.Div(style=_CARD, children=[
        html.Div([html.B("Runs"),
                  html.Span(" — tick rows to select them (no ticks: every row that passes the filters). "
                            "Filter with e.g. ", style=hint), html.Code("mouth"), html.Span(" or ", style=hint),
                  html.Code("> 0.8"),
                  html.Button("tick all filtered", id=TICK_ALL, n_clicks=0, style={"marginLeft": "12px"}),
                  html.Button("clear ticks", id=CLEAR, n_clicks=0, style={"marginLeft": "6px"})]),
        run_table(cat),
    ])
    projection_box = html.Div(style={**_CARD, "flex": "1 1 520px", "minWidth": "0"}, children=[
        html.Div([html.B("Projection"),
                  _radio(METHOD, [{"label": "PCA", "value": "pca"}, {"label": "UMAP", "value": "umap"}],
                         FIRST_VIEW["method"]),
                  _radio(DIMS, [{"label": "2-D", "value": 2}, {"label": "3-D", "value": 3}], FIRST_VIEW["dims"]),
                  _radio(SPACE, [{"label": v, "value": k} for k, v in data.SPACES.items()], FIRST_VIEW["space"]),
                  dcc.Checklist(id=RELATIVE, options=[{"label": "deltas w − w*", "value": "relative"}],
                                value=["relative"] if FIRST_VIEW["relative"] else [], inline=True,
                                inputStyle={"marginRight": "3px"})],
                 style={"display": "flex", "gap": "10px", "alignItems": "center", "flexWrap": "wrap"}),
        dcc.Loading(dcc.Graph(id=PROJECTION, clear_on_unhover=True, config=_GRAPH_CONFIG,
                              **({"figure": projection[0]} if projection else {})), delay_show=400),
        dcc.Tooltip(id=TOOLTIP, direction="right"),
        html.Div(projection[1] if projection else None, id=PROJECTION_NOTE,
                 style={"color": "#a33", "fontSize": "12px"}),
    ])
    viewer_box = html.Div(style={**_CARD, "flex": "1 1 520px", "minWidth": "0"}, children=[
        html.Div([html.B("Frame viewer"),
                  dcc.Dropdown(id=VIEWER_RUN, options=[], value=None, clearable=False, placeholder="run",
                               style={"flex": "1", "minWidth": "200px"}),
                  html.Button("▶ play", id=PLAY, n_clicks=0)],
                 style={"display": "flex", "alignItems": "center", "gap": "8px"}),
        dcc.Graph(id=VIEWER, config={**_GRAPH_CONFIG, "displayModeBar": False}),
        dcc.Slider(id=SLIDER, min=0, max=1, step=1, value=0, marks=None, updatemode="drag"),
        dcc.Interval(id=TICK, interval=PLAY_MS, disabled=True, n_intervals=0),
        html.Div(id=VIEWER_NOTE, style={"color": "#555", "fontSize": "12px"}),
    ])
    compare_box = html.Div(style=_CARD, children=[
        html.Div([html.B("Region comparison"),
                  dcc.Dropdown(id=METRICS_PICK, options=metrics, value=default_metrics, multi=True,
                               style={"flex": "1"})],
                 style={"display": "flex", "alignItems": "center", "gap": "8px"}),
        html.Div(id=COMPARE_GRAPHS, children=compare_graphs() if compare_mounted else []),
    ])
    tab = first_tab(snap, discover is not None if discover_on is None else discover_on)
    discover_style, runs_style, browse_style, compare_style = panel_styles(tab)
    views = html.Div(id="views", style={"display": "none"} if snap.empty else {}, children=[
        html.Div(id=BROWSE_PANEL, style=browse_style, children=[
            html.Div([projection_box, viewer_box], style={"display": "flex", "flexWrap": "wrap", "gap": "8px"}),
            table_box,
        ]),
        html.Div(id=COMPARE_PANEL, style=compare_style, children=[
            compare_box,
            methods_box(data.has_methods(snap), data.method_options(snap), mounted=compare_mounted),
        ]),
    ])
    return html.Div(id="page", style=_PAGE, children=[
        header, *([banner] if banner else []), tabs(tab),
        html.Div(id=DISCOVER_PANEL, style=discover_style,
                 children=[] if not discover_mounted else discover if discover is not None else discover_off()),
        html.Div(id=RUNS_PANEL, style=runs_style,
                 children=[empty_store_message(snap.root, hidden=not snap.empty), views]),
        # Every run: what the table selects with no ticks and no filters (callbacks.selection_from_table), so the
        # projection is asked for as soon as the page loads, without waiting for the table to render first.
        dcc.Store(id=SELECTION, data=sorted(snap.runs)),
        dcc.Store(id=TICKED, data=[]),
        dcc.Store(id=EMBEDDED, data=projection[2] if projection else None),
        dcc.Location(id=URL, refresh=False), dcc.Store(id=URL_SYNC, data=None),
        dcc.Store(id=FRAME, data=None),
        dcc.Store(id=SHOWN, data=None),
        dcc.Store(id=DRAWN, data=None),
        dcc.Store(id=COMPARE_MOUNTED, data=compare_mounted),
        dcc.Store(id=DISCOVER_MOUNTED, data=discover_mounted),
        dcc.Store(id=HOVER, data=None),
        dcc.Store(id=CLICK, data=None),
    ])
