"""The Discover form's input → a job spec: settings, reference, uploads (torch-free, dash-free).

Only the form's own judgements are made here (what the browser sent is a number where a number belongs, a
reference the page offered); the values are parsed by the job API's parser
(:func:`mgm_analysis.jobs.parse_config_value`, DiscoveryConfig's field types), the region by
:func:`mgm_analysis.masks.resolve_region`, and the ranges by ``mgm discover``'s own checks in the worker
(:func:`dashboards.discover.worker.check_job`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import tempfile
from pathlib import Path

from mgm_analysis.config import MAX_SEED, config_fields, parse_config_value
from mgm_analysis.errors import MGMError
from mgm_analysis.masks import resolve_region

from .ids import DISTANCE, EPOCHS, FRAMES, LAYERS, OFFSET, OUTSIDE
from .protocol import _atomic_write, hidden_dir

#: the settings the page offers: component id -> (page label, DiscoveryConfig field(s)); ``layers`` is
#: START:END, two fields
SETTINGS = {FRAMES: ("frames", ("n_frames",)), EPOCHS: ("epochs", ("epochs",)), OFFSET: ("offset", ("offset",)),
            OUTSIDE: ("outside weight", ("outside_weight",)), LAYERS: ("layers", ("layer_start", "layer_end")),
            DISTANCE: ("distance", ("distance",))}
DISTANCES = ("l2", "lpips")   # the choices the page shows for ``distance``
MAX_UPLOAD_BYTES = 64 * 2**20

_UPLOAD_NAME = re.compile(r"^w-[0-9a-f]{16}\.npy$")


def _integral(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer() and abs(value) <= 2**53):
        return None
    return int(value)


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return f if math.isfinite(f) else None


def _texts(label: str, names: tuple, value) -> list[str]:
    """The form's JSON value as the text(s) ``parse_config_value`` reads, once it is of the field's type (a
    number input sends None for text that is not a number)."""
    if len(names) == 2:  # START:END
        if not isinstance(value, str) or len(value) > 40:
            raise MGMError(f"{label}: give START:END, e.g. 2:8 (got {value!r})")
        parts = value.strip().split(":")
        if len(parts) != 2:
            raise MGMError(f"{label} {value.strip()!r}: expected START:END, e.g. 2:8")
        return parts
    kind = config_fields()[names[0]].split("|")[0].strip()
    if kind == "int":
        i = _integral(value)
        if i is None:
            raise MGMError(f"{label}: give a whole number (got {value!r})")
        return [str(i)]
    if kind == "float":
        f = _finite(value)
        if f is None:
            raise MGMError(f"{label}: give a finite number (got {value!r})")
        return [repr(f)]
    if value not in DISTANCES:  # the one text setting, a choice
        raise MGMError(f"{label}: choose one of {', '.join(DISTANCES)} (got {value!r})")
    return [value]


def settings_config(values: dict) -> dict:
    """DiscoveryConfig overrides from the page's settings (keys: the setting ids); MGMError naming the setting.

    Only the types are judged here; the ranges are ``mgm discover``'s own checks, made by the worker.
    """
    cfg = {}
    for key, (label, names) in SETTINGS.items():
        value = values.get(key)
        for name, text in zip(names, _texts(label, names, value), strict=True):
            try:
                cfg[name] = parse_config_value(name, text)
            except MGMError as exc:
                if len(names) == 2:
                    raise MGMError(f"{label} {value.strip()!r}: expected START:END, e.g. 2:8") from None
                raise MGMError(f"{label}: {exc}") from None
    return cfg


def valid_reference(ref, runs, uploads: Path | None = None) -> dict:
    """The reference the page holds: {"seed": int}, {"run": known run id} or {"file": a file the page uploaded
    into ``uploads``} (never any other path: the browser could send one); MGMError otherwise."""
    if isinstance(ref, dict) and len(ref) == 1:
        (k, v), = ref.items()
        if k == "seed" and _integral(v) is not None and 0 <= _integral(v) <= MAX_SEED:
            return {"seed": _integral(v)}
        if k == "run" and isinstance(v, str) and v in runs:
            return {"run": v}
        if k == "file" and isinstance(v, str) and uploads is not None and len(v) < 4096 and "\x00" not in v:
            path = Path(v)
            if path.parent == Path(uploads) and _UPLOAD_NAME.match(path.name) and path.is_file():
                return {"file": str(path)}
    raise MGMError("no reference face: give a seed, pick a run or upload a w.npy")


def save_upload(root, contents: str, filename) -> tuple[Path, bool]:
    """Keep an uploaded latent file in the store's hidden folder (named by its content) after checking it is a
    finite float ``.npy`` (the store's reader); its path and whether it is new there.  MGMError (one line) for
    anything else."""
    from mgm_analysis.run_schema import load_float_npy

    head, _, b64 = contents.partition(",")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise MGMError("the upload is not a file; upload a w.npy") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise MGMError(f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MiB; a latent file is far smaller")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "w.npy"
        probe.write_bytes(raw)
        load_float_npy(probe, f"upload {filename if isinstance(filename, str) else 'w.npy'}")
    d = hidden_dir(root) / "uploads"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"w-{hashlib.sha256(raw).hexdigest()[:16]}.npy"
    new = not path.exists()
    if new:
        _atomic_write(path, raw)
    return path, new


def page_spec(root, got: dict, generator: str, shapes, ref, values: dict, runs) -> dict:
    """The JobSpec (as a dict) of the page's region, reference and settings; MGMError (one line) for bad input.

    The region is checked here with ``--region``'s parser (nothing written for a bad one); the settings'
    ranges and the reference by the worker with ``mgm discover``'s checks.
    """
    ref = valid_reference(ref, runs, hidden_dir(root) / "uploads")
    cfg = settings_config(values)
    res, layout_name = got["resolution"], got["layout"]
    spec, _ = resolve_region(shapes, res, layout_name)  # no shape, empty, whole image: nothing written yet
    if spec.startswith("drawn-"):  # a union of different kinds: now keep its mask as a PNG for the job
        spec, _ = resolve_region(shapes, res, layout_name, mask_dir=hidden_dir(root) / "masks")
    d = {"kind": "discover", "generator": generator, "region": spec, "seed": None, "reference": None,
         "config": cfg}
    if "seed" in ref:
        d["seed"] = ref["seed"]
    elif "run" in ref:
        d["reference"] = str(runs[ref["run"]].path)
    else:
        d["reference"] = ref["file"]
    return d
