"""The run table's rows, computed on the server: filtered, sorted and cut into pages.

The run table pages, filters and sorts on the server (``page_action``, ``filter_action`` and ``sort_action``
"custom"), so a page load and every page turn send one page of rows, not the whole store (10 000 runs: about
5 MB).  The table's header still writes its ``filter_query`` as Dash writes it; :func:`parse_filter` reads the
part of that language the header writes — ``{column} OPERATOR value`` terms joined by ``&&``, where the
operator is ``contains``, ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (or their names ``eq``, ``ne``, ``lt``, ``le``,
``gt``, ``ge``), optionally prefixed ``i`` (case-insensitive, the table's default) or ``s`` (case-sensitive),
and ``is blank`` / ``is not blank``.  A term it cannot read, or one on a column the table has not, is ignored
(the table's native filter ignores an invalid query the same way).  Semantics follow the native filter: a
number compared with a number numerically, text with text (case per the operator), ``contains`` on text.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from dash import Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from . import layout as L
from . import memo

__all__ = ["parse_filter", "filter_mask", "filtered", "sort_rows", "page_of", "filtered_ids", "register_table_callbacks"]

_OPS = {"=": "=", "eq": "=", "!=": "!=", "ne": "!=", "<": "<", "lt": "<", "<=": "<=", "le": "<=", ">": ">",
        "gt": ">", ">=": ">=", "ge": ">=", "contains": "contains"}
_TERM = re.compile(
    r"""^\s*\{(?P<col>[^{}]+)\}\s+
        (?:(?P<unary>is\s+(?:not\s+)?blank)
          |(?P<case>[is])?(?P<op>contains|eq|ne|lt|le|gt|ge|>=|<=|!=|=|<|>)\s*(?P<value>.*?))\s*$""",
    re.X | re.I)


def _unquote(value: str) -> str:
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'`":
        return v[1:-1].replace("\\" + v[0], v[0])
    return v


def parse_filter(query) -> list[tuple[str, str, object, bool]]:
    """The terms of a ``filter_query``: (column, operator, value, case_sensitive); operator one of ``=``, ``!=``,
    ``<``, ``<=``, ``>``, ``>=``, ``contains``, ``blank``, ``not blank``.  Terms it cannot read are left out."""
    if not isinstance(query, str) or not query.strip():
        return []
    terms = []
    for part in query.split("&&"):
        m = _TERM.match(part)
        if not m:
            continue
        col = m.group("col").strip()
        if m.group("unary"):
            terms.append((col, "not blank" if "not" in m.group("unary").lower() else "blank", None, False))
            continue
        value = _unquote(m.group("value"))
        if value == "":
            continue
        terms.append((col, _OPS[m.group("op").lower()], value, (m.group("case") or "i").lower() == "s"))
    return terms


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _term_mask(col: pd.Series, op: str, value, case: bool) -> np.ndarray:
    blank = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    if op == "blank":
        return blank
    if op == "not blank":
        return ~blank
    num = _number(value)
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        if op == "contains" or num is None:  # the native filter: contains is for text; a word matches no number
            return np.zeros(len(col), bool)
        x = col.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            out = {"=": x == num, "!=": x != num, "<": x < num, "<=": x <= num, ">": x > num, ">=": x >= num}[op]
        return out & ~np.isnan(x)
    text = col.astype(object).where(col.notna(), None)
    s = text.map(lambda v: None if v is None else str(v))
    v = str(value)
    if not case:
        s, v = s.str.upper(), v.upper()
    if op == "contains":
        return s.str.contains(v, regex=False, na=False).to_numpy(dtype=bool)
    ok = s.notna().to_numpy()
    arr = s.fillna("").to_numpy(dtype=object)
    res = {"=": arr == v, "!=": arr != v, "<": arr < v, "<=": arr <= v, ">": arr > v, ">=": arr >= v}[op]
    return np.asarray(res, dtype=bool) & ok


def filter_mask(cat: pd.DataFrame, query) -> np.ndarray:
    """Which rows of ``cat`` pass ``query`` (a boolean array, every row for an empty query)."""
    mask = np.ones(len(cat), bool)
    for col, op, value, case in parse_filter(query):
        if col in cat.columns:
            mask &= _term_mask(cat[col], op, value, case)
    return mask


def filtered(cat: pd.DataFrame, query) -> pd.DataFrame:
    """The rows of ``cat`` that pass ``query``, in their order."""
    return cat[filter_mask(cat, query)] if len(cat) else cat


def sort_rows(df: pd.DataFrame, sort_by) -> pd.DataFrame:
    """``df`` sorted by the table's ``sort_by`` ([{"column_id", "direction": "asc"|"desc"}], the first the primary
    key), empty cells last, ties in the given order; unknown columns are ignored."""
    keys = [s for s in (sort_by or []) if isinstance(s, dict) and s.get("column_id") in df.columns]
    if not keys or not len(df):
        return df
    return df.sort_values([s["column_id"] for s in keys], ascending=[s.get("direction") != "desc" for s in keys],
                          kind="stable", na_position="last")


def page_of(cat: pd.DataFrame, query, sort_by, page: int, size: int) -> tuple[pd.DataFrame, int, int]:
    """(the rows of page ``page`` of the filtered, sorted table, the number of pages (at least 1), the page shown:
    ``page`` or, past the last one, the first)."""
    rows = sort_rows(filtered(cat, query), sort_by)
    count = max(1, -(-len(rows) // size))
    page = page if 0 <= page < count else 0
    return rows.iloc[page * size:(page + 1) * size], count, page


def filtered_ids(snap, query) -> list[str]:
    """The run ids of the rows of ``snap``'s table that pass ``query``, in the catalog's order (kept per store
    state and query: every tick and every selection asks for them)."""
    cat = snap.catalog
    if not len(cat):
        return []
    query = query if isinstance(query, str) else ""
    return memo.built((str(snap.root), snap.signature, "filtered-ids", query),
                      lambda: cat["run_id"][filter_mask(cat, query)].tolist())


def valid_names(value) -> list[str]:
    """A list of names from the browser (run ids, metric columns); None is none; anything else raises
    PreventUpdate and leaves the view as it was.  The one check of such lists (the callbacks use it too)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PreventUpdate
    return value


