"""The run store (DESIGN §4): one folder per run, written atomically, read with numpy/pandas/json only.

    runs/<run_id>/
      run.json        config, generator, region, seed, status, loss history, timings, metrics, provenance
      latents.npy     float32 [n, num_ws, w_dim]   the trajectory
      reference.npy   float32 [num_ws, w_dim]      w_ref
      reference.png   the reference image
      mask.png        the region mask at the generator's resolution (white = region)
      frames/000.png …, animation.gif

A run is written into ``<root>/.tmp-<run_id>-<pid>`` and renamed into place, so
a reader never sees a half-written run.  This module never imports torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from . import __version__
from .errors import MGMError

__all__ = ["SCHEMA_VERSION", "Run", "RunReadError", "new_run_id", "write_run", "load_run", "scan_runs", "iter_runs",
           "catalog", "update_run_meta", "to_uint8", "read_png", "write_png", "write_gif",
           "RunSkippedWarning"]

SCHEMA_VERSION = 1
REQUIRED_FILES = ("run.json", "latents.npy", "reference.npy", "mask.png")
REQUIRED_KEYS = ("run_id", "status", "region", "generator", "config")


class RunReadError(MGMError):
    """A run folder is corrupt, half-written or not a run."""


class RunSkippedWarning(UserWarning):
    """:func:`iter_runs` left out a folder it could not read (one warning per folder)."""


# ----------------------------------------------------------------- images
def to_uint8(img: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 (clipped)."""
    return (np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: Path, img: np.ndarray) -> None:
    """float [H, W, 3] or [H, W] in [0, 1] -> 8-bit PNG."""
    from PIL import Image

    Image.fromarray(to_uint8(img)).save(path)  # [H, W, 3] -> RGB, [H, W] -> L


