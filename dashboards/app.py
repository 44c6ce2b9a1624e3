"""The Dash app over a run store (DESIGN §6).  ``create_app(root)`` builds it; ``serve(root)`` runs it on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from dash import Dash, html

from . import callbacks, data, layout

__all__ = ["create_app", "serve"]

CSS = """
body{font-family:system-ui,sans-serif;margin:16px} .row{display:flex;gap:12px} .muted{color:#777;font-size:12px}
.controls{display:flex;gap:16px;align-items:center;margin:6px 0} .warnings{color:#a15c00;font-size:12px}
.empty pre{background:#f4f4f4;padding:8px}
"""


def create_app(root, *, cache_dir=None) -> Dash:
    root = str(Path(root).resolve())
    app = Dash(__name__, title="mgm_analysis", suppress_callback_exceptions=True)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + CSS + "</style>")

    def serve_layout():
        cat = data.catalog(root)
        return layout.build(root, cat, data.warnings_for(root))

    app.layout = serve_layout

    @app.server.route("/runfile/<path:rel>")
    def runfile(rel):
        from flask import abort, send_file

        path = data.safe_file(root, rel)
        if path is None:
            abort(404)
        return send_file(path)

    if not data.catalog(root).empty:
        callbacks.register(app, root)
    else:
        app.layout = lambda: html.Div(layout.build(root, data.catalog(root), data.warnings_for(root)))
    return app


def serve(root, host: str = "127.0.0.1", port: int = 8050, debug: bool = False) -> None:
    create_app(root).run(host=host, port=port, debug=debug)
