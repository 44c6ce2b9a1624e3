"""A store read while runs are written into it, with real processes (issue 24: "a reader running while runs are
written sees only complete runs").

One process writes runs into a store one by one (``store.write_run``, through the synthetic store's writer);
another reads it over and over as the dashboard does (``dashboards.data.snapshot``, then every run's arrays),
and ``mgm analyze`` runs on it meanwhile (in the test's process).  The writer waits for one more read before each run, so reads and
writes interleave on any machine (the reader never pauses: its reads overlap the writes).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from _cli import mgm

ROOT = Path(__file__).resolve().parents[1]
N_RUNS = 12

# Writes N_RUNS runs; before each it waits until the reader has finished one more pass (its "reads" file), and
# half-way until the gate file says mgm analyze has read the first half.
_WRITER = """
import sys, time
from pathlib import Path
from dashboards.synthetic import make_store
root, reads, n, gate = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
def passes():
    try:
        return int(reads.read_text() or 0)
    except (OSError, ValueError):
        return 0
for i in range(n):
    t0 = time.monotonic()
    while i == n // 2 and not gate.exists() and time.monotonic() - t0 < 120:
        time.sleep(0.01)
    seen, t0 = passes(), time.monotonic()
    while passes() == seen and time.monotonic() - t0 < 30:
        time.sleep(0.005)
    make_store(root, 1, start=i, n_frames=12, num_ws=8, w_dim=64, resolution=32)
"""

# Reads the store as the dashboard does until the stop file appears, then once more; prints what each pass saw.
_READER = """
import json, sys
from pathlib import Path
from dashboards import data
from mgm_analysis import store
root, reads, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
seen, problems, k = [], [], 0
while True:
    last = stop.exists()
    snap = data.snapshot(root)
    problems += list(snap.problems)
    for run in snap.runs.values():  # every run's arrays load and are finite (RunReadError otherwise)
        store.check_run_data(run)
        assert len(run.frame_paths) == run.latents.shape[0], run.run_id
    seen.append(len(snap.runs))
    k += 1
    tmp = reads.with_suffix(".tmp")
    tmp.write_text(str(k))
    tmp.replace(reads)
    if last:
        break
print(json.dumps({"seen": seen, "problems": problems}))
"""


def _python(code, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _analyze(root, out):
    """``mgm analyze`` in this process (the writer and the reader are processes of their own)."""
    res = mgm("analyze", root, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == "", res.stderr  # no folder skipped as unreadable, no warning
    return pd.read_csv(out / "metrics.csv")


@pytest.mark.slow
def test_readers_see_only_complete_runs_while_runs_are_written(tmp_path):
    root, reads, stop, gate = tmp_path / "runs", tmp_path / "reads", tmp_path / "stop", tmp_path / "gate"
    root.mkdir()
    reader = _python(_READER, root, reads, stop)
    writer = _python(_WRITER, root, reads, N_RUNS, gate)
    counts = []
    try:
        t0 = time.monotonic()
        while not any(p.name[0] != "." for p in root.iterdir()) and time.monotonic() - t0 < 120:
            time.sleep(0.02)
        while writer.poll() is None and len(counts) < 3:  # mgm analyze while the writer writes
            table = _analyze(root, tmp_path / f"report{len(counts)}")
            assert all((root / r / "run.json").is_file() for r in table["run_id"])
            counts.append(len(table))
            gate.touch()  # the writer goes on with the second half
        assert writer.wait(120) == 0, writer.stderr.read()
    finally:
        gate.touch()
        stop.touch()
        if writer.poll() is None:
            writer.kill()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    got = json.loads(out)
    seen = got["seen"]
    print(f"{len(seen)} reader passes saw {sorted(set(seen))} runs; mgm analyze saw {counts}")
    assert got["problems"] == []                               # never a half-written or unreadable folder
    assert seen == sorted(seen)                                # a run once seen stays
    assert seen[-1] == N_RUNS                                  # and at the end every run has landed
    assert len({n for n in seen if 0 < n < N_RUNS}) >= N_RUNS // 2  # the reads really happened during the writes
    assert 1 <= counts[0] <= N_RUNS // 2 and counts == sorted(counts)  # mgm analyze read the store half-written
    assert len(_analyze(root, tmp_path / "final")) == N_RUNS
    assert [p.name for p in root.iterdir() if p.name.startswith(".tmp")] == []
