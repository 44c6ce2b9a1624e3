"""The dashboard's layout: run table, joint projection, frame viewer, region comparison."""

from __future__ import annotations

from dash import dash_table, dcc, html

TABLE_COLUMNS = ["region", "reference", "generator", "status", "kind", "locality", "semantic_locality", "jump_ratio",
                 "step_cv", "inside_rms", "run_id"]


def empty_store(root: str):
    return html.Div(id="empty-store", className="empty", children=[
        html.H3("No runs yet"),
        html.P(f"The store {root} has no runs. Make some, then reload this page:"),
        html.Pre(f"mgm demo --no-serve --out {root}\n# or\nmgm discover --region mouth --out {root}"),
    ])


def build(root: str, cat, warnings: list[str]):
    header = html.Div([html.H2("mgm_analysis — manifolds by region"), html.Div(f"store: {root}", className="muted")])
    warn = html.Div(id="warnings", className="warnings", children=[html.Div(f"⚠ {w}") for w in warnings])
    if cat.empty:
        return html.Div([header, warn, empty_store(root)])
    cols = [c for c in TABLE_COLUMNS if c in cat.columns]
    data = cat.assign(id=cat.run_id)[cols + ["id"]].round(4).to_dict("records")
    table = dash_table.DataTable(
        id="run-table", columns=[{"name": c, "id": c} for c in cols], data=data, row_selectable="multi",
        selected_row_ids=list(cat.run_id[:60]), sort_action="native", filter_action="native", page_size=15,
        style_table={"overflowX": "auto"}, style_cell={"fontSize": 12, "padding": "2px 6px", "maxWidth": 260,
                                                       "overflow": "hidden", "textOverflow": "ellipsis"})
    controls = html.Div(className="controls", children=[
        dcc.RadioItems(id="proj-method", options=["pca", "umap"], value="pca", inline=True),
        dcc.RadioItems(id="proj-dims", options=[{"label": "2-D", "value": 2}, {"label": "3-D", "value": 3}], value=2,
                       inline=True),
    ])
    projection = html.Div([controls, dcc.Loading(dcc.Graph(id="projection", clear_on_unhover=True,
                                                           style={"height": "480px"})),
                           dcc.Tooltip(id="proj-tooltip")])
    viewer = html.Div(className="viewer", children=[
        html.H3("Frame viewer"),
        dcc.Dropdown(id="viewer-run", clearable=False),
        html.Div(className="controls", children=[
            html.Button("▶ play", id="play", n_clicks=0),
            html.Div(dcc.Slider(id="frame-slider", min=0, max=1, step=1, value=0, marks=None,
                                tooltip={"placement": "bottom"}), style={"flex": 1}),
        ]),
        dcc.Interval(id="play-interval", interval=150, disabled=True),
        dcc.Graph(id="frame-view"),
    ])
    compare = html.Div([
        html.H3("Region comparison"),
        dcc.Graph(id="metric-bars"),
        html.Div(className="row", children=[dcc.Graph(id="layer-heatmap", style={"flex": 1}),
                                            dcc.Graph(id="overlap-matrix", style={"flex": 1})]),
        html.Div(id="derived-table"),
    ])
    return html.Div([header, warn, dcc.Store(id="selection"), table, html.Hr(),
                     html.Div(className="row", children=[html.Div(projection, style={"flex": 3}),
                                                         html.Div(viewer, style={"flex": 2})]),
                     html.Hr(), compare])
