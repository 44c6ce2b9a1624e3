"""Hostile requests to the dashboard: every malformed callback payload and every odd path gets an answer that
is not a server error, and a bad value leaves the view as it was (HTTP 204, Dash's "no update").

Requests go to the real Flask app (``app.server.test_client()``), built the way the browser's are
(:func:`dashboards.synthetic.callback_body`), then spoiled one field at a time.
"""

import copy
import json
import shutil

import pytest

from dashboards import layout as L
from dashboards.app import callback_body_problem, create_app
from dashboards.synthetic import callback_body, make_store

ROUTE = "/_dash-update-component"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    ids = make_store(root, 3)
    return root, ids


@pytest.fixture(scope="module")
def app(store):
    return create_app(store[0])


def _post(app, body):
    return app.server.test_client().post(ROUTE, json=body)


def _good_values(ids):
    frame = {"run_id": ids[0], "frame": 1}
    return {
        f"{L.SELECTION}.data": ids, f"{L.DRAWN}.data": ids, f"{L.METHOD}.value": "pca", f"{L.DIMS}.value": 2,
        f"{L.SPACE}.value": "w_free", f"{L.RELATIVE}.value": [], f"{L.FRAME}.data": frame,
        f"{L.SLIDER}.value": 1, f"{L.VIEWER_RUN}.value": ids[0], f"{L.VIEWER_RUN}.search_value": "mouth",
        f"{L.OVERLAP_K}.value": 3, f"{L.TABS}.value": L.COMPARE, f"{L.COMPARE_MOUNTED}.data": False,
        f"{L.METRICS_PICK}.value": ["locality"], f"{L.PLAY}.n_clicks": 1,
        f"{L.TABLE}.selected_row_ids": ids[:1], f"{L.TABLE}.data": [{"id": ids[0]}, {"id": ids[1]}],
        f"{L.TICKED}.data": ids[:1], f"{L.TABLE}.filter_query": "", f"{L.TABLE}.page_current": 0,
        f"{L.TABLE}.sort_by": [],
        f"{L.CLICK}.data": {"points": [{"customdata": [ids[1], 2]}]},
        f"{L.HOVER}.data": {"points": [{"customdata": [ids[1], 2], "bbox": {"x0": 1, "x1": 2,
                                                                              "y0": 3, "y1": 4}}]},
    }