def read_png(path: Path, gray: bool = False) -> np.ndarray:
    """PNG -> float32 in [0, 1], [H, W, 3] (or [H, W] with ``gray``)."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    return arr


def write_gif(path: Path, frames: np.ndarray, duration_ms: int = 80, bounce: bool = True, scale: int = 1) -> None:
    """Animated GIF of frames [n, H, W, 3] in [0, 1]; ``bounce`` plays forward then back."""
    from PIL import Image

    imgs = [Image.fromarray(to_uint8(f)) for f in frames]
    if scale > 1:
        imgs = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in imgs]
    if bounce and len(imgs) > 2:
        imgs = imgs + imgs[-2:0:-1]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=duration_ms, loop=0, optimize=False)


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


def _dump_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default, allow_nan=True))
    os.replace(tmp, path)


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
    run_id = run_id or meta.get("run_id") or new_run_id(meta.get("region", {}).get("name", "region"), meta.get("seed"))
    meta = dict(meta)
    meta["run_id"] = run_id
    meta.setdefault("schema_version", SCHEMA_VERSION)
    meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("version", __version__)
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
                write_gif(tmp / "animation.gif", frames, scale=max(1, 256 // frames.shape[1]))
        _dump_json(tmp / "run.json", meta)  # last: a folder with run.json is complete
        if final.exists():
            old = root / f".old-{run_id}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


@dataclass
class Run:
    """One run folder; arrays load lazily on first access."""

    run_id: str
    path: Path
    meta: dict = field(repr=False)

    @cached_property
    def latents(self) -> np.ndarray:
        return np.load(self.path / "latents.npy", allow_pickle=False)

    @cached_property
    def reference(self) -> np.ndarray:
        return np.load(self.path / "reference.npy", allow_pickle=False)

    @cached_property
    def mask(self) -> np.ndarray:
        return read_png(self.path / "mask.png", gray=True)

    @cached_property
    def reference_img(self) -> np.ndarray:
        return read_png(self.path / "reference.png")

    @property
    def frame_paths(self) -> list[Path]:
        return sorted((self.path / "frames").glob("*.png"))

    @cached_property
    def frames(self) -> np.ndarray:
        paths = self.frame_paths
        if not paths:
            raise RunReadError(f"{self.path}: no frames/ (render them with `mgm render {self.path}`)")
        return np.stack([read_png(p) for p in paths])

    @property
    def region(self) -> str:
        return self.meta.get("region", {}).get("name", "?")

    @property
    def status(self) -> str:
        return self.meta.get("status", "?")

    @property
    def layers(self) -> tuple[int, int]:
        cfg = self.meta.get("config", {})
        return int(cfg.get("layer_start", 0)), int(cfg.get("layer_end", self.latents.shape[1]))


def load_run(path) -> Run:
    """Read a run folder's metadata (arrays load lazily). Raises :class:`RunReadError`."""
    path = Path(path)
    if not path.is_dir():
        raise RunReadError(f"{path}: not a run folder")
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise RunReadError(f"{path}: half-written or not a run (missing {', '.join(missing)})")
    try:
        meta = json.loads((path / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise RunReadError(f"{path}: run.json is unreadable ({exc})") from None
    if not isinstance(meta, dict) or any(k not in meta for k in REQUIRED_KEYS):
        raise RunReadError(f"{path}: run.json lacks {', '.join(k for k in REQUIRED_KEYS if k not in meta)}")
    return Run(run_id=str(meta["run_id"]), path=path, meta=meta)


def npy_shape(path) -> tuple:
    """Shape of a ``.npy`` file from its header alone (raises ValueError or OSError when it is not one).

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
        if dtype.hasobject:
            raise ValueError(f"{path}: object arrays are not run data")
        need = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size < need:
        raise ValueError(f"{path}: truncated ({path.stat().st_size} of {need} bytes)")
    return tuple(int(v) for v in shape)


def check_run_arrays(path) -> None:
    """Raise :class:`RunReadError` unless latents.npy [n, L, D] and reference.npy [L, D] are whole and match."""
    path = Path(path)
    try:
        lat, ref = npy_shape(path / "latents.npy"), npy_shape(path / "reference.npy")
    except (ValueError, OSError) as exc:
        raise RunReadError(f"{path}: {str(exc).split(': ', 1)[-1]}") from None
    if len(lat) != 3 or ref != lat[1:]:
        raise RunReadError(f"{path}: latents {list(lat)} and reference {list(ref)} do not match")


def scan_runs(root) -> Iterator[tuple[Path, Run | None, str | None]]:
    """``(folder, run, None)`` for every readable run folder under ``root`` (sorted by name) and
    ``(folder, None, reason)`` for every one that is not; folders named ``.*`` (caches, temporary
    folders) are not runs."""
    root = Path(root)
    if not root.is_dir():
        return
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            run = load_run(p)
            check_run_arrays(p)  # headers only: catches truncated or mismatched arrays without reading them
        except (RunReadError, ValueError, OSError) as exc:
            yield p, None, str(exc).split(": ", 1)[-1]
            continue
        yield p, run, None


def iter_runs(root, warn: bool = True) -> Iterator[Run]:
    """Every readable run under ``root`` (sorted by id); bad folders are skipped with one warning each."""
    for p, run, reason in scan_runs(root):
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


def catalog_of(runs):
    """:func:`catalog` of runs already read (e.g. from :func:`iter_runs`)."""
    import pandas as pd

    rows = []
    for run in runs:
        m = run.meta
        cfg, ref, gen = m.get("config", {}), m.get("reference", {}) or {}, m.get("generator", {}) or {}
        ref_label = f"seed {ref['seed']}" if ref.get("seed") is not None else Path(str(ref.get("file") or "-")).name
        rows.append({
            "run_id": run.run_id, "path": str(run.path), "status": m.get("status"),
            "region": m.get("region", {}).get("name"), "generator": gen.get("name"),
            "reference": ref_label, "seed": m.get("seed"), "n_frames": cfg.get("n_frames"),
            "layers": f"{cfg.get('layer_start')}:{cfg.get('layer_end')}", "distance": cfg.get("distance"),
            "created": m.get("created"), "kind": (m.get("provenance") or {}).get("kind", "discover"),
            **_flat_scalar_metrics(m.get("metrics")),
        })
    cols = ["run_id", "path", "status", "region", "generator", "reference", "seed", "n_frames", "layers",
            "distance", "created", "kind"]
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
    _dump_json(Path(path) / "run.json", meta)
    return meta