def _query(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PreventUpdate
    return value


def register_table_callbacks(app, snap, selection_from_table) -> None:
    """The run table's callbacks: its page of rows, the ticked runs across pages (:data:`layout.TICKED`; the table
    itself knows only the ticks of the page it shows), *tick all filtered* / *clear ticks*, and the selection
    (``selection_from_table`` of the ticks and the filtered rows).  ``snap()``: the store now."""

    @app.callback(Output(L.TABLE, "data"), Output(L.TABLE, "page_count"), Output(L.TABLE, "page_current"),
                  Output(L.TABLE, "selected_rows"), Output(L.TABLE, "selected_row_ids"),
                  Input(L.TABLE, "page_current"), Input(L.TABLE, "filter_query"), Input(L.TABLE, "sort_by"),
                  Input(L.TICKED, "data"), prevent_initial_call=True)
    def table_page(page, query, sort_by, ticked):
        if page is None:
            page = 0
        if not isinstance(page, int) or isinstance(page, bool) or page < 0:
            raise PreventUpdate
        if sort_by is not None and not (isinstance(sort_by, list) and all(isinstance(s, dict) for s in sort_by)):
            raise PreventUpdate
        ticked = set(valid_names(ticked))
        rows, count, shown = page_of(snap().catalog, _query(query), sort_by, page, L.PAGE_SIZE)
        recs = L.table_records(rows)
        on_page = [i for i, r in enumerate(recs) if r["id"] in ticked]
        return recs, count, shown if shown != page else no_update, on_page, [recs[i]["id"] for i in on_page]

    @app.callback(Output(L.TICKED, "data"), Input(L.TABLE, "selected_row_ids"), State(L.TABLE, "data"),
                  State(L.TICKED, "data"), prevent_initial_call=True)
    def ticks_from_table(page_ticked, rows, ticked):
        # a click ticks or unticks a row of the page shown: the ticks of the other pages stay
        page_ticked, ticked = valid_names(page_ticked), valid_names(ticked)
        if not isinstance(rows, list):
            raise PreventUpdate
        on_page = {r.get("id") for r in rows if isinstance(r, dict)}
        kept = [r for r in ticked if r not in on_page]
        now = kept + [r for r in dict.fromkeys(page_ticked) if r in on_page]
        return no_update if set(now) == set(ticked) else now

    @app.callback(Output(L.TICKED, "data", allow_duplicate=True), Input(L.TICK_ALL, "n_clicks"),
                  Input(L.CLEAR, "n_clicks"), State(L.TABLE, "filter_query"), prevent_initial_call=True)
    def tick_rows(_tick, _clear, query):
        if ctx.triggered_id == L.CLEAR:
            return []
        return filtered_ids(snap(), _query(query))

    # Not called on page load: the page starts with every run selected (layout), which is what the table gives
    # until it is ticked or filtered.
    @app.callback(Output(L.SELECTION, "data"), Input(L.TICKED, "data"), Input(L.TABLE, "filter_query"),
                  State(L.SELECTION, "data"), prevent_initial_call=True)
    def select(ticked, query, previous):
        s = snap()
        chosen = selection_from_table(valid_names(ticked), filtered_ids(s, _query(query)), s.runs)
        return no_update if chosen == previous else chosen
