"""The dashboard's first screen as a new user sees it: ``mgm dashboard STORE`` (Discover on, as by default) in
headless Chromium at 1400 × 900, saved as a PNG once the page has settled.

    python tools/first_screen.py STORE docs/dashboard_first_screen_after.png
    python tools/first_screen.py STORE before.png --code /path/to/a/checkout/of/an/older/commit

``--code`` runs the command line of another checkout (``git worktree add --detach DIR COMMIT``) over the same
store, so the before and after shots differ only by the code.  The store is copied to a temporary folder
first: the dashboard writes its projection cache and Discover folder into the store, and two versions of the
code should not share them.  The PNG is re-encoded as a palette image (Pillow) to keep it small for the docs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1400, 900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(cond, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if cond():
                return
        except Exception:  # the page is still loading
            pass
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def _browser(size):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
              f"--window-size={size[0]},{size[1]}", "--no-first-run"):
        opts.add_argument(a)
    if Path("/usr/bin/chromium").exists():
        opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(options=opts)


def shoot(store: Path, out: Path, code: Path = ROOT, size=SIZE, settle: float = 3.0) -> None:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="mgm-first-screen-") as tmp:
        runs = Path(tmp) / "runs"
        shutil.copytree(store, runs, ignore=shutil.ignore_patterns(".mgm_cache", ".mgm_discover"))
        env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
        server = subprocess.Popen([sys.executable, "-m", "mgm_analysis.cli", "dashboard", str(runs), "--port",
                                   str(port)], cwd=code, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        driver = _browser(size)
        try:
            def up():
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True

            _until(up, 120, "the server")
            driver.set_window_size(*size)
            driver.get(f"http://127.0.0.1:{port}/")
            _until(lambda: driver.execute_script(
                "const g = document.querySelector('#projection .js-plotly-plot');"
                "return !!(g && g.data && g.querySelector('.scatterlayer .trace'));"), 180, "the projection")
            _until(lambda: driver.execute_script(  # the Discover face, where the page shows it (the worker starts)
                "const d = document.querySelector('#discover-face');"
                "return !d || d.offsetParent === null || !!d.querySelector('.js-plotly-plot .layer-above image, "
                ".js-plotly-plot image');"), 120, "the Discover face")
            time.sleep(settle)  # the views that follow the projection
            driver.execute_script("window.scrollTo(0, 0);")
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)
    from PIL import Image

    Image.open(out).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", type=Path, help="a run store (e.g. what `mgm demo --no-serve` made)")
    ap.add_argument("out", type=Path, help="the PNG to write")
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose `mgm dashboard` to run")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the projection is drawn")
    args = ap.parse_args(argv)
    shoot(args.store.resolve(), args.out.resolve(), args.code.resolve(), settle=args.settle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
