"""The Discover view without a browser: drawn shapes → region specs against masks computed here pixel by pixel,
the page's messages for bad input (nothing written, nothing sent to the worker), the view switched off on a
public address, the worker's checks (``mgm discover``'s), the progress text and the frame strip.

The browser test (drawing with the mouse, launching, cancelling) is test_dashboard_discover_browser.py.
"""

import base64
import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dashboards import discover as D
from dashboards.app import create_app
from dashboards.synthetic import callback_body
from mgm_analysis.errors import MGMError
from mgm_analysis.masks import parse_region

RES = 64


def hand_rect(x0, y0, x1, y1):
    m = np.zeros((RES, RES), np.float32)
    for y in range(RES):
        for x in range(RES):
            if x0 <= x < x1 and y0 <= y < y1:
                m[y, x] = 1
    return m


def hand_ellipse(cx, cy, rx, ry):
    """Pixels whose centre (x + ½, y + ½) is inside the ellipse."""
    m = np.zeros((RES, RES), np.float32)
    for y in range(RES):
        for x in range(RES):
            if ((x + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2 <= 1:
                m[y, x] = 1
    return m


# ------------------------------------------------------------ shapes -> spec
def test_a_dragged_rectangle_snaps_to_pixels_and_is_the_mask():
    shape = {"type": "rect", "x0": 46.7, "y0": 54.9, "x1": 17.6, "y1": 40.2}  # dragged from bottom right
    spec = D.shape_spec(shape, RES)
    assert spec == "rect:18,40,47,55"
    assert np.array_equal(parse_region(spec, RES).mask, hand_rect(18, 40, 47, 55))


def test_a_rectangle_past_the_edge_is_clipped_to_the_image():
    assert D.shape_spec({"type": "rect", "x0": -5, "y0": -3.2, "x1": 10.4, "y1": 70}, RES) == "rect:0,0,10,64"


def test_an_ellipse_shape_is_the_ellipse_mask():
    spec = D.shape_spec({"type": "circle", "x0": 10, "y0": 20, "x1": 30.5, "y1": 30}, RES)
    assert spec == "ellipse:20.25,25,10.25,5"
    assert np.array_equal(parse_region(spec, RES).mask, hand_ellipse(20.25, 25, 10.25, 5))


def test_a_closed_path_is_a_polygon_with_its_vertices_clipped():
    assert D.shape_spec({"type": "path", "path": "M10,12L30,12.5L20,30Z"}, RES) == "poly:10,12,30,12.5,20,30"
    assert D.shape_spec({"type": "path", "path": "M-3,5L70,5L30.333,40Z"}, RES) == "poly:0,5,64,5,30.33,40"
    assert D.path_vertices("M1e1,2 L 3,4.5L5,6Z") == [(10.0, 2.0), (3.0, 4.5), (5.0, 6.0)]


def test_several_rectangles_are_their_union():
    shapes = [{"type": "rect", "x0": 2, "y0": 3, "x1": 10, "y1": 12}, {"type": "rect", "x0": 8, "y0": 10, "x1": 20,
                                                                      "y1": 14}]
    spec, mask = D.region_spec_of_shapes(shapes, RES, "toyfaces")
    assert spec == "rects:2,3,10,12;8,10,20,14" and mask is None
    want = np.maximum(hand_rect(2, 3, 10, 12), hand_rect(8, 10, 20, 14))
    assert np.array_equal(parse_region(spec, RES).mask, want)


def test_shapes_of_different_kinds_are_their_union_as_a_png(tmp_path):
    shapes = [{"type": "rect", "x0": 2, "y0": 3, "x1": 10, "y1": 12},
              {"type": "circle", "x0": 30, "y0": 30, "x1": 50, "y1": 40}]
    want = np.maximum(hand_rect(2, 3, 10, 12), hand_ellipse(40, 35, 10, 5))
    spec, mask = D.region_spec_of_shapes(shapes, RES, "toyfaces")
    assert spec is None and np.array_equal(mask, want)
    name, region = D.resolve_region(shapes, RES, "toyfaces")  # checked, nothing kept
    assert name.startswith("drawn-") and np.array_equal(region.mask, want) and not list(tmp_path.iterdir())
    path, region = D.resolve_region(shapes, RES, "toyfaces", mask_dir=tmp_path / "masks")
    assert path == str(tmp_path / "masks" / name) and np.array_equal(parse_region(path, RES).mask, want)


def test_a_presets_unmoved_boxes_are_the_preset():
    shapes = D.preset_shapes("mouth", RES, "toyfaces")
    assert D.region_spec_of_shapes(shapes, RES, "toyfaces") == ("mouth", None)
    moved = [{**shapes[0], "x0": shapes[0]["x0"] + 2}]
    assert D.region_spec_of_shapes(moved, RES, "toyfaces")[0].startswith("rect:")


@pytest.mark.parametrize("shapes, message", [
    ([], "no region"),
    (None, "no region"),
    ([{"type": "rect", "x0": 0, "y0": 0, "x1": 64, "y1": 64}], "covers the whole image"),
    ([{"type": "rect", "x0": -9, "y0": -9, "x1": 99, "y1": 99}], "covers the whole image"),
    ([{"type": "rect", "x0": 5.2, "y0": 3, "x1": 5.4, "y1": 9}], "outside the 64x64 image or empty"),
    ([{"type": "rect", "x0": "nan", "y0": 3, "x1": 5, "y1": 9}], "not a finite number"),
    ([{"type": "rect", "x0": None, "y0": 3, "x1": 5, "y1": 9}], "not a number"),
    ([{"type": "line", "x0": 1, "y0": 3, "x1": 5, "y1": 9}], "not a region"),
    ([{"type": "path", "path": "M1,2Q3,4,5,6Z"}], "unexpected segment"),
    ([{"type": "path", "path": "M1,2L3,4Z"}], "fewer than 3 points"),
    ([{"type": "path", "path": "M1,1L1,1L1,1Z"}], "encloses"),
    ("rect", "not a list"),
])
def test_bad_regions_are_one_clear_line(shapes, message):
    with pytest.raises(MGMError, match=message) as err:
        D.resolve_region(shapes, RES, "toyfaces")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ settings
GOOD = {D.FRAMES: 16, D.EPOCHS: 3, D.OFFSET: 0.03, D.OUTSIDE: 10, D.LAYERS: "2:8", D.DISTANCE: "l2"}


def test_settings_map_to_the_engines_fields():
    assert D.settings_config(GOOD) == {"n_frames": 16, "epochs": 3, "offset": 0.03, "outside_weight": 10.0,
                                       "layer_start": 2, "layer_end": 8, "distance": "l2"}
    assert D.settings_config({**GOOD, D.EPOCHS: 4.0})["epochs"] == 4


@pytest.mark.parametrize("key, value, message", [
    (D.EPOCHS, None, "epochs: give a whole number"),
    (D.FRAMES, 2.5, "frames: give a whole number"),
    (D.FRAMES, True, "frames: give a whole number"),
    (D.OFFSET, float("nan"), "offset: give a finite number"),
    (D.OUTSIDE, "10", "outside weight: give a finite number"),
    (D.LAYERS, "2-8", "layers '2-8': expected START:END"),
    (D.LAYERS, 28, "layers: give START:END"),
    (D.DISTANCE, "cosine", "distance: choose one of l2, lpips"),
])
def test_bad_settings_name_the_setting(key, value, message):
    with pytest.raises(MGMError, match=message):
        D.settings_config({**GOOD, key: value})


def test_references(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "w-0123456789abcdef.npy").write_bytes(b"x")
    (tmp_path / "w-0123456789abcdef.npy").write_bytes(b"x")
    assert D.valid_reference({"seed": 3.0}, {}) == {"seed": 3}
    assert D.valid_reference({"run": "a"}, {"a": object()}) == {"run": "a"}
    mine = str(uploads / "w-0123456789abcdef.npy")
    assert D.valid_reference({"file": mine}, {}, uploads) == {"file": mine}
    for bad in (None, {"seed": -1}, {"seed": 2**40}, {"run": "gone"}, {"seed": 1, "run": "a"}, {"file": ""},
                {"file": "/etc/passwd"}, {"file": str(tmp_path / "w-0123456789abcdef.npy")},  # not an upload
                {"file": str(uploads / "w-0123456789abcdee.npy")},  # no such upload
                {"file": str(uploads / ".." / "uploads" / "w-0123456789abcdef.npy")}):
        with pytest.raises(MGMError, match="no reference face"):
            D.valid_reference(bad, {"a": object()}, uploads)


def test_on_only_on_loopback_unless_allowed():
    assert D.DiscoverOptions.for_host("127.0.0.1").enabled and D.DiscoverOptions.for_host("localhost").enabled
    off = D.DiscoverOptions.for_host("0.0.0.0")
    assert not off.enabled and "0.0.0.0" in off.reason and "--allow-discover" in off.reason
    assert D.DiscoverOptions.for_host("0.0.0.0", allow=True).enabled


def test_progress_text_shows_epoch_and_terms():
    from dash import html

    states = [{"state": "complete", "label": "mouth", "seed": 1, "message": "complete: mouth-s1-x",
               "progress": {"epoch": 3, "epochs": 3}},
              {"state": "running", "label": "rect:1,2,3,4", "seed": 3,
               "progress": {"epoch": 2, "epochs": 30, "terms": {"total": 0.5, "l_x": 0.25, "d_in": 1e-3}}}]
    ul = D.progress_children(states)

    def text(c):
        if isinstance(c, (list, tuple)):
            return "".join(text(x) for x in c)
        if isinstance(c, html.Br):
            return "\n"
        return text(c.children) if hasattr(c, "children") else ("" if c is None else str(c))

    lines = [text(li) for li in ul.children]
    assert lines[0] == "running rect:1,2,3,4 (seed 3) — epoch 2/30\nE 0.5  L_X 0.25  D_in 0.001"
    assert lines[1] == "complete mouth (seed 1) — 3/3 epochs — complete: mouth-s1-x"


# ------------------------------------------------------------------ the page over HTTP (no worker)
@pytest.fixture
def offline_app(tmp_path, monkeypatch):
    """The app with the Discover view whose worker never starts: it knows the generator's facts, and a request
    to it fails the test (bad input must be refused before it reaches the worker)."""
    monkeypatch.setattr(D.WorkerClient, "start", lambda self: None)
    root = tmp_path / "runs"
    root.mkdir()
    app = create_app(root, discover=D.DiscoverOptions("toyfaces"))
    client = app.discover_client
    client.info = {"op": "hello", "generator": "toyfaces", "resolution": RES, "num_ws": 10, "w_dim": 256,
                   "layout": "toyfaces", "presets": sorted(D.PRESET_NAMES), "defaults": {"truncation": 0.7}}
    client.ready.set()
    sent = []

    def request(msg, timeout=None):
        sent.append(msg)
        raise AssertionError(f"sent to the worker: {msg}")

    monkeypatch.setattr(client, "request", request)
    yield app, root, sent
    D._CLIENTS.pop(next(k for k, v in D._CLIENTS.items() if v is client))


def post(app, output, values, trigger=None):
    body = callback_body(app, output, values, trigger)
    res = app.server.test_client().post("/_dash-update-component", json=body)
    if res.status_code == 204:
        return None
    assert res.status_code == 200, res.data[:500]
    return json.loads(res.data)["response"]


def launch_values(**change):
    v = {f"{k}.value": x for k, x in GOOD.items()}
    v.update({f"{D.SHAPES}.data": [{"type": "rect", "x0": 18, "y0": 40, "x1": 47, "y1": 55}],
              f"{D.REFERENCE}.data": {"seed": 3}, f"{D.JOBS}.data": [], f"{D.LAUNCH}.n_clicks": 1})
    v.update({k.replace("__", "."): x for k, x in change.items()})
    return v


@pytest.mark.parametrize("change, message", [
    ({f"{D.SHAPES}__data": []}, "no region"),
    ({f"{D.SHAPES}__data": [{"type": "rect", "x0": 0, "y0": 0, "x1": 64, "y1": 64}]}, "covers the whole image"),
    ({f"{D.SHAPES}__data": [{"type": "circle", "x0": 3, "y0": 3, "x1": 3.1, "y1": 3.1}]}, "is empty"),
    ({f"{D.EPOCHS}__value": None}, "epochs: give a whole number"),
    ({f"{D.LAYERS}__value": "x"}, "layers 'x': expected START:END"),
    ({f"{D.REFERENCE}__data": None}, "no reference face"),
    ({f"{D.REFERENCE}__data": {"run": "not-a-run"}}, "no reference face"),
])
def test_a_bad_launch_is_a_message_and_writes_nothing(offline_app, change, message):
    app, root, sent = offline_app
    got = post(app, "discover-error.children...discover-jobs", launch_values(**change), f"{D.LAUNCH}.n_clicks")
    text = got["discover-error"]["children"]["props"]["children"]
    assert message in text and "\n" not in text
    assert "discover-jobs" not in got  # no job added
    assert list(root.iterdir()) == [] and sent == []  # no folder, hidden or not; nothing sent to the worker


@pytest.mark.parametrize("change", [{f"{D.LAUNCH}__n_clicks": "1"}, {f"{D.JOBS}__data": "abc"}])
def test_a_malformed_launch_leaves_the_view_as_it_was(offline_app, change):
    app, root, sent = offline_app
    assert post(app, "discover-error.children...discover-jobs", launch_values(**change), f"{D.LAUNCH}.n_clicks") is None
    assert sent == []


def test_poll_and_cancel_with_bad_or_unknown_jobs(offline_app):
    app, root, sent = offline_app
    values = {f"{D.POLL}.n_intervals": 1, f"{D.JOBS}.data": ["../../etc", "20260101T000000-0000-abcd"],
              f"{D.LANDED}.data": [], "ticked.data": None}
    got = post(app, "discover-progress.children", values, f"{D.POLL}.n_intervals")
    assert got["discover-progress"]["children"] == "no jobs yet" and got["discover-poll"]["disabled"] is True
    assert post(app, "discover-progress.children", {**values, f"{D.JOBS}.data": {"x": 1}}) is None
    got = post(app, "discover-error.children@", {f"{D.CANCEL}.n_clicks": 1, f"{D.JOBS}.data": []},
               f"{D.CANCEL}.n_clicks")
    assert "nothing to cancel" in got["discover-error"]["children"]["props"]["children"] and sent == []


def test_the_reference_run_list_is_bounded_and_searched(offline_app, monkeypatch):
    """The reference-run dropdown holds at most layout.MAX_RUN_OPTIONS runs (Dash's dropdown indexes every option:
    10 000 runs held a page's main thread for half a minute); typing searches the store's runs on the server."""
    from _dash import find_component

    from dashboards import layout as L
    from dashboards.synthetic import make_store

    app, root, sent = offline_app
    ids = sorted(make_store(root, 6))
    monkeypatch.setattr(L, "MAX_RUN_OPTIONS", 3)
    page = app.server.test_client().get("/_dash-layout").get_json()
    assert find_component(page, D.REF_RUN) is None  # a store with runs: the card comes with the Discover tab
    card = post(app, f"{L.DISCOVER_PANEL}.children", {f"{L.TABS}.value": L.DISCOVER,
                                                      f"{L.DISCOVER_MOUNTED}.data": False}, f"{L.TABS}.value")
    opts = find_component(card[L.DISCOVER_PANEL]["children"], D.REF_RUN)["props"]["options"]
    assert [o["value"] for o in opts[:-1]] == ids[:3] and opts[-1]["label"] == "… 3 more: type to search"
    got = post(app, f"{D.REF_RUN}.options@", {f"{D.REF_RUN}.search_value": "EYES", f"{D.REF_RUN}.value": ids[0]},
               f"{D.REF_RUN}.search_value")
    want = [ids[0]] + [r for r in ids if "eyes" in r]  # the picked run stays listed
    assert [o["value"] for o in got[D.REF_RUN]["options"]] == want and len(want) == 3
    assert post(app, f"{D.REF_RUN}.options@", {f"{D.REF_RUN}.search_value": ["x"]},
                f"{D.REF_RUN}.search_value") is None
    assert sent == []


def test_the_worker_starts_at_once_only_where_the_page_opens_on_discover(tmp_path, monkeypatch):
    """Over an empty store the page opens on Discover: the worker starts with the app.  Over a store with runs the
    page opens on Browse: the worker starts later (a timer), or when the Discover tab is first shown, whose
    settings callback runs then and not before."""
    import dashboards.discover.callbacks as dcb
    from dashboards import layout as L
    from dashboards.synthetic import make_store

    started = []
    monkeypatch.setattr(D.WorkerClient, "start", lambda self: started.append(self.root.name))
    monkeypatch.setattr(dcb, "WORKER_START_DELAY_S", 600.0)
    (tmp_path / "empty").mkdir()
    make_store(tmp_path / "full", 2)
    try:
        create_app(tmp_path / "empty", discover=D.DiscoverOptions("toyfaces"))
        assert started == ["empty"]
        app = create_app(tmp_path / "full", discover=D.DiscoverOptions("toyfaces"))
        assert started == ["empty"] and app.discover_start_timer.is_alive()  # later, not now
        client = app.discover_client
        client.info = {"op": "hello", "generator": "toyfaces", "resolution": RES, "num_ws": 10, "w_dim": 256,
                       "layout": "toyfaces", "presets": [], "defaults": {"epochs": 7}}
        client.ready.set()
        init = f"{D.INIT}.data"
        assert post(app, init, {f"{L.TABS}.value": L.BROWSE, init: None}, f"{L.TABS}.value") is None
        assert started == ["empty"]  # the Browse tab asks nothing of the worker
        got = post(app, init, {f"{L.TABS}.value": L.DISCOVER, init: None}, f"{L.TABS}.value")
        assert got[D.INIT]["data"]["resolution"] == RES and got[D.EPOCHS]["value"] == 7
        assert started == ["empty", "full"]  # the Discover tab: the worker is asked for (and started) now
        assert post(app, init, {f"{L.TABS}.value": L.DISCOVER, init: got[D.INIT]["data"]},
                    f"{L.TABS}.value") is None  # once per page
    finally:
        app.discover_start_timer.cancel()
        for k in [k for k, v in D._CLIENTS.items() if v.root.parent == tmp_path]:
            D._CLIENTS.pop(k)


HOSTILE = ["abc", "", -1, 2.5, 1e300, True, None, [[1]], [None], [1, "x"], {"a": 1}, {"seed": "3"}, {"run": 5},
           {"file": ["x"]}, [{"type": "rect", "x0": "1e999", "y0": 0, "x1": 1, "y1": 1}],
           [{"type": "path", "path": "M" * 5000}], [{"type": "circle"}], ["20260101T000000-0000-abcd"],
           "data:application/octet-stream;base64,!!!", "data:x;base64," + "QUJD" * 10]


def test_every_discover_callback_survives_any_value_in_any_input(offline_app, monkeypatch):
    """Each Discover callback, each of its inputs and states in turn set to each hostile value: never a 500,
    and nothing written in the store (the worker, offline here, refuses whatever reaches it)."""
    app, root, sent = offline_app

    def offline(msg, timeout=None):
        raise MGMError("the worker is offline")

    monkeypatch.setattr(app.discover_client, "request", offline)
    client = app.server.test_client()
    good = {**launch_values(), f"{D.SEED}.value": 3, f"{D.REF_KIND}.value": "seed", f"{D.INIT}.data": {"x": 1},
            f"{D.POLL}.n_intervals": 1, f"{D.LANDED}.data": [], f"{D.CANCEL}.n_clicks": 1,
            f"{D.CLEAR_SHAPES}.n_clicks": 1, f"{D.FACE}.figure": D.face_figure(None, RES, 1)}
    buf = io.BytesIO()
    np.save(buf, np.zeros((10, 256), np.float32))
    upload = {f"{D.REF_KIND}.value": "upload", f"{D.UPLOAD}.filename": "w.npy",
              f"{D.UPLOAD}.contents": "data:application/octet-stream;base64," + base64.b64encode(buf.getvalue()).decode()}
    posted = 0
    for base in (good, {**good, **upload}):
        for key, spec in app.callback_map.items():
            if "discover" not in key or "callback" not in spec:  # the other views: test_bad_inputs_dashboard.py
                continue
            deps = [f"{d['id']}.{d['property']}" for d in spec["inputs"] + spec["state"]]
            for dep in deps:
                for bad in HOSTILE:
                    body = callback_body(app, key, {**base, dep: bad}, dep)
                    res = client.post("/_dash-update-component", json=body)
                    posted += 1
                    assert res.status_code in (200, 204), (key[:60], dep, bad, res.status_code, res.data[:200])
    assert posted >= 1000
    assert [p.name for p in root.iterdir()] in ([], [D.HIDDEN])
    assert not (root / D.HIDDEN / "jobs").exists()


def test_an_upload_the_worker_refuses_is_not_kept(offline_app, monkeypatch):
    app, root, sent = offline_app

    def refuse(msg, timeout=None):
        raise MGMError("--reference w.npy has shape [3, 7]; the generator needs [10, 256] (W+) or [256] (w)")

    monkeypatch.setattr(app.discover_client, "request", refuse)
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 7), np.float32))
    values = {f"{D.INIT}.data": {"x": 1}, f"{D.REF_KIND}.value": "upload", f"{D.UPLOAD}.filename": "w.npy",
              f"{D.UPLOAD}.contents": "data:;base64," + base64.b64encode(buf.getvalue()).decode(),
              f"{D.SHAPES}.data": []}
    got = post(app, "discover-face.figure", values, f"{D.UPLOAD}.contents")
    assert "has shape [3, 7]" in got["discover-ref-note"]["children"]["props"]["children"]
    assert "discover-reference" not in got and list((root / D.HIDDEN / "uploads").iterdir()) == []
    np.save(buf := io.BytesIO(), np.array([[np.nan]], np.float32))  # refused before the worker: not finite
    values[f"{D.UPLOAD}.contents"] = "data:;base64," + base64.b64encode(buf.getvalue()).decode()
    got = post(app, "discover-face.figure", values, f"{D.UPLOAD}.contents")
    assert "discover-reference" not in got and list((root / D.HIDDEN / "uploads").iterdir()) == []


