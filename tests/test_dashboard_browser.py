"""The dashboard in a real browser (headless Chromium through dash[testing]'s ``dash_duo``).

Run with ``pytest --headless tests/test_dashboard_browser.py`` (needs Debian's
chromium and chromium-driver).  One test walks through the page on a small
synthetic store: it loads, selecting runs changes the projection's traces,
hovering a point shows that frame's thumbnail, clicking it shows that frame,
play advances frames, the region-comparison figures render, the console stays
clean, and a screenshot lands in $MGM_ARTIFACTS (default ``artifacts/``).
"""

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

if shutil.which("chromedriver") is None:  # pragma: no cover - CI installs it
    pytest.skip("chromedriver is not installed (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402

from dashboards import layout as L  # noqa: E402
from dashboards.app import create_app  # noqa: E402
from dashboards.synthetic import make_store  # noqa: E402
from mgm_analysis.analysis.projection import project  # noqa: E402
from mgm_analysis.store import load_run  # noqa: E402

TIMEOUT = 30  # seconds; CI machines are slow and shared


def _artifacts() -> Path:
    out = Path(os.environ.get("MGM_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _graph_data(dash_duo, graph_id):
    """The traces Plotly is drawing in a dcc.Graph, as the browser holds them ([] before the first draw); ``runs``:
    the run ids of a projection trace's points (customdata [run index, frame] into the trace's meta)."""
    return dash_duo.driver.execute_script(
        "const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return g && g.data ? g.data.map(t => ({name: t.name || null, type: t.type, "
        "runs: Array.isArray(t.customdata) && Array.isArray(t.meta) ? "
        "[...new Set(t.customdata.filter(c => c).map(c => t.meta[c[0]]))] : []}))"
        " : [];", f"#{graph_id}")


def _wait(dash_duo, cond, what):
    """Wait for ``cond``; on a time-out leave a screenshot in the artifacts folder for the post-mortem."""
    from dash.testing.errors import TestingTimeoutError
    from dash.testing.wait import until

    try:
        until(cond, timeout=TIMEOUT, msg=f"timed out waiting for {what}")
    except TestingTimeoutError:
        dash_duo.driver.save_screenshot(str(_artifacts() / "dashboard-timeout.png"))
        raise


def _text(dash_duo, selector):
    return dash_duo.find_element(selector).text


def _tab(dash_duo, tab):
    """Click a tab (Browse, Discover, Compare) and wait for its panel to show."""
    panel = {L.BROWSE: L.BROWSE_PANEL, L.COMPARE: L.COMPARE_PANEL, L.DISCOVER: L.DISCOVER_PANEL}[tab]
    dash_duo.find_element(f"#tab-{tab}").click()
    _wait(dash_duo, lambda: dash_duo.driver.execute_script(  # its own style (an empty store hides the views)
        "return document.getElementById(arguments[0]).style.display !== 'none';", panel), f"the {tab} tab")


def _shown_panels(dash_duo):
    return [p for p in (L.BROWSE_PANEL, L.DISCOVER_PANEL, L.COMPARE_PANEL)
            if dash_duo.find_element(f"#{p}").is_displayed()]


def test_dashboard_in_a_browser(dash_duo, tmp_path, monkeypatch):
    monkeypatch.setattr(L, "MAX_RUN_OPTIONS", 3)  # the frame viewer's run list: 3 runs, type for the rest
    root = tmp_path / "runs"  # dash_duo keeps its downloads in tmp_path
    ids = make_store(root, 6, derived=True)  # brows/eyes/mouth on 2 references, + transfer and combine
    (root / "broken-run").mkdir()
    (root / "broken-run" / "run.json").write_text("{ cut off")
    app = create_app(root)
    dash_duo.driver.set_window_size(1400, 1900)
    dash_duo.start_server(app)

    # Loads: a warning names the broken run, the table lists every good run, the projection draws them all
    # (no ticks = every row that passes the filters).
    dash_duo.wait_for_contains_text(f"#{L.WARNINGS}", "broken-run", timeout=TIMEOUT)
    dash_duo.wait_for_element("#run-table", timeout=TIMEOUT)
    assert len(dash_duo.find_elements("#run-table td[data-dash-column='run_id']")) == len(ids)
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.PROJECTION)) >= 3, "the first projection")
    names = [t["name"] for t in _graph_data(dash_duo, L.PROJECTION)]
    assert {"brows", "eyes", "mouth"} <= set(names)
    assert len({r for t in _graph_data(dash_duo, L.PROJECTION) for r in t["runs"]}) == len(ids)
    # it opens on the deltas w − w* (runs of one face would be a dot in a joint fit of positions); positions are
    # one click away (the hovering below uses them: the synthetic runs' deltas all start at the same point)
    assert dash_duo.find_element(f"#{L.RELATIVE} input").is_selected()
    xs = ("const g = document.querySelector('#projection .js-plotly-plot');"
          "return g && g.data && g.data[0] ? Array.from(g.data[0].x) : null;")
    before = dash_duo.driver.execute_script(xs)
    dash_duo.find_element(f"#{L.RELATIVE} input").click()
    _wait(dash_duo, lambda: dash_duo.driver.execute_script(xs) not in (None, before), "the projection of positions")

    # Hovering a point of a trace that holds several runs shows that run's frame: the mouth line holds the mouth
    # runs (read from the store here) in id order, 8 frames each, so its 14th point is the second run's frame 5.
    mouth_runs = sorted(r for r in ids if load_run(root / r).region == "mouth")
    assert len(mouth_runs) >= 2
    line = dash_duo.find_elements("#projection .scatterlayer .trace")[names.index("mouth")]
    ActionChains(dash_duo.driver).move_to_element(line.find_elements("css selector", ".points path")[8 + 5]).perform()
    _wait(dash_duo, lambda: f"/runs/{mouth_runs[1]}/frames/005.png" in (dash_duo.driver.execute_script(
        "const i = document.querySelector(arguments[0]); return i ? i.src : '';", f"#{L.TOOLTIP} img") or ""),
          f"the thumbnail of {mouth_runs[1]} frame 5")
    ActionChains(dash_duo.driver).move_to_element(dash_duo.find_element("h2")).perform()  # away from the plot

    # The frame viewer's run list holds three runs and says how many more; typing finds the others (the server
    # searches the selection), and picking one shows it.
    def listed():
        return dash_duo.driver.execute_script(
            "return [...document.querySelectorAll('.dash-dropdown-options [role=option]')].map(e => e.textContent);")

    dash_duo.find_element(f"#{L.VIEWER_RUN}").click()
    _wait(dash_duo, lambda: len(listed()) == 4 and listed()[-1] == f"… {len(ids) - 3} more: type to search",
          "the run list's three runs and the rest")
    assert "transfer-synthetic-0006" not in listed()
    dash_duo.find_element("input.dash-dropdown-search").send_keys("TRANSFER")
    _wait(dash_duo, lambda: listed() == ["transfer-synthetic-0006"], "the run found by typing")
    dash_duo.find_element(".dash-dropdown-options [role=option]").click()
    _wait(dash_duo, lambda: _text(dash_duo, f"#{L.VIEWER_NOTE}").startswith("transfer-synthetic-0006"),
          "the picked run in the frame viewer")
    ActionChains(dash_duo.driver).move_to_element(dash_duo.find_element("h2")).click().perform()  # close the list

    # Selecting runs changes the projection's traces: tick the rows of one mouth run and one eyes run.
    mouth, eyes = "mouth-s0-synthetic-0000", "eyes-s0-synthetic-0001"
    for run_id in (mouth, eyes):
        cell = next(c for c in dash_duo.find_elements("#run-table td[data-dash-column='run_id']")
                    if c.text.strip() == run_id)
        cell.find_element("xpath", "./ancestor::tr//input[@type='checkbox']").click()

    def selected_runs():
        return sorted({r for t in _graph_data(dash_duo, L.PROJECTION) for r in t["runs"]})

    _wait(dash_duo, lambda: selected_runs() == sorted([mouth, eyes]), "the projection of the two ticked runs")
    assert [t["name"] for t in _graph_data(dash_duo, L.PROJECTION)] == ["eyes", "mouth", "eyes, frame 0",
                                                                       "mouth, frame 0"]

    # Hovering a point shows that frame's thumbnail; clicking it shows that frame in the viewer.
    traces = dash_duo.find_elements("#projection .scatterlayer .trace")
    points = traces[1].find_elements("css selector", ".points path")  # the mouth run, in frame order
    assert len(points) == 8
    target = points[5]
    ActionChains(dash_duo.driver).move_to_element(target).perform()
    dash_duo.wait_for_element(f"#{L.TOOLTIP} img", timeout=TIMEOUT)
    src = dash_duo.find_element(f"#{L.TOOLTIP} img").get_attribute("src")
    assert f"/runs/{mouth}/frames/005.png" in src
    _wait(dash_duo, lambda: dash_duo.driver.execute_script(
        "const i = document.querySelector(arguments[0]); return i && i.complete && i.naturalWidth > 0;",
        f"#{L.TOOLTIP} img"), "the thumbnail to load")
    ActionChains(dash_duo.driver).move_to_element(target).click().perform()
    dash_duo.wait_for_contains_text(f"#{L.VIEWER_NOTE}", f"{mouth}: region mouth", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{L.VIEWER_NOTE}", "frame 5 (of", timeout=TIMEOUT)
    ring = dash_duo.driver.execute_script(
        "const g = document.querySelector('#projection .js-plotly-plot'); const s = g.layout.shapes[0];"
        "const t = g.data[1]; const r = t.meta.indexOf(arguments[0]);"
        "const i = t.customdata.findIndex(c => c && c[0] === r && c[1] === 5);"
        "return [s.visible, s.xanchor === t.x[i], s.yanchor === t.y[i], s.xanchor, s.yanchor];", mouth)
    assert ring[:3] == [True, True, True]  # the clicked frame is ringed
    # ... where the projection of the two runs, fitted here by the analysis, puts mouth's frame 5
    runs = [load_run(root / r) for r in sorted([mouth, eyes])]
    ref = project(runs).set_index(["run_id", "frame"])
    span = float(ref["x"].max() - ref["x"].min())
    assert ring[3:] == [pytest.approx(ref.loc[(mouth, 5), "x"], abs=span * 1e-4),
                        pytest.approx(ref.loc[(mouth, 5), "y"], abs=span * 1e-4)]
    viewer = [t["type"] for t in _graph_data(dash_duo, L.VIEWER)]
    assert viewer.count("image") == 2 and "heatmap" in viewer and viewer.count("contour") == 3

    # Play advances the frames; pause stops them.
    dash_duo.find_element(f"#{L.PLAY}").click()
    _wait(dash_duo, lambda: "frame 5 (of" not in _text(dash_duo, f"#{L.VIEWER_NOTE}"), "play to advance")
    dash_duo.find_element(f"#{L.PLAY}").click()
    dash_duo.wait_for_text_to_equal(f"#{L.PLAY}", "▶ play", timeout=TIMEOUT)

    # Region comparison renders for the selection (the Compare tab).
    _tab(dash_duo, L.COMPARE)
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.METRIC_BARS)) >= 2, "the metric bars")
    assert {t["type"] for t in _graph_data(dash_duo, L.METRIC_BARS)} == {"bar", "scatter"}
    _wait(dash_duo, lambda: [t["type"] for t in _graph_data(dash_duo, L.LAYERS)] == ["heatmap"], "the layer map")
    _wait(dash_duo, lambda: [t["type"] for t in _graph_data(dash_duo, L.OVERLAP)] == ["heatmap"], "the overlap map")
    assert "eyes" in _text(dash_duo, f"#{L.OVERLAP}") and "mouth" in _text(dash_duo, f"#{L.OVERLAP}")

    # Clearing the ticks brings every run back, transfer and combination included.
    _tab(dash_duo, L.BROWSE)
    dash_duo.find_element(f"#{L.CLEAR}").click()
    _wait(dash_duo, lambda: len(selected_runs()) == len(ids), "all runs after clearing the ticks")
    _wait(dash_duo, lambda: [t["type"] for t in _graph_data(dash_duo, L.DERIVED)] == ["bar", "bar"],
          "the transfer/combination bars")
    _wait(dash_duo, lambda: dash_duo.driver.execute_script(
        "return document.querySelector('#metric-bars .js-plotly-plot').data[0].x.length;") == 3,
          "the metric bars of all three regions")

    dash_duo.driver.save_screenshot(str(_artifacts() / "dashboard.png"))
    logs = dash_duo.get_logs()
    for entry in logs:
        print("CONSOLE:", entry["message"])
    assert logs == []


