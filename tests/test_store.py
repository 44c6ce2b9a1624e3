"""Run store: lossless round-trip, atomic writes, corrupt folders skipped with one warning each."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from _fake_runs import BLOCK_TORCH, fake_meta, make_run

from mgm_analysis import store
from mgm_analysis.errors import MGMError, RunReadError


def _arrays(n=3, res=8):
    rng = np.random.default_rng(0)
    return dict(latents=rng.normal(size=(n, 4, 5)), reference=rng.normal(size=(4, 5)),
                reference_img=rng.uniform(size=(res, res, 3)), mask=(rng.uniform(size=(res, res)) > 0.5) * 1.0,
                frames=rng.uniform(size=(n, res, res, 3)))


def test_round_trip_is_lossless(tmp_path):
    a = _arrays()
    p = store.write_run(tmp_path, meta=fake_meta(), **a)
    run = store.load_run(p)
    assert run.run_id == p.name and run.meta["run_id"] == p.name
    assert run.meta["schema_version"] == 1 and run.meta["created"] and run.meta["version"]
    assert run.latents.dtype == np.float32 and np.array_equal(run.latents, a["latents"].astype(np.float32))
    assert np.array_equal(run.reference, a["reference"].astype(np.float32))
    assert np.array_equal(run.mask, a["mask"].astype(np.float32))  # a binary mask survives the PNG exactly
    # images are stored as 8-bit PNG: exact up to quantisation
    assert np.abs(run.frames - a["frames"]).max() <= 0.5 / 255 + 1e-6
    assert np.abs(run.reference_img - a["reference_img"]).max() <= 0.5 / 255 + 1e-6
    assert [q.name for q in run.frame_paths] == ["000.png", "001.png", "002.png"]
    assert (p / "animation.gif").exists() and (p / "reference.png").exists()
    assert run.region == "mouth" and run.status == "complete" and run.layers == (1, 3)


def test_new_run_id_is_readable_and_unique():
    ids = {store.new_run_id("mouth", 3) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"mouth-s3-\d{8}T\d{6}-[0-9a-f]{4}", i) for i in ids)
    assert store.new_run_id("rect:1,2,3,4", None).startswith("rect_1_2_3_4-ref-")


def test_catalog_has_one_row_per_run_with_metric_columns(tmp_path):
    p1 = make_run(tmp_path, "mouth", 0)
    p2 = make_run(tmp_path, "eyes", 1, meta={**fake_meta("eyes", 1), "metrics": {"locality": 0.9, "layer_profile": [1, 0]}})
    df = store.catalog(tmp_path)
    assert sorted(df.run_id) == sorted([p1.name, p2.name])
    for col in ["run_id", "path", "status", "region", "generator", "reference", "seed", "n_frames", "layers",
                "distance", "created", "kind", "locality"]:
        assert col in df.columns, col
    assert "layer_profile" not in df.columns  # lists stay in run.json
    assert set(df.kind) == {"discover"} and df.set_index("region").loc["eyes", "locality"] == 0.9
    assert list(store.catalog(tmp_path / "empty").columns)[:3] == ["run_id", "path", "status"]


def test_update_run_meta_deep_merges_atomically(tmp_path):
    p = make_run(tmp_path)
    store.update_run_meta(p, {"metrics": {"extra": 2.0}, "status": "interrupted"})
    meta = store.load_run(p).meta
    assert meta["metrics"] == {"locality": 0.5, "extra": 2.0} and meta["status"] == "interrupted"
    assert meta["region"]["name"] == "mouth"
    assert sorted(q.name for q in p.iterdir() if q.name.startswith("run.json")) == ["run.json"]


def test_existing_run_is_refused_unless_overwrite(tmp_path):
    p = make_run(tmp_path, run_id="r1")
    with pytest.raises(MGMError, match="already exists"):
        make_run(tmp_path, run_id="r1")
    make_run(tmp_path, seed=5, run_id="r1", overwrite=True)
    assert store.load_run(p).meta["seed"] == 5
    assert [q.name for q in tmp_path.iterdir()] == ["r1"]


def test_bad_shapes_are_refused_before_anything_is_written(tmp_path):
    a = _arrays()
    with pytest.raises(ValueError, match="one frame per latent"):
        store.write_run(tmp_path, meta=fake_meta(), **{**a, "frames": a["frames"][:2]})
    with pytest.raises(ValueError, match="reference"):
        store.write_run(tmp_path, meta=fake_meta(), **{**a, "reference": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="mask"):
        store.write_run(tmp_path, meta=fake_meta(), **{**a, "mask": np.zeros((4, 4))})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fail_at", ["png", "gif", "json"])
def test_failure_mid_write_leaves_no_run_folder(tmp_path, monkeypatch, fail_at):
    make_run(tmp_path, run_id="kept")
    calls = {"n": 0}

    def boom(*args, **kwargs):
        calls["n"] += 1
        raise OSError("disk full")

    if fail_at == "png":  # fail on the third PNG: some files are already in the temp folder
        real = store.write_png

        def flaky(path, img):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full")
            real(path, img)

        monkeypatch.setattr(store, "write_png", flaky)
    elif fail_at == "gif":
        monkeypatch.setattr(store, "write_gif", boom)
    else:
        monkeypatch.setattr(store, "write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_run(tmp_path, meta=fake_meta(), run_id="lost", **_arrays())
    assert calls["n"] >= 1
    assert [q.name for q in tmp_path.iterdir()] == ["kept"]  # no run folder, no temp folder


def test_interrupt_mid_write_leaves_no_run_folder(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "write_gif", interrupt)
    with pytest.raises(KeyboardInterrupt):
        store.write_run(tmp_path, meta=fake_meta(), **_arrays())
    assert list(tmp_path.iterdir()) == []


def test_corrupt_and_half_written_folders_are_skipped_with_one_warning_each(tmp_path):
    good = make_run(tmp_path, seed=1)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "latents.npy").write_bytes(b"junk")
    bad_json = make_run(tmp_path, seed=2)
    (bad_json / "run.json").write_text("{not json")
    trunc = make_run(tmp_path, seed=3)
    (trunc / "latents.npy").write_bytes((trunc / "latents.npy").read_bytes()[:40])
    mismatch = make_run(tmp_path, seed=4)
    np.save(mismatch / "reference.npy", np.zeros((3, 5), np.float32))
    no_keys = make_run(tmp_path, seed=5)
    (no_keys / "run.json").write_text(json.dumps({"run_id": "x"}))
    (tmp_path / ".tmp-crashed-123").mkdir()  # a writer killed mid-write: ignored silently
    (tmp_path / "notes.txt").write_text("not a run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list(store.iter_runs(tmp_path))
        df = store.catalog(tmp_path, warn=False)
    assert [r.path for r in runs] == [good] and list(df.run_id) == [good.name]
    assert len(caught) == 5
    for w in caught:
        assert issubclass(w.category, store.RunSkippedWarning)
        msg = str(w.message)
        assert msg.startswith("skipping ") and "\n" not in msg
    names = " ".join(str(w.message) for w in caught)
    for p in ["half", bad_json.name, trunc.name, mismatch.name, no_keys.name]:
        assert p in names
    with pytest.raises(RunReadError, match="half-written"):
        store.load_run(tmp_path / "half")


def test_store_needs_no_torch():
    import subprocess
    import sys

    code = BLOCK_TORCH + ("from mgm_analysis import store\n"
                          "assert store.catalog('/nonexistent').empty and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1], timeout=300)


def test_new_run_id_never_repeats_in_a_process(monkeypatch):
    draws = iter([b"\x00\x01", b"\x00\x01", b"\x00\x02"])  # the second draw collides with the first
    monkeypatch.setattr(store.os, "urandom", lambda n: next(draws))
    monkeypatch.setattr(store, "_ISSUED", set())
    assert store.new_run_id("mouth", 1) != store.new_run_id("mouth", 1)
