"""The store's catalog: one Parquet row per run folder, kept up to date incrementally, so that nothing reads every
run.json again when one run changed.

``<store>/.mgm_cache/catalog.parquet`` holds, for every folder of the store (not ``.*``), its name, the size and
modification time of its run.json, whether it is a readable run (else the reason, one line), the run's metadata
as JSON, every column of :func:`mgm_analysis.store.catalog_of`, the shapes of its arrays (from the .npy headers)
and what the method table needs (``source``, ``seconds``, ``cpu_seconds``: :func:`run_extras`).

:func:`store_catalog` brings it up to date with one ``os.scandir`` of the store and one ``stat`` of each
run.json: only new folders, folders whose run.json changed and folders that were unreadable are read again;
removed folders are dropped.  The file is written atomically (a temporary file renamed into place) under a
``filelock`` lock; a store whose cache cannot be written (read-only) is catalogued in memory, without an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import store
from .errors import RunReadError

__all__ = ["StoreCatalog", "store_catalog", "run_extras", "metas_of", "column_of", "CATALOG_FILE"]

CATALOG_FILE = "catalog.parquet"
#: bump when the rows' content changes: an older file is then rebuilt from the run folders
CATALOG_VERSION = "1"
_LOCK_TIMEOUT_S = 60
_MEMORY: dict[str, pd.DataFrame] = {}  # catalogs of stores whose cache cannot be written, by resolved root
_MEMORY_LOCK = threading.Lock()


def run_extras(meta: dict) -> dict:
    """What the method table reads of a run beyond :func:`store.catalog_of`: its ``source`` (a transfer run's
    source run id), ``seconds`` (wall time of making it: ``timings.baseline_s`` of a baseline, ``total_s``
    otherwise), ``cpu_seconds`` (``timings.cpu_s``), and ``sources`` (every source, ``" + "``-joined)."""
    prov = (meta or {}).get("provenance") or {}
    kind = store.run_kind(meta)
    t = (meta or {}).get("timings") or {}
    srcs = [str(s) for s in (prov.get("sources") or []) if s]
    out = {"source": Path(srcs[0]).name if kind == "transfer" and srcs else None, "sources": " + ".join(srcs),
           "seconds": np.nan, "cpu_seconds": np.nan,
           "offset": _num(((meta or {}).get("config") or {}).get("offset"))}
    if kind != "transfer":
        s = t.get("baseline_s") if kind == "baseline" else t.get("total_s")
        out["seconds"] = _num(s)
        out["cpu_seconds"] = _num(t.get("cpu_s"))
    return out


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


@dataclass
class StoreCatalog:
    """A store's catalog as :func:`store_catalog` left it: ``table`` (one row per folder), ``reads`` (how many
    run.json were read to bring it up to date) and ``cached`` (False when the cache could not be written)."""

    root: Path
    table: pd.DataFrame = field(repr=False)
    reads: int = 0
    cached: bool = True

    def _ok(self) -> pd.DataFrame:
        t = self.table
        return t[t["ok"].astype(bool)] if len(t) else t

    def runs(self) -> list[store.Run]:
        """The readable runs (sorted by folder name) as :class:`store.Run` objects, their metadata from the
        catalog, parsed on first use (arrays load lazily, from their files)."""
        t = self._ok()
        return [_CatalogRun(r, self.root / f, m) for r, f, m in zip(t["run_id"], t["folder"], t["meta"], strict=True)]

    def frame(self) -> pd.DataFrame:
        """The readable runs as :func:`store.catalog_of` gives them (its columns, a row per run sorted by folder
        name, ``path`` under this catalog's root), straight from the table: no run.json is parsed (10 000 runs:
        20 ms instead of 0.8 s through :meth:`runs` and :func:`store.catalog_of`)."""
        t = self._ok()
        if not len(t):
            return store.catalog_of([])
        fixed = list(store.catalog_of([]).columns)
        metrics = [c for c in t.columns if c not in _NOT_CATALOG_OF and c not in fixed
                   and (t[c].notna().any() or _named_by_a_run(t["meta"], c))]
        out = t.reindex(columns=fixed + metrics).reset_index(drop=True)
        out["path"] = [os.path.join(str(self.root), f) for f in t["folder"]]
        for c in _INTEGER_COLUMNS:  # JSON integers: float in the table only where some row (maybe unreadable) lacks one
            if out[c].notna().all() and pd.api.types.is_float_dtype(out[c]):
                out[c] = out[c].astype("int64")
        return out

    def problems(self) -> list[tuple[Path, str]]:
        """(folder, reason) for every folder that is not a readable run, sorted by name."""
        t = self.table
        if not len(t):
            return []
        bad = t[~t["ok"].astype(bool)]
        return [(self.root / f, str(p)) for f, p in zip(bad["folder"], bad["problem"], strict=True)]


def _named_by_a_run(metas, column: str) -> bool:
    """Whether a metric column empty in every readable run is one that some run has (NaN: a metric that failed),
    not one left in the table by runs that are gone or unreadable now.  Parses run.json texts only until one
    names it (the first one, for a metric every run has)."""
    return any(column in store._flat_scalar_metrics(json.loads(m).get("metrics")) for m in metas)


class _CatalogRun(store.Run):
    """A :class:`store.Run` whose ``meta`` is parsed from the catalog's JSON on first use: a dashboard lists 10 000
    runs and reads the metadata of few of them (parsing every one took 0.5 s)."""

    def __init__(self, run_id: str, path: Path, meta_json: str):
        self.run_id, self.path, self._meta_json = run_id, path, meta_json

    @cached_property
    def meta(self) -> dict:
        return json.loads(self._meta_json)


#: columns of the table that are not :func:`store.catalog_of`'s: the bookkeeping, the arrays' shapes, the layer
#: range and :func:`run_extras`
_NOT_CATALOG_OF = frozenset(["folder", "mtime_ns", "size", "ok", "read_ok", "problem", "meta", "n_latents", "num_ws",
                             "w_dim", "layer_start", "layer_end", *run_extras({})])
_INTEGER_COLUMNS = ("seed", "n_frames")  # catalog_of's columns that hold JSON integers


# ------------------------------------------------------------------ reading one folder
def _stat(folder: str) -> tuple[int, int]:
    try:
        st = os.stat(os.path.join(folder, "run.json"))
        return st.st_mtime_ns, st.st_size
    except OSError:
        return 0, 0


def _read_folder(path: Path, mtime_ns: int, size: int) -> dict:
    """One catalog row: the folder read as :func:`store.scan_runs` reads it (run.json against the schema, the
    arrays' headers against it)."""
    row = {"folder": path.name, "mtime_ns": int(mtime_ns), "size": int(size), "ok": False, "read_ok": False,
           "problem": None, "meta": None}
    try:
        run = store.load_run(path, arrays=False)
        lat, ref = store.npy_header(path / "latents.npy"), store.npy_header(path / "reference.npy")
        store.check_run_arrays(path, run.meta, headers=(lat, ref))
        lat = lat[0]
    except (RunReadError, ValueError, OSError) as exc:
        row["problem"] = store.unreadable_reason(path, exc)
        return row
    row.update(ok=True, read_ok=True, meta=json.dumps(run.meta), n_latents=lat[0],
               num_ws=lat[1], w_dim=lat[2])
    cols = store.catalog_row(run)
    cols.pop("path", None)
    row.update(cols)
    row.update(run_extras(run.meta))
    a, b = run.meta["config"].get("layer_start"), run.meta["config"].get("layer_end")
    row["layer_start"], row["layer_end"] = (0 if a is None else int(a)), (lat[1] if b is None else int(b))
    return row


def _dedupe(table: pd.DataFrame) -> pd.DataFrame:
    """Two folders with the same run_id: the one named after it (else the first by name) is the run, the other
    a problem row (:func:`store.scan_runs`'s rule)."""
    if not len(table) or not table["ok"].any():
        return table
    ok = table[table["ok"].astype(bool)]
    dup = ok["run_id"].duplicated(keep=False)
    if not dup.any():
        return table
    table = table.copy()
    for run_id, g in ok[dup].groupby("run_id", sort=False):
        named = [i for i in g.index if table.at[i, "folder"] == run_id]
        keep = named[0] if named else g.index[0]
        for i in g.index:
            if i != keep:
                table.loc[i, ["ok", "problem"]] = [False, f"same run_id as {table.at[keep, 'folder']} ({run_id}); "
                                                          "left out"]
    return table


# ------------------------------------------------------------------ the catalog
def _load(path: Path) -> pd.DataFrame | None:
    try:
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        if (t.schema.metadata or {}).get(b"mgm_catalog") != CATALOG_VERSION.encode():
            return None
        return t.to_pandas()
    except Exception:  # noqa: BLE001 - a missing, damaged or older file is rebuilt from the folders
        return None


def _save(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(df, preserve_index=False)
    t = t.replace_schema_metadata({**(t.schema.metadata or {}), b"mgm_catalog": CATALOG_VERSION.encode()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(t, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


_EMPTY = ["folder", "mtime_ns", "size", "ok", "read_ok", "problem", "meta", "run_id"]


def _refresh(root: Path, old: pd.DataFrame | None) -> tuple[pd.DataFrame, int, bool]:
    """The catalog of ``root`` brought up to date from ``old``: (table, run.json read, whether it changed)."""
    try:
        with os.scandir(root) as it:
            entries = sorted((e for e in it if not e.name.startswith(".") and e.is_dir()), key=lambda e: e.name)
    except OSError:
        entries = []
    cur = pd.DataFrame([(e.name, *_stat(e.path)) for e in entries], columns=["folder", "mtime_ns", "size"])
    if old is None or not len(old):
        old = pd.DataFrame(columns=_EMPTY)
    elif _unchanged(cur, old):  # the usual case (a dashboard opened again): none of the frames' work below
        table = old.assign(ok=True, problem=None).reset_index(drop=True)
        return _dedupe(table), 0, False
    prev = old.set_index("folder", drop=False)
    known = cur["folder"].isin(prev.index)
    same = np.zeros(len(cur), bool)
    if known.any():
        p = prev.loc[cur.loc[known, "folder"]]
        same[known.to_numpy()] = ((p["mtime_ns"].to_numpy() == cur.loc[known, "mtime_ns"].to_numpy())
                                  & (p["size"].to_numpy() == cur.loc[known, "size"].to_numpy())
                                  & p["read_ok"].astype(bool).to_numpy())
    # unchanged and readable last time: kept as it was (a folder that was unreadable is looked at again)
    kept = prev.loc[cur.loc[same, "folder"]].assign(ok=True, problem=None)  # the duplicate rule runs afresh
    fresh = [_read_folder(root / f, m, z) for f, m, z in cur.loc[~same].itertuples(index=False)]

    def same_problem(r) -> bool:  # an unreadable folder read again, as unreadable as before
        f = r["folder"]
        return (not r["read_ok"] and f in prev.index and not prev.at[f, "read_ok"]
                and prev.at[f, "problem"] == r["problem"] and prev.at[f, "mtime_ns"] == r["mtime_ns"]
                and prev.at[f, "size"] == r["size"])

    changed = len(cur) != len(old) or not all(same_problem(r) for r in fresh)
    table = pd.concat([kept, pd.DataFrame(fresh)], ignore_index=True) if fresh else kept.reset_index(drop=True)
    if not len(table):
        table = pd.DataFrame(columns=_EMPTY)
    table = table.sort_values("folder", kind="stable").reset_index(drop=True)
    table["ok"] = table["ok"].astype(bool)
    table["read_ok"] = table["read_ok"].astype(bool)
    return _dedupe(table), len(fresh), changed


def _unchanged(cur: pd.DataFrame, old: pd.DataFrame) -> bool:
    """Whether ``old`` holds the folders of ``cur`` in its order, each readable and with its run.json's mtime and
    size: then :func:`_refresh` would read nothing and keep every row (10 000 runs: 0.15 s of frame operations)."""
    return (len(cur) == len(old) and bool(old["read_ok"].astype(bool).all())
            and np.array_equal(cur["folder"].to_numpy(object), old["folder"].to_numpy(object))
            and np.array_equal(cur["mtime_ns"].to_numpy(np.int64), old["mtime_ns"].to_numpy(np.int64))
            and np.array_equal(cur["size"].to_numpy(np.int64), old["size"].to_numpy(np.int64)))


def store_catalog(root, write: bool = True) -> StoreCatalog:
    """The catalog of the store ``root``, brought up to date (see the module docstring) and saved in
    ``<root>/.mgm_cache/catalog.parquet`` unless ``write`` is False, the cache cannot be written, or the store
    holds no folder yet (an empty store is left as it is)."""
    given, root = Path(root), Path(root).resolve()
    cache = root / ".mgm_cache"
    path = cache / CATALOG_FILE
    lock = None
    if write and not path.exists() and not _has_folders(root):
        write = False  # an empty (or missing) store: nothing to keep, and reading it leaves no trace in it
    if write:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            from filelock import FileLock

            lock = FileLock(str(cache / (CATALOG_FILE + ".lock")), timeout=_LOCK_TIMEOUT_S)
            lock.acquire()
        except Exception:  # noqa: BLE001 - a read-only store, or a lock held for a minute: in memory
            lock = None
    try:
        with _MEMORY_LOCK:
            old = _MEMORY.get(str(root))
        in_memory = old is not None
        if old is None:
            old = _load(path)
        table, reads, changed = _refresh(root, old)
        saved = False
        if lock is not None and not (changed or in_memory or old is None):
            saved = True  # the file holds this table already
        elif lock is not None:
            try:
                _save(table, path)
                saved = True
            except Exception:  # noqa: BLE001 - cannot be written (full, read-only, odd metadata): in memory
                pass
        with _MEMORY_LOCK:
            if saved:
                _MEMORY.pop(str(root), None)
            else:
                _MEMORY[str(root)] = table
        return StoreCatalog(given, table, reads, saved)
    finally:
        if lock is not None:
            lock.release()


def _has_folders(root: Path) -> bool:
    """Whether ``root`` holds a folder that is not hidden (a run, or something that claims to be one)."""
    try:
        with os.scandir(root) as it:
            return any(e.is_dir() and not e.name.startswith(".") for e in it)
    except OSError:
        return False


def column_of(paths, column: str) -> dict[str, object]:
    """Folder path (as a string) -> one catalog column's value (e.g. ``offset``, ``sources``), for run folders of
    one or more stores, without parsing their metadata."""
    out = {}
    for root, ps in _by_root(paths).items():
        t = store_catalog(root).table
        if not len(t) or column not in t:
            continue
        ok = t[t["ok"].astype(bool)]
        value = dict(zip(ok["folder"], ok[column], strict=True))
        out.update({str(p): value[p.name] for p in ps if p.name in value})
    return out


def _by_root(paths) -> dict[Path, list[Path]]:
    by_root: dict[Path, list[Path]] = {}
    for p in paths:
        p = Path(str(p))
        by_root.setdefault(p.parent, []).append(p)
    return by_root


def metas_of(paths) -> dict[str, dict]:
    """Folder path (as a string) -> run metadata, for run folders of one or more stores, read through their
    catalogs (a folder that is not a readable run is absent)."""
    return {p: json.loads(m) for p, m in column_of(paths, "meta").items()}
