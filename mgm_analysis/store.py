"""The run store: one folder per run, written atomically, read with numpy/pandas/json only.

    runs/<run_id>/
      run.json        config, generator, region, seed, status, loss history, timings, metrics, provenance
      latents.npy     float32 [n, num_ws, w_dim]   the trajectory
      reference.npy   float32 [num_ws, w_dim]      w_ref
      reference.png   the reference image
      mask.png        the region mask at the generator's resolution (white = region)
      frames/000.png …, animation.gif

A run is written into ``<root>/.tmp-<run_id>-<pid>`` and renamed into place, so
a reader never sees a half-written run.  Every reader checks run.json against
the one schema of :mod:`mgm_analysis.run_schema` and the arrays against it (real
floating point, consistent shapes, finite values); a folder that fails is
skipped with one warning line that says why.  This module never imports torch.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from . import __version__
from .errors import MGMError, RunReadError, SchemaError
from .images import (  # noqa: F401  (the store's image functions, as its callers have always named them)
    MAX_IMAGE_PIXELS,
    display_scale,
    png_bytes,
    png_data_uri,
    read_png,
    to_uint8,
    write_gif,
    write_png,
)
from .run_schema import (
    MAX_FRAMES,
    MAX_RUN_JSON_BYTES,
    SCHEMA_VERSION,
    check_arrays,
    load_float_npy,
    validate_meta,
)

__all__ = ["SCHEMA_VERSION", "Run", "new_run_id", "write_run", "load_run", "scan_runs", "iter_runs",
           "catalog", "run_kind", "run_method", "update_run_meta", "to_uint8", "read_png", "write_png", "png_bytes", "display_scale", "write_json", "png_data_uri", "write_gif",
           "RunSkippedWarning", "MAX_IMAGE_PIXELS"]

REQUIRED_FILES = ("run.json", "latents.npy", "reference.npy", "mask.png")

#: the most memory a run's frames may take as float32 (36 frames at 1024² take 0.45 GiB)
MAX_FRAMES_BYTES = 4 * 2**30


class RunSkippedWarning(UserWarning):
    """:func:`iter_runs` left out a folder it could not read (one warning per folder)."""


# ----------------------------------------------------------------- json
def write_json(path: Path, obj) -> None:
    """JSON written atomically (a temporary file in the same folder, then renamed): a reader sees the old file or
    the new one, never half of one.  NaN is written as NaN; numpy numbers and paths as plain values.  The one
    atomic JSON writer (run.json, sweep records, the dashboard's job files)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default, allow_nan=True))
    os.replace(tmp, path)


# ------------------------------------------------------------------- runs
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")[:32] or "region"


_ISSUED: set[str] = set()


def new_run_id(region: str, seed: int | None) -> str:
    """Readable, unique id: ``<region>-s<seed>-<UTC timestamp>-<4 hex>``.

    Never the same id twice in one process (a sweep can start many runs in one second; 4 random hex digits
    alone collide within 50 draws about 2% of the time)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    tag = f"s{seed}" if seed is not None else "ref"
    while True:
        run_id = f"{_slug(region)}-{tag}-{stamp}-{os.urandom(2).hex()}"
        if run_id not in _ISSUED:
            _ISSUED.add(run_id)
            return run_id


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _full_meta(meta: dict, run_id: str | None) -> dict:
    """run.json as written: run_id, schema_version, created and version filled in when absent."""
    run_id = run_id or meta.get("run_id") or new_run_id(meta.get("region", {}).get("name", "region"), meta.get("seed"))
    meta = dict(meta)
    meta["run_id"] = run_id
    meta.setdefault("schema_version", SCHEMA_VERSION)
    meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("version", __version__)
    return meta


def memory_run(*, meta: dict, latents: np.ndarray, reference: np.ndarray, reference_img: np.ndarray,
               mask: np.ndarray, frames: np.ndarray, run_id: str | None = None) -> "Run":
    """The run :func:`write_run` would write, held in memory (``path`` None; nothing is written): the same
    run.json, the latents as float32 and the images as they read back from their 8-bit PNGs."""
    as_saved = lambda img: to_uint8(np.asarray(img, np.float32)).astype(np.float32) / 255.0  # noqa: E731
    meta = validate_meta(json.loads(json.dumps(_full_meta(meta, run_id), allow_nan=True)))
    run = Run(run_id=meta["run_id"], path=None, meta=meta)
    arrays = {"latents": np.asarray(latents, np.float32), "reference": np.asarray(reference, np.float32),
              "reference_img": as_saved(reference_img), "mask": as_saved(mask), "frames": as_saved(frames)}
    run.__dict__.update(arrays)  # the cached properties, already read
    return run


def write_run(root, *, meta: dict, latents: np.ndarray, reference: np.ndarray, reference_img: np.ndarray,
              mask: np.ndarray, frames: np.ndarray | None = None, run_id: str | None = None, gif: bool = True,
              overwrite: bool = False) -> Path:
    """Write a run folder atomically and return its path.

    Args:
        meta: the run.json content (run_id, schema_version, created, version are filled in when absent).
        latents: [n, num_ws, w_dim]; reference: [num_ws, w_dim].
        reference_img: [H, W, 3] in [0, 1]; mask: [H, W] in [0, 1]; frames: [n, H, W, 3] in [0, 1] or None.
        overwrite: replace an existing run with the same id (used by ``--resume``).
    """
    latents = np.asarray(latents, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if latents.ndim != 3 or reference.shape != latents.shape[1:]:
        raise ValueError(f"latents must be [n, num_ws, w_dim] and reference [num_ws, w_dim], got "
                         f"{list(latents.shape)} and {list(reference.shape)}")
    reference_img, mask = np.asarray(reference_img), np.asarray(mask)
    if reference_img.ndim != 3 or reference_img.shape[2] != 3 or mask.shape != reference_img.shape[:2]:
        raise ValueError(f"reference_img must be [H, W, 3] and mask [H, W], got {list(reference_img.shape)} and "
                         f"{list(mask.shape)}")
    if frames is not None:
        frames = np.asarray(frames)
        if len(frames) != len(latents):
            raise ValueError(f"expected one frame per latent, got {len(frames)} frames and {len(latents)} latents")
        if frames.shape[1:] != reference_img.shape:
            raise ValueError(f"frames must be [n, H, W, 3] like the reference image {list(reference_img.shape)}, "
                             f"got {list(frames.shape)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    meta = _full_meta(meta, run_id)
    run_id = meta["run_id"]
    final = root / run_id
    if final.exists() and not overwrite:
        raise MGMError(f"run {run_id} already exists in {root}; pick another id or pass --resume")
    tmp = root / f".tmp-{run_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        np.save(tmp / "latents.npy", latents)
        np.save(tmp / "reference.npy", reference)
        write_png(tmp / "reference.png", reference_img)
        write_png(tmp / "mask.png", np.asarray(mask, dtype=np.float32))
        if frames is not None:
            (tmp / "frames").mkdir()
            for i, fr in enumerate(frames):
                write_png(tmp / "frames" / f"{i:03d}.png", fr)
            if gif and len(frames) > 1:
                write_gif(tmp / "animation.gif", frames)
        write_json(tmp / "run.json", meta)  # last: a folder with run.json is complete
        if final.exists():
            old = root / f".old-{run_id}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except OSError as exc:
        written = folder_bytes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise no_space(exc, root, f"run {run_id}", written + _run_bytes(latents, frames)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 when it is gone)."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) if Path(folder).exists() else 0


def _run_bytes(latents: np.ndarray, frames) -> int:
    """About what a run folder takes: its arrays and, at most, its frames uncompressed twice (PNGs and the GIF)."""
    images = 2 * int(np.prod(frames.shape)) if frames is not None else 0
    return int(latents.nbytes) * 2 + images + 64 * 1024


def no_space(exc: OSError, where: Path, what: str, needed: int, at_least: bool = False) -> Exception:
    """A full disk or a file-size limit, as one line: what could not be written, about how much it needs, how much
    is free.  Any other OSError is returned as it is."""
    if exc.errno not in _FULL:
        return exc
    try:
        free = f"{shutil.disk_usage(where).free / 2**20:,.1f} MiB free there"
    except OSError:
        free = "free space unknown"
    why = {errno.EFBIG: "a file grew past the size limit (ulimit -f)"}.get(exc.errno, "no space left on the device")
    need = f"more than {needed / 2**20:,.1f} MiB" if at_least else f"about {needed / 2**20:,.1f} MiB"
    return MGMError(f"{where}: could not write {what}: {why}; it needs {need} ({free}); nothing was written — "
                    "free space or choose another --out")


@dataclass
class Run:
    """One run folder; arrays load lazily on first access (and are checked then: :class:`RunReadError`).
    A run made in memory (:func:`memory_run`) has ``path`` None and its arrays already loaded."""

    run_id: str
    path: Path | None
    meta: dict = field(repr=False)

    def _array(self, name: str) -> np.ndarray:
        try:
            return load_float_npy(self.path / name, f"{self.path}: {name}")
        except RunReadError:
            raise
        except MGMError as exc:
            raise RunReadError(str(exc)) from None

    def _image(self, name: str, gray: bool = False) -> np.ndarray:
        try:
            return read_png(self.path / name, gray=gray)
        except MGMError as exc:
            raise RunReadError(str(exc)) from None

    @cached_property
    def latents(self) -> np.ndarray:
        return self._array("latents.npy")

    @cached_property
    def reference(self) -> np.ndarray:
        return self._array("reference.npy")

    @cached_property
    def mask(self) -> np.ndarray:
        return self._image("mask.png", gray=True)

    @cached_property
    def reference_img(self) -> np.ndarray:
        return self._image("reference.png")

    @property
    def frame_paths(self) -> list[Path]:
        return sorted((self.path / "frames").glob("*.png"))

    @cached_property
    def frames(self) -> np.ndarray:
        paths = self.frame_paths
        if not paths:
            raise RunReadError(f"{self.path}: no frames/ (render them with `mgm render {self.path}`)")
        if len(paths) > MAX_FRAMES:
            raise RunReadError(f"{self.path}: frames/ holds {len(paths)} images, more than the {MAX_FRAMES} frames a "
                               "run may have")
        h, w = self.mask.shape  # every frame is an image at the mask's (the generator's) resolution
        need = len(paths) * h * w * 3 * 4
        if need > MAX_FRAMES_BYTES:
            raise RunReadError(f"{self.path}: its {len(paths)} frames of {w}x{h} would take {need / 2**30:.1f} GiB; "
                               "read them one at a time (Run.frame_paths)")
        frames = []
        for p in paths:
            try:
                frames.append(read_png(p, max_pixels=h * w))
            except MGMError as exc:
                raise RunReadError(str(exc)) from None
            if frames[-1].shape[:2] != (h, w):
                raise RunReadError(f"{p}: a frame of {frames[-1].shape[1]}x{frames[-1].shape[0]} in a run of "
                                   f"{w}x{h}; re-render the frames with `mgm render {self.path} --rerender`")
        return np.stack(frames)

    @property
    def region(self) -> str:
        return self.meta["region"]["name"]

    @property
    def kind(self) -> str:
        return run_kind(self.meta)

    @property
    def status(self) -> str:
        return self.meta["status"]

    @property
    def layers(self) -> tuple[int, int]:
        cfg = self.meta["config"]
        start, end = cfg.get("layer_start"), cfg.get("layer_end")
        return (0 if start is None else int(start)), (int(self.latents.shape[1]) if end is None else int(end))


def _read_meta(path: Path) -> dict:
    """run.json of a run folder, parsed and checked against the schema (:class:`RunReadError` otherwise)."""
    f = path / "run.json"
    try:
        size = f.stat().st_size
        if size > MAX_RUN_JSON_BYTES:
            raise RunReadError(f"{path}: run.json is {size / 2**20:.0f} MiB, more than the "
                               f"{MAX_RUN_JSON_BYTES // 2**20} MiB a run.json may have")
        meta = json.loads(f.read_bytes())
    except RunReadError:
        raise
    except RecursionError:
        raise RunReadError(f"{path}: run.json nests too deeply to be a run.json") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RunReadError(f"{path}: run.json is unreadable ({str(exc).splitlines()[0]})") from None
    try:
        return validate_meta(meta)
    except SchemaError as exc:
        raise RunReadError(f"{path}: {exc}") from None


def load_run(path, arrays: bool = True) -> Run:
    """Read and check a run folder: run.json against the schema and, with ``arrays``, the headers of
    latents.npy and reference.npy against it (the data load lazily).  Raises :class:`RunReadError`."""
    path = Path(path)
    if not path.is_dir():
        raise RunReadError(f"{path}: not a run folder")
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise RunReadError(f"{path}: half-written or not a run (missing {', '.join(missing)})")
    meta = _read_meta(path)
    if arrays:
        check_run_arrays(path, meta)
    return Run(run_id=meta["run_id"], path=path, meta=meta)


def npy_header(path) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of a ``.npy`` file from its header alone (ValueError or OSError when it is not one).

    Cheaper than a memory map; a truncated file (fewer bytes than the header promises) is an error too."""
    path = Path(path)
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{path}: unsupported .npy version {version}")
        need = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size < need:
        raise ValueError(f"{path}: truncated ({path.stat().st_size} of {need} bytes)")
    return tuple(int(v) for v in shape), dtype


def check_run_arrays(path, meta: dict | None = None, headers=None) -> None:
    """Raise :class:`RunReadError` unless latents.npy [n, L, D] and reference.npy [L, D] are whole, real
    floating point and consistent with each other and with run.json (headers only, or ``headers`` already read)."""
    path = Path(path)
    try:
        lat, ref = headers or (npy_header(path / "latents.npy"), npy_header(path / "reference.npy"))
    except (ValueError, OSError, EOFError) as exc:
        raise RunReadError(f"{path}: {str(exc).split(': ', 1)[-1]}") from None
    try:
        check_arrays(meta if meta is not None else {}, lat, ref)
    except SchemaError as exc:
        raise RunReadError(f"{path}: {exc}") from None


def check_run_data(run: Run) -> None:
    """Load a run's latents and reference and raise :class:`RunReadError` unless they are finite."""
    run.latents, run.reference  # noqa: B018  (the cached properties load and check them)


def unreadable_reason(folder, exc: BaseException) -> str:
    """Why a folder is not a readable run: the error's message without the folder's path it starts with (the
    one wording of skip warnings, the catalog's problem column and the dashboard's banner)."""
    msg = str(exc)
    return msg.split(": ", 1)[-1] if msg.startswith(str(folder)) else msg


def scan_runs(root, data: bool = False) -> Iterator[tuple[Path, Run | None, str | None]]:
    """``(folder, run, None)`` for every readable run folder under ``root`` (sorted by name) and
    ``(folder, None, reason)`` for every one that is not; folders named ``.*`` (caches, temporary
    folders) are not runs.

    run.json is checked against the schema and the arrays' headers against it; with ``data`` the
    latents and reference are also loaded and must be finite (the dashboard leaves that to first use).
    Two folders with the same run_id: the one named after it (else the first by name) is the run, the
    other is reported.
    """
    root = Path(root)
    if not root.is_dir():
        return
    found, seen = [], {}
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            run = load_run(p)
            if data:
                check_run_data(run)
        except (RunReadError, ValueError, OSError) as exc:
            found.append((p, None, unreadable_reason(p, exc)))
            continue
        other = seen.get(run.run_id)
        if other is not None and (p.name == run.run_id) > (other.path.name == run.run_id):
            seen[run.run_id] = run  # the folder named after the id wins
            idx = next(i for i, f in enumerate(found) if f[1] is other)
            found[idx] = (other.path, None, f"same run_id as {p.name} ({run.run_id}); left out")
            found.append((p, run, None))
        elif other is not None:
            found.append((p, None, f"same run_id as {other.path.name} ({run.run_id}); left out"))
        else:
            seen[run.run_id] = run
            found.append((p, run, None))
    yield from found


def iter_runs(root, warn: bool = True, data: bool = True) -> Iterator[Run]:
    """Every readable run under ``root`` (sorted by folder name); bad folders are skipped with one
    :class:`RunSkippedWarning` each.  ``data``: also load the arrays and skip non-finite ones."""
    for p, run, reason in scan_runs(root, data=data):
        if run is None:
            if warn:
                warnings.warn(f"skipping {p}: {reason}", RunSkippedWarning, stacklevel=2)
            continue
        yield run


def _flat_scalar_metrics(metrics: dict) -> dict:
    out = {}
    for k, v in (metrics or {}).items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            out[k] = float(v)
        elif isinstance(v, dict):
            for k2, v2 in v.items():
                if isinstance(v2, (int, float)) and not isinstance(v2, bool):
                    out[f"{k}.{k2}"] = float(v2)
    return out


def catalog(root, warn: bool = True):
    """One pandas row per run: ids, status, region, generator, reference, config summary, scalar metrics."""
    return catalog_of(iter_runs(root, warn=warn))


def run_kind(meta: dict) -> str:
    """A run's kind from its run.json: ``provenance.kind`` (discover | transfer | combine | baseline), ``discover``
    for runs written before provenance existed.  The one place that says so."""
    return ((meta or {}).get("provenance") or {}).get("kind") or "discover"


def run_method(meta: dict) -> str | None:
    """How a run's latents were found, from its run.json: ``discovery``, a baseline's method (GANSpace, ...),
    None for derived runs (transfer, combine)."""
    kind = run_kind(meta)
    if kind == "discover":
        return "discovery"
    return ((meta or {}).get("provenance") or {}).get("method") if kind == "baseline" else None


def run_strength(meta: dict) -> float | None:
    """The strength K of a run made at K times its region's target offset c (``mgm baselines --strength``,
    ``mgm compare-methods --strengths``): ``provenance.spec.params.strength``; None when not recorded (runs
    of ``mgm discover`` and runs made before strengths existed, all at their config's offset)."""
    prov = (meta or {}).get("provenance") or {}
    v = ((prov.get("spec") or {}).get("params") or {}).get("strength")
    if v is None:
        v = (prov.get("params") or {}).get("strength")
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    return float(v) if ok else None


def catalog_row(run) -> dict:
    """One row of :func:`catalog_of` (a dict), for one run already read."""
    m = run.meta
    cfg, ref, gen = m["config"], m.get("reference") or {}, m["generator"]
    ref_label = f"seed {ref['seed']}" if ref.get("seed") is not None else Path(str(ref.get("file") or "-")).name
    return {"run_id": run.run_id, "path": str(run.path), "status": m.get("status"),
            "region": m["region"]["name"], "generator": gen.get("name"),
            "reference": ref_label, "seed": m.get("seed"), "n_frames": cfg.get("n_frames"),
            "layers": f"{cfg.get('layer_start')}:{cfg.get('layer_end')}", "distance": cfg.get("distance"),
            "created": m.get("created"), "kind": run_kind(m),
            "method": run_method(m), "strength": run_strength(m) or math.nan,
            **_flat_scalar_metrics(m.get("metrics"))}


def catalog_of(runs):
    """:func:`catalog` of runs already read (e.g. from :func:`iter_runs`)."""
    import pandas as pd

    rows = [catalog_row(run) for run in runs]
    cols = ["run_id", "path", "status", "region", "generator", "reference", "seed", "n_frames", "layers",
            "distance", "created", "kind", "method", "strength"]
    return pd.DataFrame(rows, columns=cols if not rows else None)


def _deep_merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def update_run_meta(path, patch: dict) -> dict:
    """Deep-merge ``patch`` into a run's run.json, atomically; returns the new metadata."""
    run = load_run(path)
    meta = _deep_merge(run.meta, patch)
    write_json(Path(path) / "run.json", meta)
    return meta
