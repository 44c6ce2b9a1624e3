"""Dashboard without a browser: data access, figures, callback decisions, callbacks over HTTP, the file route.

Stores are synthetic (dashboards.synthetic: 16×16 images, 8 frames, W+ 6×8), so
every test takes well under a second.  The browser test is test_dashboard_browser.py.
"""

import json
import os
import shutil
import threading

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from _dash import find_component as _find
from click.testing import CliRunner

from dashboards import callbacks as cb
from dashboards import data, figures
from dashboards import layout as L
from dashboards.app import create_app
from dashboards.synthetic import callback_body, make_store
from mgm_analysis.analysis import compare
from mgm_analysis.analysis import projection as projection_module
from mgm_analysis.errors import MGMError


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    make_store(root, 6, derived=True)
    return root


@pytest.fixture
def broken_root(tmp_path):
    """Three good runs, a folder with unreadable run.json, a half-written one and a leftover temp folder."""
    make_store(tmp_path, 3)
    bad = tmp_path / "bad-run"
    shutil.copytree(tmp_path / "mouth-s0-synthetic-0000", bad)
    (bad / "run.json").write_text("{ not json")
    half = tmp_path / "half-run"
    half.mkdir()
    (half / "run.json").write_text("{}")
    (tmp_path / ".tmp-x-1").mkdir()
    return tmp_path


def _ids(root):
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------- HTTP helper
def call(app, output, values, trigger=None):
    """POST one callback to /_dash-update-component as the browser would; return {id: {prop: value}} or None (204).

    ``output`` is a substring of the callback's output key, ``values`` maps "id.prop" to the
    value of every input and state (missing ones are None).
    """
    body = callback_body(app, output, values, trigger)
    res = app.server.test_client().post("/_dash-update-component", json=body)
    if res.status_code == 204:
        return None
    assert res.status_code == 200, res.data[:500]
    return json.loads(res.data)["response"]


# ------------------------------------------------------------------- data
def test_snapshot_reads_catalog_and_memoises(store_root):
    snap = data.snapshot(store_root)
    assert len(snap.runs) == 8 and not snap.problems and not snap.empty
    assert set(snap.catalog["kind"]) == {"discover", "transfer", "combine"}
    assert data.snapshot(store_root) is snap  # same signature -> same memoised object
    assert "locality" in data.metric_columns(snap.catalog)


def test_signature_changes_when_a_run_is_added(tmp_path):
    make_store(tmp_path, 2)
    before = data.snapshot(tmp_path)
    make_store(tmp_path / "other", 1)
    shutil.move(tmp_path / "other" / "mouth-s0-synthetic-0000", tmp_path / "mouth-late")
    after = data.snapshot(tmp_path)
    assert after.signature != before.signature
    assert len(after.runs) == 2 and after.problems  # same run_id as an existing run: left out, said so


def test_empty_store(tmp_path):
    snap = data.snapshot(tmp_path)
    assert snap.empty and not snap.problems
    assert data.projection(snap, []).empty
    assert "Select runs" in go.Figure(figures.projection_figure(data.projection(snap, []))).layout.annotations[0].text


def test_broken_runs_are_listed_and_the_rest_works(broken_root):
    snap = data.snapshot(broken_root)
    assert len(snap.runs) == 3
    assert len(snap.problems) == 2 and any(p.startswith("bad-run") for p in snap.problems)
    df = data.projection(snap, list(snap.runs))
    assert set(df["run_id"]) == set(snap.runs) and len(df) == 3 * 8


def test_projection_is_joint_and_cached_on_disk(store_root):
    snap = data.snapshot(store_root)
    ids = sorted(snap.runs)[:4]
    df = data.projection(snap, ids, "pca", 3, "w_all")
    assert list(df.columns) == ["run_id", "region", "frame", "x", "y", "z"]
    assert sorted(df["run_id"].unique()) == ids
    assert any((store_root / ".mgm_cache").glob("projection-*.parquet"))


def test_cached_projection_reads_no_run_arrays(tmp_path):
    """A projection already on disk is read without loading any run's latents or reference (the first paint of a
    store of thousands of runs spent seconds there), and gives the coordinates of the fit that cached it."""
    make_store(tmp_path, 4)
    ids = _ids(tmp_path)
    fitted = data.projection(data.snapshot(tmp_path), ids)
    data.clear_projections()
    data._snapshot.cache_clear()  # a fresh process: new Run objects, nothing loaded
    snap = data.snapshot(tmp_path)
    again = data.projection(snap, ids)
    assert not [r for r in ids if {"latents", "reference"} & set(vars(snap.runs[r]))]
    pd.testing.assert_frame_equal(again[["run_id", "frame", "x", "y"]], fitted[["run_id", "frame", "x", "y"]])


def test_projection_leaves_out_a_run_with_nan_latents_and_says_why(tmp_path):
    make_store(tmp_path, 4)
    ids = _ids(tmp_path)
    bad = ids[1]
    lat = np.load(tmp_path / bad / "latents.npy")
    lat[3, 0, 0] = np.nan
    np.save(tmp_path / bad / "latents.npy", lat)
    snap = data.snapshot(tmp_path)
    assert bad in snap.runs  # the snapshot reads headers only
    with pytest.warns(UserWarning, match=bad):
        df = data.projection(snap, ids)
    assert sorted(df["run_id"].unique()) == [r for r in ids if r != bad]
    assert bad in df.attrs["note"] and "NaN" in df.attrs["note"]


def test_batched_overlap_equals_pairwise_svd(store_root):
    """The dashboard's overlap is compare.overlap_matrix (batched Gram bases), checked against one SVD per run and
    per pair (compare.subspace_overlap)."""
    snap = data.snapshot(store_root)
    runs = data.selected_runs(snap, sorted(snap.runs))
    for k in (1, 3, 10):  # 10 > frames - 1: rank-limited subspaces
        ours = compare.overlap_matrix(runs, k)
        deltas = {r.run_id: (r.latents - r.reference[None]).reshape(len(r.latents), -1) for r in runs}
        for a in ours.index:
            for b in ours.columns:
                assert ours.loc[a, b] == pytest.approx(compare.subspace_overlap(deltas[a], deltas[b], k), abs=1e-5)