def test_empty_store_in_a_browser(dash_duo, tmp_path):
    (tmp_path / "runs").mkdir()
    dash_duo.start_server(create_app(tmp_path / "runs"))
    dash_duo.wait_for_contains_text(f"#{L.EMPTY}", "mgm demo", timeout=TIMEOUT)
    assert not dash_duo.find_element("#views").is_displayed()
    assert not dash_duo.find_element(f"#{L.DISCOVER_PANEL}").is_displayed()  # no Discover in this dashboard
    dash_duo.driver.save_screenshot(str(_artifacts() / "dashboard-empty.png"))
    assert dash_duo.get_logs() == []


def test_methods_view_in_a_browser(dash_duo, tmp_path):
    """A store of compare-methods runs at three strengths: the methods card shows the table (one row per method,
    region and strength) and locality against strength, one line per method and region in each panel; ticking the
    mouth runs narrows both to the mouth."""
    root = tmp_path / "runs"
    ids = make_store(root, 3, methods=("jacobian", "sefa"), strengths=(1.0, 2.0, 4.0))
    dash_duo.driver.set_window_size(1400, 2600)
    dash_duo.start_server(create_app(root))
    dash_duo.wait_for_element(f"#{L.METHODS_BOX}", timeout=TIMEOUT)
    _tab(dash_duo, L.COMPARE)
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.FRONTIER)) == 18, "the frontier's 18 lines")
    names = {t["name"] for t in _graph_data(dash_duo, L.FRONTIER)}
    assert names == {f"{m} · {r}" for m in ("discovery", "jacobian", "sefa") for r in ("brows", "eyes", "mouth")}
    _wait(dash_duo, lambda: len(dash_duo.find_elements(f"#{L.METHODS_TABLE} td[data-dash-column='method']")) == 24,
          "the method table's first page")                      # 27 rows, 24 a page
    header = [h.text for h in dash_duo.find_elements(f"#{L.METHODS_TABLE} th")]
    assert {"strength", "spread", "inside_path", "locality"} <= {h.strip() for h in header}

    _tab(dash_duo, L.BROWSE)
    dash_duo.find_element("#run-table th.dash-filter[data-dash-column='region'] input").send_keys("mouth\n")
    _tab(dash_duo, L.COMPARE)
    _wait(dash_duo, lambda: {t["name"] for t in _graph_data(dash_duo, L.FRONTIER)} == {
        f"{m} · mouth" for m in ("discovery", "jacobian", "sefa")}, "the mouth's lines only")
    _wait(dash_duo, lambda: len(dash_duo.find_elements(f"#{L.METHODS_TABLE} td[data-dash-column='method']")) == 9,
          "the mouth's 9 rows")
    assert len(ids) == 27
    dash_duo.driver.save_screenshot(str(_artifacts() / "dashboard-methods.png"))
    assert dash_duo.get_logs() == []


