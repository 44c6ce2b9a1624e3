"""The Discover view in a real browser (headless Chromium through dash[testing]'s ``dash_duo``).

Run with ``pytest --headless tests/test_dashboard_discover_browser.py`` (needs Debian's chromium and
chromium-driver).  With the built-in generator: draw a rectangle over the mouth of the face of seed 3 with the
mouse, set 3 epochs, Launch; the progress shows epoch numbers; the run lands complete with that rectangle as
its mask and appears in the run table and the frame viewer.  A second launch is followed by a reloaded page and
cancelled from it: it lands ``interrupted``.  No region, or a region that covers the whole image, shows the error
and writes nothing.  A screenshot of the view goes to $MGM_ARTIFACTS (default ``artifacts/``) as ``dashboard_discover.png``.
"""

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if shutil.which("chromedriver") is None:  # pragma: no cover - CI installs it
    pytest.skip("chromedriver is not installed (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from dashboards import discover as D  # noqa: E402
from dashboards import layout as L  # noqa: E402
from dashboards.app import create_app  # noqa: E402
from mgm_analysis import store  # noqa: E402

TIMEOUT = 30       # seconds for page updates (CI machines are slow and shared)
JOB_TIMEOUT = 300  # seconds for a 3-epoch search on 2 busy cores
RES = 64           # the built-in generator's resolution
FRAMES = 8         # frames of the searches launched here


def _artifacts() -> Path:
    out = Path(os.environ.get("MGM_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _wait(dash_duo, cond, what, timeout=TIMEOUT):
    from dash.testing.errors import TestingTimeoutError
    from dash.testing.wait import until

    try:
        until(cond, timeout=timeout, poll=0.2, msg=f"timed out waiting for {what}")
    except TestingTimeoutError:
        dash_duo.driver.save_screenshot(str(_artifacts() / "dashboard-discover-timeout.png"))
        raise


def _text(dash_duo, selector) -> str:
    els = dash_duo.find_elements(selector)
    return els[0].text if els else ""


def _face_traces(dash_duo):
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#discover-face .js-plotly-plot');"
        "return g && g.data ? g.data.map(t => t.type) : [];")


def _screen_of(dash_duo, x, y, exact=False):
    """Viewport pixel (integers) of the face's data point (x, y), and the data point that pixel really is;
    with ``exact`` the unrounded viewport position."""
    return dash_duo.driver.execute_script("""
        const g = document.querySelector('#discover-face .js-plotly-plot');
        const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis, r = g.getBoundingClientRect();
        const ex = r.left + xa._offset + xa.l2p(arguments[0]), ey = r.top + ya._offset + ya.l2p(arguments[1]);
        if (arguments[2]) { return [ex, ey]; }
        const px = Math.round(ex), py = Math.round(ey);
        return [px, py, xa.p2l(px - r.left - xa._offset), ya.p2l(py - r.top - ya._offset)];
    """, x, y, exact)


def _drag(dash_duo, start, end, steps=8):
    """Press the mouse at viewport pixel ``start``, move in steps to ``end``, release (plotly's draw gesture)."""
    ab = ActionBuilder(dash_duo.driver)
    ab.pointer_action.move_to_location(*start)
    ab.pointer_action.pointer_down()
    for i in range(1, steps + 1):
        ab.pointer_action.move_to_location(round(start[0] + (end[0] - start[0]) * i / steps),
                                           round(start[1] + (end[1] - start[1]) * i / steps))
    ab.pointer_action.pointer_up()
    ab.perform()


def _tool(dash_duo, title):
    """Pick a drawing tool of the face's tool bar (shown on hover, so clicked from script)."""
    dash_duo.driver.execute_script(
        "document.querySelector('#discover-face .modebar-btn[data-title=\"' + arguments[0] + '\"]').click();",
        title)


def _set_input(dash_duo, selector, text):
    el = dash_duo.find_element(selector)
    el.click()
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.BACKSPACE)
    el.send_keys(text)


def _visible_entries(root):
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def _jobs(root):
    d = root / D.HIDDEN / "jobs"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _run_id_in_progress(dash_duo, state):
    m = re.search(rf"{state}: (\S+)", _text(dash_duo, f"#{D.PROGRESS}"))
    return m.group(1) if m else None


def _projected_runs(dash_duo):
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#projection .js-plotly-plot'); if (!g || !g.data) { return []; }"
        # customdata: [index into the trace's runs (its meta), frame]
        "return [...new Set(g.data.flatMap(t => Array.isArray(t.customdata) && Array.isArray(t.meta) ? "
        "t.customdata.map(c => c && t.meta[c[0]]) "
        ": []).filter(Boolean))];")