def test_overlap_caps_runs_per_region(store_root, monkeypatch):
    snap = data.snapshot(store_root)
    ids = [r for r in sorted(snap.runs) if snap.runs[r].meta["provenance"]["kind"] == "discover"]
    full = data.overlap(snap, ids, 2)
    assert full.attrs["runs_per_region"] == {"brows": 2, "eyes": 2, "mouth": 2} and "note" not in full.attrs
    monkeypatch.setattr(data, "OVERLAP_RUNS_PER_REGION", 1)
    data._overlap.cache_clear()
    data._overlap_runs.cache_clear()
    capped = data.overlap(snap, ids, 2)
    assert capped.attrs["note"] == "at most 1 runs per region"
    assert np.isnan(capped.loc["mouth", "mouth"])  # one run left: no pair within the region
    # the random baseline is of the runs compared: it checks (loads) only their arrays, not every selected run's
    data._overlap_runs.cache_clear()
    checked = []
    real_check = data.store.check_run_data
    monkeypatch.setattr(data.store, "check_run_data", lambda r: checked.append(r.run_id) or real_check(r))
    first = {}  # each region's first run in id order: what a cap of 1 keeps
    for r in ids:
        first.setdefault(snap.runs[r].region, r)
    run = snap.runs[ids[0]]
    d = (run.layers[1] - run.layers[0]) * run.reference.shape[-1]
    assert data.overlap_baseline(snap, ids, 2) == pytest.approx(compare.random_overlap(2, d))
    assert sorted(checked) == sorted(first.values())
    data._overlap.cache_clear()
    data._overlap_runs.cache_clear()


def test_layer_profiles_cap_runs_per_region(store_root, monkeypatch):
    snap = data.snapshot(store_root)
    ids = sorted(r for r in snap.runs if snap.runs[r].meta["provenance"]["kind"] == "discover")
    full = data.layer_profiles(snap, ids)
    assert full.attrs["runs_per_region"] == {"brows": 2, "eyes": 2, "mouth": 2} and "note" not in full.attrs
    assert sorted(full["run_id"].unique()) == ids
    monkeypatch.setattr(data, "LAYER_RUNS_PER_REGION", 1)
    data._layer_profiles.cache_clear()
    capped = data.layer_profiles(snap, ids)
    assert capped.attrs["note"] == "at most 1 runs per region"
    first = {}  # each region's first run in id order, and its share of the change per layer, computed here
    for r in ids:
        first.setdefault(snap.runs[r].region, r)
    for region, r in first.items():
        run = snap.runs[r]
        change = ((run.latents - run.reference[None]) ** 2).sum(axis=(0, 2))
        got = capped[capped.region == region]
        assert list(got["run_id"].unique()) == [r]
        np.testing.assert_allclose(got.sort_values("layer")["share"], change / change.sum(), rtol=1e-5)
    assert "at most 1 runs per region" in figures.layer_heatmap(capped).layout.title.text
    data._layer_profiles.cache_clear()


def test_region_overlap_leaves_out_self_pairs():
    mat = pd.DataFrame(np.array([[1, .5, .1], [.5, 1, .2], [.1, .2, 1]]), index=list("abc"), columns=list("abc"))
    out = compare.region_average(mat, {"a": "mouth", "b": "mouth", "c": "eyes"})
    assert out.loc["mouth", "mouth"] == pytest.approx(0.5)
    assert out.loc["mouth", "eyes"] == pytest.approx(0.15)
    assert np.isnan(out.loc["eyes", "eyes"])  # one run: no pair


def test_derived_runs_name_their_sources(store_root):
    df = data.derived_runs(data.snapshot(store_root))
    assert sorted(df["kind"]) == ["combine", "transfer"]
    assert set(df.loc[df["kind"] == "combine", "source_regions"]) == {"mouth + eyes"}


def test_frame_images_and_missing_frames(store_root, tmp_path):
    snap = data.snapshot(store_root)
    ref, img, mask = data.frame_images(snap, "mouth-s0-synthetic-0000", 99)  # clipped to the last frame
    assert ref.shape == img.shape == (16, 16, 3) and mask.shape == (16, 16) and mask.max() == 1
    shutil.copytree(store_root / "eyes-s0-synthetic-0001", tmp_path / "r")
    shutil.rmtree(tmp_path / "r" / "frames")
    with pytest.raises(MGMError, match="mgm render"):
        data.frame_images(data.snapshot(tmp_path), "eyes-s0-synthetic-0001", 0)


# ---------------------------------------------------------------- figures
def _decoded_points(fig):
    """Every point of every trace of a projection figure as (trace name, run_id, frame, x, y), decoding the
    integer customdata through the trace's meta (its runs) here (a loop, as the browser does); gaps as None."""
    out = []
    for tr in fig["data"]:
        runs = tr["meta"]
        assert len(tr["customdata"]) == len(tr["x"]) == len(tr["y"])
        for c, x, y in zip(tr["customdata"], tr["x"], tr["y"], strict=True):
            if c is None:
                assert x is None and y is None  # a gap between runs
                out.append((tr["name"], None, None, None, None))
            else:
                assert all(type(v) is int for v in c)  # no run ids repeated in every point
                out.append((tr["name"], runs[c[0]], c[1], x, y))
    return out


def test_projection_figure_one_line_per_run_coloured_by_region(store_root):
    snap = data.snapshot(store_root)
    ids = [r for r in sorted(snap.runs) if snap.runs[r].meta["provenance"]["kind"] == "discover"]
    df = data.projection(snap, ids)
    colors = figures.region_colors(["mouth", "eyes", "brows"])
    raw = figures.projection_figure(df, colors=colors, current=(ids[0], 2))
    fig = go.Figure(raw)  # validates the dict
    regions = [t.name for t in fig.data]
    assert regions == ["brows", "eyes", "mouth", "brows, frame 0", "eyes, frame 0", "mouth, frame 0"]
    for tr in raw["data"]:  # each trace names the runs of its region
        region = tr["name"].split(",")[0]
        assert tr["meta"] == sorted(r for r in ids if snap.runs[r].region == region)
    points = _decoded_points(raw)
    for tr in fig.data[:3]:
        assert tr.line.color == colors[tr.name] and tr.mode == "lines+markers"
        mine = [p for p in points if p[0] == tr.name]
        runs = [p[1] for p in mine if p[1] is not None]
        assert len(set(runs)) == 2 and len(runs) == 16  # 2 runs of 8 frames, separated by a gap
        assert [p[2] for p in mine if p[1] == runs[0]] == list(range(8))  # frame order
    for tr in fig.data[3:]:
        assert [p[2] for p in points if p[0] == tr.name] == [0, 0] and tr.marker.color == colors[tr.legendgroup]
    # Each point's run and frame (what hover and click report) has the coordinates of that row of the
    # projection, and every row is drawn once in the lines.
    by_key = {(r, f): (x, y) for r, f, x, y in df[["run_id", "frame", "x", "y"]].itertuples(index=False)}
    drawn = [p for p in points if p[1] is not None and "frame 0" not in p[0]]
    assert sorted((p[1], p[2]) for p in drawn) == sorted(by_key)
    span = float(df["x"].max() - df["x"].min())
    for _, run, frame, x, y in points:
        if run is not None:
            assert (x, y) == (pytest.approx(by_key[run, frame][0], abs=span * 1e-4),
                              pytest.approx(by_key[run, frame][1], abs=span * 1e-4))
    at = df[(df["run_id"] == ids[0]) & (df["frame"] == 2)].iloc[0]
    ring = fig.layout.shapes[0]  # a shape, so moving it redraws no trace
    assert ring.name == figures.CURRENT and ring.visible
    assert (ring.xanchor, ring.yanchor) == (pytest.approx(at["x"]), pytest.approx(at["y"]))
    assert not go.Figure(figures.projection_figure(df)).layout.shapes[0].visible


