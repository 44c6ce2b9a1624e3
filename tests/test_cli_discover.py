"""`mgm discover / sweep / render` end to end on a tiny checkpoint: runs on disk, bad input, interrupt + resume."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _cli import mgm as _mgm
from _cli import sigint_default
from click.testing import CliRunner

from mgm_analysis import store
from mgm_analysis.cli import main

FAST = ["--frames", "5", "--epochs", "2", "--layers", "1:4", "--prim-dist", "0.2", "--offset", "0.05",
        "--outside-weight", "5", "--distance", "l2", "--quiet"]


def test_discover_writes_a_complete_run(ckpt, tmp_path):
    r = _mgm("discover", "--generator", ckpt, "--region", "rect:4,8,12,14", "--seed", "3", "--out", tmp_path, *FAST)
    assert r.exit_code == 0, r.output
    (run_dir,) = [p for p in tmp_path.iterdir()]
    run = store.load_run(run_dir)
    assert run.status == "complete" and run.latents.shape == (5, 6, 32) and run.reference.shape == (6, 32)
    assert len(run.frame_paths) == 5 and (run_dir / "animation.gif").exists() and run.mask.sum() == 8 * 6
    m = run.meta
    assert m["config"]["n_frames"] == 5 and m["config"]["layer_end"] == 4 and m["seed"] == 3
    assert m["generator"]["sha256"] and len(m["history"]["total"]) == 2
    for k in ("locality", "jump_ratio", "step_cv", "curvature", "layer_profile", "intrinsic_dim_90"):
        assert k in m["metrics"]
    df = store.catalog(tmp_path)
    assert len(df) == 1 and df.loc[0, "region"] == "rect" and 0 <= df.loc[0, "locality"] <= 1
    r = _mgm("render", run_dir, "--sheet")
    assert r.exit_code == 0 and (run_dir / "sheet.png").exists()


def test_same_seed_same_latents(ckpt, tmp_path):
    for out in ("a", "b"):
        assert _mgm("discover", "--generator", ckpt, "--region", "rect:4,8,12,14", "--out", tmp_path / out, *FAST).exit_code == 0
    (a,), (b,) = list((tmp_path / "a").iterdir()), list((tmp_path / "b").iterdir())
    assert np.array_equal(np.load(a / "latents.npy"), np.load(b / "latents.npy"))


@pytest.mark.parametrize("args, needle", [
    (["--region", "rect:0,0,40,4"], "outside"),
    (["--region", "rect:0,0,16,16"], "whole image"),
    (["--region", "ellipse:-40,-40,2,2"], "empty"),
    (["--region", "lips"], "unknown region"),
    (["--frames", "2"], "frames must be >= 3"),
    (["--layers", "1:9"], "outside the generator's 6 W+ layers"),
    (["--alpha", "-1"], "alpha"),
    (["--offset", "-0.5"], "offset"),
    (["--prim-dist", "-1"], "prim-dist"),
    (["--truncation", "1.5"], "truncation"),
    (["--mask-mode", "paper", "--region", "ellipse:8,11,4,3"], "exactly one rectangle"),
    (["--reference", "missing.npy"], "no such file"),
    (["--generator", "nosuchmodel"], "unknown generator"),
])
def test_bad_input_one_line_no_run(ckpt, tmp_path, args, needle):
    base = ["discover", "--generator", ckpt, "--region", "rect:4,8,12,14", "--out", tmp_path / "runs"]
    full = base + FAST
    for i in range(0, len(args), 2):  # later flags override earlier ones
        full += args[i:i + 2]
    r = CliRunner().invoke(main, [str(a) for a in full])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_misshaped_reference(ckpt, tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((3, 7), np.float32))
    r = CliRunner().invoke(main, ["discover", "--generator", str(ckpt), "--region", "rect:4,8,12,14", "--reference",
                                  str(tmp_path / "w.npy"), "--out", str(tmp_path / "runs"), *FAST])
    assert r.exit_code == 2 and "has shape [3, 7]" in r.output


def test_reference_file_and_sweep(ckpt, tmp_path):
    np.save(tmp_path / "w.npy", np.zeros(32, np.float32))
    assert _mgm("discover", "--generator", ckpt, "--region", "rect:4,8,12,14", "--reference", tmp_path / "w.npy",
                "--out", tmp_path / "runs", *FAST).exit_code == 0
    r = _mgm("sweep", "--generator", ckpt, "--regions", "ellipse:8,11,4,3,rect:2,2,8,6", "--seeds", "0-1", "--out",
             tmp_path / "sweep", *FAST)
    assert r.exit_code == 0, r.output
    assert sorted(store.catalog(tmp_path / "sweep").region) == ["ellipse", "ellipse", "rect", "rect"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_interrupted_run_and_resume_completes(ckpt, tmp_path, sig):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "mgm_analysis.cli", "discover", "--generator", str(ckpt), "--region",
           "rect:4,8,12,14", "--out", str(out), "--frames", "5", "--epochs", "100000", "--layers", "1:4",
           "--prim-dist", "0.2", "--offset", "0.05", "--patience", "0", "--distance", "l2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=sigint_default)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stderr.read1(256), b"")), daemon=True)
    reader.start()
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # wait until at least one epoch is done
        if re.search(rb"[1-9]\d*/100000", b"".join(seen)):
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=120)  # stdout is a few lines: the pipe cannot fill up before the exit
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail(f"discover did not exit within 120 s of signal {sig!r}")
    stdout = proc.stdout.read().decode()
    reader.join(timeout=5)
    assert proc.returncode == 128 + sig, b"".join(seen)[-2000:]  # saved, then the signal's exit status
    (run_dir,) = list(out.iterdir())
    run = store.load_run(run_dir)
    assert run.status == "interrupted" and "resume with" in stdout
    done = run.meta["resume"]["epochs_done"]
    assert done >= 1 and np.isfinite(run.latents).all()
    assert json.loads((run_dir / "run.json").read_text())["stop_reason"] == "interrupted"
    # finish it with a small epoch budget (--epochs is the one flag --resume takes)
    r = _mgm("discover", "--resume", run_dir, "--epochs", done + 2, "--quiet")
    assert r.exit_code == 0, r.output
    run = store.load_run(run_dir)
    assert run.status == "complete" and run.meta["resume"]["epochs_done"] == done + 2
    assert len(run.meta["history"]["epoch"]) == done + 2
    assert len(list(out.iterdir())) == 1  # resumed in place, no temp folders left
    r = CliRunner().invoke(main, ["discover", "--resume", str(run_dir)])
    assert r.exit_code == 2 and "already complete" in r.output


def test_lpips_without_backbone_says_which_file(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    r = CliRunner().invoke(main, ["discover", "--generator", str(ckpt), "--region", "rect:4,8,12,14", "--distance",
                                  "lpips", "--layers", "1:4", "--out", str(tmp_path / "runs"), "--quiet"])
    assert r.exit_code == 2
    assert "alexnet-owt-7be5be79.pth" in r.output and "--distance l2" in r.output
    assert not (tmp_path / "runs").exists()


def test_render_mp4_without_encoder_is_one_line(ckpt, tmp_path, monkeypatch):
    assert _mgm("discover", "--generator", ckpt, "--region", "rect:4,8,12,14", "--out", tmp_path, *FAST).exit_code == 0
    (run_dir,) = list(tmp_path.iterdir())
    monkeypatch.setattr("mgm_analysis.render._ffmpeg", lambda: None)
    r = CliRunner().invoke(main, ["render", str(run_dir), "--mp4"])
    assert r.exit_code == 2 and r.output.strip().startswith("error: MP4 needs ffmpeg")
    assert len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["render", str(run_dir), "--sheet", "--rerender", "--no-gif"])
    assert r.exit_code == 0, r.output
    from PIL import Image

    with Image.open(run_dir / "sheet.png") as im:
        assert im.size[0] > 16 * 6


def test_demo_wires_discover_analyze_and_serve(tmp_path, monkeypatch):
    import mgm_analysis.analysis.report as report
    import mgm_analysis.generators as generators

    calls = {"runs": [], "analyze": None, "serve": None}
    import mgm_analysis.jobs as jobs

    monkeypatch.setattr(generators, "load_generator", lambda *a, **k: "G")
    monkeypatch.setattr(jobs, "run_job", lambda spec, out, **kw: calls["runs"].append(
        (spec.region, spec.seed, kw["G"], spec.kind, spec.config.get("epochs"), out)) or tmp_path / "r")
    monkeypatch.setattr(report, "analyze", lambda root, out, **kw: calls.__setitem__("analyze", (root, out, kw)))
    try:
        import dashboards.app as app

        monkeypatch.setattr(app, "serve", lambda root, host, port, **kw: calls.__setitem__(
            "serve", (root, host, port, kw["discover"].generator, kw["discover"].enabled)))
    except ImportError:
        app = None
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "runs"), "--report", str(tmp_path / "rep"),
                                  "--port", "8999", "--quiet"])
    assert r.exit_code == 0, r.output
    out = str(tmp_path / "runs")
    # the demo runs mgm discover's toyfaces defaults (no epochs of its own) unless --epochs is given
    assert sorted(calls["runs"]) == sorted((reg, s, "G", "discover", None, out)
                                           for reg in ("mouth", "eyes", "brows") for s in (0, 1))
    assert calls["analyze"] == (str(tmp_path / "runs"), str(tmp_path / "rep"),
                                {"quiet": True, "transfer": 2, "combine": True})
    if app is not None:
        assert calls["serve"] == (str(tmp_path / "runs"), "127.0.0.1", 8999, "toyfaces", True)  # with Discover
    assert "mgm dashboard" in r.output
    calls["serve"], calls["runs"] = None, []
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "runs"), "--no-serve", "--quiet", "--epochs", "7"])
    assert r.exit_code == 0, r.output
    assert calls["serve"] is None
    assert {c[4] for c in calls["runs"]} == {7}


def test_sweep_job_reports_errors_instead_of_raising(ckpt, tmp_path):
    from mgm_analysis.jobs import JobSpec
    from mgm_analysis.sweep import execute

    got = execute(JobSpec(generator=str(ckpt), region="lips", seed=0).to_dict(), str(tmp_path), threads=1)
    assert got["status"] == "failed" and "unknown region" in got["error"]
    assert not any(tmp_path.iterdir())


def test_offset_ramp_gap_uses_the_per_frame_targets(ckpt, tmp_path):
    """inside_gap of a ramped run compares the mean inside distance with the mean of the ramp (0 → c)."""
    import numpy as np

    from mgm_analysis.measure import recompute_metrics
    from mgm_analysis.metrics import inside_change

    r = _mgm("discover", "--generator", ckpt, "--region", "rect:4,8,12,14", "--offset-ramp", "--out", tmp_path, *FAST)
    assert r.exit_code == 0, r.output
    (run_dir,) = [p for p in tmp_path.iterdir()]
    run = store.load_run(run_dir)
    written = run.meta["metrics"]["inside_gap"]
    expected = inside_change(run.frames, run.reference_img, run.mask, offset=np.linspace(0, 0.05, 5))["gap"]
    constant = inside_change(run.frames, run.reference_img, run.mask, offset=0.05)["gap"]
    # (frames on disk are 8-bit PNGs, the written figure came from the float images)
    assert written == pytest.approx(expected, rel=2e-3) and abs(constant - expected) > 0.01
    recompute_metrics(tmp_path)
    assert store.load_run(run_dir).meta["metrics"]["inside_gap"] == pytest.approx(written, rel=2e-3)