def test_the_address_keeps_the_view_and_a_link_reopens_it(dash_duo, tmp_path):
    """A link with the view in its query opens that view (3-D, positions, two runs ticked); changing the view
    rewrites the address without a reload."""
    root = tmp_path / "runs"
    ids = sorted(make_store(root, 6))
    pick = ids[1:3]
    dash_duo.driver.set_window_size(1400, 1900)
    dash_duo.start_server(create_app(root))
    dash_duo.driver.get(dash_duo.server_url + f"/?dims=3&rel=0&sel={','.join(pick)}&filter=")
    _wait(dash_duo, lambda: sorted({r for t in _graph_data(dash_duo, L.PROJECTION) for r in t["runs"]}) == pick,
          "the projection of the two runs in the link")
    assert dash_duo.find_element(f"#{L.DIMS} input[value='3']").is_selected()
    assert not dash_duo.find_element(f"#{L.RELATIVE} input").is_selected()
    assert {t["type"] for t in _graph_data(dash_duo, L.PROJECTION)} == {"scatter3d"}
    dash_duo.find_element(f"#{L.DIMS} input[value='2']").click()
    _wait(dash_duo, lambda: "dims=2" in dash_duo.driver.current_url, "the address to follow the view")
    url = dash_duo.driver.current_url
    assert f"sel={'%2C'.join(pick)}" in url and "rel=0" in url and "view=pca" in url
    assert dash_duo.get_logs() == []


