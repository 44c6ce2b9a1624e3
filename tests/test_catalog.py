"""The store catalog (mgm_analysis.catalog): one Parquet row per folder, updated incrementally with real files."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from _fake_runs import fake_meta, make_run

from mgm_analysis import store
from mgm_analysis.analysis.table import run_methods
from mgm_analysis.catalog import CATALOG_FILE, store_catalog


@pytest.fixture
def counted(monkeypatch):
    """Counts every run.json read (store._read_meta, what load_run and scan_runs go through)."""
    reads = []
    real = store._read_meta

    def read_meta(path):
        reads.append(path.name)
        return real(path)

    monkeypatch.setattr(store, "_read_meta", read_meta)
    return reads


def _rows(root):
    return pd.read_parquet(root / ".mgm_cache" / CATALOG_FILE).set_index("folder")


def test_add_change_delete_touch_exactly_those_rows(tmp_path, counted):
    root = tmp_path / "runs"
    paths = [make_run(root, region=r, seed=i) for i, r in enumerate(["mouth", "eyes", "brows"])]
    (root / "junk").mkdir()  # not a run: a row with its reason
    first = store_catalog(root)
    assert first.reads == 4 and sorted(counted) == sorted(p.name for p in paths)  # junk has no run.json to read
    before = _rows(root)
    assert len(before) == 4 and before.loc["junk", "ok"] == False  # noqa: E712
    assert "missing run.json" in before.loc["junk", "problem"]
    # the catalog's columns match store.catalog_of, computed here from the folders themselves
    ref = store.catalog_of([store.load_run(p) for p in paths]).set_index("run_id")
    for p in paths:
        row = before.loc[p.name]
        for col in ["status", "region", "reference", "seed", "layers", "kind", "locality"]:
            assert row[col] == ref.loc[row["run_id"], col], col
        assert row["mtime_ns"] == os.stat(p / "run.json").st_mtime_ns
        assert row["size"] == os.stat(p / "run.json").st_size
        assert (row["num_ws"], row["w_dim"], row["layer_start"], row["layer_end"]) == (4, 5, 1, 3)

    counted.clear()
    stamp = (root / ".mgm_cache" / CATALOG_FILE).stat().st_mtime_ns
    again = store_catalog(root)
    assert again.reads == 1 and counted == []  # only the unreadable folder is looked at again
    assert again.cached and (root / ".mgm_cache" / CATALOG_FILE).stat().st_mtime_ns == stamp  # nothing to write
    def norm(t):
        return t.astype(object).where(t.notna(), None)

    pd.testing.assert_frame_equal(norm(again.table), norm(first.table))

    # add one, change one, delete one
    added = make_run(root, region="mouth", seed=7)
    meta = json.loads((paths[0] / "run.json").read_text())
    meta["metrics"]["locality"] = 0.125
    (paths[0] / "run.json").write_text(json.dumps(meta))
    shutil.rmtree(paths[2])
    counted.clear()
    cat = store_catalog(root)
    assert sorted(counted) == sorted([added.name, paths[0].name]) and cat.reads == 3  # + junk, again
    after = _rows(root)
    assert sorted(after.index) == sorted([paths[0].name, paths[1].name, added.name, "junk"])
    assert after.loc[paths[0].name, "locality"] == 0.125
    assert after.loc[added.name, "region"] == "mouth"
    untouched = before.loc[paths[1].name].drop(labels=[c for c in before.columns if c not in after.columns])
    pd.testing.assert_series_equal(after.loc[paths[1].name, untouched.index], untouched, check_names=False)
    assert [r.path.name for r in cat.runs()] == sorted([paths[0].name, paths[1].name, added.name])
    assert json.loads(after.loc[paths[0].name, "meta"]) == meta


def test_duplicate_run_id_and_broken_json_are_problem_rows(tmp_path):
    root = tmp_path / "runs"
    p = make_run(root, seed=1)
    shutil.copytree(p, root / "a-copy")
    bad = make_run(root, seed=2)
    (bad / "run.json").write_text("{not json")
    cat = store_catalog(root)
    reasons = dict((q.name, r) for q, r in cat.problems())
    assert "same run_id as" in reasons["a-copy"] and "unreadable" in reasons[bad.name]
    # what scan_runs (the reader without a catalog) says of the same store
    expect = {q.name: r for q, run, r in store.scan_runs(root) if run is None}
    assert reasons == expect
    assert [r.run_id for r in cat.runs()] == [p.name]


def test_read_only_store_is_catalogued_in_memory(tmp_path, counted):
    root = tmp_path / "runs"
    make_run(root, seed=1)
    make_run(root, seed=2)
    os.chmod(root, 0o555)
    try:
        if os.access(root, os.W_OK):  # root ignores permissions: make the cache folder a file instead
            os.chmod(root, 0o755)
            (root / ".mgm_cache").write_text("not a folder")
        first = store_catalog(root)
        assert not first.cached and first.reads == 2 and len(first.runs()) == 2
        counted.clear()
        again = store_catalog(root)
        assert again.reads == 0 and counted == [] and len(again.runs()) == 2  # incremental in memory too
    finally:
        os.chmod(root, 0o755)


def test_run_methods_reads_no_run_json(tmp_path, counted):
    from dashboards.synthetic import make_store

    root = tmp_path / "runs"
    make_store(root, 3, methods=("ganspace",), strengths=(1.0, 2.0))
    cat = store.catalog(root)
    store_catalog(root)
    counted.clear()
    got = run_methods(cat)
    assert counted == []
    assert len(got) == 12 and set(got.method) == {"discovery", "ganspace"} and set(got.strength) == {1.0, 2.0}
    for path, method, strength in zip(got.path, got.method, got.strength, strict=True):
        m = json.loads((Path(path) / "run.json").read_text())
        assert method == store.run_method(m) and strength == (store.run_strength(m) or 1.0)


def test_an_empty_or_missing_store_is_left_as_it_is(tmp_path):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    assert len(store_catalog(empty).table) == 0 and list(empty.iterdir()) == []  # no .mgm_cache in it
    assert len(store_catalog(missing).table) == 0 and not missing.exists()       # not created
    make_run(empty, region="mouth", seed=0)                                       # its first run: now kept
    assert len(store_catalog(empty).table) == 1 and (empty / ".mgm_cache" / CATALOG_FILE).is_file()


def test_frame_is_catalog_of_without_reading_a_run_json(tmp_path, counted):
    """StoreCatalog.frame() (what the dashboard lists) is store.catalog_of of the readable runs, computed here from
    the folders themselves; runs() parses a run's metadata only when it is asked for."""
    from dashboards.synthetic import make_store

    root = tmp_path / "runs"
    make_store(root, 4, methods=("ganspace",), strengths=(1.0, 2.0), derived=True)
    store_catalog(root)
    odd = make_run(root, region="eyes", seed=9, meta={**fake_meta("eyes", 9), "seed": None,  # added later
                                                        "metrics": {"locality": 0.25, "only_here": 3,
                                                                    "failed": float("nan")}})  # a metric that failed
    shutil.copytree(root / sorted(os.listdir(root))[0], root / "zz-copy")  # a duplicate run_id: not a run
    (root / "broken").mkdir()
    cat = store_catalog(root)
    counted.clear()
    got = cat.frame()
    runs = cat.runs()
    assert counted == [] and not [r for r in runs if "meta" in vars(r)]  # nothing parsed yet
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    readable = [store.load_run(p) for p in folders if p.name not in ("zz-copy", "broken")]
    want = store.catalog_of(readable)
    assert "only_here" in want and want["failed"].isna().all() and want["seed"].isna().any()
    pd.testing.assert_frame_equal(got, want)
    assert [r.meta for r in runs] == [r.meta for r in readable] and all("meta" in vars(r) for r in runs)
    assert all(isinstance(r, store.Run) for r in runs)
    # a store whose runs all have a seed: integers, as catalog_of has them
    (root / "broken").rmdir()
    shutil.rmtree(root / "zz-copy")
    shutil.rmtree(odd)
    pd.testing.assert_frame_equal(store_catalog(root).frame(), store.catalog(root))  # its columns went with it
    assert store.catalog(root)["n_frames"].dtype == "int64"  # the cast of JSON integers was needed