def _table_ids(dash_duo):
    # textContent: the table is on the Browse tab, which may be hidden while the Discover tab is shown
    return [c.get_attribute("textContent").strip()
            for c in dash_duo.find_elements(f"#{L.TABLE} td[data-dash-column='run_id']")]


def _strip_shown(dash_duo) -> bool:
    return dash_duo.driver.execute_script(
        "const i = document.getElementById(arguments[0]); return !!(i && i.complete && i.naturalWidth > 0 "
        "&& getComputedStyle(i).display !== 'none');", D.STRIP)


def test_discover_in_a_browser(dash_duo, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()  # an empty store: the page opens on the Discover tab
    app = create_app(root, discover=D.DiscoverOptions("toyfaces"))
    dash_duo.driver.set_window_size(1400, 1500)
    dash_duo.start_server(app)

    # The settings arrive with the generator's defaults, then the face of seed 3 is drawn.
    from mgm_analysis.config import default_config

    want_cfg = default_config("toyfaces")
    _wait(dash_duo, lambda: dash_duo.find_element(f"#{D.EPOCHS}").get_attribute("value") == str(want_cfg.epochs),
          "the generator's default settings", timeout=240)
    assert dash_duo.find_element(f"#{D.FRAMES}").get_attribute("value") == str(want_cfg.n_frames)
    assert dash_duo.find_element(f"#{D.LAYERS}").get_attribute("value") == f"{want_cfg.layer_start}:{want_cfg.layer_end}"
    assert float(dash_duo.find_element(f"#{D.OUTSIDE}").get_attribute("value")) == want_cfg.outside_weight
    # the searches below on 8 frames (the strip's count) instead of 16: half the time, the same checks
    _set_input(dash_duo, f"#{D.FRAMES}", str(FRAMES))
    _set_input(dash_duo, f"#{D.SEED}", "3")
    dash_duo.wait_for_contains_text(f"#{D.REF_NOTE}", "seed 3", timeout=TIMEOUT)
    _wait(dash_duo, lambda: _face_traces(dash_duo) == ["image"], "the face of seed 3")
    size = dash_duo.driver.execute_script(
        "const i = document.querySelector('#discover-face .layer-below image, #discover-face image');"
        "const r = i.getBoundingClientRect(); return [r.width, r.height, getComputedStyle(i).imageRendering];")
    assert size[0] >= 384 and size[1] >= 384 and size[2] == "pixelated", size

    # What the screen shows at the centre of image pixel (x, y), for a grid of pixels (compared with the run's
    # reference image below: the face is drawn where the region's coordinates say)
    modebar = "const m = document.querySelector('#discover-face .modebar-container'); if (m) { m.style.visibility = "
    dash_duo.driver.execute_script(modebar + "'hidden'; }")  # the tool buttons sit over the top right pixels
    shot = np.asarray(Image.open(io.BytesIO(dash_duo.driver.get_screenshot_as_png())).convert("RGB"),
                      np.float32) / 255
    dash_duo.driver.execute_script(modebar + "''; }")
    ratio = dash_duo.driver.execute_script("return window.devicePixelRatio;")
    (ax, ay), (bx, by) = _screen_of(dash_duo, 0, 0, exact=True), _screen_of(dash_duo, RES, RES, exact=True)
    centres = (np.arange(RES) + 0.5) / RES
    cols = np.floor((ax + centres * (bx - ax)) * ratio).astype(int)
    rows = np.floor((ay + centres * (by - ay)) * ratio).astype(int)
    on_screen = shot[rows][:, cols]  # [RES, RES, 3]: the screen at every image pixel's centre

    # Drag a rectangle over the mouth (the toyfaces mouth sits in x 16-48, y 40-56 at 64 px).
    p0, p1 = _screen_of(dash_duo, 18.3, 41.4), _screen_of(dash_duo, 45.6, 53.7)
    _drag(dash_duo, p0[:2], p1[:2])
    # what the mouse drew, in pixels of the image (x1/y1 exclusive), computed here from the pointer positions
    want = [int(round(min(p0[2], p1[2]))), int(round(min(p0[3], p1[3]))), int(round(max(p0[2], p1[2]))),
            int(round(max(p0[3], p1[3])))]
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "rect:", timeout=TIMEOUT)
    spec = _text(dash_duo, f"#{D.REGION}").split(" — ")[0]
    drawn = [int(v) for v in spec[len("rect:"):].split(",")]
    assert all(abs(a - b) <= 1 for a, b in zip(drawn, want, strict=True)), (drawn, want)

    # 3 epochs, Launch: the progress shows epoch numbers, then the run lands complete.
    _set_input(dash_duo, f"#{D.EPOCHS}", "3")
    _wait(dash_duo, lambda: dash_duo.find_element(f"#{D.EPOCHS}").get_attribute("value") == "3", "epochs = 3")
    before = set(_visible_entries(root))
    dash_duo.find_element(f"#{D.LAUNCH}").click()
    _wait(dash_duo, lambda: re.search(r"epoch [1-3]/3", _text(dash_duo, f"#{D.PROGRESS}")),
          "an epoch number in the progress", timeout=JOB_TIMEOUT)
    _wait(dash_duo, lambda: _run_id_in_progress(dash_duo, "complete"), "the run to complete", timeout=JOB_TIMEOUT)
    assert _text(dash_duo, f"#{D.ERROR}") == ""
    run_id = _run_id_in_progress(dash_duo, "complete")
    assert set(_visible_entries(root)) - before == {run_id}
    run = store.load_run(root / run_id)
    assert run.status == "complete" and run.meta["config"]["epochs"] == 3 and run.meta["seed"] == 3
    assert run.meta["config"]["n_frames"] == FRAMES and len(run.latents) == FRAMES
    # mask.png is the rectangle the mouse drew, to within a pixel of the generator's resolution
    mask = run.mask > 0.5
    ys, xs = np.nonzero(mask)
    got = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert mask.shape == (RES, RES) and mask.sum() == (got[2] - got[0]) * (got[3] - got[1])  # a filled rectangle
    assert all(abs(int(a) - b) <= 1 for a, b in zip(got, want, strict=True)), (got, want)
    off = np.argwhere(np.abs(on_screen - run.reference_img).max(-1) > 2 / 255)  # (y, x) of pixels shown wrong
    assert len(off) == 0, f"{len(off)} pixels differ, e.g. (y, x) {off[:5].tolist()}"
    # it appears in the run table, the projection and the frame viewer, without a reload (the Browse tab)
    dash_duo.find_element(f"#tab-{L.BROWSE}").click()
    _wait(dash_duo, lambda: dash_duo.find_element(f"#{L.PROJECTION}").is_displayed(), "the Browse tab")
    _wait(dash_duo, lambda: run_id in _table_ids(dash_duo), "the new run in the table")
    _wait(dash_duo, lambda: run_id in _projected_runs(dash_duo), "the new run in the projection")
    dash_duo.wait_for_contains_text(f"#{L.VIEWER_NOTE}", run_id, timeout=TIMEOUT)
    assert dash_duo.find_element("#views").is_displayed()
    # the header counts it and the empty-store how-to is gone, without a reload
    assert _text(dash_duo, f"#{L.COUNT}") == "— 1 run" and not dash_duo.find_element(f"#{L.EMPTY}").is_displayed()

    # A second launch (longer) is cancelled: the run lands interrupted.
    dash_duo.find_element(f"#tab-{L.DISCOVER}").click()
    _wait(dash_duo, lambda: dash_duo.find_element(f"#{D.LAUNCH}").is_displayed(), "the Discover tab")
    _set_input(dash_duo, f"#{D.EPOCHS}", "40")
    dash_duo.find_element(f"#{D.LAUNCH}").click()
    _wait(dash_duo, lambda: re.search(r"epoch [1-9]\d*/40", _text(dash_duo, f"#{D.PROGRESS}")),
          "the second job's first epoch", timeout=JOB_TIMEOUT)
    # the strip of the chain's current frames: 8 frames side by side, redrawn as the search goes on
    _wait(dash_duo, lambda: _strip_shown(dash_duo), "the strip of current frames")
    assert dash_duo.driver.execute_script(
        "const i = document.getElementById(arguments[0]); return [i.naturalWidth, i.naturalHeight];",
        D.STRIP) == [D.STRIP_FRAMES * RES, RES]
    strip = dash_duo.find_element(f"#{D.STRIP}").get_attribute("src")
    _wait(dash_duo, lambda: re.search(r"epoch ([3-9]|\d\d+)/40", _text(dash_duo, f"#{D.PROGRESS}")),
          "a later epoch of the second job", timeout=JOB_TIMEOUT)
    _wait(dash_duo, lambda: dash_duo.find_element(f"#{D.STRIP}").get_attribute("src") != strip,
          "the strip to be redrawn")
    dash_duo.find_element(f"#{D.PANEL}").screenshot(str(_artifacts() / "dashboard_discover.png"))
    # A reloaded page follows the job running now, and cancels it.
    dash_duo.driver.refresh()
    _wait(dash_duo, lambda: re.search(r"running rect:\S+ \(seed 3\) — epoch \d+/40", _text(dash_duo, f"#{D.PROGRESS}")),
          "the running job after the reload", timeout=JOB_TIMEOUT)
    dash_duo.find_element(f"#{D.CANCEL}").click()
    _wait(dash_duo, lambda: _run_id_in_progress(dash_duo, "interrupted"), "the interrupted run",
          timeout=JOB_TIMEOUT)
    stopped = _run_id_in_progress(dash_duo, "interrupted")
    run2 = store.load_run(root / stopped)
    assert run2.status == "interrupted" and run2.meta["config"]["epochs"] == 40
    assert 1 <= run2.meta["resume"]["epochs_done"] < 40
    _wait(dash_duo, lambda: stopped in _table_ids(dash_duo), "the interrupted run in the table")
    _wait(dash_duo, lambda: {run_id, stopped} <= set(_projected_runs(dash_duo)), "both runs in the projection")

    # No region: the error, and nothing is written.
    entries, jobs = _visible_entries(root), _jobs(root)
    dash_duo.find_element(f"#tab-{L.DISCOVER}").click()
    _wait(dash_duo, lambda: _face_traces(dash_duo) == ["image"], "the face again")
    dash_duo.find_element(f"#{D.PRESET_PREFIX}mouth").click()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "mouth — ", timeout=TIMEOUT)
    assert dash_duo.find_element(f"#{D.MASK}").is_displayed()  # a region: its preview
    dash_duo.find_element(f"#{D.CLEAR_SHAPES}").click()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "no region", timeout=TIMEOUT)
    # no region, no preview: the image is hidden, never a broken-image icon
    _wait(dash_duo, lambda: not dash_duo.find_element(f"#{D.MASK}").is_displayed(), "the preview hidden")
    dash_duo.find_element(f"#{D.LAUNCH}").click()
    dash_duo.wait_for_contains_text(f"#{D.ERROR}", "no region", timeout=TIMEOUT)
    # The ellipse and the closed free-hand path tools; shapes of different kinds are their union (a PNG mask).
    _tool(dash_duo, "Draw circle")
    _drag(dash_duo, _screen_of(dash_duo, 20, 20)[:2], _screen_of(dash_duo, 26, 24)[:2])
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "ellipse:", timeout=TIMEOUT)
    _tool(dash_duo, "Draw closed freeform")
    corners = [(40, 8), (60, 8), (60, 30), (40, 30), (40, 9)]
    ab = ActionBuilder(dash_duo.driver)
    ab.pointer_action.move_to_location(*_screen_of(dash_duo, *corners[0])[:2])
    ab.pointer_action.pointer_down()
    for a, b in zip(corners, corners[1:], strict=False):
        for t in np.linspace(0.2, 1, 4):
            ab.pointer_action.move_to_location(*_screen_of(dash_duo, a[0] + t * (b[0] - a[0]),
                                                           a[1] + t * (b[1] - a[1]))[:2])
    ab.pointer_action.pointer_up()
    ab.perform()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", ".png — ", timeout=TIMEOUT)
    assert _text(dash_duo, f"#{D.REGION}").startswith("drawn-")
    pixels = int(re.search(r"— (\d+) pixels", _text(dash_duo, f"#{D.REGION}")).group(1))
    # the ellipse as plotly drew it (its bounding box), counted here pixel centre by pixel centre, and the box
    # the path went round (20 x 22 pixels; the polygon fill may add its boundary row and column)
    x0, y0, x1, y1 = dash_duo.driver.execute_script(
        "const s = document.querySelector('#discover-face .js-plotly-plot').layout.shapes[0];"
        "return [s.x0, s.y0, s.x1, s.y1];")
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
    ellipse = sum(((x + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2 <= 1 for x in range(RES) for y in range(RES))
    assert ellipse > 50 and cx + rx < 40  # a real ellipse, apart from the box
    assert 20 * 22 + ellipse <= pixels <= 21 * 23 + ellipse, (pixels, ellipse)
    dash_duo.find_element(f"#{D.CLEAR_SHAPES}").click()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "no region", timeout=TIMEOUT)
    _tool(dash_duo, "Draw rectangle")

    # A preset button puts the preset's box on the face: the region is the preset, with its calibrated offset.
    dash_duo.find_element(f"#{D.PRESET_PREFIX}mouth").click()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "mouth — ", timeout=TIMEOUT)
    mouth_offset = default_config("toyfaces", region="mouth").offset
    _wait(dash_duo, lambda: float(dash_duo.find_element(f"#{D.OFFSET}").get_attribute("value")) == mouth_offset,
          "the mouth's offset")
    dash_duo.find_element(f"#{D.CLEAR_SHAPES}").click()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "no region", timeout=TIMEOUT)
    # A rectangle over the whole face: the error, and nothing is written.
    _drag(dash_duo, _screen_of(dash_duo, 0.01, 0.01)[:2], _screen_of(dash_duo, RES - 0.01, RES - 0.01)[:2])
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "whole image", timeout=TIMEOUT)
    dash_duo.find_element(f"#{D.LAUNCH}").click()
    dash_duo.wait_for_contains_text(f"#{D.ERROR}", "covers the whole image", timeout=TIMEOUT)
    assert _visible_entries(root) == entries and _jobs(root) == jobs
    # A setting out of range (checked by the worker with mgm discover's checks): the error, nothing written.
    dash_duo.find_element(f"#{D.PRESET_PREFIX}mouth").click()
    dash_duo.wait_for_contains_text(f"#{D.REGION}", "mouth — ", timeout=TIMEOUT)
    _set_input(dash_duo, f"#{D.FRAMES}", "2")
    dash_duo.find_element(f"#{D.LAUNCH}").click()
    dash_duo.wait_for_contains_text(f"#{D.ERROR}", "--frames must be >= 3", timeout=TIMEOUT)
    assert _visible_entries(root) == entries and _jobs(root) == jobs

    statuses = [json.loads((root / D.HIDDEN / "jobs" / j / "status.json").read_text())["state"] for j in jobs]
    assert statuses == ["complete", "interrupted"]
    logs = [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"]
    for entry in logs:
        print("CONSOLE:", entry["message"])
    assert logs == []


def test_a_page_that_opens_on_browse_gets_the_discover_card_with_its_tab(dash_duo, tmp_path, monkeypatch):
    """Over a store with runs the page opens on Browse without the Discover card (nor its worker); the Discover
    tab brings the card, its settings and the face, and it stays when one goes back and forth."""
    import dashboards.discover.callbacks as dcb
    from dashboards.synthetic import make_store

    monkeypatch.setattr(dcb, "WORKER_START_DELAY_S", 600.0)  # only the tab starts the worker here
    root = tmp_path / "runs"
    make_store(root, 3)
    app = create_app(root, discover=D.DiscoverOptions("toyfaces"))
    try:
        dash_duo.start_server(app)
        _wait(dash_duo, lambda: dash_duo.driver.execute_script(
            "return !!document.querySelector('#projection .scatterlayer .trace');"), "the projection")
        assert dash_duo.find_elements(f"#{D.LAUNCH}") == [] and app.discover_client.proc is None
        dash_duo.find_element(f"#tab-{L.DISCOVER}").click()
        _wait(dash_duo, lambda: (dash_duo.find_element(f"#{D.EPOCHS}").get_attribute("value") or "") != "",
              "the generator's settings", timeout=240)
        _wait(dash_duo, lambda: _face_traces(dash_duo) == ["image"], "the face")
        assert app.discover_client.proc is not None
        dash_duo.find_element(f"#tab-{L.BROWSE}").click()
        dash_duo.find_element(f"#tab-{L.DISCOVER}").click()
        assert _face_traces(dash_duo) == ["image"] and len(dash_duo.find_elements(f"#{D.LAUNCH}")) == 1
        assert dash_duo.get_logs() == []
    finally:
        app.discover_start_timer.cancel()