def test_a_page_that_comes_with_its_projection(dash_duo, tmp_path):
    """With the first view's projection at hand (what serve()'s warm-up leaves), the page comes with its figure: it
    is drawn, the views that follow the selection start from it, another view draws anew and coming back draws the
    first view again; a link to two runs shows those runs, not the figure the page came with.  The page keeps the
    browser's own parseFloat and trim (Dash's polyfill swaps in slower ones that also strip U+180E)."""
    from dashboards.callbacks import warm_up

    root = tmp_path / "runs"
    ids = sorted(make_store(root, 6))
    warm_up(root.resolve())
    dash_duo.driver.set_window_size(1400, 1900)
    dash_duo.start_server(create_app(root))

    def drawn():
        return sorted({r for t in _graph_data(dash_duo, L.PROJECTION) for r in t["runs"]})

    _wait(dash_duo, lambda: drawn() == ids, "the projection the page came with")
    dash_duo.wait_for_contains_text(f"#{L.VIEWER_NOTE}", f"{ids[0]}: region", timeout=TIMEOUT)
    assert dash_duo.driver.execute_script("return Number.isNaN(parseFloat('\\u180e1')) && '\\u180e'.trim() === '\\u180e'")
    dash_duo.find_element(f"#{L.DIMS} input[value='3']").click()
    _wait(dash_duo, lambda: {t["type"] for t in _graph_data(dash_duo, L.PROJECTION)} == {"scatter3d"}, "3-D")
    dash_duo.find_element(f"#{L.DIMS} input[value='2']").click()
    _wait(dash_duo, lambda: {t["type"] for t in _graph_data(dash_duo, L.PROJECTION)} == {"scatter"} and drawn() == ids,
          "the first view again")
    pick = ids[1:3]
    dash_duo.driver.get(dash_duo.server_url + f"/?sel={','.join(pick)}")
    _wait(dash_duo, lambda: drawn() == pick, "the projection of the two runs in the link")
    assert dash_duo.get_logs() == []