def test_an_unchanged_store_is_kept_as_the_full_refresh_would_keep_it(tmp_path, monkeypatch, counted):
    """The shortcut for a store whose folders and run.json are all as catalogued gives the table the full refresh
    gives, duplicate rule included, and reads nothing; a touched run.json or an unreadable folder is read again."""
    from mgm_analysis import catalog

    root = tmp_path / "runs"
    paths = [make_run(root, region=r, seed=i) for i, r in enumerate(["mouth", "eyes", "brows"])]
    shutil.copytree(paths[0], root / "zz-copy")  # a duplicate run_id: a problem row, decided afresh each time
    store_catalog(root)
    real = catalog._unchanged

    def refresh(shortcut):
        monkeypatch.setattr(catalog, "_unchanged", real if shortcut else (lambda cur, old: False))
        return catalog._refresh(root.resolve(), catalog._load(root / ".mgm_cache" / CATALOG_FILE))

    counted.clear()
    fast, full = refresh(True), refresh(False)
    assert fast[1:] == full[1:] == (0, False) and counted == []
    pd.testing.assert_frame_equal(fast[0], full[0])
    assert fast[0].set_index("folder").loc["zz-copy", "problem"].startswith("same run_id as")
    os.utime(paths[1] / "run.json", ns=(1, 1))  # touched: read again
    assert refresh(True)[1] == 1 and counted == [paths[1].name]
    store_catalog(root)
    (root / "broken").mkdir()  # unreadable: looked at again every time
    store_catalog(root)
    assert refresh(True)[1] == 1