def test_open_jobs_are_the_queued_and_running_ones_oldest_first(tmp_path):
    jobs = tmp_path / D.HIDDEN / "jobs"
    states = {"20260101T000003-0000-aaaa": "running", "20260101T000001-0000-aaaa": "queued",
              "20260101T000002-0000-aaaa": "complete", "20260101T000004-0000-aaaa": "interrupted",
              "not-a-job": "running"}
    for name, state in states.items():
        (jobs / name).mkdir(parents=True)
        (jobs / name / "status.json").write_text(json.dumps({"state": state}))
    assert D.open_jobs(tmp_path) == ["20260101T000001-0000-aaaa", "20260101T000003-0000-aaaa"]
    assert D.open_jobs(tmp_path, newest=2) == ["20260101T000003-0000-aaaa"]
    assert D.open_jobs(tmp_path / "elsewhere") == []


def test_jobs_of_a_dead_worker_are_failed_and_a_live_ones_left(tmp_path):
    import os
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    jobs = tmp_path / D.HIDDEN / "jobs"
    for name, pid in (("a", dead.pid), ("b", os.getpid()), ("c", None)):
        (jobs / name).mkdir(parents=True)
        (jobs / name / "status.json").write_text(json.dumps({"state": "running", "worker": pid}))
    D.WorkerClient(tmp_path, D.DiscoverOptions())._fail_orphans()
    states = {n: json.loads((jobs / n / "status.json").read_text()) for n in "abc"}
    assert states["a"]["state"] == "failed" and "worker stopped" in states["a"]["message"]
    assert states["b"]["state"] == "running" and states["c"]["state"] == "failed"