def test_tabs_switch_views_and_a_link_reopens_the_tab(dash_duo, tmp_path):
    """Browse, Discover and Compare are tabs: the page opens on Browse, each tab shows its views only, the
    comparison (put in the page when its tab is first shown) fills its width, the tab goes into the address, and
    opening that address again shows the same tab."""
    root = tmp_path / "runs"
    make_store(root, 6)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(create_app(root))
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.PROJECTION)) >= 3, "the first projection")
    assert _shown_panels(dash_duo) == [L.BROWSE_PANEL]
    assert dash_duo.find_element(f"#{L.TABLE}").is_displayed()
    assert dash_duo.find_elements(f"#{L.METRIC_BARS}") == []  # Compare's graphs join the page when it is shown

    _tab(dash_duo, L.COMPARE)
    assert _shown_panels(dash_duo) == [L.COMPARE_PANEL]
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.METRIC_BARS)) >= 2, "the metric bars")
    width = ("const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
             "return g ? [g.querySelector('.main-svg').getBoundingClientRect().width, "
             "g.parentElement.getBoundingClientRect().width] : null;")
    _wait(dash_duo, lambda: (lambda w: w and w[1] > 600 and abs(w[0] - w[1]) < 5)(
        dash_duo.driver.execute_script(width, f"#{L.METRIC_BARS}")), "the metric bars at the panel's width")
    _wait(dash_duo, lambda: "tab=compare" in dash_duo.driver.current_url, "the tab in the address")

    _tab(dash_duo, L.DISCOVER)
    assert _shown_panels(dash_duo) == [L.DISCOVER_PANEL]
    assert "Discover is not on" in _text(dash_duo, f"#{L.DISCOVER_PANEL}")  # made without Discover
    _wait(dash_duo, lambda: "tab=discover" in dash_duo.driver.current_url, "the Discover tab in the address")

    _tab(dash_duo, L.COMPARE)
    _wait(dash_duo, lambda: "tab=compare" in dash_duo.driver.current_url, "the tab in the address")
    link = dash_duo.driver.current_url
    dash_duo.driver.get(dash_duo.server_url + "/")  # away, then the link again: the Compare tab
    _wait(dash_duo, lambda: _shown_panels(dash_duo) == [L.BROWSE_PANEL], "a fresh page on Browse")
    dash_duo.driver.get(link)
    _wait(dash_duo, lambda: _shown_panels(dash_duo) == [L.COMPARE_PANEL], "the link's Compare tab")
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.METRIC_BARS)) >= 2, "the metric bars")
    assert dash_duo.get_logs() == []