def test_point_run_reads_the_figures_run_list(store_root):
    snap = data.snapshot(store_root)
    ids = sorted(snap.runs)[:3]
    fig = figures.projection_figure(data.projection(snap, ids))
    curve = next(i for i, t in enumerate(fig["data"]) if t["name"] == snap.runs[ids[1]].region)
    assert figures.point_run(fig, curve, [fig["data"][curve]["meta"].index(ids[1]), 4]) == (ids[1], 4)
    for bad in (None, [3, 0], [-1, 0], ["a", 0], [0], [0, 1.5], [0, True, 1], [True, 0]):
        assert figures.point_run(fig, curve, bad) is None
    assert figures.point_run(fig, len(fig["data"]), [0, 0]) is None and figures.point_run(fig, None, [0, 0]) is None


def test_projection_figure_keeps_small_scales(store_root):
    """Coordinates are rounded relative to their span: a projection of tiny motions keeps its shape."""
    n = 40
    df = pd.DataFrame({"run_id": ["a"] * n, "region": ["mouth"] * n, "frame": range(n),
                       "x": np.arange(n) * 1e-7, "y": np.sin(np.arange(n)) * 1e-7})
    tr = figures.projection_figure(df)["data"][0]
    x, y = np.array(tr["x"][:-1], float), np.array(tr["y"][:-1], float)
    np.testing.assert_allclose(x, df["x"], atol=1e-11)
    np.testing.assert_allclose(y, df["y"], atol=2e-11)
    assert len(set(tr["x"][:-1])) == n


def test_a_large_projection_sends_every_kth_frame_of_each_run_with_its_first_and_last(monkeypatch):
    monkeypatch.setattr(figures, "MAX_SENT_POINTS", 50)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"run_id": np.repeat([f"r{i:02d}" for i in range(20)], 10),
                       "region": np.repeat(["mouth", "eyes"] * 10, 10), "frame": np.tile(np.arange(10), 20),
                       "x": rng.normal(size=200), "y": rng.normal(size=200)})
    fig = figures.projection_figure(df)  # 200 points > 50: one frame in 4, and each run's last
    sent = {}
    for t in fig["data"][:2]:  # the two regions' lines
        for c in t["customdata"]:
            if c is not None:
                sent.setdefault(t["meta"][c[0]], []).append(c[1])
    assert len(sent) == 20 and all(frames == [0, 4, 8, 9] for frames in sent.values())
    line = fig["data"][0]  # a point sent is where the projection put that frame
    run, frame = line["meta"][line["customdata"][1][0]], line["customdata"][1][1]
    want = df[(df.run_id == run) & (df.frame == frame)].iloc[0]
    assert line["x"][1] == pytest.approx(want.x, abs=1e-3) and line["y"][1] == pytest.approx(want.y, abs=1e-3)
    assert "1 frame in 4 drawn (80 of 200 points)" in fig["layout"]["title"]["text"]
    go.Figure(fig)  # a valid figure


def test_a_projection_of_many_runs_draws_every_kth_run_of_each_region(monkeypatch):
    monkeypatch.setattr(figures, "MAX_DRAWN_RUNS", 4)
    rng = np.random.default_rng(0)
    ids = [f"r{i:02d}" for i in range(20)]
    df = pd.DataFrame({"run_id": np.repeat(ids, 3), "region": np.repeat(["mouth", "eyes"] * 10, 3),
                       "frame": np.tile(np.arange(3), 20), "x": rng.normal(size=60), "y": rng.normal(size=60)})
    fig = figures.projection_figure(df)  # 20 runs > 4: one in 5 of each region's 10, in the order of their ids
    drawn = {t["name"]: t["meta"] for t in fig["data"][:2]}
    assert drawn == {"eyes": ["r01", "r11"], "mouth": ["r00", "r10"]}
    assert [t["meta"] for t in fig["data"][2:]] == [["r01", "r11"], ["r00", "r10"]]  # their frame-0 dots
    assert all([c[1] for c in t["customdata"] if c is not None] == [0, 1, 2, 0, 1, 2] for t in fig["data"][:2])
    title = fig["layout"]["title"]["text"]
    assert title.startswith("PCA of 20 runs") and "1 run in 5 drawn (4 of 20)" in title and "frame in" not in title
    go.Figure(fig)


def test_a_projection_drawing_many_runs_leaves_out_their_frame_0_dots(monkeypatch):
    monkeypatch.setattr(figures, "MAX_START_DOTS", 3)
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"run_id": np.repeat(["a", "b", "c", "d"], 3), "region": np.repeat(["mouth", "eyes"] * 2, 3),
                       "frame": np.tile(np.arange(3), 4), "x": rng.normal(size=12), "y": rng.normal(size=12)})
    fig = figures.projection_figure(df)  # 4 runs drawn > 3: lines only
    assert [t["name"] for t in fig["data"]] == ["eyes", "mouth"]
    assert "no frame-0 dots above 3 runs" in fig["layout"]["title"]["text"]
    fig = figures.projection_figure(df[df.run_id != "d"])  # 3 runs: the dots are back
    assert [t["name"] for t in fig["data"]] == ["eyes", "mouth", "eyes, frame 0", "mouth, frame 0"]
    assert [len(t["x"]) for t in fig["data"][2:]] == [1, 2] and "big dot = frame 0" in fig["layout"]["title"]["text"]
    go.Figure(fig)