def test_off_on_a_public_address(tmp_path):
    app = create_app(tmp_path, discover=D.DiscoverOptions.for_host("0.0.0.0"))
    page = app.server.test_client().get("/_dash-layout").get_data(as_text=True)
    assert "Discover is off" in page and "--allow-discover" in page
    from dashboards import layout as L

    # nothing to launch with (the page's own tab switch shows the card's panel, which says why it is off)
    assert not any("discover" in k.replace(L.DISCOVER_PANEL, "") for k in app.callback_map)
    assert not hasattr(app, "discover_client") and not (tmp_path / D.HIDDEN).exists()


def test_cli_turns_discover_on_for_loopback_only(tmp_path, monkeypatch):
    import dashboards.app
    from mgm_analysis.cli import main

    seen = {}
    monkeypatch.setattr(dashboards.app, "serve", lambda root, **kw: seen.update(kw))
    runner = CliRunner()
    r = runner.invoke(main, ["dashboard", str(tmp_path)])
    assert r.exit_code == 0 and seen["discover"].enabled and seen["discover"].generator == "toyfaces"
    r = runner.invoke(main, ["dashboard", str(tmp_path), "--host", "0.0.0.0"])
    assert r.exit_code == 0 and not seen["discover"].enabled and "Discover view is off" in r.output
    r = runner.invoke(main, ["dashboard", str(tmp_path), "--host", "0.0.0.0", "--allow-discover"])
    assert r.exit_code == 0 and seen["discover"].enabled
    r = runner.invoke(main, ["dashboard", str(tmp_path), "--no-discover"])
    assert r.exit_code == 0 and seen["discover"] is None
    r = runner.invoke(main, ["dashboard", str(tmp_path), "--generator", str(tmp_path / "nope.pkl")])
    assert r.exit_code == 2 and "--generator" in r.output and len(r.output.strip().splitlines()) == 1


