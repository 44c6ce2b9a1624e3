"""The one schema of a run's ``run.json`` and of its arrays: what every reader of a store checks.

``validate_meta(meta)`` checks the parsed run.json against :class:`RunMeta` (pydantic, strict types: a
string is never read as a number, a region is never a string) and ``check_arrays(meta, latents, reference)``
checks the headers of ``latents.npy`` / ``reference.npy`` against it: real floating point, shapes
``[n, num_ws, w_dim]`` and ``[num_ws, w_dim]`` consistent with the generator and the config, sizes that
fit in memory.  Both raise :class:`SchemaError` with one line that names the field.  Unknown keys are
kept (a newer version may add some); a newer ``schema_version`` is refused.

This module imports pydantic and numpy only (no torch).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import MGMError, SchemaError

__all__ = ["SCHEMA_VERSION", "RunMeta", "validate_meta", "check_arrays", "check_float_array",
           "MAX_RUN_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_FRAMES", "MAX_ARRAY_BYTES", "load_float_npy"]

SCHEMA_VERSION = 1

#: run.json is metadata (a 500-epoch history is ~100 kB); anything this big is not a run.json
MAX_RUN_JSON_BYTES = 32 * 2**20
#: run.json nests 3 levels (metrics.factor_change.mouth); far deeper nesting is not a run.json
MAX_JSON_DEPTH = 32
#: the most frames a chain may have (the paper uses 36); also the limit of ``--frames``
MAX_FRAMES = 4096
#: latents.npy of the largest chain, 4096 frames × 18 × 512 float32, is 151 MB; more is not a run
MAX_ARRAY_BYTES = 2**30


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


Count = Annotated[int, Field(ge=1)]
Index = Annotated[int, Field(ge=0)]
Text = Annotated[str, Field(min_length=1, max_length=4096)]
Number = Union[int, float]  # NaN allowed: metrics of a diverged run are NaN
Scalar = Union[Number, bool, None, str]


class Region(_Part):
    name: Text
    spec: str
    layout: str | None = None
    boxes: list[Annotated[list[int], Field(min_length=4, max_length=4)]] = []
    area_share: Number | None = None


class Generator(_Part):
    name: str | None
    format: str | None = None
    path: str | None = None
    sha256: str | None = None
    resolution: Count | None = None
    num_ws: Count | None = None
    w_dim: Count | None = None
    num_params: Index | None = None
    extra: dict[str, Any] = {}


class Reference(_Part):
    seed: int | None = None
    truncation: Number | None = None
    file: str | None = None


class Config(_Part):
    n_frames: Annotated[int, Field(ge=1, le=MAX_FRAMES)] | None = None
    layer_start: Index | None = None
    layer_end: Count | None = None
    distance: str | None = None
    offset: Number | None = None
    offset_ramp: bool | None = None
    closed_loop: bool | None = None


class JobSpecPart(_Part):
    """The job spec a run was made from (what ``--resume`` rebuilds the job with)."""

    kind: Text = "discover"
    generator: Text = "toyfaces"
    region: str | None = None
    seed: int | None = None
    reference: str | None = None
    layout: str | None = None
    preset: str | None = None
    config: dict[str, Any] = {}
    sources: list[str] = []
    params: dict[str, Any] = {}


class Provenance(_Part):
    kind: Text = "discover"
    sources: list[str] = []
    key: str | None = None
    spec: JobSpecPart | None = None
    method: str | None = None  # a baseline's method (GANSpace, ...): a column of the run table


class Resume(_Part):
    epochs_done: Index = 0
    resumed: bool = False


Metric = Union[Number, bool, None, list[Union[Number, None]], dict[str, Union[Number, None]]]


class RunMeta(_Part):
    """run.json: the fields readers rely on, with their types; other keys pass through unchanged."""

    run_id: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00]+$")]
    status: Text
    region: Region
    generator: Generator
    config: Config
    schema_version: Annotated[int, Field(ge=1)] = SCHEMA_VERSION
    reference: Reference | None = None
    seed: int | None = None
    stop_reason: str | None = None
    created: str | None = None
    version: str | None = None
    history: dict[str, list[Scalar]] | None = None
    timings: dict[str, Scalar] | None = None
    metrics: dict[str, Metric] | None = None
    provenance: Provenance | None = None
    resume: Resume | None = None


def _depth(obj, limit: int) -> int:
    """Nesting depth of dicts/lists (iterative: a hostile file cannot exhaust the stack); stops past ``limit``."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        o, d = todo.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            todo.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def _describe(err: dict) -> str:
    # a key that is not a plain name (a user's run.json may hold any text) is quoted: the message stays one line
    loc = ".".join(str(p) if isinstance(p, int) or str(p).isidentifier() else repr(str(p))
                   for p in err.get("loc", ())) or "run.json"
    got = repr(err.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{loc}: {err.get('msg', 'invalid').rstrip('.')} (found {got})"


def validate_meta(meta) -> dict:
    """Check a parsed run.json; return it unchanged or raise :class:`SchemaError` naming the first bad field."""
    if not isinstance(meta, dict):
        raise SchemaError(f"run.json holds a {type(meta).__name__}, not an object of run fields")
    if _depth(meta, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise SchemaError(f"run.json nests deeper than {MAX_JSON_DEPTH} levels; it is not a run.json")
    version = meta.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise SchemaError(f"run.json has schema_version {version}, newer than this mgm_analysis reads "
                          f"({SCHEMA_VERSION}); upgrade mgm_analysis")
    try:
        RunMeta.model_validate(meta)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SchemaError(f"run.json field {_describe(errors[0])}{more}") from None
    except RecursionError:  # pragma: no cover - the depth check above comes first
        raise SchemaError("run.json nests too deeply; it is not a run.json") from None
    return meta


def check_float_array(dtype: np.dtype, what: str) -> None:
    """Raise :class:`SchemaError` unless ``dtype`` is real floating point (not int, complex, string, object)."""
    dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.kind != "f":
        raise SchemaError(f"{what} holds {dtype} values; it must be real floating point (float16/32/64)")


def check_arrays(meta: dict, latents: tuple[tuple, np.dtype], reference: tuple[tuple, np.dtype]) -> None:
    """Check the (shape, dtype) of latents.npy and reference.npy against each other and run.json.

    latents ``[n, num_ws, w_dim]`` with 1 <= n <= MAX_FRAMES, reference ``[num_ws, w_dim]``; ``num_ws``
    and ``w_dim`` as the generator records them; the config's free layers inside ``num_ws``.  (The number
    of latents may differ from ``config.n_frames``: a combination has as many as the shorter of its two runs.)
    """
    (lat, lat_dtype), (ref, ref_dtype) = latents, reference
    check_float_array(lat_dtype, "latents.npy")
    check_float_array(ref_dtype, "reference.npy")
    if len(lat) != 3 or min(lat, default=0) < 1:
        raise SchemaError(f"latents.npy has shape {list(lat)}; expected [n, num_ws, w_dim], all >= 1")
    if tuple(ref) != tuple(lat[1:]):
        raise SchemaError(f"latents {list(lat)} and reference {list(ref)} do not match; expected reference "
                          f"{list(lat[1:])}")
    if lat[0] > MAX_FRAMES:
        raise SchemaError(f"latents.npy has {lat[0]} frames, more than the {MAX_FRAMES} a run may have")
    nbytes = math.prod(lat) * np.dtype(lat_dtype).itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise SchemaError(f"latents.npy is {nbytes / 2**20:.0f} MiB, more than the {MAX_ARRAY_BYTES // 2**20} MiB "
                          "a run may have")
    gen, cfg = meta.get("generator") or {}, meta.get("config") or {}
    for key, got in (("num_ws", lat[1]), ("w_dim", lat[2])):
        if gen.get(key) is not None and gen[key] != got:
            raise SchemaError(f"latents.npy has {key} {got} but run.json generator.{key} is {gen[key]}")
    if cfg.get("layer_end") is not None and cfg["layer_end"] > lat[1]:
        raise SchemaError(f"run.json config.layer_end {cfg['layer_end']} is beyond the {lat[1]} W+ layers of "
                          "latents.npy")
    if cfg.get("layer_start") is not None and cfg.get("layer_end") is not None \
            and cfg["layer_start"] >= cfg["layer_end"]:
        raise SchemaError(f"run.json config layers {cfg['layer_start']}:{cfg['layer_end']} are empty")


def load_float_npy(path, what: str | None = None, shape: tuple | None = None) -> np.ndarray:
    """A ``.npy`` of real, finite floating-point numbers (never a pickle); :class:`MGMError` otherwise.

    ``what`` names the file in the message (default: its path); ``shape`` (None entries match anything)
    is checked from the header before the data is read.
    """
    path = Path(path)
    what = what or str(path)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except FileNotFoundError:
        raise MGMError(f"{what}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:  # object arrays, truncated or not .npy at all
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "allow_pickle" in msg or "Python objects" in msg:
            msg = "it holds Python objects, not numbers"
        raise MGMError(f"{what}: not a readable array of numbers ({msg})") from None
    try:
        check_float_array(arr.dtype, what)
    except SchemaError as exc:
        raise MGMError(str(exc)) from None
    if shape is not None and (len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True))):
        want = ", ".join("?" if s is None else str(s) for s in shape)
        raise MGMError(f"{what} has shape {list(arr.shape)}; expected [{want}]")
    arr = np.array(arr)  # out of the memory map
    if not np.isfinite(arr).all():
        raise MGMError(f"{what} contains NaN or infinite values")
    return arr