def test_the_compare_tabs_graphs_join_the_page_when_the_tab_is_first_shown(store_root):
    app = create_app(store_root)
    page = app.server.test_client().get("/_dash-layout").get_json()
    deferred = (L.METRIC_BARS, L.LAYERS, L.OVERLAP, L.OVERLAP_K, L.DERIVED, L.METHODS_TABLE, L.FRONTIER)
    assert [i for i in deferred if _find(page, i)] == []
    assert _find(page, L.METRICS_PICK) and _find(page, L.METHODS_PICK)  # the pickers are there
    assert call(app, "compare-graphs.children", {"tabs.value": L.BROWSE, "compare-mounted.data": False},
                "tabs.value") is None
    out = call(app, "compare-graphs.children", {"tabs.value": L.COMPARE, "compare-mounted.data": False}, "tabs.value")
    assert out["compare-mounted"]["data"] is True
    assert [i for i in deferred if not _find([out["compare-graphs"]["children"], out["methods-graphs"]["children"]],
                                             i)] == []
    assert call(app, "compare-graphs.children", {"tabs.value": L.COMPARE, "compare-mounted.data": True},
                "tabs.value") is None  # once in, they stay: a second visit redraws nothing


def test_projection_figure_drops_frame_markers_for_many_points(store_root, monkeypatch):
    snap = data.snapshot(store_root)
    monkeypatch.setattr(figures, "MAX_MARKED_POINTS", 10)
    fig = go.Figure(figures.projection_figure(data.projection(snap, sorted(snap.runs))))
    assert {t.mode for t in fig.data} == {"lines", "markers"}  # lines, and the frame-0 dots


def test_projection_figure_3d(store_root):
    snap = data.snapshot(store_root)
    ids = sorted(snap.runs)[:3]
    fig = go.Figure(figures.projection_figure(data.projection(snap, ids, dims=3), dims=3, current=(ids[0], 1)))
    assert all(t.type == "scatter3d" for t in fig.data)
    assert fig.data[-1].name == figures.CURRENT and len(fig.data[-1].z) == 1


def test_frame_figure_shows_reference_frame_difference_and_mask():
    ref = np.zeros((16, 16, 3))
    frame = ref.copy()
    frame[4:8, 4:8] = 1
    mask = np.zeros((16, 16))
    mask[4:8, 4:8] = 1
    fig = go.Figure(figures.frame_figure(ref, frame, mask))  # validates the plain dict
    kinds = [t.type for t in fig.data]
    assert kinds.count("image") == 2 and kinds.count("heatmap") == 1 and kinds.count("contour") == 3
    heat = np.array(next(t for t in fig.data if t.type == "heatmap").z)
    assert heat[5, 5] == pytest.approx(1.0) and heat[0, 0] == 0
    with pytest.raises(ValueError, match="mask"):
        figures.frame_figure(ref, frame, mask[:8])


def test_frame_figure_subsamples_large_images():
    big = np.random.default_rng(0).random((512, 512, 3))
    fig = go.Figure(figures.frame_figure(big, big, np.ones((512, 512))))
    assert np.array(next(t for t in fig.data if t.type == "heatmap").z).shape == (128, 128)


def test_metric_bars_mean_and_spread_across_references():
    df = pd.DataFrame({"run_id": list("abcd"), "region": ["mouth", "mouth", "eyes", "eyes"],
                       "reference": ["seed 0", "seed 1"] * 2, "locality": [0.8, 0.9, 0.5, 0.7]})
    fig = go.Figure(figures.metric_bars(df, ["locality", "not_a_metric"]))  # validates the plain dict
    bars = fig.data[0]
    assert list(bars.x) == ["eyes", "mouth"]
    np.testing.assert_allclose(bars.y, [0.6, 0.85])
    np.testing.assert_allclose(bars.error_y.array, [np.std([0.5, 0.7], ddof=1), np.std([0.8, 0.9], ddof=1)])
    assert "No metrics" in figures.metric_bars(df.iloc[:0], ["locality"]).layout.annotations[0].text


def test_layer_heatmap_and_overlap_figures(store_root):
    snap = data.snapshot(store_root)
    ids = sorted(snap.runs)
    heat = figures.layer_heatmap(data.layer_profiles(snap, ids))
    assert np.array(heat.data[0].z).shape == (len({snap.runs[r].region for r in ids}), 6)
    mat = data.overlap(snap, ids[:6], 3)
    fig = figures.overlap_figure(mat, 3, data.overlap_baseline(snap, ids, 3))
    assert "random ≈ 0.125" in fig.layout.title.text  # k / (3 free layers × w_dim 8)
    assert figures.derived_figure(data.derived_runs(snap, ids)).data


# ------------------------------------------------------ callback decisions
def test_selection_from_table():
    known = ["a", "b", "c"]
    assert cb.selection_from_table(None, None, known) == known  # before the table renders: all
    assert cb.selection_from_table([], ["c", "a"], known) == ["a", "c"]  # no ticks: every filtered row
    assert cb.selection_from_table(["b", "c"], ["c", "a"], known) == ["c"]  # ticked and filtered
    assert cb.selection_from_table(["zz"], None, known) == known  # unknown ids are dropped


def test_next_frame():
    count = {"a": 8, "b": 4}.get
    click = {"points": [{"customdata": ["b", 3]}]}
    assert cb.next_frame(L.CLICK, ["a", "b"], click, "a", 0, {"run_id": "a", "frame": 0}, count) == \
        {"run_id": "b", "frame": 3}
    assert cb.next_frame(L.SELECTION, ["b"], None, "a", 5, {"run_id": "a", "frame": 5}, count) == \
        {"run_id": "b", "frame": 0}  # the run on show left the selection
    assert cb.next_frame(L.SLIDER, ["a"], None, "a", 99, {"run_id": "a", "frame": 0}, count)["frame"] == 7
    assert cb.next_frame(L.VIEWER_RUN, ["a", "b"], None, "b", 2, {"run_id": "a", "frame": 2}, count) == \
        {"run_id": "b", "frame": 0}
    assert cb.next_frame(None, [], None, None, 0, None, count) is None