# ------------------------------------------------------------------ the worker's side (the generator)
@pytest.fixture(scope="module")
def G():
    from mgm_analysis.generators import load_generator

    return load_generator("toyfaces")


@pytest.mark.parametrize("config, message", [
    ({"n_frames": 2}, "--frames must be >= 3"),
    ({"layer_start": 2, "layer_end": 20}, r"outside the generator's 10 W\+ layers"),
    ({"offset": -1.0}, "--offset must be a finite number >= 0"),
    ({"distance": "cosine"}, "--distance must be l2 or lpips"),
])
def test_the_worker_checks_settings_as_mgm_discover_does(G, config, message):
    with pytest.raises(MGMError, match=message):
        D.check_job(G, {"region": "rect:18,40,47,55", "seed": 3, "config": config})


def test_the_worker_checks_an_uploaded_reference(G, tmp_path):
    bad = tmp_path / "w.npy"
    np.save(bad, np.zeros((3, 7), np.float32))
    with pytest.raises(MGMError, match=r"has shape \[3, 7\]"):
        D.check_job(G, {"region": "mouth", "seed": None, "reference": str(bad)})
    spec, cfg = D.check_job(G, {"region": "mouth", "seed": 3, "config": {"epochs": 3}})
    assert spec.region == "mouth" and cfg.epochs == 3 and cfg.offset == pytest.approx(0.023)  # mouth's own c


