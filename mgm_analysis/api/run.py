"""A run, as a researcher holds it in a notebook: its frames, latents and metrics, shown as a contact sheet.

:class:`Run` wraps a run folder (:func:`mgm_analysis.store.load_run`) or a run made in memory
(``mgm.discover(..., out=None)``); it reads what the store holds, numpy and pandas only until a figure is drawn.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from .. import store

__all__ = ["Run"]


class Run:
    """One discovered (or baseline, transfer, combination) run.

    >>> run = mgm.load_run(path)                         # doctest: +SKIP
    >>> run.frames.shape, run.metrics["locality"]        # doctest: +SKIP
    ((16, 64, 64, 3), 0.98)
    """

    def __init__(self, run: store.Run):
        self._run = run

    # ------------------------------------------------------------------ what it holds
    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def path(self) -> Path | None:
        """The run folder, or None for a run in memory (see :meth:`save`)."""
        return self._run.path

    @property
    def status(self) -> str:
        """``complete`` or ``interrupted``."""
        return self._run.status

    @property
    def region(self) -> str:
        return self._run.region

    @property
    def meta(self) -> dict:
        """The whole run.json."""
        return self._run.meta

    @property
    def frames(self) -> np.ndarray:
        """``[n, H, W, 3]`` uint8: the frames as saved."""
        return store.to_uint8(self._run.frames)

    @property
    def latents(self) -> np.ndarray:
        """``[n, num_ws, w_dim]`` float32: the chain in W+."""
        return self._run.latents

    @property
    def reference(self) -> np.ndarray:
        """``[num_ws, w_dim]`` float32: the reference latent w*."""
        return self._run.reference

    @property
    def reference_image(self) -> np.ndarray:
        """``[H, W, 3]`` uint8: the reference image."""
        return store.to_uint8(self._run.reference_img)

    @property
    def mask(self) -> np.ndarray:
        """``[H, W]`` float in [0, 1]: the region."""
        return self._run.mask

    @property
    def metrics(self) -> dict:
        """The run's metrics that are numbers (a dict of floats; NaN where undefined)."""
        out = {}
        for k, v in (self.meta.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = float(v)
            elif v is None:
                out[k] = math.nan
        return out

    @property
    def config(self) -> dict:
        """The engine's configuration (DiscoveryConfig fields)."""
        return dict(self.meta.get("config") or {})

    @property
    def provenance(self) -> dict:
        """What made the run: its kind, job spec and key, sources, method."""
        return dict(self.meta.get("provenance") or {})

    def verdict(self) -> str:
        """One line: good (local, on target, smooth and exploring) or what it misses."""
        from ..metrics import quality_failures

        missed = quality_failures(self.meta.get("metrics") or {}, self.config.get("offset"))
        return "good: local, on target, smooth and exploring" if not missed else "not good: " + "; ".join(missed)

    # ------------------------------------------------------------------ keeping it
    def save(self, store_path) -> Path:
        """Write the run into the store ``store_path`` (created when missing) and return its folder; a complete run
        already there with the same job key is returned as it is (the one "already done" rule,
        :func:`mgm_analysis.jobs.complete_run`).  The run in hand then reads from there."""
        from ..jobs import complete_run, prepare_out

        root = prepare_out(store_path)
        path = complete_run(root, self.run_id, self.provenance.get("key"))
        if path is None:  # (another run in that folder: write_run's one line, nothing written)
            r = self._run
            path = store.write_run(root, meta=dict(r.meta), latents=r.latents, reference=r.reference,
                                   reference_img=r.reference_img, mask=r.mask, frames=r.frames, run_id=r.run_id)
        self._run = store.load_run(path)
        return path

    # ------------------------------------------------------------------ looking at it
    def sheet(self, cols: int = 8, scale: int | None = None):
        """The contact sheet as a PIL image: the reference, then every frame, the region outlined."""
        from PIL import Image

        from ..render import contact_sheet

        r = self._run
        scale = scale if scale is not None else store.display_scale(r.frames)
        img = contact_sheet(r.frames, r.mask, r.reference_img, cols=cols, scale=scale)
        return Image.fromarray(store.to_uint8(img))

    def gif(self, path, duration_ms: int = 80) -> Path:
        """Write the frames as an animated GIF (forth and back) and return its path."""
        path = Path(path).expanduser()
        store.write_gif(path, self._run.frames, duration_ms=duration_ms)
        return path

    def figure(self):
        """A plotly figure: the frames as an animation with a slider and a play button, the region outlined."""
        import plotly.graph_objects as go

        from ..render import draw_outline

        r = self._run
        scale = store.display_scale(r.frames)
        uris = [store.png_data_uri(store.png_bytes(draw_outline(f, r.mask), scale=scale)) for f in r.frames]
        h, w = r.frames.shape[1:3]
        fig = go.Figure(data=[go.Image(source=uris[0])],
                        frames=[go.Frame(data=[go.Image(source=u)], name=str(i)) for i, u in enumerate(uris)])
        steps = [{"method": "animate", "label": str(i),
                  "args": [[str(i)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
                 for i in range(len(uris))]
        fig.update_layout(
            title=f"{self.run_id} — {self.region}", width=max(360, w * scale + 80), height=h * scale + 200,
            xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 10, "r": 10, "t": 40, "b": 10},
            sliders=[{"steps": steps, "currentvalue": {"prefix": "frame "}}],
            updatemenus=[{"type": "buttons", "showactive": False, "buttons": [
                {"label": "play", "method": "animate",
                 "args": [None, {"frame": {"duration": 100, "redraw": True}, "fromcurrent": True}]},
                {"label": "pause", "method": "animate",
                 "args": [[None], {"mode": "immediate", "frame": {"duration": 0, "redraw": False}}]}]}])
        return fig

    def _headline(self) -> list[tuple[str, float]]:
        from ..metrics import metric_names

        m = self.metrics
        return [(k, m[k]) for k in metric_names("terminal") if k in m]

    def _repr_html_(self) -> str:
        import base64
        import io

        buf = io.BytesIO()
        self.sheet(scale=1).save(buf, format="PNG")
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        cells = "".join(f"<td><b>{html.escape(k)}</b> {v:.3f}</td>" for k, v in self._headline())
        where = html.escape(str(self.path)) if self.path is not None else "in memory (run.save(STORE) keeps it)"
        return (f"<div><b>{html.escape(self.run_id)}</b> — {html.escape(self.region)}, {html.escape(self.status)}, "
                f"{where}<br><img src='{uri}' style='image-rendering: pixelated; max-width: 100%'>"
                f"<table><tr>{cells}</tr></table><i>{html.escape(self.verdict())}</i></div>")

    def __repr__(self) -> str:
        heads = ", ".join(f"{k} {v:.3f}" for k, v in self._headline()[:4])
        where = str(self.path) if self.path is not None else "in memory"
        return f"Run({self.run_id!r}, {self.region}, {self.status}, {where}; {heads})"
