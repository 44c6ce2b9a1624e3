"""Callbacks: each reads its inputs and the store (through memoised pure functions) and returns figures.

No callback mutates module state; ``root`` is bound when the app is created.
"""

from __future__ import annotations

from dash import Input, Output, State, dash_table, html, no_update

from . import data, figures


def register(app, root: str) -> None:
    @app.callback(Output("selection", "data"), Input("run-table", "selected_row_ids"))
    def select(ids):
        return sorted(ids or [])

    @app.callback(Output("projection", "figure"), Input("selection", "data"), Input("proj-method", "value"),
                  Input("proj-dims", "value"))
    def projection(ids, method, dims):
        if not ids:
            return figures.empty_figure("select runs in the table")
        df = data.projection(root, ids, method or "pca", int(dims or 2))
        return figures.fig_projection(df, f"{(method or 'pca').upper()} of the free W+ layers ({len(ids)} runs)")

    @app.callback(Output("proj-tooltip", "show"), Output("proj-tooltip", "bbox"), Output("proj-tooltip", "children"),
                  Input("projection", "hoverData"))
    def tooltip(hover):
        if not hover or not hover.get("points"):
            return False, no_update, no_update
        pt = hover["points"][0]
        run_id, frame = pt.get("customdata", [None, None])[:2]
        if run_id is None:
            return False, no_update, no_update
        src = f"/runfile/{run_id}/frames/{int(frame):03d}.png"
        child = html.Div([html.Img(src=src, style={"width": "96px", "imageRendering": "pixelated"}),
                          html.Div(f"{run_id} · frame {frame}", style={"fontSize": 10})], id="tooltip-content")
        return True, pt.get("bbox"), child

    @app.callback(Output("viewer-run", "options"), Output("viewer-run", "value"), Input("selection", "data"),
                  Input("projection", "clickData"), State("viewer-run", "value"))
    def viewer_runs(ids, click, current):
        runs = data.runs_by_id(root)
        opts = [{"label": f"{runs[i].region} · {i}", "value": i} for i in ids or [] if i in runs]
        if click and click.get("points"):
            run_id = click["points"][0].get("customdata", [None])[0]
            if run_id in runs:
                return opts, run_id
        value = current if current in (ids or []) else (opts[0]["value"] if opts else None)
        return opts, value

    @app.callback(Output("frame-slider", "max"), Output("frame-slider", "value"),
                  Input("viewer-run", "value"), Input("projection", "clickData"), Input("play-interval", "n_intervals"),
                  State("frame-slider", "value"))
    def slider(run_id, click, ticks, value):
        from dash import ctx

        run = data.runs_by_id(root).get(run_id)
        n = len(run.frame_paths) if run else 1
        trig = ctx.triggered_id
        if trig == "projection" and click and click.get("points"):
            pt = click["points"][0]
            if pt.get("customdata", [None])[0] == run_id:
                return max(0, n - 1), int(pt["customdata"][1])
        if trig == "play-interval":
            return max(0, n - 1), ((value or 0) + 1) % max(1, n)
        return max(0, n - 1), min(value or 0, max(0, n - 1)) if trig != "viewer-run" else 0

    @app.callback(Output("play-interval", "disabled"), Output("play", "children"), Input("play", "n_clicks"))
    def play(n):
        playing = bool(n and n % 2 == 1)
        return not playing, "⏸ pause" if playing else "▶ play"

    @app.callback(Output("frame-view", "figure"), Input("viewer-run", "value"), Input("frame-slider", "value"))
    def frame_view(run_id, frame):
        run = data.runs_by_id(root).get(run_id)
        if run is None:
            return figures.empty_figure("pick a run")
        img = data.frame_image(root, run_id, frame or 0)
        if img is None:
            return figures.empty_figure(f"{run_id} has no frames (mgm render {run.path} --frames-from-latents)")
        return figures.fig_frame_viewer(run.reference_img, img, run.mask, f"{run.region} · frame {int(frame or 0)}")

    @app.callback(Output("metric-bars", "figure"), Output("layer-heatmap", "figure"),
                  Output("overlap-matrix", "figure"), Output("derived-table", "children"), Input("selection", "data"))
    def comparison(ids):
        if not ids:
            e = figures.empty_figure("select runs in the table")
            return e, e, e, None
        cat = data.catalog(root)
        sel = cat[cat.run_id.isin(ids)]
        disc = sel[sel.kind == "discover"]
        disc_ids = list(disc.run_id)
        runs = data.runs_by_id(root)
        bars = figures.fig_metric_bars(disc)
        heat = figures.fig_layer_heatmap(data.profiles(root, disc_ids))
        M = data.overlaps(root, disc_ids)
        over = figures.fig_overlap(M, {i: f"{runs[i].region} · {runs[i].meta.get('reference', {}).get('seed')}"
                                       for i in M.index if i in runs})
        derived = sel[sel.kind != "discover"]
        table = None
        if not derived.empty:
            cols = [c for c in ["kind", "region", "reference", "locality", "union_locality", "a_change_in_b",
                                "b_change_in_a"] if c in derived.columns]
            table = html.Div([html.H4("Transfer and combination"), dash_table.DataTable(
                data=derived[cols].round(4).to_dict("records"), columns=[{"name": c, "id": c} for c in cols],
                style_cell={"fontSize": 12})])
        return bars, heat, over, table