def test_the_strip_is_the_chains_frames_side_by_side(G):
    import torch

    from mgm_analysis.render import render_frames

    ws = G.broadcast(G.mapping(torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(1))))
    strip = np.asarray(Image.open(io.BytesIO(D._strip_png(G, ws, n=3))).convert("RGB"), np.float32) / 255
    assert strip.shape == (RES, 3 * RES, 3)
    for tile, i in enumerate((0, 2, 4)):  # evenly spaced: first, middle, last
        want = render_frames(G, ws[[i]])[0]
        assert np.abs(strip[:, tile * RES:(tile + 1) * RES] - want).max() <= 1 / 255 + 1e-6


# ------------------------------------------------------------------ the real worker (slow)
#: launches with a real worker run on the 16² test checkpoint (``ckpt``): the model does not matter to them, and a
#: search on it takes a fraction of the toyfaces one
CKPT_RES = 16
CKPT_LAUNCH = {f"{D.SHAPES}__data": [{"type": "rect", "x0": 4, "y0": 8, "x1": 12, "y1": 14}],
               f"{D.LAYERS}__value": "1:4", f"{D.FRAMES}__value": 6}


def _worker_app(root, ckpt):
    return create_app(root, discover=D.DiscoverOptions(str(ckpt), threads=1))


