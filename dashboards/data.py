"""Data access for the dashboard: memoised, read-only views of a run store (numpy/pandas, no torch).

Heavy work is a pure function memoised on (store root, store signature), where
the signature changes whenever a run is added, removed or rewritten — so the
dashboard picks up new runs without mutating any module state.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mgm_analysis import store
from mgm_analysis.analysis.compare import layer_profiles, overlap_matrix
from mgm_analysis.analysis.projection import project

__all__ = ["signature", "catalog", "warnings_for", "runs_by_id", "projection", "overlaps", "profiles", "safe_file"]


def signature(root: str) -> tuple:
    """Cheap fingerprint of a store: (name, mtime of run.json) of every run folder."""
    p = Path(root)
    if not p.is_dir():
        return ()
    out = []
    for d in sorted(p.iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            try:
                out.append((d.name, (d / "run.json").stat().st_mtime_ns))
            except OSError:
                out.append((d.name, 0))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _load(root: str, sig: tuple):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list(store.iter_runs(root))
    msgs = [str(w.message) for w in caught]
    cat = store.catalog(root, warn=False)
    return {r.run_id: r for r in runs}, cat, msgs


def runs_by_id(root: str) -> dict:
    return _load(root, signature(root))[0]


def catalog(root: str) -> pd.DataFrame:
    return _load(root, signature(root))[1]


def warnings_for(root: str) -> list[str]:
    return _load(root, signature(root))[2]


@functools.lru_cache(maxsize=32)
def _projection(root: str, sig: tuple, ids: tuple, method: str, dims: int) -> pd.DataFrame:
    runs = runs_by_id(root)
    sel = [runs[i] for i in ids if i in runs]
    return project(sel, method, "w_free", n_components=dims, cache_dir=Path(root) / ".mgm_cache")


def projection(root: str, ids, method: str = "pca", dims: int = 2) -> pd.DataFrame:
    return _projection(root, signature(root), tuple(sorted(ids)), method, dims)


@functools.lru_cache(maxsize=16)
def _overlaps(root: str, sig: tuple, ids: tuple, k: int) -> pd.DataFrame:
    runs = runs_by_id(root)
    return overlap_matrix([runs[i] for i in ids if i in runs], k)


def overlaps(root: str, ids, k: int = 3) -> pd.DataFrame:
    return _overlaps(root, signature(root), tuple(sorted(ids)), k)


@functools.lru_cache(maxsize=16)
def _profiles(root: str, sig: tuple, ids: tuple) -> pd.DataFrame:
    runs = runs_by_id(root)
    return layer_profiles([runs[i] for i in ids if i in runs])


def profiles(root: str, ids) -> pd.DataFrame:
    return _profiles(root, signature(root), tuple(sorted(ids)))


def frame_image(root: str, run_id: str, frame: int) -> np.ndarray | None:
    run = runs_by_id(root).get(run_id)
    if run is None:
        return None
    paths = run.frame_paths
    if not paths:
        return None
    return store.read_png(paths[max(0, min(int(frame), len(paths) - 1))])


def safe_file(root: str, rel: str) -> Path | None:
    """The file ``root/rel`` if it is a regular file inside a run folder of the store, else None.

    Rejects absolute paths, ``..``, symlinks out of the store, dot-folders and anything not under a run folder.
    """
    if not rel or rel.startswith(("/", "\\")) or "\x00" in rel or os.path.isabs(rel):
        return None
    parts = Path(rel).parts
    if any(p in ("..", ".") or p.startswith(".") for p in parts) or len(parts) < 2:
        return None
    base = Path(root).resolve()
    target = (base / rel).resolve()
    try:
        inside = target.relative_to(base)
    except ValueError:
        return None
    if not (base / inside.parts[0] / "run.json").is_file() or not target.is_file():
        return None
    return target