#: (output of the callback, the "id.prop" spoiled, the bad value, the trigger)
BAD_VALUES = [
    (f"{L.PROJECTION_NOTE}.children", f"{L.DIMS}.value", "abc", L.DIMS),
    (f"{L.PROJECTION_NOTE}.children", f"{L.DIMS}.value", 7, L.DIMS),
    (f"{L.PROJECTION_NOTE}.children", f"{L.DIMS}.value", 2.5, L.DIMS),
    (f"{L.PROJECTION_NOTE}.children", f"{L.DIMS}.value", True, L.DIMS),
    (f"{L.PROJECTION_NOTE}.children", f"{L.METHOD}.value", "tsne", L.METHOD),
    (f"{L.PROJECTION_NOTE}.children", f"{L.METHOD}.value", ["pca"], L.METHOD),
    (f"{L.PROJECTION_NOTE}.children", f"{L.SPACE}.value", {"a": 1}, L.SPACE),
    (f"{L.PROJECTION_NOTE}.children", f"{L.RELATIVE}.value", "yes", L.RELATIVE),
    (f"{L.PROJECTION_NOTE}.children", f"{L.SELECTION}.data", "abc", L.SELECTION),
    (f"{L.PROJECTION_NOTE}.children", f"{L.SELECTION}.data", [1, 2], L.SELECTION),
    (f"{L.PROJECTION_NOTE}.children", f"{L.SELECTION}.data", [["x"]], L.SELECTION),
    (f"{L.PROJECTION_NOTE}.children", f"{L.SELECTION}.data", {"a": "b"}, L.SELECTION),
    (f"{L.VIEWER}.figure", f"{L.FRAME}.data", "abc", L.FRAME),
    (f"{L.VIEWER}.figure", f"{L.FRAME}.data", {"run_id": 5, "frame": 0}, L.FRAME),
    (f"{L.VIEWER}.figure", f"{L.FRAME}.data", {"run_id": "x", "frame": "abc"}, L.FRAME),
    (f"{L.VIEWER}.figure", f"{L.FRAME}.data", {"run_id": "x", "frame": -3}, L.FRAME),
    (f"{L.VIEWER}.figure", f"{L.FRAME}.data", {"run_id": "x", "frame": 1e300}, L.FRAME),
    (f"{L.VIEWER}.figure", f"{L.FRAME}.data", [1, 2], L.FRAME),
    (f"{L.FRAME}.data", f"{L.SLIDER}.value", "abc", L.SLIDER),
    (f"{L.FRAME}.data", f"{L.SLIDER}.value", [3], L.SLIDER),
    (f"{L.FRAME}.data", f"{L.VIEWER_RUN}.value", 17, L.VIEWER_RUN),
    (f"{L.FRAME}.data", f"{L.FRAME}.data", {"run_id": None}, L.SLIDER),
    (f"{L.FRAME}.data", f"{L.DRAWN}.data", "abc", L.DRAWN),
    (f"{L.PLAY}.children", f"{L.PLAY}.n_clicks", "abc", L.PLAY),
    (f"{L.PLAY}.children", f"{L.PLAY}.n_clicks", -1, L.PLAY),
    (f"{L.PLAY}.children", f"{L.PLAY}.n_clicks", 1.5, L.PLAY),
    (f"{L.OVERLAP}.figure", f"{L.OVERLAP_K}.value", "abc", L.OVERLAP_K),
    (f"{L.OVERLAP}.figure", f"{L.OVERLAP_K}.value", 0, L.OVERLAP_K),
    (f"{L.OVERLAP}.figure", f"{L.OVERLAP_K}.value", 10**12, L.OVERLAP_K),
    (f"{L.METRIC_BARS}.figure", f"{L.METRICS_PICK}.value", "locality", L.METRICS_PICK),
    (f"{L.METRIC_BARS}.figure", f"{L.METRICS_PICK}.value", [None], L.METRICS_PICK),
    (f"{L.METRIC_BARS}.figure", f"{L.DRAWN}.data", [3.5], L.DRAWN),
    (f"{L.LAYERS}.figure", f"{L.DRAWN}.data", "abc", L.DRAWN),
    (f"{L.DERIVED}.figure", f"{L.DRAWN}.data", [{"x": 1}], L.DRAWN),
    (f"{L.SELECTION}.data", f"{L.TICKED}.data", "abc", L.TICKED),
    (f"{L.SELECTION}.data", f"{L.TICKED}.data", [[1]], L.TICKED),
    (f"{L.SELECTION}.data", f"{L.TABLE}.filter_query", 5, L.TABLE),
    (f"{L.TICKED}.data", f"{L.TABLE}.selected_row_ids", "abc", L.TABLE),
    (f"{L.TICKED}.data", f"{L.TABLE}.selected_row_ids", [1], L.TABLE),
    (f"{L.TICKED}.data", f"{L.TABLE}.data", "abc", L.TABLE),
    (f"{L.TICKED}.data@", f"{L.TABLE}.filter_query", ["x"], L.TICK_ALL),
    (f"{L.TABLE}.page_count", f"{L.TABLE}.page_current", "abc", L.TABLE),
    (f"{L.TABLE}.page_count", f"{L.TABLE}.page_current", -1, L.TABLE),
    (f"{L.TABLE}.page_count", f"{L.TABLE}.sort_by", "locality", L.TABLE),
    (f"{L.TABLE}.page_count", f"{L.TICKED}.data", [3], L.TICKED),
    (f"{L.VIEWER_RUN}.options@", f"{L.VIEWER_RUN}.search_value", 17, L.VIEWER_RUN),
    (f"{L.VIEWER_RUN}.options@", f"{L.VIEWER_RUN}.search_value", ["mouth"], L.VIEWER_RUN),
    (f"{L.VIEWER_RUN}.options@", f"{L.DRAWN}.data", "abc", L.VIEWER_RUN),
    (f"{L.COMPARE_GRAPHS}.children", f"{L.TABS}.value", L.BROWSE, L.TABS),
    (f"{L.COMPARE_GRAPHS}.children", f"{L.COMPARE_MOUNTED}.data", True, L.TABS),
]