def test_run_options_hold_a_bounded_list_and_search_the_rest():
    ids = [f"{'mouth' if i % 2 else 'eyes'}-{i:03d}" for i in range(250)]
    opts = L.run_options(ids, None, limit=100)
    assert [o["value"] for o in opts[:-1]] == ids[:100]
    assert opts[-1]["disabled"] is True and "150 more" in opts[-1]["label"] and opts[-1]["value"] not in ids
    # the run on show is always there, first when it is not among the first 100
    opts = L.run_options(ids, ids[200], limit=100)
    assert [o["value"] for o in opts[:-1]] == [ids[200]] + ids[:99] and "150 more" in opts[-1]["label"]
    assert [o["value"] for o in L.run_options(ids, ids[5], limit=100)[:-1]] == ids[:100]
    # typing searches every selected run, in any case
    want = []
    for r in ids:
        if "th-24" in r:
            want.append(r)
    assert len(want) == 5
    assert [o["value"] for o in L.run_options(ids, None, "TH-24", limit=100)] == want  # all fit: no "more" entry
    assert [o["value"] for o in L.run_options(ids, None, "mouth", limit=3)[:-1]] == [ids[1], ids[3], ids[5]]
    # 125 mouth runs; the entry names what was typed, so the dropdown's own filter (on labels) keeps it
    assert L.run_options(ids, None, "Mouth", limit=3)[-1]["label"] == "… 122 more with “Mouth”: type more"
    assert L.run_options(ids, "not-selected", "", limit=2)[:2] == [{"label": r, "value": r} for r in ids[:2]]
    assert L.run_options([], None) == []


def test_the_viewer_run_list_is_bounded_follows_clicks_and_searches(store_root, monkeypatch):
    monkeypatch.setattr(L, "MAX_RUN_OPTIONS", 3)
    app = create_app(store_root)
    ids = sorted(data.snapshot(store_root).runs)
    out = call(app, "..current-frame.data", {"projection-drawn.data": ids}, "projection-drawn.data")
    opts = out["viewer-run"]["options"]
    assert [o["value"] for o in opts[:-1]] == ids[:3] and f"{len(ids) - 3} more" in opts[-1]["label"]
    # a click on a run the list does not hold puts it in the list
    out = call(app, "..current-frame.data", {"projection-drawn.data": ids, "viewer-run.value": ids[0],
                                             "projection-click.data": {"points": [{"customdata": [ids[6], 1]}]},
                                             "current-frame.data": {"run_id": ids[0], "frame": 0}},
               "projection-click.data")
    assert out["viewer-run"]["value"] == ids[6] and out["viewer-run"]["options"][0]["value"] == ids[6]
    # moving the slider leaves the list as it is
    out = call(app, "..current-frame.data", {"projection-drawn.data": ids, "viewer-run.value": ids[6],
                                             "frame-slider.value": 2,
                                             "current-frame.data": {"run_id": ids[6], "frame": 1}}, "frame-slider.value")
    assert "viewer-run" not in out or "options" not in out["viewer-run"]
    def search(text):
        found = call(app, "viewer-run.options@", {"viewer-run.search_value": text, "projection-drawn.data": ids,
                                                  "viewer-run.value": "mouth-s1-synthetic-0003"},
                     "viewer-run.search_value")
        return [o["value"] for o in found["viewer-run"]["options"]]

    assert search("MOUTH") == ["mouth-s0-synthetic-0000", "mouth-s1-synthetic-0003"]
    # the run on show stays in the list (the dropdown shows its name) even when it does not match
    assert search("eyes") == ["mouth-s1-synthetic-0003", "eyes-s0-synthetic-0001", "eyes-s1-synthetic-0004"]
    assert search("")[:3] == ["mouth-s1-synthetic-0003", *ids[:2]] and len(search("")) == 4  # and "… 5 more"
    assert call(app, "viewer-run.options@", {"viewer-run.search_value": 7, "projection-drawn.data": ids},
                "viewer-run.search_value") is None  # not a string: nothing changes


def test_tooltip_target_ignores_gaps():
    assert cb.tooltip_target({"points": [{"customdata": [None, None]}]}) is None
    run, frame, bbox = cb.tooltip_target({"points": [{"customdata": ["a", 2], "bbox": {"x0": 1}}]})
    assert (run, frame, bbox) == ("a", 2, {"x0": 1})


# ------------------------------------------------------ callbacks over HTTP
def test_callbacks_over_http(store_root):
    app = create_app(store_root)
    ids = sorted(data.snapshot(store_root).runs)
    two = ["brows-s0-synthetic-0002", "mouth-s0-synthetic-0000"]
    sel = call(app, "selection.data", {"ticked.data": two[::-1] + ["gone"], "run-table.filter_query": ""},
               "ticked.data")["selection"]["data"]
    assert sel == two
    base = {"selection.data": sel, "projection-method.value": "pca", "projection-dims.value": 2,
            "projection-space.value": "w_free"}
    out = call(app, "..projection.figure", base, "selection.data")
    traces = out["projection"]["figure"]["data"]
    assert [t["name"] for t in traces] == ["brows", "mouth", "brows, frame 0", "mouth, frame 0"]
    # Events as the browser passes them on (the run index translated into the run id: test_dashboard_browser.py)
    frame = call(app, "..current-frame.data", {"projection-drawn.data": sel, "projection-click.data": {"points": [
        {"customdata": [two[1], 5]}]}}, "projection-click.data")
    assert frame["current-frame"]["data"] == {"run_id": two[1], "frame": 5}
    assert frame["frame-slider"]["value"] == 5 and frame["viewer-run"]["value"] == two[1]
    view = call(app, "..frame-viewer.figure", {"current-frame.data": {"run_id": two[1], "frame": 5}},
                "current-frame.data")
    assert "frame 5" in view["viewer-note"]["children"]
    tip = call(app, "..projection-tooltip.show", {"projection-hover.data": {"points": [
        {"customdata": [ids[0], 1], "bbox": {"x0": 0, "x1": 1, "y0": 0, "y1": 1}}]}}, "projection-hover.data")
    img = tip["projection-tooltip"]["children"]["props"]["children"][0]["props"]["src"]
    assert app.server.test_client().get(img).status_code == 200
    for output in ("metric-bars", "layer-heatmap", "overlap-matrix", "..derived-runs"):
        res = call(app, output, {"projection-drawn.data": ids, "metrics-pick.value": ["locality"],
                                 "overlap-k.value": 3}, "projection-drawn.data")
        assert res and all("figure" in v or "style" in v for v in res.values())