def _wait_final(root, job, timeout=600):
    import time

    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        st = D.job_state(root, job)
        if st.get("state") in D.FINAL:
            return st
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not end: {D.job_state(root, job)}")


@pytest.mark.slow
def test_references_from_a_seed_a_run_and_an_upload_through_the_worker(tmp_path, ckpt):
    """Launch over HTTP with a real worker: a seed's run, then a run from that run's reference and one from an
    uploaded copy of it; each lands complete with exactly that reference latent."""
    from mgm_analysis import store

    root = tmp_path / "runs"
    root.mkdir()
    app = _worker_app(root, ckpt)
    try:
        jobs = []

        def submit(ref, epochs):
            got = post(app, "discover-error.children...discover-jobs",
                       launch_values(**{**CKPT_LAUNCH, f"{D.REFERENCE}__data": ref,
                                        f"{D.EPOCHS}__value": epochs, f"{D.JOBS}__data": jobs}), f"{D.LAUNCH}.n_clicks")
            assert "discover-jobs" in got, got
            jobs.append(got["discover-jobs"]["data"][-1])
            return jobs[-1]

        def launch(ref, epochs):
            return _wait_final(root, submit(ref, epochs))

        first = launch({"seed": 5}, 1)
        assert first["state"] == "complete"
        src = store.load_run(root / first["run_id"])
        assert src.meta["seed"] == 5 and src.region == "rect"
        made = (root / first["run_id"] / "run.json").read_bytes()
        # the same settings again: the run that exists, said so (no "0/1 epochs"), nothing made again
        again = launch({"seed": 5}, 1)
        assert again["state"] == "complete" and again["run_id"] == first["run_id"] and again.get("existed")
        assert again["message"].startswith("already in the store: ")
        listed = json.dumps(D.progress_children([{**again, "progress": {"epoch": 0, "epochs": 1}}]).to_plotly_json(),
                            default=str)
        assert "already in the store" in listed and "0/1 epochs" not in listed
        assert (root / first["run_id"] / "run.json").read_bytes() == made

        # the face of that run's reference, as the page asks for it
        got = post(app, "discover-face.figure", {f"{D.INIT}.data": {"x": 1}, f"{D.REF_KIND}.value": "run",
                                                 f"{D.REF_RUN}.value": src.run_id, f"{D.SHAPES}.data": []},
                   f"{D.REF_RUN}.value")
        assert got["discover-reference"]["data"] == {"run": src.run_id}
        png = got["discover-face"]["figure"]["data"][0]["source"].split(",", 1)[1]
        face = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"), np.float32)
        scale = face.shape[0] // CKPT_RES
        assert np.abs(face[::scale, ::scale] / 255 - src.reference_img).max() <= 1 / 255 + 1e-6

        buf = io.BytesIO()
        np.save(buf, src.reference)
        up = post(app, "discover-face.figure", {f"{D.INIT}.data": {"x": 1}, f"{D.REF_KIND}.value": "upload",
                                                f"{D.UPLOAD}.contents": "data:application/octet-stream;base64,"
                                                + base64.b64encode(buf.getvalue()).decode(),
                                                f"{D.UPLOAD}.filename": "w.npy", f"{D.SHAPES}.data": []},
                  f"{D.UPLOAD}.contents")
        ref = up["discover-reference"]["data"]
        assert ref["file"].startswith(str(root / D.HIDDEN / "uploads"))
        # two launches back to back: the second waits in the queue, then runs after the first
        a, b = submit({"run": src.run_id}, 2), submit(ref, 3)
        assert D.job_state(root, b)["state"] == "queued"
        st_a, st_b = _wait_final(root, a), _wait_final(root, b)
        assert st_a["finished"] <= st_b["started"]
        from_run, from_upload = store.load_run(root / st_a["run_id"]), store.load_run(root / st_b["run_id"])
        assert np.array_equal(from_run.reference, src.reference) and from_run.meta["reference"]["seed"] is None
        assert np.array_equal(from_upload.reference, src.reference)
        assert [D.job_state(root, j)["state"] for j in jobs] == ["complete"] * 4  # the repeat included
    finally:
        app.discover_client.stop()
        D._CLIENTS.pop(next(k for k, v in D._CLIENTS.items() if v is app.discover_client))