def test_an_empty_store_opens_on_the_discover_tab(dash_duo, tmp_path):
    """Over an empty store the page opens on Discover (how to begin); the Browse tab says how else to make runs."""
    from dashboards import discover as D

    root = tmp_path / "runs"
    root.mkdir()
    app = create_app(root, discover=D.DiscoverOptions("toyfaces"))
    try:
        dash_duo.driver.set_window_size(1400, 1000)
        dash_duo.start_server(app)
        dash_duo.wait_for_element(f"#{D.LAUNCH}", timeout=TIMEOUT)
        _wait(dash_duo, lambda: _shown_panels(dash_duo) == [L.DISCOVER_PANEL], "the Discover tab")
        assert dash_duo.find_element(f"#{D.LAUNCH}").is_displayed()
        assert not dash_duo.find_element(f"#{L.EMPTY}").is_displayed()
        _tab(dash_duo, L.BROWSE)
        assert dash_duo.find_element(f"#{L.EMPTY}").is_displayed() and not dash_duo.find_element(
            f"#{D.LAUNCH}").is_displayed()
        assert "mgm demo" in _text(dash_duo, f"#{L.EMPTY}")
        assert dash_duo.get_logs() == []
    finally:  # this store's worker process
        for key in [k for k in D._CLIENTS if str(root.resolve()) in k]:
            D._CLIENTS.pop(key).stop()


