"""Test settings and fixtures shared by every test: one torch thread (CI has 2 cores), seeded, tiny models.

Fixtures: ``ckpt`` — the 16² test checkpoint (a tiny StyleGAN2, w_dim 32, seed 2), for the tests where the model
does not matter; ``tiny_G`` — that checkpoint loaded; ``sigint_raises`` — Ctrl-C raises in this process.  Helpers for the CLI live in ``tests/_cli.py``.
``make test`` runs the suite on 2 processes (pytest-xdist); each process serves Dash's test apps on its own port
and drives one Chromium (``dash_duo``), and the long tests are handed out first.
"""

import itertools
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:  # analysis tests must also run where torch is absent
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """The 16² test checkpoint on disk (a tiny StyleGAN2 saved by our own writer)."""
    from mgm_analysis.generators.checkpoints import save_checkpoint
    from mgm_analysis.generators.stylegan2 import tiny_generator

    path = tmp_path_factory.mktemp("g") / "tiny.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), path)
    return path


@pytest.fixture(scope="session")
def tiny_G(ckpt):
    """The 16² test checkpoint, loaded as a user's checkpoint is."""
    from mgm_analysis.generators import load_generator

    return load_generator(str(ckpt))


@pytest.fixture(autouse=True)
def _torch_threads_kept():
    """Every test leaves torch on the one thread it found: a test process that two threads' worth of spinning
    OpenMP shares 2 cores with another ran torch ~30 times slower (a library call that changes the count must put
    it back; see ``generators.base.torch_threads``)."""
    yield
    if torch is not None and torch.get_num_threads() != 1:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        pytest.fail(f"the test left torch with {n} threads (it had 1)")


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt in this process during the test, as in a terminal (a test process started
    from a background job inherits SIGINT as ignored)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="session")
def _one_browser():
    """The Chromium of this test process, shared by its browser tests (see ``dash_duo``)."""
    held = {}
    yield held
    if "driver" in held:
        held.pop("driver").quit()


@pytest.fixture
def dash_duo(request, dash_thread_server, tmpdir, _one_browser):
    """dash[testing]'s ``dash_duo`` on one Chromium per test process, its apps served on one port.

    A browser costs ~1.3 s of CPU to start and a page ~2.8 s to load cold, ~1.5 s with the scripts in the browser's
    cache (the same address): on 2 cores that was a sixth of the suite.  Between tests the page is left, the
    site's storage and cookies cleared, other windows closed and the window size put back (a browser that fails
    that is quit, and the next test starts a new one); each test's browser log starts empty."""
    from dash.testing.application_runners import BaseDashRunner
    from dash.testing.composite import DashComposite
    from selenium.common.exceptions import WebDriverException

    class Shared(DashComposite):
        def _try_get_webdriver(self):
            if "driver" not in _one_browser:
                driver = super()._try_get_webdriver()
                _one_browser.update(driver=driver, size=driver.get_window_size())
            return _one_browser["driver"]

        def __exit__(self, *exc):
            driver = _one_browser.get("driver")
            if driver is None:
                return
            try:
                for handle in driver.window_handles[1:]:
                    driver.switch_to.window(handle)
                    driver.close()
                driver.switch_to.window(driver.window_handles[0])
                if driver.current_url.startswith("http"):
                    driver.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")
                driver.delete_all_cookies()
                driver.get("about:blank")
                driver.set_window_size(_one_browser["size"]["width"], _one_browser["size"]["height"])
            except WebDriverException:
                _one_browser.pop("driver", None)
                try:
                    driver.quit()
                except WebDriverException:
                    pass

    BaseDashRunner._next_port = _base_port()  # the same address each test: the browser's cache serves the scripts
    with Shared(server=dash_thread_server, browser=request.config.getoption("webdriver"),
                remote=request.config.getoption("remote"), remote_url=request.config.getoption("remote_url"),
                headless=request.config.getoption("headless"), options=request.config.hook.pytest_setup_options(),
                download_path=tmpdir.mkdir("download").strpath,
                percy_assets_root=request.config.getoption("percy_assets"),
                percy_finalize=request.config.getoption("nopercyfinalize"),
                pause=request.config.getoption("pause")) as dc:
        dc.driver.get_log("browser")  # read and so emptied: what an earlier test or the start left is not this test's
        yield dc


def _base_port() -> int:
    """The first port of this process's Dash test servers (Dash numbers them from 58050 in every process)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return 58050 + 500 * int(worker[2:]) if worker.startswith("gw") else 58050


def pytest_configure(config):
    """The test servers' request log (werkzeug, INFO) is off: dash[testing] stops a server thread by raising
    SystemExit in it asynchronously, and one that arrived while that thread held the logging handler's lock left
    the lock taken: the next log call of the process (Dash's own "server failed to start") waited forever."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def pytest_collection_modifyitems(config, items):
    """The long tests first, the rest after them: a process that finishes its long tests takes short ones from the
    queue instead of leaving one long test for last.  The long ones alternate between the browser tests (mostly
    waiting on Chromium) and the other slow ones (mostly computing), so the two test processes seldom wait at
    the same time."""
    browser = [it for it in items if it.get_closest_marker("browser") is not None]
    slow = [it for it in items if it.get_closest_marker("slow") is not None and it not in browser]
    rest = [it for it in items if it not in browser and it not in slow]  # in their order
    long = [it for pair in itertools.zip_longest(browser, slow) for it in pair if it is not None]
    items[:] = long + rest