def test_page_starts_with_every_run_selected(broken_root):
    """The page asks for the projection of every run at once (not after the table's first render): the selection it
    starts with is what the table selects with no ticks and no filters, the good run folders here."""
    app = create_app(broken_root)
    page = app.server.test_client().get("/_dash-layout").get_json()
    good = sorted(p.name for p in broken_root.iterdir() if "-synthetic-" in p.name and not p.name.startswith("."))
    assert good == ["brows-s0-synthetic-0002", "eyes-s0-synthetic-0001", "mouth-s0-synthetic-0000"]
    assert _find(page, L.SELECTION)["props"]["data"] == good
    assert cb.selection_from_table(None, None, data.snapshot(broken_root).runs) == good
    # no ticks and no filter (what a page load sends) confirms it: no update, so no second projection
    assert not call(app, "selection.data", {"ticked.data": [], "run-table.filter_query": "",
                                            "selection.data": good}, "run-table.filter_query")


def _first_view(ids):
    return {"selection.data": ids, "projection-method.value": "pca", "projection-dims.value": 2,
            "projection-space.value": "w_free", "projection-relative.value": ["relative"] if L.FIRST_VIEW["relative"] else []}


def test_app_reads_the_store_on_the_first_page_only(tmp_path, monkeypatch):
    """create_app reads no run (the server listens at once) and the page it sends leaves the runs to the layout
    request (Dash used to embed the whole page, run table included, in every page it sent)."""
    ids = make_store(tmp_path, 3)
    scans = []
    real = data.store_catalog  # the store is read through its catalog
    monkeypatch.setattr(data, "store_catalog", lambda *a, **k: scans.append(a) or real(*a, **k))
    app = create_app(tmp_path)
    assert scans == []
    client = app.server.test_client()
    index = client.get("/").get_data(as_text=True)  # the first request: Dash checks the page's structure
    assert scans == [] and not any(r in index for r in ids)
    page = client.get("/_dash-layout").get_json()
    assert len(scans) == 1 and _find(page, L.SELECTION)["props"]["data"] == sorted(ids)


def test_page_loads_plotly_while_it_waits_for_the_layout(store_root):
    """plotly.js is a script of the page itself, after the renderer (which asks for the layout first), so it
    compiles while the server reads the store; dcc.Graph then uses window.Plotly instead of loading it again."""
    client = create_app(store_root).server.test_client()
    index = client.get("/").get_data(as_text=True)
    src = "/_dash-component-suites/plotly/package_data/plotly.min.js"
    assert index.index("new DashRenderer()") < index.index(f'<script src="{src}"></script>')
    js = client.get(src)
    assert js.status_code == 200 and b"plotly.js v" in js.data[:2000]


def test_warm_up_makes_the_first_view(tmp_path, monkeypatch):
    """After warm_up the page's first projection is served without another fit or cache read."""
    ids = make_store(tmp_path, 3)
    cb.warm_up(tmp_path)
    app = create_app(tmp_path)

    def no_more(*a, **k):
        raise AssertionError("projected again")

    monkeypatch.setattr(projection_module, "project", no_more)
    out = call(app, "..projection.figure", _first_view(sorted(ids)), "selection.data")
    fig = out["projection"]["figure"]
    assert {r for t in fig["data"] for r in t["meta"]} == set(ids) and not out["projection-note"]["children"]


def test_a_failing_warm_up_logs_one_line(tmp_path, monkeypatch, caplog):
    """The warm-up runs in a background thread: a failure there is one logged line (the page's own requests show
    the problem), never an exception."""
    make_store(tmp_path, 2)

    def broken():
        raise OSError("disk gone")

    monkeypatch.setattr(data, "preload", broken)
    cb.warm_up(tmp_path)
    assert [r.getMessage() for r in caplog.records] == ["warming up for the first page failed: disk gone"]


def _two_at_once(fn):
    """Call ``fn`` in two threads, the second started while the first is inside the patched step."""
    threads = [threading.Thread(target=fn) for _ in range(2)]
    threads[0].start()
    assert _INSIDE.wait(30)
    threads[1].start()
    for t in threads:
        t.join(60)


_INSIDE = threading.Event()


def _slow_spy(real, calls):
    def spy(*a, **k):
        calls.append(k.get("fit", True))  # projections: read the cache (False), or fit if it misses (True)
        _INSIDE.set()
        threading.Event().wait(0.3)  # long enough for the second thread to arrive (it waits, or reads again)
        return real(*a, **k)
    return spy


def test_two_requests_read_a_new_store_state_once(tmp_path, monkeypatch):
    make_store(tmp_path, 2)
    calls = []
    _INSIDE.clear()
    monkeypatch.setattr(data, "store_catalog", _slow_spy(data.store_catalog, calls))
    _two_at_once(lambda: data.snapshot(tmp_path))
    assert len(calls) == 1


def test_two_requests_for_one_projection_fit_it_once(tmp_path, monkeypatch):
    ids = make_store(tmp_path, 2)
    snap = data.snapshot(tmp_path)
    calls = []
    _INSIDE.clear()
    monkeypatch.setattr(projection_module, "project", _slow_spy(projection_module.project, calls))
    _two_at_once(lambda: data.projection(snap, ids, cache_dir=tmp_path / "cache"))
    assert calls.count(True) == 1


def test_a_projection_without_a_fit_is_none_until_read_or_fitted(tmp_path, monkeypatch):
    """fit=False (what the page asks for its first view) reads the analysis cache but never fits, and does not wait
    for a fit in progress."""
    ids = make_store(tmp_path, 3)
    snap = data.snapshot(tmp_path)
    cache = tmp_path / "cache"
    assert data.projection(snap, ids, cache_dir=cache, fit=False) is None and not cache.exists()  # not fitted
    calls, fitting, go_on = [], threading.Event(), threading.Event()
    real = projection_module.project

    def spy(*a, **k):
        calls.append(k.get("fit", True))
        if k.get("fit", True):  # a fit: held until the test has asked
            fitting.set()
            go_on.wait(60)
        return real(*a, **k)

    monkeypatch.setattr(projection_module, "project", spy)
    fitter = threading.Thread(target=lambda: data.projection(snap, ids, cache_dir=cache))
    fitter.start()
    try:
        assert fitting.wait(60)
        assert data.projection(snap, ids, cache_dir=cache, fit=False) is None  # answered during the fit
    finally:
        go_on.set()
        fitter.join()
    fitted = data.projection(snap, ids, cache_dir=cache, fit=False)
    assert fitted is data.projection(snap, ids, cache_dir=cache)  # in memory now
    data.clear_projections()
    read = data.projection(snap, ids, cache_dir=cache, fit=False)  # from the analysis cache, not fitted again
    assert calls.count(True) == 1 and read is not None and read is not fitted
    pd.testing.assert_frame_equal(read[["run_id", "frame", "x", "y"]], fitted[["run_id", "frame", "x", "y"]])