@pytest.mark.parametrize("output, prop, bad, trigger", BAD_VALUES, ids=[f"{p}={b!r}" for _, p, b, _ in BAD_VALUES])
def test_a_bad_value_leaves_the_view_as_it_was(app, store, output, prop, bad, trigger):
    values = _good_values(store[1])
    good = _post(app, callback_body(app, output, values, f"{trigger}.x"))
    assert good.status_code in (200, 204), good.data[:300]
    values[prop] = bad
    res = _post(app, callback_body(app, output, values, f"{trigger}.x"))
    assert res.status_code == 204, (res.status_code, res.data[:300])


#: events of plotly's graphs that carry no usable point: the tooltip hides or the view stays
BAD_EVENTS = ["abc", 5, [], {"points": "abc"}, {"points": []}, {"points": [5]}, {"points": [{"customdata": "ab"}]},
              {"points": [{"customdata": ["r", "abc"]}]}, {"points": [{"customdata": ["r", 1.5]}]},
              {"points": [{"customdata": [3, 1]}]}, {"points": [{"customdata": ["r", None]}]},
              {"points": [{"customdata": ["r", -1]}]}, {"points": [{"customdata": ["r", 2], "bbox": "abc"}]}]


@pytest.mark.parametrize("event", BAD_EVENTS, ids=[json.dumps(e) for e in BAD_EVENTS])
def test_malformed_click_and_hover_data(app, store, event):
    values = _good_values(store[1])
    values[f"{L.HOVER}.data"] = event
    res = _post(app, callback_body(app, f"{L.TOOLTIP}.show", values, f"{L.HOVER}.data"))
    assert res.status_code in (200, 204), res.data[:300]
    if res.status_code == 200 and not (isinstance(event, dict) and "bbox" in json.dumps(event)):
        shown = res.get_json()["response"][L.TOOLTIP]["show"]
        assert shown is False  # no point: no tooltip
    values = _good_values(store[1])
    values[f"{L.CLICK}.data"] = event
    res = _post(app, callback_body(app, f"{L.FRAME}.data", values, f"{L.CLICK}.data"))
    assert res.status_code in (200, 204), res.data[:300]
    if res.status_code == 200:  # the frame on show stays the current one
        assert L.FRAME not in res.get_json()["response"]


def _spoiled_bodies(app, ids):
    body = callback_body(app, f"{L.PROJECTION_NOTE}.children", _good_values(ids), f"{L.METHOD}.value")
    out = [None, 5, "abc", [], [body], {}, {"output": 5}, {"output": "nope.children"}]
    for key, val in [("inputs", "abc"), ("inputs", [1, 2]), ("inputs", []), ("inputs", body["inputs"][:-1]),
                     ("state", 7), ("state", [{"id": "x", "property": "y"}]), ("outputs", "abc"), ("outputs", []),
                     ("outputs", [5]), ("changedPropIds", "abc"), ("changedPropIds", [5])]:
        b = copy.deepcopy(body)
        b[key] = val
        out.append(b)
    b = copy.deepcopy(body)
    b["inputs"][0] = {"id": b["inputs"][0]["id"], "property": "other", "value": 1}
    out.append(b)
    b = copy.deepcopy(body)
    del b["outputs"]
    out.append(b)
    return out