def test_a_decimated_projection_rings_the_frame_on_show_at_its_run_s_nearest_point(dash_duo, tmp_path, monkeypatch):
    """A projection with more frames than figures.MAX_SENT_POINTS sends every k-th frame of each run: the frame on
    show that was not sent is ringed at the last point of its run before it."""
    from dashboards import figures

    root = tmp_path / "runs"
    ids = sorted(make_store(root, 6))  # 6 runs x 8 frames = 48 points
    monkeypatch.setattr(figures, "MAX_SENT_POINTS", 20)  # one frame in 3 (and the last): 0, 3, 6, 7
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(create_app(root))
    _wait(dash_duo, lambda: len(_graph_data(dash_duo, L.PROJECTION)) >= 3, "the first projection")
    assert "1 frame in 3 drawn" in _text(dash_duo, f"#{L.PROJECTION} .gtitle")
    dash_duo.wait_for_contains_text(f"#{L.VIEWER_NOTE}", f"{ids[0]}: region", timeout=TIMEOUT)
    box = dash_duo.find_element(f"#{L.SLIDER} input")  # the slider's number box
    box.send_keys("\b5\n")
    dash_duo.wait_for_contains_text(f"#{L.VIEWER_NOTE}", "frame 5 (of", timeout=TIMEOUT)
    ring = ("const g = document.querySelector('#projection .js-plotly-plot'); const s = g.layout.shapes[0];"
            "for (const t of g.data) { const r = t.meta.indexOf(arguments[0]); if (r < 0) { continue; }"
            "  const i = t.customdata.findIndex(c => c && c[0] === r && c[1] === 3);"
            "  return [s.visible, s.xanchor === t.x[i] && s.yanchor === t.y[i],"
            "          t.customdata.some(c => c && c[0] === r && c[1] === 5)]; }")
    _wait(dash_duo, lambda: dash_duo.driver.execute_script(ring, ids[0]) == [True, True, False],
          "the ring on frame 3, the last point sent before frame 5")
    assert dash_duo.get_logs() == []


def test_ticks_stay_on_other_pages_of_the_table(dash_duo, tmp_path):
    """The table holds one page (rows come from the server): a row ticked on page 1 stays ticked while page 2 is
    shown and another is ticked there, the projection shows both, and a filter typed into the header narrows the
    rows the server sends."""
    root = tmp_path / "runs"
    ids = sorted(make_store(root, 2 * L.PAGE_SIZE + 3, n_frames=3))
    dash_duo.driver.set_window_size(1400, 1900)
    dash_duo.start_server(create_app(root))

    # each read is one script call: the table re-renders when the server's page arrives, and a cell found by one
    # WebDriver call can be gone by the next (a stale element)
    def rows():
        return dash_duo.driver.execute_script(
            "return Array.from(document.querySelectorAll(\"#run-table td[data-dash-column='run_id']\"))"
            ".map(c => c.textContent.trim())")

    def tick(run_id):
        cell = next(c for c in dash_duo.find_elements("#run-table td[data-dash-column='run_id']")
                    if c.text.strip() == run_id)
        cell.find_element("xpath", "./ancestor::tr//input[@type='checkbox']").click()

    def ticked():
        return sorted(dash_duo.driver.execute_script(
            "return Array.from(document.querySelectorAll(\"#run-table td[data-dash-column='run_id']\"))"
            ".filter(c => c.closest('tr').querySelector('input[type=checkbox]').checked)"
            ".map(c => c.textContent.trim())"))

    def selected_runs():
        return sorted({r for t in _graph_data(dash_duo, L.PROJECTION) for r in t["runs"]})

    _wait(dash_duo, lambda: rows() == ids[:L.PAGE_SIZE], "the first page of rows")
    _wait(dash_duo, lambda: selected_runs() == ids, "every run in the projection")
    first = ids[2]
    tick(first)
    _wait(dash_duo, lambda: selected_runs() == [first], "the projection of the ticked run")
    dash_duo.find_element("#run-table button.next-page").click()
    _wait(dash_duo, lambda: rows() == ids[L.PAGE_SIZE:2 * L.PAGE_SIZE], "the second page of rows")
    assert ticked() == []
    second = ids[L.PAGE_SIZE + 1]
    tick(second)
    _wait(dash_duo, lambda: selected_runs() == sorted([first, second]), "the projection of both ticked runs")
    dash_duo.find_element("#run-table button.previous-page").click()
    _wait(dash_duo, lambda: rows() == ids[:L.PAGE_SIZE] and ticked() == [first], "page 1, its tick kept")
    dash_duo.find_element("#run-table th.dash-filter[data-dash-column='region'] input").send_keys("mouth\n")
    mouth = [r for r in ids if r.startswith("mouth-")]
    _wait(dash_duo, lambda: rows() == mouth[:L.PAGE_SIZE], "the mouth rows, from the server")
    assert dash_duo.get_logs() == []
