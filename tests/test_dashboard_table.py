"""The run table paged, filtered and sorted on the server (dashboards/table.py): the filter language the header
writes, a page against the filter computed here, ticks kept across pages, *tick all filtered*."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboards import data
from dashboards import layout as L
from dashboards import table as T
from dashboards.app import create_app
from dashboards.synthetic import callback_body, make_store


def _cat() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": [f"r{i:02d}" for i in range(8)],
        "region": ["mouth", "Mouth", "eyes", "brows", "mouth-left", None, "eyes", "brows"],
        "status": ["complete", "complete", "failed", "complete", "complete", "complete", "running", "complete"],
        "locality": [0.9, 0.5, np.nan, 0.81, 0.2, 0.95, 0.7, 0.8],
        "n_frames": [8, 8, 4, 8, 8, 8, 2, 8],
    })


def test_parse_filter_reads_what_the_header_writes():
    q = '{region} icontains mouth && {locality} > 0.8 && {status} != "complete" && {n_frames} s= 8 && {x} is blank'
    assert T.parse_filter(q) == [("region", "contains", "mouth", False), ("locality", ">", "0.8", False),
                                 ("status", "!=", "complete", False), ("n_frames", "=", "8", True),
                                 ("x", "blank", None, False)]
    assert T.parse_filter("{region} ge 'b c'") == [("region", ">=", "b c", False)]
    assert T.parse_filter("") == [] and T.parse_filter(None) == [] and T.parse_filter(5) == []
    assert T.parse_filter("nonsense && {region}") == []  # unreadable terms are left out


@pytest.mark.parametrize("query, expected", [
    ("{region} icontains mouth", lambda c: c["region"].fillna("").str.lower().str.contains("mouth")),
    ("{region} scontains Mouth", lambda c: c["region"].fillna("").str.contains("Mouth")),
    ("{region} contains MOUTH", lambda c: c["region"].fillna("").str.lower().str.contains("mouth")),
    ("{locality} > 0.8", lambda c: c["locality"] > 0.8),
    ("{locality} <= 0.8", lambda c: c["locality"] <= 0.8),
    ("{n_frames} = 8", lambda c: c["n_frames"] == 8),
    ("{status} != complete", lambda c: c["status"] != "complete"),
    ("{region} = eyes && {status} = running", lambda c: (c["region"] == "eyes") & (c["status"] == "running")),
    ("{region} is blank", lambda c: c["region"].isna()),
    ("{locality} contains 0.8", lambda c: c["run_id"] != c["run_id"]),      # contains is for text: no number
    ("{nope} > 1", lambda c: c["run_id"] == c["run_id"]),                   # an unknown column: ignored
])
def test_filter_mask_against_pandas(query, expected):
    cat = _cat()
    want = expected(cat).fillna(False).to_numpy(dtype=bool)
    assert T.filter_mask(cat, query).tolist() == want.tolist()


def test_sort_rows_puts_empty_cells_last_and_keeps_ties_in_order():
    cat = _cat()
    got = T.sort_rows(cat, [{"column_id": "locality", "direction": "desc"}])["run_id"].tolist()
    assert got == ["r05", "r00", "r03", "r07", "r06", "r01", "r04", "r02"]
    assert T.sort_rows(cat, [{"column_id": "nope", "direction": "asc"}]) is cat
    assert T.sort_rows(cat, "x") is cat


# ------------------------------------------------------------------- over HTTP
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    return root, sorted(make_store(root, 30, n_frames=2))


def _call(app, output, values, trigger):
    res = app.server.test_client().post("/_dash-update-component", json=callback_body(app, output, values, trigger))
    return None if res.status_code == 204 else json.loads(res.data)["response"]


def test_a_page_is_the_filter_and_sort_computed_here(store):
    """Every page of the table, filtered and sorted on the server, against the same rows picked by pandas here;
    the page the layout sends is the first page of the unfiltered table, and no more."""
    root, ids = store
    app = create_app(root)
    cat = data.snapshot(root).catalog
    low = float(cat["locality"].quantile(0.1))
    want = cat[(cat["region"] != "eyes") & (cat["locality"] > low)]
    want = want.sort_values("locality", ascending=False, kind="stable")["run_id"].tolist()
    assert L.PAGE_SIZE < len(want) < len(ids)  # more than one page, fewer than every run
    query = f"{{region}} != eyes && {{locality}} > {low!r}"
    shown, pages = [], -(-len(want) // L.PAGE_SIZE)
    for page in range(pages):
        out = _call(app, "..run-table.data", {
            "run-table.page_current": page, "run-table.filter_query": query, "ticked.data": [want[-1], want[1]],
            "run-table.sort_by": [{"column_id": "locality", "direction": "desc"}]}, "run-table.page_current")
        rows = out["run-table"]["data"]
        assert out["run-table"]["page_count"] == pages and len(rows) <= L.PAGE_SIZE
        shown += [r["id"] for r in rows]
        if page == 0:  # the ticked run on this page is ticked in it, the one on the last page is not
            assert out["run-table"]["selected_row_ids"] == [want[1]] and out["run-table"]["selected_rows"] == [1]
    assert shown == want
    # past the last page: the first page, and the table is told so
    out = _call(app, "..run-table.data", {"run-table.page_current": 99, "run-table.filter_query": query,
                                          "ticked.data": []}, "run-table.page_current")
    assert out["run-table"]["page_current"] == 0 and [r["id"] for r in out["run-table"]["data"]] == \
        sorted(want)[:L.PAGE_SIZE]
    layout = json.dumps(app.server.test_client().get("/_dash-layout").get_json())
    assert sum(f'"id": "{r}"' in layout for r in ids) == L.PAGE_SIZE  # one page of rows in the page


def test_ticks_stay_across_pages_and_tick_all_ticks_the_filtered_rows(store):
    root, ids = store
    app = create_app(root)
    page1 = [{"id": r} for r in ids[L.PAGE_SIZE:2 * L.PAGE_SIZE]]
    # a run ticked on page 0, then one ticked on page 1: both stay ticked
    out = _call(app, "ticked.data", {"run-table.selected_row_ids": [page1[2]["id"]], "run-table.data": page1,
                                     "ticked.data": [ids[0]]}, "run-table.selected_row_ids")
    assert out["ticked"]["data"] == [ids[0], page1[2]["id"]]
    # unticking it on page 1 leaves page 0's tick
    out = _call(app, "ticked.data", {"run-table.selected_row_ids": [], "run-table.data": page1,
                                     "ticked.data": [ids[0], page1[2]["id"]]}, "run-table.selected_row_ids")
    assert out["ticked"]["data"] == [ids[0]]
    # the table told the ticks of its page (no change): nothing sent back
    assert _call(app, "ticked.data", {"run-table.selected_row_ids": [], "run-table.data": page1,
                                      "ticked.data": [ids[0]]}, "run-table.selected_row_ids") in (None, {})
    out = _call(app, "ticked.data@", {"run-table.filter_query": "{region} icontains eyes"}, "tick-filtered.n_clicks")
    eyes = [r for r in ids if data.snapshot(root).runs[r].region == "eyes"]
    assert sorted(out["ticked"]["data"]) == eyes and len(eyes) > L.PAGE_SIZE // 2
    out = _call(app, "ticked.data@", {"run-table.filter_query": "{region} icontains eyes"}, "clear-selection.n_clicks")
    assert out["ticked"]["data"] == []
    # the selection: ticked rows that pass the filter, or every filtered row without ticks
    sel = _call(app, "selection.data", {"ticked.data": [eyes[0], ids[0]], "run-table.filter_query": "{region} = eyes"},
                "ticked.data")
    assert sel["selection"]["data"] == [eyes[0]]
    sel = _call(app, "selection.data", {"ticked.data": [], "run-table.filter_query": "{region} = eyes"},
                "run-table.filter_query")
    assert sel["selection"]["data"] == eyes