def test_the_dashboard_process_stays_torch_free(tmp_path):
    """The page, the region checks and the launch path import no torch (the worker process does the rest)."""
    import subprocess
    import sys

    code = f"""
import json, sys
from dashboards import discover as D
D.WorkerClient.start = lambda self: None
from dashboards.app import create_app
from dashboards.synthetic import callback_body
app = create_app({str(tmp_path)!r}, discover=D.DiscoverOptions())
c = app.discover_client
c.info = {{"resolution": 64, "layout": "toyfaces", "presets": ["mouth"], "defaults": {{}}}}
c.ready.set()
client = app.server.test_client()
assert client.get("/_dash-layout").status_code == 200
values = {{"discover-shapes.data": [{{"type": "circle", "x0": 1, "y0": 1, "x1": 20, "y1": 9}},
                                    {{"type": "rect", "x0": 0, "y0": 0, "x1": 64, "y1": 64}}],
          "discover-reference.data": {{"seed": 1}}, "discover-frames.value": 16, "discover-epochs.value": 3,
          "discover-offset.value": 0.1, "discover-outside-weight.value": 1, "discover-layers.value": "2:8",
          "discover-distance.value": "l2", "discover-jobs.data": [], "discover-launch.n_clicks": 1}}
body = callback_body(app, "discover-error.children...discover-jobs", values, "discover-launch.n_clicks")
res = client.post("/_dash-update-component", json=body)
assert "covers the whole image" in res.get_data(as_text=True), res.get_data(as_text=True)
assert "torch" not in sys.modules, "torch imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
def test_cancel_keeps_an_interrupted_run_and_the_same_launch_resumes_it(tmp_path, ckpt):
    import time

    from mgm_analysis import store

    root = tmp_path / "runs"
    root.mkdir()
    app = _worker_app(root, ckpt)
    try:
        jobs = []

        def submit():
            got = post(app, "discover-error.children...discover-jobs",
                       launch_values(**{**CKPT_LAUNCH, f"{D.EPOCHS}__value": 12, f"{D.JOBS}__data": jobs}),
                       f"{D.LAUNCH}.n_clicks")
            jobs.append(got["discover-jobs"]["data"][-1])
            return jobs[-1]

        first = submit()
        t_end = time.monotonic() + 600
        while (D.job_state(root, first).get("epoch") or 0) < 1 and time.monotonic() < t_end:
            time.sleep(0.1)
        got = post(app, "discover-error.children@", {f"{D.CANCEL}.n_clicks": 1, f"{D.JOBS}.data": jobs},
                   f"{D.CANCEL}.n_clicks")
        assert got["discover-error"]["children"] == ""
        st = _wait_final(root, first)
        run = store.load_run(root / st["run_id"])
        done = run.meta["resume"]["epochs_done"]
        assert st["state"] == run.status == "interrupted" and 1 <= done < 12
        assert len(run.meta["history"]["epoch"]) == done

        st2 = _wait_final(root, submit())  # the same settings: the same run folder, continued
        again = store.load_run(root / st2["run_id"])
        assert st2["run_id"] == st["run_id"] and again.status == "complete"
        assert again.meta["resume"] == {"epochs_done": 12, "resumed": True}
        assert again.meta["history"]["epoch"] == list(range(1, 13))
    finally:
        app.discover_client.stop()
        D._CLIENTS.pop(next(k for k, v in D._CLIENTS.items() if v is app.discover_client))


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_job_and_the_next_launch_starts_a_new_one(tmp_path, ckpt):
    import os
    import signal
    import time

    root = tmp_path / "runs"
    root.mkdir()
    app = _worker_app(root, ckpt)
    client = app.discover_client
    try:
        jobs = []

        def submit(epochs):
            got = post(app, "discover-error.children...discover-jobs",
                       launch_values(**{**CKPT_LAUNCH, f"{D.EPOCHS}__value": epochs, f"{D.JOBS}__data": jobs}),
                       f"{D.LAUNCH}.n_clicks")
            jobs.append(got["discover-jobs"]["data"][-1])
            return jobs[-1]

        first = submit(40)
        t_end = time.monotonic() + 300
        while D.job_state(root, first).get("state") != "running" and time.monotonic() < t_end:
            time.sleep(0.1)
        old_pid = client.proc.pid
        os.kill(old_pid, signal.SIGKILL)  # killed outright: nothing can be saved
        st = _wait_final(root, first, timeout=60)
        assert st["state"] == "failed" and "worker stopped" in st["message"]
        assert [p.name for p in root.iterdir()] == [D.HIDDEN]  # no half-written run
        second = _wait_final(root, submit(1))  # a new worker starts for it
        assert second["state"] == "complete" and client.proc.pid != old_pid
    finally:
        client.stop()
        D._CLIENTS.pop(next(k for k, v in D._CLIENTS.items() if v is client))


def test_the_page_opens_on_browse_over_runs_and_on_discover_over_an_empty_store(tmp_path, monkeypatch):
    """Someone who came to browse sees the runs first: the page opens on the Browse tab over a store with runs,
    on Discover over an empty one (where it is how to begin) or while a search of the store runs; with Discover
    off (bound to another address) an empty store opens on Browse, the how-to.  (No worker process: the page is
    what is checked.)"""
    from _dash import find_component

    monkeypatch.setattr(D.WorkerClient, "start", lambda self: None)

    from dashboards import layout as L
    from dashboards.synthetic import make_store

    (tmp_path / "empty").mkdir()
    make_store(tmp_path / "full", 2)
    for name, want in (("empty", L.DISCOVER), ("full", L.BROWSE)):
        app = create_app(tmp_path / name, discover=D.DiscoverOptions("toyfaces"))
        page = app.server.test_client().get("/_dash-layout").get_json()
        assert find_component(page, L.TABS)["props"]["value"] == want, name
        # the card comes with a page that opens on Discover; on Browse, when the Discover tab is first shown
        launch = find_component(find_component(page, L.DISCOVER_PANEL), D.LAUNCH)
        assert (launch is not None) == (want == L.DISCOVER), name
        assert find_component(page, L.DISCOVER_MOUNTED)["props"]["data"] == (want == L.DISCOVER), name
        mount = f"{L.DISCOVER_PANEL}.children"
        got = post(app, mount, {f"{L.TABS}.value": L.DISCOVER, f"{L.DISCOVER_MOUNTED}.data": launch is not None},
                   f"{L.TABS}.value")
        if launch is None:
            assert find_component(got[L.DISCOVER_PANEL]["children"], D.LAUNCH) is not None
            assert got[L.DISCOVER_MOUNTED]["data"] is True
            assert post(app, mount, {f"{L.TABS}.value": L.BROWSE, f"{L.DISCOVER_MOUNTED}.data": False},
                        f"{L.TABS}.value") is None  # not before the tab is shown
        else:
            assert got is None  # already in the page
    # a search of the store is running: a reloaded page opens the card to follow it
    from dashboards.discover.protocol import new_job_id

    job = tmp_path / "full" / D.HIDDEN / "jobs" / new_job_id()
    job.mkdir(parents=True)
    (job / "status.json").write_text(json.dumps({"state": "running", "worker": os.getpid()}))
    app = create_app(tmp_path / "full", discover=D.DiscoverOptions("toyfaces"))
    page = app.server.test_client().get("/_dash-layout").get_json()
    assert find_component(page, L.TABS)["props"]["value"] == L.DISCOVER
    off = D.DiscoverOptions.for_host("0.0.0.0")
    page = create_app(tmp_path / "empty", discover=off).server.test_client().get("/_dash-layout").get_json()
    assert find_component(page, L.TABS)["props"]["value"] == L.BROWSE



def test_the_end_of_a_dead_worker_leaves_the_next_worker_alone(tmp_path):
    """A launch right after a worker died starts the next one; the dead one's reader, finishing later, must not
    mark the new worker as failed to start nor wake the requests sent to it (under load the launch was refused
    with "the worker stopped while starting")."""
    import subprocess
    import threading

    from dashboards.discover.client import WorkerClient

    client = WorkerClient(tmp_path, D.DiscoverOptions("unused.pt"))
    old = subprocess.Popen(["true"], stdout=subprocess.PIPE)
    old.wait()
    new = subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        client.proc = new  # the next worker, started by a launch, still loading its generator
        to_old, to_new = (threading.Event(), {}), (threading.Event(), {})
        client.pending.update({1: (*to_old, old), 2: (*to_new, new)})
        client._read(old)  # what the dead worker's reader thread does last
        assert client.info is None and not client.ready.is_set()
        assert not to_new[0].is_set() and to_new[1] == {}
        assert to_old[0].is_set() and to_old[1]["error"] == "the worker stopped; try again"
        client.proc = old  # the dead worker still the current one: its end is said
        client._read(old)
        assert client.ready.is_set() and "stopped while starting" in client.info["error"]
    finally:
        new.kill()
        new.wait()