def test_callbacks_on_an_empty_store(tmp_path):
    app = create_app(tmp_path)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    page = json.dumps(client.get("/_dash-layout").get_json())
    assert "No runs yet" in page and "mgm demo" in page
    sel = call(app, "selection.data", {"ticked.data": [], "run-table.filter_query": ""}, "run-table.filter_query")
    assert sel is None or sel["selection"]["data"] == []
    out = call(app, "..projection.figure", {"selection.data": [], "projection-method.value": "pca",
                                            "projection-dims.value": 2, "projection-space.value": "w_free"})
    assert "Select runs" in json.dumps(out)


def test_the_page_holds_its_first_projection_and_the_callback_leaves_it(tmp_path):
    """When the first view's projection can be had without a fit (the warm-up's, or the analysis cache's), the page
    comes with its figure — what the projection callback draws for the page's own inputs — and the callback's first
    call with those inputs sends nothing; any other call draws (and forgets the embedded figure's name)."""
    from dashboards import memo

    make_store(tmp_path, 4)
    app = create_app(tmp_path)
    client = app.server.test_client()
    page = client.get("/_dash-layout").get_json()
    assert "figure" not in _find(page, L.PROJECTION)["props"]  # not fitted yet: the page does not wait for a fit
    assert _find(page, L.EMBEDDED)["props"]["data"] is None
    cb.warm_up(tmp_path)  # what serve() does while the browser loads the page's scripts: here, a fit
    page = client.get("/_dash-layout").get_json()
    embedded, token = _find(page, L.PROJECTION)["props"]["figure"], _find(page, L.EMBEDDED)["props"]["data"]
    v = L.FIRST_VIEW
    inputs = {"selection.data": _find(page, L.SELECTION)["props"]["data"], "projection-method.value": v["method"],
              "projection-dims.value": v["dims"], "projection-space.value": v["space"],
              "projection-relative.value": _find(page, L.RELATIVE)["props"]["value"]}
    drawn = call(app, "..projection.figure", inputs, "selection.data")  # no embedded figure named: drawn
    assert embedded == drawn["projection"]["figure"] and len(embedded["data"]) == 6
    assert _find(page, L.PROJECTION_NOTE)["props"]["children"] == drawn["projection-note"]["children"]
    assert "projection-embedded" not in drawn  # nothing to forget
    first = call(app, "..projection.figure", {**inputs, "projection-embedded.data": token}, "selection.data")
    assert first == {"projection-embedded": {"data": None}}  # the figure stays; its name is forgotten
    other = call(app, "..projection.figure", {**inputs, "projection-dims.value": 3, "projection-embedded.data": token},
                 "projection-dims.value")
    assert other["projection"]["figure"]["data"][0]["type"] == "scatter3d" and other["projection-embedded"]["data"] is None
    # a fresh process without its warm-up: the page reads the analysis cache itself
    data.clear_projections()
    memo.clear()
    again = client.get("/_dash-layout").get_json()
    assert _find(again, L.PROJECTION)["props"]["figure"] == embedded and _find(again, L.EMBEDDED)["props"]["data"] == token


def test_broken_run_shows_a_warning(broken_root):
    app = create_app(broken_root)
    page = json.dumps(app.server.test_client().get("/_dash-layout").get_json())
    assert "2 run folders could not be read" in page and "bad-run" in page


# -------------------------------------------------------------- file route
def test_file_route_serves_run_files_only(store_root, tmp_path):
    outside = store_root.parent / "secret.txt"
    outside.write_text("secret")
    run = "mouth-s0-synthetic-0000"
    os.symlink(outside, store_root / run / "link.txt")
    client = create_app(store_root).server.test_client()
    assert client.get(f"/runs/{run}/frames/000.png").status_code == 200
    assert client.get(f"/runs/{run}/run.json").status_code == 200
    bad = [f"/runs/{run}/../eyes-s0-synthetic-0001/run.json", f"/runs/{run}/../../secret.txt", "/runs/../secret.txt",
           f"/runs/{run}/..%2F..%2Fsecret.txt", f"/runs/{run}/%2E%2E/%2E%2E/secret.txt",
           f"/runs/{run}/{outside}", f"/runs/{run}/%2F{str(outside)[1:]}", f"/runs//{outside}", "/runs/%2Fetc/passwd",
           f"/runs/{run}/link.txt", "/runs/.mgm_cache/x", f"/runs/{run}/frames", f"/runs/{run}/nope.png",
           "/runs/no-such-run/run.json"]
    for url in bad:
        res = client.get(url)
        assert res.status_code == 404, url
        assert b"secret" not in res.data
    os.remove(store_root / run / "link.txt")


def test_missing_root():
    with pytest.raises(MGMError, match="does not exist"):
        create_app("/no/such/store")


