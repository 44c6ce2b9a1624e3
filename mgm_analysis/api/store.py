"""A run store, as a researcher holds it in a notebook: its catalog, its runs, projections, the region comparison,
the method table and the dashboard."""

from __future__ import annotations

from pathlib import Path

from .. import store
from ..errors import MGMError
from .run import Run

__all__ = ["Store"]


class Store:
    """A folder of runs (made by ``mgm discover``, ``mgm sweep``, ``mgm.discover(out=...)``, ...).

    >>> s = mgm.open_store("runs")                        # doctest: +SKIP
    >>> s.catalog[["run_id", "region", "locality"]]       # doctest: +SKIP
    """

    def __init__(self, path):
        p = Path(path).expanduser()
        if not p.is_dir():
            raise MGMError(f"{p}: no such store folder; make runs into it first (mgm discover --out {p})")
        self.path = p

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, {len(self.catalog)} runs)"

    @property
    def catalog(self):
        """A DataFrame, one row per readable run: id, path, status, region, generator, seed, config, metrics."""
        return store.catalog(self.path, warn=False)

    def runs(self, **filters) -> list[Run]:
        """The runs whose catalog columns equal the given values, e.g. ``runs(region="mouth", kind="discover")``;
        a list of values matches any of them.  An unknown column is one MGMError line."""
        cat = self.catalog
        for col, want in filters.items():
            if col not in cat.columns:
                raise MGMError(f"runs({col}=...): no such catalog column; known: {', '.join(map(str, cat.columns))}")
            cat = cat[cat[col].isin(want if isinstance(want, (list, tuple, set)) else [want])]
        return [Run(store.load_run(p)) for p in cat["path"]]

    def projection(self, method: str = "pca", space: str = "w_free", deltas: bool = True, **params):
        """A plotly figure: every frame of every run projected together (``pca`` or ``umap``; ``space``
        ``w_free``, ``w_all`` or ``frames``); ``deltas`` projects w_i − w* (so runs of other faces overlay)."""
        from ..analysis.projection import project
        from ..analysis.report import fig_projection

        if method not in ("pca", "umap"):
            raise MGMError(f"projection method {method!r}: choose pca or umap")
        df = project(self.path, method=method, space=space, relative=deltas, **params)
        return fig_projection(df, title=f"{method.upper()} of {space}{' deltas' if deltas else ''}")

    def compare(self, k: int = 3) -> dict:
        """The region comparison: ``overlap`` (a figure of the subspace overlap between runs), ``layers`` (each
        region's share of change per W+ layer) and ``summary`` (a DataFrame: overlap within and between regions)."""
        from ..analysis.compare import layer_profiles, overlap_matrix, region_overlap_summary
        from ..analysis.report import fig_layer_heatmap, fig_overlap, runs_of

        runs = runs_of(self.path)
        if len(runs) < 2:
            raise MGMError(f"{self.path}: comparing regions needs two discovered runs or more, found {len(runs)}")
        M = overlap_matrix(runs, k=k)
        return {"overlap": fig_overlap(M), "layers": fig_layer_heatmap(layer_profiles(runs)),
                "summary": region_overlap_summary(M, k=k)}

    def methods(self):
        """The method table (a DataFrame): discovery and every baseline per region and strength, at equal
        strength and extent (see ``mgm compare-methods``)."""
        from ..analysis.table import method_table

        return method_table(self.catalog)

    def dashboard(self, port: int = 8050, host: str = "127.0.0.1", block: bool = False) -> str:
        """Serve the dashboard of this store on ``host:port`` and return its address; in the background (a
        daemon thread, for a notebook) unless ``block``."""
        import threading

        from dashboards.app import check_root, serve

        root = check_root(self.path.resolve())  # here, not in the thread: a bad store is an MGMError to the caller
        url = f"http://{host}:{int(port)}/"
        if block:
            serve(root, host=host, port=port)
        else:
            threading.Thread(target=serve, args=(root,), kwargs={"host": host, "port": port},
                             name=f"mgm-dashboard-{port}", daemon=True).start()
        return url
