"""Property-based tests of the run.json reader: whatever run.json holds, a reader gets a checked run or one
line of RunReadError, never another exception, and a store walk skips the folder with one warning."""

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from _fake_runs import make_run
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mgm_analysis import store
from mgm_analysis.errors import RunReadError

_GOOD = {}
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)


@pytest.fixture(scope="module")
def run_dir():
    root = Path(tempfile.mkdtemp(prefix="mgm-hyp-"))
    path = make_run(root, run_id="r0")
    _GOOD["meta"] = json.loads((path / "run.json").read_text())  # before any test spoils it
    yield path
    shutil.rmtree(root, ignore_errors=True)


def _read(run_dir, text: str | bytes):
    (run_dir / "run.json").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        run = store.load_run(run_dir)
    except RunReadError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(run_dir)), str(exc)
        run = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        walked = list(store.iter_runs(run_dir.parent))
    skipped = [w for w in caught if issubclass(w.category, store.RunSkippedWarning)]
    assert len(walked) + len(skipped) == 1  # the folder is either read or skipped with exactly one warning
    assert (run is None) == (not walked)
    return run


def _is_valid_type_of_fields(meta) -> bool:
    """The schema's core, restated here: the fields readers index must have the types they index with."""
    def text(v):
        return isinstance(v, str) and v != ""
    return (isinstance(meta, dict) and text(meta.get("run_id")) and "/" not in meta["run_id"]
            and text(meta.get("status")) and isinstance(meta.get("region"), dict)
            and text(meta["region"].get("name")) and isinstance(meta["region"].get("spec"), str)
            and isinstance(meta.get("generator"), dict) and isinstance(meta.get("config"), dict))


@SETTINGS
@given(json_values)
def test_any_json_value_is_a_run_or_one_line(run_dir, value):
    run = _read(run_dir, json.dumps(value))
    if not _is_valid_type_of_fields(value):
        assert run is None, value


@SETTINGS
@given(st.sampled_from(["run_id", "status", "region", "generator", "config", "metrics", "provenance", "history",
                        "reference", "seed", "timings", "resume", "schema_version"]), json_values)
@example("region", "mouth")
@example("generator", "toyfaces")
@example("config", [1, 2])
@example("metrics", "high")
@example("provenance", "discover")
@example("schema_version", 99)
@example("seed", 1.5)
def test_one_field_replaced(run_dir, key, value):
    meta = _good_meta_cached(run_dir)
    meta[key] = value
    run = _read(run_dir, json.dumps(meta))
    if key in ("region", "generator", "config") and not isinstance(value, dict):
        assert run is None
    if key in ("metrics", "provenance", "history", "reference", "timings", "resume") and \
            not isinstance(value, (dict, type(None))):
        assert run is None
    if key == "schema_version" and isinstance(value, int) and not isinstance(value, bool) and value > 1:
        assert run is None
    if run is not None:
        assert run.meta == json.loads(json.dumps(meta)) or any(isinstance(v, float) and math.isnan(v)
                                                              for v in _leaves(meta))
        assert isinstance(run.region, str) and isinstance(run.status, str)


def _good_meta_cached(run_dir):
    return json.loads(json.dumps(_GOOD["meta"]))


def _leaves(o):
    if isinstance(o, dict):
        for v in o.values():
            yield from _leaves(v)
    elif isinstance(o, list):
        for v in o:
            yield from _leaves(v)
    else:
        yield o


@SETTINGS
@given(st.binary(max_size=200))
@example(b"[" * 100_000)
@example(b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}")
@example(b"\xff\xfe\x00")
@example(b"NaN")
def test_any_bytes(run_dir, data):
    _read(run_dir, data)


@SETTINGS
@given(st.sampled_from(["int32", "complex64", "U3", "bool", "float16", "float64"]),
       st.sampled_from([(6, 4, 5), (6, 4), (0, 4, 5), (6, 5, 4), (6, 4, 5, 1)]), st.booleans())
def test_arrays_are_checked_against_the_schema(run_dir, dtype, shape, nan):
    _read(run_dir, json.dumps(_good_meta_cached(run_dir)))
    lat_path = run_dir / "latents.npy"
    good = np.load(lat_path)
    try:
        arr = np.zeros(shape, dtype)
        if nan and arr.dtype.kind == "f" and arr.size:
            arr.flat[arr.size // 2] = np.nan
        np.save(lat_path, arr)
        ok = np.dtype(dtype).kind == "f" and shape == (6, 4, 5) and not nan
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            walked = list(store.iter_runs(run_dir.parent))
        assert len(walked) == (1 if ok else 0), (dtype, shape, nan)
    finally:
        np.save(lat_path, good)