def test_cli_missing_root_is_one_line(tmp_path):
    from mgm_analysis.cli import main

    res = CliRunner().invoke(main, ["dashboard", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: run store") and len(res.output.strip().splitlines()) == 1
    assert "--host" in CliRunner().invoke(main, ["dashboard", "--help"]).output


def test_cli_prints_the_url_and_serves(tmp_path, monkeypatch):
    import dashboards.app
    from mgm_analysis.cli import main

    calls = []
    monkeypatch.setattr(dashboards.app, "serve", lambda root, **kw: calls.append((root, kw)))
    res = CliRunner().invoke(main, ["dashboard", str(tmp_path), "--port", "8051"])
    assert res.exit_code == 0, res.output
    assert "http://127.0.0.1:8051/" in res.output and "warning" not in res.output
    assert calls[0][1]["host"] == "127.0.0.1" and calls[0][1]["port"] == 8051
    res = CliRunner().invoke(main, ["dashboard", str(tmp_path), "--host", "0.0.0.0"])
    assert "warning: bound to 0.0.0.0" in res.output


def test_viewer_says_how_far_the_manifold_reaches(tmp_path):
    """A run's extent (spread, inside path) and the factor ranges it covers are in the viewer's note."""
    from _fake_runs import fake_meta, make_run

    meta = fake_meta("mouth", 0)
    meta["metrics"] = {"locality": 0.97, "spread": 1.234, "inside_path": 3.61,
                       "semantic_low": {"mouth_open": 0.12, "mouth_smile": 0.31},
                       "semantic_high": {"mouth_open": 0.71, "mouth_smile": 0.44}}
    path = make_run(tmp_path, meta=meta, run_id="mouth-s0-x")
    make_run(tmp_path, region="eyes", run_id="eyes-s0-y")          # no extent recorded: no words about it
    app = create_app(tmp_path)
    view = call(app, "..frame-viewer.figure", {"current-frame.data": {"run_id": path.name, "frame": 2}},
                "current-frame.data")
    note = view["viewer-note"]["children"]
    assert "spread 1.23, inside path 3.61; spans mouth_open 0.12–0.71, mouth_smile 0.31–0.44" in note, note
    plain = call(app, "..frame-viewer.figure", {"current-frame.data": {"run_id": "eyes-s0-y", "frame": 1}},
                 "current-frame.data")["viewer-note"]["children"]
    assert "spread" not in plain and "spans" not in plain
    assert data.metric_columns(data.snapshot(tmp_path).catalog)[:4] == ["locality", "spread", "inside_path",
                                                                         "semantic_low.mouth_open"]


# ------------------------------------------------------------------ methods: table and locality against strength
@pytest.fixture(scope="module")
def methods_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    make_store(root, 3, methods=("jacobian", "sefa"), strengths=(1.0, 2.0, 4.0))
    return root


def test_frontier_figure_one_line_per_method_and_region(methods_root):
    s = data.snapshot(methods_root)
    table = data.method_table(s, sorted(s.runs))
    fig = go.Figure(figures.frontier_figure(table))
    cat = s.catalog
    for t in fig.data:                                       # each line read back from the runs themselves
        method, region = t.name.split(" · ")
        rows = cat[(cat.region == region) & (cat.method == method)].sort_values("strength")
        metric = "locality" if t.xaxis == "x" else "semantic_locality"
        assert list(t.x) == [1.0, 2.0, 4.0] and list(t.x) == list(rows.strength)
        np.testing.assert_allclose(t.y, rows[metric], rtol=1e-12)
    assert len(fig.data) == 2 * 3 * 3                         # 2 panels x 3 methods x 3 regions
    assert fig.layout.xaxis.type == "log"
    msg = go.Figure(figures.frontier_figure(table.iloc[:0]))
    assert not msg.data and "compare-methods" in msg.layout.annotations[0].text


def test_method_table_of_the_selection(methods_root):
    s = data.snapshot(methods_root)
    assert data.has_methods(s) and not data.has_methods(data.empty_snapshot(methods_root))
    mouth = sorted(r for r in s.runs if s.runs[r].region == "mouth")
    table = data.method_table(s, mouth)
    assert set(table.region) == {"mouth"} and len(table) == 9 and (table.runs == 1).all()
    assert data.method_table(s, mouth) is table               # memoised
    cols = L.method_table_columns(table)
    assert [c["id"] for c in cols[:4]] == ["method", "region", "strength", "runs"]
    assert all("format" in c for c in cols[4:])
    rows = L.records(table)
    assert len(rows) == 9 and all(v is None or v == v for r in rows for v in r.values())   # no NaN in JSON


def test_methods_view_over_http(methods_root, store_root):
    app = create_app(methods_root)
    ids = sorted(data.snapshot(methods_root).runs)
    out = call(app, "methods-table", {"projection-drawn.data": ids}, "projection-drawn.data")
    assert len(out["methods-table"]["data"]) == 27
    assert out["methods-table"]["columns"][2]["id"] == "strength"
    assert len(out["frontier"]["figure"]["data"]) == 18
    box = _find(app.server.test_client().get("/_dash-layout").get_json(), L.METHODS_BOX)
    assert box["props"]["style"].get("display") != "none"
    plain = create_app(store_root)                            # a store without baselines: the view stays hidden
    assert call(plain, "methods-table", {"projection-drawn.data": sorted(data.snapshot(store_root).runs)},
                "projection-drawn.data") is None
    box = _find(plain.server.test_client().get("/_dash-layout").get_json(), L.METHODS_BOX)
    assert box["props"]["style"]["display"] == "none"
    assert call(app, "methods-table", {"projection-drawn.data": "not a list"}, "projection-drawn.data") is None


def test_a_query_string_is_read_as_a_view_and_checked(tmp_path):
    from dashboards.callbacks import view_of_query

    ids = sorted(make_store(tmp_path, 4))
    snap = data.snapshot(tmp_path)
    got = view_of_query(f"?tab=compare&view=umap&dims=3&space=frames&rel=0&filter=mouth&sel={ids[2]},nope,{ids[0]},"
                        f"{ids[2]}", snap)
    assert got == {"tab": "compare", "method": "umap", "dims": 3, "space": "frames", "relative": [], "filter": "mouth",
                   "ids": [ids[2], ids[0]]}
    # anything else is left as the page has it
    assert view_of_query("?tab=settings&view=tsne&dims=7&space=x&rel=yes", snap) == {}
    assert view_of_query("", snap) == {} and view_of_query(None, snap) == {} and view_of_query(["?"], snap) == {}
    assert view_of_query("?" + "a" * 30_000, snap) == {}


def test_the_store_signature_notices_a_new_a_rewritten_and_a_removed_run(tmp_path):
    from mgm_analysis import store

    ids = sorted(make_store(tmp_path, 3))
    sig = data.store_signature(tmp_path)
    assert data.store_signature(tmp_path) == sig                          # nothing changed: the same
    (tmp_path / ".tmp-x").mkdir()                                         # a temporary folder: ignored
    assert data.store_signature(tmp_path) == sig
    meta = json.loads((tmp_path / ids[0] / "run.json").read_text())
    store.write_json(tmp_path / ids[0] / "run.json", {**meta, "note": "a longer run.json than before"})
    rewritten = data.store_signature(tmp_path)
    assert rewritten != sig
    make_store(tmp_path, 1, start=3)
    added = data.store_signature(tmp_path)
    assert added not in (sig, rewritten)
    shutil.rmtree(tmp_path / ids[1])
    assert data.store_signature(tmp_path) not in (sig, rewritten, added)
    assert data.store_signature(tmp_path / "nope") == "0" * 16            # no store: a signature all the same
