"""Inputs that used to escape as a traceback, an attempted 400 TB allocation or a silent success: each is now one
line naming what is wrong, exit 2, and nothing written.  Through mgm's command line in this process (Click's runner,
exceptions not caught: a traceback fails the test); what needs processes of its own (two at once, a file-size
limit) runs ``python -m mgm_analysis.cli``, and test_bad_inputs.py runs bad input through a real process too."""

import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from _cli import mgm

from mgm_analysis.generators.checkpoints import save_checkpoint
from mgm_analysis.generators.stylegan2 import tiny_generator

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--region", "rect:4,8,12,14", "--layers", "1:4", "--frames", "5", "--distance", "l2", "--quiet"]


def _mgm(*args):
    """``mgm ARGS`` in this process: its exit code and standard error, as a process would give them."""
    r = mgm(*args)
    return types.SimpleNamespace(returncode=r.exit_code, stdout=r.stdout, stderr=r.stderr)


def _one_line(p, *needles):
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (p.returncode, p.stderr[-1500:])
    assert "Traceback" not in p.stderr and all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def _state_dict():
    G = tiny_generator(resolution=16, w_dim=32, seed=2)
    return {k: v.clone() for k, v in G.state_dict().items() if k != "w_avg"}


def _network_pickle(path: Path, obj_of) -> None:
    """A pickle naming NVIDIA's torch_utils.persistence._reconstruct_persistent_obj, written without NVIDIA's code:
    the function comes from a module made here for the dump and removed after."""
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        return meta

    _reconstruct_persistent_obj.__module__ = mod.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class P:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules["torch_utils"], sys.modules["torch_utils.persistence"] = types.ModuleType("torch_utils"), mod
    try:
        path.write_bytes(pickle.dumps(obj_of(P), protocol=4))
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


@pytest.mark.parametrize("shape, stride", [((10**7, 10**7), (0, 0)), ((1, 10**5, 10**5, 3, 3), (0, 0, 0, 0, 0)),
                                           ((64, 64), (1, 1))])
def test_a_view_claiming_more_than_its_storage(tmp_path, shape, stride):
    """A tensor view whose shape reads more elements than its storage holds (zero or overlapping strides): torch
    would allocate the shape (10⁷ × 10⁷ floats = 400 TB) when the model is built from it."""
    sd = _state_dict()
    key = "style.1.weight" if len(shape) == 2 else "convs.0.conv.weight"
    storage = torch.zeros(64 + 64 if stride == (1, 1) else 1)
    sd[key] = storage.as_strided(shape, stride)
    path = tmp_path / "crafted.pt"
    torch.save({"g_ema": sd}, path)
    numel = 1
    for n in shape:
        numel *= n
    cmds = [["info", path], ["discover", "--generator", path, "--out", tmp_path / "runs", *TINY]]
    for cmd in cmds:
        line = _one_line(_mgm(*cmd), key, f"{numel:,} elements", "corrupt or crafted")
        assert f"storage of {storage.numel():,}" in line
    assert not (tmp_path / "runs").exists()


def test_weights_that_are_not_finite(tmp_path):
    G = tiny_generator(resolution=16, w_dim=32, seed=2)
    with torch.no_grad():
        G.convs[0].conv.weight[0, 0, 0, 0, 0] = float("nan")  # one weight is enough to poison every image
        G.to_rgbs[0].conv.weight.fill_(float("inf"))
    want = 1 + G.to_rgbs[0].conv.weight.numel()
    path = tmp_path / "diverged.pt"
    save_checkpoint(G, path)
    for cmd in (["info", path], ["discover", "--generator", path, "--out", tmp_path / "runs", *TINY]):
        _one_line(_mgm(*cmd), f"{want} of ", "NaN or infinite")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("case", ["no state", "submodules without state", "no G_ema object"])
def test_network_pickles_whose_objects_carry_no_state(tmp_path, case):
    def obj(P):
        if case == "no state":
            return {"G_ema": P({"type": "class", "class_name": "Generator", "version": 4})}
        if case == "submodules without state":
            return {"G_ema": P({"type": "class", "class_name": "Generator", "version": 4, "state": {"_modules": {
                "mapping": P({"type": "class", "class_name": "MappingNetwork"}),
                "synthesis": P({"type": "class", "class_name": "SynthesisNetwork", "state": None})}}})}
        return {"G_ema": None}

    path = tmp_path / "net.pkl"
    _network_pickle(path, obj)
    _one_line(_mgm("info", path), str(path), "G_ema")


