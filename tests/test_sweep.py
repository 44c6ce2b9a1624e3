"""`mgm sweep`: grids, the store's sweep record, reruns by key, Dask workers (local cluster, a killed worker, an
external scheduler), Ctrl-C, bad input.  Tiny seeded generator, 2 epochs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _cli import mgm as _mgm
from _cli import sigint_default
from click.testing import CliRunner

from mgm_analysis import store
from mgm_analysis.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--frames", "5", "--epochs", "2", "--layers", "1:4", "--prim-dist", "0.2", "--outside-weight", "5",
        "--distance", "l2", "--quiet"]
GRID = ["--regions", "rect:4,8,12,14,ellipse:8,5,4,3", "--seeds", "0-2", "--set", "offset=0.05,0.08"]
SMALL_GRID = ["--regions", "rect:4,8,12,14,ellipse:8,5,4,3", "--seeds", "0", "--set", "offset=0.05,0.08"]  # 4 jobs
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cli(*args, timeout=600):
    """`mgm ...` in a fresh process (as a user runs it)."""
    return subprocess.run([sys.executable, "-m", "mgm_analysis.cli", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


def _runs(out):
    return {p.name: store.load_run(p) for p in Path(out).iterdir() if not p.name.startswith(".")}


def _record(out):
    (path,) = list((Path(out) / ".sweeps").glob("*.json"))
    return json.loads(path.read_text())


def _env(tmp_path):
    """ENV with the run locks under ``tmp_path``: a lock file appears when a job's search starts (an event the
    tests wait on instead of fixed sleeps)."""
    return {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def _searches_started(tmp_path) -> int:
    """How many jobs have started their search (their run's lock file exists)."""
    locks = tmp_path / "cache" / "mgm_analysis" / "locks"
    return len(list(locks.glob("*/*.lock"))) if locks.is_dir() else 0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_grid_serial_record_and_rerun(ckpt, tmp_path):
    out = tmp_path / "runs"
    r = _mgm("sweep", "--generator", ckpt, *GRID, "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    runs = _runs(out)
    assert len(runs) == 12 and all(r.status == "complete" for r in runs.values())
    # the cartesian product, each cell once: 2 regions x 3 seeds x 2 offsets
    cells = sorted((r.region, r.meta["seed"], r.meta["config"]["offset"]) for r in runs.values())
    assert cells == sorted((reg, s, c) for reg in ("rect", "ellipse") for s in (0, 1, 2) for c in (0.05, 0.08))
    rec = _record(out)
    assert rec["grid"]["sets"] == {"offset": [0.05, 0.08]} and len(rec["jobs"]) == 12
    assert {j["run_id"] for j in rec["jobs"]} == set(runs) and {j["status"] for j in rec["jobs"]} == {"complete"}
    for j in rec["jobs"]:
        assert runs[j["run_id"]].meta["provenance"]["key"] == j["key"]
    # rerun: every job is found complete by its key, nothing runs, nothing is added
    import mgm_analysis.jobs as jobs

    before = {n: (out / n / "run.json").stat().st_mtime_ns for n in runs}
    r = _mgm("sweep", "--generator", ckpt, *GRID, "--out", out, *FAST)
    assert r.exit_code == 0 and "0 run now, 12 already complete" in r.output, r.output
    assert {n: (out / n / "run.json").stat().st_mtime_ns for n in _runs(out)} == before
    assert jobs  # (imported for the monkeypatch-free check above: nothing rewrote a run.json)


def test_failed_job_is_retried_once_reported_and_run_again(ckpt, tmp_path, monkeypatch):
    import mgm_analysis.discovery as discovery

    real, calls = discovery.discover, []

    def flaky(G, w_ref, mask, cfg, **kw):  # the ellipse job's search breaks (an unexpected error, not bad input)
        calls.append(int(mask.inside.sum()))  # the distance module run_job built: its mask in pixels
        if broken[0] and calls[-1] != 48:
            raise RuntimeError("CUDA error: an illegal memory access")
        return real(G, w_ref, mask, cfg, **kw)

    broken = [True]
    monkeypatch.setattr(discovery, "discover", flaky)
    out = tmp_path / "runs"
    args = ["sweep", "--generator", ckpt, "--regions", "rect:4,8,12,14,ellipse:8,5,4,3", "--seeds", "0", "--out",
            out, *FAST]
    r = _mgm(*args)
    assert r.exit_code == 1
    assert "failed ellipse:8,5,4,3 seed 0: RuntimeError: CUDA error" in r.output
    assert calls.count(48) == 1 and len(calls) == 3  # the rect (48 pixels) once, the failing job twice (one retry)
    by = {j["label"]: j for j in _record(out)["jobs"]}
    assert by["rect:4,8,12,14"]["status"] == "complete" and by["ellipse:8,5,4,3"]["status"] == "failed"
    assert len(_runs(out)) == 1  # nothing written for the failed job
    broken[0] = False
    r = _mgm(*args)  # the failed job runs again, the complete one is skipped
    assert r.exit_code == 0 and "1 run now, 1 already complete" in r.output, r.output
    assert len(calls) == 4 and len(_runs(out)) == 2


def _worker_pids(parent_pid):
    import psutil

    out = []
    for c in psutil.Process(parent_pid).children(recursive=True):
        try:
            cmd = " ".join(c.cmdline())
        except psutil.Error:
            continue
        # a worker process: spawned by multiprocessing, or retitled "dask worker [...]" (with setproctitle)
        if ("multiprocessing" in cmd or cmd.startswith("dask worker")) and "resource_tracker" not in cmd:
            out.append(c.pid)
    return out


@pytest.mark.slow
def test_dask_workers_equal_serial_even_with_one_killed_and_a_rerun_runs_nothing(ckpt, tmp_path):
    """Two local Dask workers, one killed outright (SIGKILL) while both search: the sweep ends 0, every job ran
    exactly once (the killed one again, on the restarted worker) and every run's latents equal the serial sweep's
    bit for bit; the same command again runs nothing and starts no cluster.  (One cluster for both checks: a
    local cluster costs ~6 s of CPU to start.)"""
    serial, dask_out = tmp_path / "serial", tmp_path / "dask"
    grid = [*SMALL_GRID, *FAST, "--epochs", "20"]  # 4 jobs, long enough to be killed in the middle of one
    s = _mgm("sweep", "--generator", ckpt, *grid, "--out", serial)  # serial, in this process
    assert s.exit_code == 0, s.output[-3000:]
    # the Dask sweep in a fresh process, as a user runs it (its local cluster's workers are processes of its own)
    args = [sys.executable, "-m", "mgm_analysis.cli", "sweep", "--generator", str(ckpt), *grid, "--out",
            str(dask_out), "--workers", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    killed = None
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and killed is None:
            pids = _worker_pids(proc.pid)
            # both workers are searching (each job's lock file appears when its search starts): kill one while
            # it works
            if _searches_started(tmp_path) >= 2 and len(pids) >= 2:
                time.sleep(0.5)
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.1)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, f"the sweep ended before a worker could be killed: {stderr[-1500:]}"
    assert proc.returncode == 0, stderr[-3000:]
    a, b = _runs(serial), _runs(dask_out)
    assert len(b) == 4 and set(a) == set(b) and all(r.status == "complete" for r in b.values())
    assert sorted(os.listdir(dask_out)) == sorted([*b, ".sweeps"])  # no temporary or duplicate folders
    for name in a:
        assert np.array_equal(a[name].latents, b[name].latents), name
    p = _mgm("sweep", "--generator", ckpt, *grid, "--out", dask_out, "--workers", "2")
    assert p.exit_code == 0 and "0 run now, 4 already complete" in p.stdout, p.output[-2000:]
    assert "Dask workers" not in p.stderr  # nothing to run: no cluster was started


@pytest.mark.slow
def test_external_dask_scheduler_and_worker(ckpt, tmp_path):
    port = _free_port()
    dask = str(Path(sys.executable).with_name("dask"))
    procs = []
    try:
        procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=ENV, cwd=tmp_path))
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the dask scheduler did not start")
        procs.append(subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1", "--nthreads",
                                       "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=ENV, cwd=tmp_path))
        out = tmp_path / "runs"
        p = _cli("sweep", "--generator", ckpt, "--regions", "rect:4,8,12,14", "--seeds", "0-1", "--out", out,
                 "--scheduler", f"tcp://127.0.0.1:{port}", *FAST, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "1 Dask workers at tcp://127.0.0.1" in p.stderr
        runs = _runs(out)
        assert len(runs) == 2 and all(r.status == "complete" for r in runs.values())
    finally:
        for pr in reversed(procs):
            pr.terminate()
        for pr in reversed(procs):
            try:
                pr.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pr.kill()


def test_unreachable_scheduler_is_one_line(ckpt, tmp_path):
    port = _free_port()  # nothing listens there
    p = _cli("sweep", "--generator", ckpt, "--regions", "rect:4,8,12,14", "--seeds", "0", "--out", tmp_path / "r",
             "--scheduler", f"tcp://127.0.0.1:{port}", *FAST, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if not ln.startswith("sweep")]
    assert len(lines) == 1 and lines[0].startswith("error: --scheduler tcp://127.0.0.1:") and "no Dask scheduler" in \
        lines[0], p.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, needle", [
    (["--set", "epoch=1,2"], "unknown config field 'epoch'"),
    (["--set", "offset=0.1,abc"], "offset takes a float, got 'abc'"),
    (["--set", "n_frames=2,5"], "--frames must be >= 3"),
    (["--set", "offset"], "expected FIELD=v1,v2"),
    (["--kinds", "discover,train"], "unknown job kind train"),
    (["--kinds", "discover,transfer"], "needs --transfer-seeds"),
    (["--out", "/dev/null"], "--out /dev/null"),
    (["--regions", "rect:4,8,12,14,lips"], "unknown region"),
    (["--regions", "rect:4,8,12,14,poly:1,1,2,2,3,3"], "collinear"),
    (["--set", "layer_end=5,9"], "outside the generator's 6 W+ layers"),
    (["--out", "/proc/mgm/x", "--workers", "2"], "cannot write a run there"),
])
def test_bad_input_one_line_nothing_written(ckpt, tmp_path, args, needle):
    out = tmp_path / "runs"
    r = CliRunner().invoke(main, ["sweep", "--generator", str(ckpt), "--regions", "rect:4,8,12,14", "--seeds", "0",
                                  "--out", str(out), *FAST, *args])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.output
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_saves_the_running_job_and_a_rerun_finishes(ckpt, tmp_path):
    out = tmp_path / "runs"
    args = ["sweep", "--generator", str(ckpt), "--regions", "rect:4,8,12,14", "--seeds", "0-1", "--out", str(out),
            *FAST, "--epochs", "15"]
    proc = subprocess.Popen([sys.executable, "-m", "mgm_analysis.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=sigint_default)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:  # the first job is running (a search started)
            rec = list((out / ".sweeps").glob("*.json")) if (out / ".sweeps").exists() else []
            if rec and any(j["status"] == "running" for j in json.loads(rec[0].read_text())["jobs"]):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # a few epochs in
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "resume with: mgm sweep" in stderr
    runs = _runs(out)
    assert sorted(r.status for r in runs.values()).count("interrupted") <= 1
    assert all(r.status in ("complete", "interrupted") for r in runs.values())
    by_run = {j["run_id"]: j["status"] for j in _record(out)["jobs"]}
    assert len(by_run) == 2 and all(by_run[n] == r.status for n, r in runs.items())
    assert all(st == "pending" for n, st in by_run.items() if n not in runs)  # not started: nothing on disk
    p = _mgm(*args)  # the same command (here in this process) resumes and finishes
    assert p.exit_code == 0, p.output[-2000:]
    runs2 = _runs(out)
    assert len(runs2) == 2 and all(r.status == "complete" for r in runs2.values())
    for name, r in runs.items():  # the interrupted run was resumed in place, the complete ones left alone
        assert runs2[name].meta["resume"]["resumed"] is (r.status == "interrupted")
    assert sorted(os.listdir(out)) == sorted([*runs2, ".sweeps"])


def test_derived_kinds_follow_their_sources(ckpt, tmp_path):
    out = tmp_path / "runs"
    r = _mgm("sweep", "--generator", ckpt, "--regions", "rect:4,8,12,14,ellipse:8,5,4,3", "--seeds", "0", "--kinds",
             "discover,transfer,combine", "--transfer-seeds", "0,7", "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    runs = _runs(out)
    by_kind = {}
    for run in runs.values():
        by_kind.setdefault(run.kind, []).append(run)
    # 2 searches; each transferred to seed 7 (its own seed 0 is skipped); the one pair of regions combined
    assert {k: len(v) for k, v in by_kind.items()} == {"discover": 2, "transfer": 2, "combine": 1}
    disc = {r.run_id: r for r in by_kind["discover"]}
    for t in by_kind["transfer"]:
        (src,) = t.meta["provenance"]["sources"]
        assert t.meta["seed"] == 7 and np.allclose(t.latents - t.reference[None],
                                                   disc[src].latents - disc[src].reference[None], atol=1e-5)
    (c,) = by_kind["combine"]
    assert sorted(c.meta["provenance"]["sources"]) == sorted(disc)
    r = _mgm("sweep", "--generator", ckpt, "--regions", "rect:4,8,12,14,ellipse:8,5,4,3", "--seeds", "0", "--kinds",
             "discover,transfer,combine", "--transfer-seeds", "0,7", "--out", out, *FAST)
    assert "0 run now, 5 already complete" in r.output and len(_runs(out)) == 5


@pytest.mark.slow
def test_ctrl_c_on_a_dask_sweep_saves_running_jobs(ckpt, tmp_path):
    """Ctrl-C in a terminal reaches the whole process group (the sweep and its local worker): the running search
    is saved interrupted, the job not started is left pending, and a rerun finishes both."""
    out = tmp_path / "runs"
    args = ["sweep", "--generator", str(ckpt), "--regions", "rect:4,8,12,14", "--seeds", "0-1", "--out", str(out),
            "--workers", "1", *FAST, "--epochs", "40"]
    proc = subprocess.Popen([sys.executable, "-m", "mgm_analysis.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp_path), start_new_session=True,
                            preexec_fn=sigint_default)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:  # the worker is searching (its job's lock exists)
            if _searches_started(tmp_path) >= 1:
                break
            time.sleep(0.05)
        # a few epochs in (a search stopped before its first epoch has nothing to save), well before its end: a
        # 40-epoch search takes ~3 s here
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-3000:]
    assert "resume with: mgm sweep" in stderr
    runs = _runs(out)
    assert all(r.status in ("complete", "interrupted") for r in runs.values())
    assert [r.status for r in runs.values()] == ["interrupted"]  # the running search was saved, the other not begun
    assert sorted(j["status"] for j in _record(out)["jobs"]) == ["interrupted", "pending"]
    # a rerun finishes the sweep: serial and in this process (a second local cluster would cost seconds of start-up;
    # the jobs and the store are the same whatever runs them)
    i = args.index("--workers")
    p = _mgm(*args[:i], *args[i + 2:])
    assert p.exit_code == 0, p.output[-2000:]
    assert "already complete" in p.stdout and "run now" in p.stdout, p.stdout
    runs2 = _runs(out)
    assert len(runs2) == 2 and all(r.status == "complete" for r in runs2.values())
    for name, r in runs.items():  # the interrupted runs were resumed in place, the complete ones left alone
        assert runs2[name].meta["resume"]["resumed"] is (r.status == "interrupted")
    assert sorted(os.listdir(out)) == sorted([*runs2, ".sweeps"])


def test_overlap_figure_of_a_sweep_sized_store_shows_region_means():
    """Above 300 runs the report's overlap figure is the region x region mean (a loop here), not a 301² heat-map."""
    import pandas as pd

    from mgm_analysis.analysis.report import MAX_OVERLAP_FIGURE_RUNS, fig_overlap

    n = MAX_OVERLAP_FIGURE_RUNS + 1
    ids = [f"run{i:04d}" for i in range(n)]
    vals = np.random.default_rng(0).random((n, n))
    M = pd.DataFrame(vals, index=ids, columns=ids)
    region = {r: ("eyes", "mouth")[i % 2] for i, r in enumerate(ids)}
    M.attrs = {"regions": region, "references": {r: "seed 0" for r in ids}, "k": 3}
    (trace,) = fig_overlap(M).data
    assert list(trace.x) == ["eyes", "mouth"] and list(trace.y) == ["eyes", "mouth"]
    for a, ra in enumerate(["eyes", "mouth"]):
        for b, rb in enumerate(["eyes", "mouth"]):
            cells = [vals[i, j] for i in range(n) for j in range(n)
                     if i != j and region[ids[i]] == ra and region[ids[j]] == rb]
            assert trace.z[a][b] == pytest.approx(sum(cells) / len(cells))