def test_malformed_request_bodies_answer_400(app, store):
    client = app.server.test_client()
    bodies = _spoiled_bodies(app, store[1])
    assert len(bodies) == 21
    for b in bodies:
        res = client.post(ROUTE, json=b)
        assert res.status_code == 400, (b if not isinstance(b, dict) else {k: b[k] for k in list(b)[:3]}, res.status_code)
        assert callback_body_problem(app, b) is not None
    for raw in (b"{not json", b"", b"\xff\xfe", b"[" * 100_000, b'{"output": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        res = client.post(ROUTE, data=raw, content_type="application/json")
        assert res.status_code == 400, (raw[:20], res.status_code)
    # and the untouched body is still served
    body = callback_body(app, f"{L.PROJECTION_NOTE}.children", _good_values(store[1]), f"{L.METHOD}.value")
    assert callback_body_problem(app, body) is None and client.post(ROUTE, json=body).status_code == 200


def test_path_like_urls_that_are_not_run_files_are_404(app, store):
    root, ids = store
    client = app.server.test_client()
    assert client.get(f"/runs/{ids[0]}/frames/000.png").status_code == 200
    for url in ["/runs", "/runs/", f"/runs/{ids[0]}", f"/runs/{ids[0]}/", f"/runs/{ids[0]}/nope.png",
                f"/runs/{'x' * 5000}/run.json", f"/runs/{ids[0]}/{'y' * 5000}.png",
                f"/runs/{ids[0]}/{'/'.join(['d' * 255] * 30)}", "/runs/%00/run.json", f"/runs/{ids[0]}/%00",
                f"/runs/{ids[0]}/../../etc/passwd", "/runs/..%2f..%2fetc/passwd", "/etc/passwd", "/x" * 3000,
                f"/{'z' * 5000}", "/runs/.mgm_cache/x", f"/runs/{ids[0]}/frames"]:
        res = client.get(url)
        assert res.status_code == 404, (url[:80], res.status_code)
    assert client.get("/").status_code == 200


def test_a_bad_run_appearing_while_the_dashboard_runs(app, store, tmp_path):
    """/_dash-layout lists the good runs and names the bad one; no server error."""
    root, ids = store
    client = app.server.test_client()
    assert client.get("/_dash-layout").status_code == 200
    bad = root / "zz-bad"
    try:
        for text in ('{"run_id": "zz-bad", "status": "complete", "region": "mouth", "generator": {}, "config": {}}',
                     "{ not json", "[1, 2]", '{"run_id": ' + "[" * 100_000, "\x00\xff"):
            shutil.rmtree(bad, ignore_errors=True)
            shutil.copytree(root / ids[0], bad)
            (bad / "run.json").write_text(text, errors="surrogateescape")
            res = client.get("/_dash-layout")
            assert res.status_code == 200, (text[:30], res.status_code)
            page = json.dumps(res.get_json())
            assert "zz-bad" in page and all(i in page for i in ids)
    finally:
        shutil.rmtree(bad, ignore_errors=True)


HOSTILE = ["abc", "", -1, 2.5, 1e300, True, None, [[1]], [None], [1, "x"], {"a": 1}, {"run_id": 3, "frame": "x"},
           {"points": [{"customdata": [None, "abc"]}]}]


def test_every_callback_survives_any_value_in_any_input(app, store):
    """Each server callback, each of its inputs and states in turn set to each hostile value: never a 500."""
    client = app.server.test_client()
    good = _good_values(store[1])
    posted = 0
    for key, spec in app.callback_map.items():
        if "callback" not in spec:  # clientside: runs in the browser
            continue
        deps = [f"{d['id']}.{d['property']}" for d in spec["inputs"] + spec["state"]]
        for dep in deps:
            for bad in HOSTILE:
                values = {**good, dep: bad}
                body = callback_body(app, key, values, dep)
                res = client.post(ROUTE, json=body)
                posted += 1
                assert res.status_code in (200, 204), (key[:60], dep, bad, res.status_code, res.data[:200])
    assert posted >= 300