def test_a_run_whose_generator_disagrees_with_its_spec_is_not_resumed(tmp_path):
    ckpt = tmp_path / "g.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), ckpt)
    out = tmp_path / "runs"
    p = _mgm("discover", "--generator", ckpt, "--epochs", "1", "--out", out, *TINY)
    assert p.returncode == 0, p.stderr
    (run,) = [d for d in out.iterdir() if not d.name.startswith(".")]
    meta = json.loads((run / "run.json").read_text())
    meta["status"], meta["generator"]["path"] = "interrupted", str(tmp_path / "other.pt")
    (run / "run.json").write_text(json.dumps(meta))
    before = sorted(str(q) for q in run.rglob("*"))
    _one_line(_mgm("discover", "--resume", run, "--epochs", "3"), "other.pt", str(ckpt), "start a new run")
    assert sorted(str(q) for q in run.rglob("*")) == before and json.loads((run / "run.json").read_text()) == meta


@pytest.mark.slow
def test_the_same_job_started_twice_at_once_searches_once(tmp_path):
    """Two processes start the same job in one store at the same moment: one searches, the other waits for it
    and finds its run; both exit 0 and the store holds one complete run, no temporary folder."""
    ckpt = tmp_path / "g.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), ckpt)
    out = tmp_path / "runs"
    # a search of ~3 s on one thread: the second process reaches the lock while the first searches
    args = [sys.executable, "-m", "mgm_analysis.cli", "discover", "--generator", str(ckpt), "--epochs", "50",
            "--out", str(out), *[a for a in TINY if a != "--quiet"]]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for _, e in outs]
    runs = [d for d in out.iterdir() if not d.name.startswith(".")]
    assert len(runs) == 1 and json.loads((runs[0] / "run.json").read_text())["status"] == "complete"
    assert [d.name for d in out.iterdir() if d.name.startswith(".")] == []  # no .tmp- folder left
    texts = [o + e for o, e in outs]
    made = [t for t in texts if t.startswith("complete:") or "\ncomplete:" in t]
    found = [t for t in texts if "already in the store" in t]
    assert len(made) == 1 and len(found) == 1, texts  # one search; the other found its run
    assert "waiting: another process is making" in found[0]


def _limited(limit_bytes):
    """preexec_fn: a file-size limit (RLIMIT_FSIZE) with SIGXFSZ ignored, so a write past it fails with EFBIG as a
    full disk fails with ENOSPC."""
    import resource
    import signal

    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return pre


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_full_disk_leaves_earlier_runs_and_reports_as_they_were(tmp_path):
    ckpt = tmp_path / "g.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), ckpt)
    out, rep = tmp_path / "runs", tmp_path / "report"
    assert _mgm("discover", "--generator", ckpt, "--epochs", "1", "--out", out, *TINY).returncode == 0
    assert _mgm("analyze", out, "--out", rep, "--quiet").returncode == 0  # in this process; the limited ones not
    runs_before, report_before = _tree(out), _tree(rep)
    for cmd, where, what in [(["discover", "--generator", ckpt, "--epochs", "1", "--seed", "5", "--out", out, *TINY],
                              out, "could not write run"),
                             (["analyze", out, "--out", rep, "--quiet"], rep, "could not write the report")]:
        p = subprocess.run([sys.executable, "-m", "mgm_analysis.cli", *map(str, cmd)], capture_output=True, text=True,
                           env=ENV, timeout=300, preexec_fn=_limited(2000))
        line = _one_line(p, str(where), what, "size limit", "MiB", "nothing was written")
        assert "needs about" in line or "needs more than" in line
    assert _tree(out) == runs_before and _tree(rep) == report_before  # byte for byte, nothing added or left
    assert not [p for p in tmp_path.rglob(".tmp-*")] and not [p for p in tmp_path.rglob(".old-*")]
    from mgm_analysis import store

    (run,) = [d for d in out.iterdir() if not d.name.startswith(".")]
    assert store.load_run(run).status == "complete" and len(store.load_run(run).frames) == 5
