"""The notebook API (import mgm_analysis as mgm): the same runs as the CLI, in memory or in a store; Run and Store
read what the store holds; bad input is the CLI's line as an MGMError."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cli import FAST_CONFIG, mgm, sigint_default
from _fake_runs import BLOCK_TORCH, make_run
from PIL import Image

import mgm_analysis as api
from mgm_analysis import store
from mgm_analysis.errors import MGMError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
REGION = "rect:4,8,12,14"
FLAGS = ["--frames", "5", "--epochs", "2", "--layers", "1:4", "--prim-dist", "0.2", "--offset", "0.05",
         "--outside-weight", "5", "--distance", "l2", "--quiet"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def memory_run(ckpt, tmp_path_factory):
    """One discovery in memory, made with the working directory in an empty folder: (run, that folder)."""
    cwd = tmp_path_factory.mktemp("cwd")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        run = api.discover(region=REGION, seed=3, generator=str(ckpt), quiet=True, **FAST_CONFIG)
    finally:
        os.chdir(old)
    return run, cwd


def test_discover_in_memory_writes_nothing_and_equals_the_cli_run(ckpt, memory_run, tmp_path):
    run, cwd = memory_run
    assert run.path is None and run.status == "complete"
    assert _files(cwd) == [] and _files(ckpt.parent) == [ckpt.name]  # nothing written anywhere we can see
    # the same job through the CLI: the same run, bit for bit, as it reads back from its folder
    r = mgm("discover", "--generator", ckpt, "--region", REGION, "--seed", "3", "--out", tmp_path, *FLAGS)
    assert r.exit_code == 0, r.output
    (folder,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    disk = store.load_run(folder)
    assert folder.name == run.run_id and disk.meta["provenance"]["key"] == run.provenance["key"]
    assert np.array_equal(disk.latents, run.latents) and np.array_equal(disk.reference, run.reference)
    saved = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((folder / "frames").iterdir())])
    assert run.frames.dtype == np.uint8 and np.array_equal(run.frames, saved)  # the frames as saved, 8-bit
    assert np.array_equal(run.reference_image, np.asarray(Image.open(folder / "reference.png").convert("RGB")))
    assert run.metrics["locality"] == disk.meta["metrics"]["locality"]
    assert run.config == disk.meta["config"] and run.provenance["kind"] == "discover"


def test_save_keeps_the_run_and_a_second_save_finds_it(memory_run, tmp_path):
    run, _ = memory_run
    again = api.load_run(run.save(tmp_path / "store")) if run.path is None else run
    path = again.path
    assert path == tmp_path / "store" / run.run_id and again.status == "complete"
    assert np.array_equal(again.latents, run.latents) and np.array_equal(again.frames, run.frames)
    assert again.save(tmp_path / "store") == path and _files(tmp_path / "store").count(run.run_id) == 1


def test_figure_sheet_gif_and_html(memory_run, tmp_path):
    run, _ = memory_run
    n, h, w, _ = run.frames.shape
    fig = run.figure()
    assert len(fig.frames) == n and len(fig.layout.sliders[0].steps) == n
    assert [s.label for s in fig.layout.sliders[0].steps] == [str(i) for i in range(n)]
    sheet = run.sheet(cols=3, scale=1)  # the reference and n frames, 3 a row, each with a 1-pixel border
    rows = -(-(n + 1) // 3)
    assert sheet.size == (3 * (w + 2), rows * (h + 2))
    gif = Image.open(run.gif(tmp_path / "a.gif"))
    assert gif.n_frames == 2 * n - 2  # forth and back
    html = run._repr_html_()
    assert run.run_id in html and "<img src='data:image/png;base64," in html and "locality" in html


def test_bad_input_is_the_cli_line(ckpt, tmp_path):
    from click.testing import CliRunner

    from mgm_analysis.cli import main

    cases = [({"region": "nose2"}, ["--region", "nose2"]), ({"epochs": 0}, ["--epochs", "0"]),
             ({"truncation": 2.0}, ["--truncation", "2"])]
    for kwargs, flags in cases:
        with pytest.raises(MGMError) as err:
            api.discover(**{"region": REGION, "generator": str(ckpt), "out": tmp_path / "s", **kwargs})
        r = CliRunner().invoke(main, ["discover", "--generator", str(ckpt), "--region", REGION, "--out",
                                      str(tmp_path / "s"), *flags])
        assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == f"error: {err.value}", (r.output, err.value)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "s").exists()  # nothing written
    with pytest.raises(MGMError, match="unknown setting 'colour'"):
        api.discover(generator=str(ckpt), colour=1)


def test_init_seed_is_the_search_seed_as_the_cli_takes_it(ckpt, tmp_path):
    run = api.discover(region=REGION, seed=3, generator=str(ckpt), quiet=True, init_seed=7, **FAST_CONFIG)
    r = mgm("discover", "--generator", ckpt, "--region", REGION, "--seed", "3", "--init-seed", "7", "--out",
            tmp_path, *FLAGS)
    assert r.exit_code == 0, r.output
    (folder,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert run.config["seed"] == 7 and folder.name == run.run_id
    assert np.array_equal(store.load_run(folder).latents, run.latents)


def test_baselines_in_memory_and_in_a_store(ckpt, tmp_path):
    cfg = {k: v for k, v in FAST_CONFIG.items() if k != "epochs"}
    mem = api.baselines(region=REGION, seed=3, methods=["sefa"], generator=str(ckpt), **cfg)
    kept = api.baselines(region=REGION, seed=3, methods="sefa", generator=str(ckpt), out=tmp_path, **cfg)
    assert [r.provenance["method"] for r in mem] == ["sefa"] and mem[0].path is None
    assert kept[0].path.parent == tmp_path and np.array_equal(kept[0].latents, mem[0].latents)
    # equal strength: the mean inside distance of the frames is c (the config's offset), as the CLI makes it
    assert mem[0].meta["provenance"]["params"]["strength"] == 1.0


def test_store_catalog_runs_projection_and_methods(tmp_path):
    for region, seed in [("mouth", 0), ("mouth", 1), ("eyes", 0)]:
        make_run(tmp_path, region=region, seed=seed)
    s = api.open_store(tmp_path)
    assert len(s.catalog) == 3 and sorted(s.catalog["region"]) == ["eyes", "mouth", "mouth"]
    assert sorted(r.meta["seed"] for r in s.runs(region="mouth")) == [0, 1]
    assert len(s.runs(region=["mouth", "eyes"])) == 3
    with pytest.raises(MGMError, match="no such catalog column"):
        s.runs(colour="red")
    fig = s.projection(method="pca")
    points = sum(int(np.isfinite(np.asarray(t.x, float)).sum()) for t in fig.data)  # runs apart by gaps
    assert points == sum(len(r.latents) for r in s.runs())  # every frame of every run is a point
    cmp = s.compare()
    assert set(cmp) == {"overlap", "layers", "summary"} and len(cmp["summary"]) >= 1
    with pytest.raises(MGMError, match="no such store folder"):
        api.open_store(tmp_path / "nope")
    with pytest.raises(MGMError, match="choose pca or umap"):
        s.projection(method="tsne")


def test_import_and_reading_runs_import_no_torch(tmp_path):
    path = make_run(tmp_path)
    code = BLOCK_TORCH + (
        "import mgm_analysis as mgm\n"
        f"run = mgm.load_run({str(path)!r}); s = mgm.open_store({str(tmp_path)!r})\n"
        "run.frames, run.metrics, run.sheet(), run._repr_html_(), s.catalog, s.runs()\n"
        "assert 'torch' not in sys.modules\nprint('ok', type(mgm.discover).__name__)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "ok function", p.stderr[-2000:]


@pytest.mark.slow
def test_ctrl_c_keeps_what_the_search_found(ckpt, tmp_path):
    """Interrupting a discovery (SIGINT, as Ctrl-C or a kernel interrupt sends) returns the run so far, in memory."""
    cfg = {**FAST_CONFIG, "epochs": 400}
    code = ("import mgm_analysis as mgm, warnings\nwarnings.simplefilter('ignore')\n"
            f"r = mgm.discover(region={REGION!r}, seed=3, generator={str(ckpt)!r}, **{cfg!r})\n"
            "print('RESULT', r.status, r.path is None, r.meta['resume']['epochs_done'], len(r.frames))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=tmp_path, preexec_fn=sigint_default)
    try:
        seen = ""
        while not re.search(r"\| *[1-9]\d*/400", seen):  # the progress bar: the search is in its epochs
            ch = proc.stderr.read(1)
            if not ch:
                break
            seen += ch
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (seen + err)[-2000:]
    _, status, in_memory, done, n = out.strip().splitlines()[-1].split()  # after what the engine printed
    assert status == "interrupted" and in_memory == "True" and 1 <= int(done) < 400 and int(n) == cfg["n_frames"]
    assert _files(tmp_path) == []  # in memory: nothing written


def test_store_dashboard_serves_the_store(tmp_path):
    import socket
    import time
    import urllib.request

    ids = [make_run(tmp_path, seed=s).name for s in range(2)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = api.open_store(tmp_path).dashboard(port=port)
    assert url == f"http://127.0.0.1:{port}/"
    deadline, page = time.monotonic() + 120, None
    while page is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "_dash-layout", timeout=5) as r:
                page = r.read().decode()
        except OSError:
            time.sleep(0.3)
    assert page is not None and all(i in page for i in ids)  # the run table lists the store's runs
