"""A direction finder is one file, a metric one entry: added from outside the package, each goes through
``mgm baselines``, ``mgm analyze`` and the dashboard like a built-in.

Two ways each, nothing installed into the repository: an entry point — a folder with ``mymethod.py``,
``mymetric.py`` and a minimal ``*.dist-info`` (``entry_points.txt``) put on the path of a subprocess, where
``importlib.metadata`` finds it — and a registration at run time in this process.  Expected values (the line a
method's run follows, its equal strength K·c, the oracle's choice, a metric's values) are computed here, from the
tiny generator and the saved files, not read from the toolkit.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from mgm_analysis import store
from mgm_analysis.cli import main
from mgm_analysis.errors import MGMError
from mgm_analysis.finders.registry import check_method, register_method, unregister_method
from mgm_analysis.generators.stylegan2 import tiny_generator
from mgm_analysis.metrics import register_metric, run_metrics, unregister_metric

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from _dash import find_component as _find  # noqa: E402
from _fake_runs import make_run  # noqa: E402

REGION = "rect:3,3,11,9"
C = 0.004
#: the command line of a baseline run on the tiny 16² generator (free layers 1:4, 6 frames, l2, target c)
FLAGS = ["--region", REGION, "--layers", "1:4", "--frames", "6", "--offset", str(C), "--distance", "l2"]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from mgm_analysis.generators import load_generator
    from mgm_analysis.generators.checkpoints import save_checkpoint

    path = tmp_path_factory.mktemp("g") / "tiny16.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=16, seed=0), path)
    return path, load_generator(path)


@pytest.fixture
def registered():
    """Register methods and metrics for one test; they are unregistered after it (the registries are global)."""
    methods, metrics = [], []

    def method(name, fn, **kw):
        register_method(name, fn, **kw)
        methods.append(name)
        return fn

    def metric(name, fn, **kw):
        register_metric(name, fn, **kw)
        metrics.append(name)
        return fn

    yield method, metric
    for n in methods:
        unregister_method(n)
    for n in metrics:
        unregister_metric(n)


# ------------------------------------------------------------------ independent computations
def _unit_line(direction, n_free=3):
    """A direction [w_dim] or [F, w_dim] on every free layer, unit length over them (written out)."""
    d = np.asarray(direction, np.float64)
    if d.ndim == 1:
        d = np.stack([d] * n_free)
    return d / math.sqrt(float((d * d).sum()))


def _render01(G, ws):
    """Frames in [0, 1] as the engine sees them: G's images clamped to [-1, 1]."""
    with torch.no_grad():
        img = G.synthesis(torch.as_tensor(np.asarray(ws, np.float32))).clamp(-1, 1)
    return ((img + 1) / 2).permute(0, 2, 3, 1).double().numpy()


def _d_in(frames01, ref01, mask):
    """Mean over frames of the l2 inside distance on images in [-1, 1]: Σ M·mean_c (x − x*)² / Σ M."""
    out = []
    for f in frames01:
        diff = ((2 * f - 1) - (2 * ref01 - 1)) ** 2
        out.append(float((diff.mean(-1) * mask).sum() / mask.sum()))
    return float(np.mean(out))


def _locality(frames01, ref01, mask):
    num = den = 0.0
    for f in frames01:
        e = ((f - ref01) ** 2).sum(-1)
        num += float((e * mask).sum())
        den += float(e.sum())
    return num / den


def _check_method_run(run, G, candidates, K):
    """The run of a method that offered ``candidates`` ({name: direction [w_dim] or [F, w_dim]}) at strength K:
    a straight line through w* along the chosen candidate on the free layers 1:4, both ways, at equal strength K·c
    on its frames, and the chosen one the best-locality candidate at its recorded scale (the oracle)."""
    prov = run.meta["provenance"]
    params = prov["params"]
    names = [c["component"] for c in params["candidates"]]
    assert names == list(candidates) and prov["component"] in candidates
    best = prov["component"]
    # the line, written out: w_i = w* + s·t_i·d̂ on layers 1..3, t_i evenly in [−1, 1]; the other layers w*
    t = np.linspace(-1, 1, len(run.latents))
    expected = np.repeat(run.reference[None].astype(np.float64), len(t), 0)
    expected[:, 1:4] += prov["scale"] * t[:, None, None] * _unit_line(candidates[best])[None]
    np.testing.assert_allclose(run.latents, expected, atol=2e-5 * max(1.0, prov["scale"]))
    # equal strength: the mean inside distance of the frames (rendered here) is K·c
    ref01 = _render01(G, run.reference[None])[0]
    assert _d_in(_render01(G, run.latents), ref01, run.mask) == pytest.approx(K * C, rel=2e-3)
    saved = _d_in(run.frames, run.reference_img, run.mask)              # and on the saved 8-bit PNGs
    assert saved == pytest.approx(K * C, rel=0.03)
    # the oracle: each candidate's line at its recorded scale, rendered and measured here; the best is the choice
    loc = {}
    for c in params["candidates"]:
        ws = np.repeat(run.reference[None].astype(np.float64), len(t), 0)
        ws[:, 1:4] += c["scale"] * t[:, None, None] * _unit_line(candidates[c["component"]])[None]
        loc[c["component"]] = _locality(_render01(G, ws), ref01, run.mask)
        assert c["locality"] == pytest.approx(loc[c["component"]], rel=1e-3, abs=1e-6)
    assert best == max(loc, key=loc.get)


def _red_gain(frames, reference, mask):
    """The plugin metric, written out pixel by pixel: mean over frames of the mask-weighted mean red change."""
    frames, reference, mask = np.asarray(frames, np.float64), np.asarray(reference, np.float64), np.asarray(mask)
    vals = []
    for f in frames:
        s = w = 0.0
        for y in range(mask.shape[0]):
            for x in range(mask.shape[1]):
                s += mask[y, x] * (f[y, x, 0] - reference[y, x, 0])
                w += mask[y, x]
        vals.append(s / w)
    return float(np.mean(vals))



def _dashboard_options(root):
    """(the methods card's filter options, the metric picker's options) of the dashboard on ``root``."""
    from dashboards import layout as L
    from dashboards.app import create_app

    page = create_app(root).server.test_client().get("/_dash-layout").get_json()
    methods = [o["value"] for o in _find(page, L.METHODS_PICK)["props"]["options"]]
    metrics = [o if isinstance(o, str) else o["value"] for o in _find(page, L.METRICS_PICK)["props"]["options"]]
    return methods, metrics


# ------------------------------------------------------------------ (a) entry points, in a subprocess
PLUGIN_METHOD = '''
"""A direction finder outside the package: one file."""
import numpy as np

DIRS = np.random.default_rng(7).normal(size=(3, 16))


def directions(ctx):
    """three fixed directions in w (a test plugin)"""
    assert tuple(ctx.w_ref.shape) == (6, 16) and tuple(ctx.mask.shape) == (16, 16) and ctx.layers == (1, 4)
    return DIRS * np.array([[1.0], [2.0], [3.0]]), ["a", "b", "c"], {"plugin": "mymethod"}


def bad_shape(ctx):
    return np.ones((2, 5)), ["x", "y"]
'''

PLUGIN_METRIC = '''
"""A metric outside the package: one function."""
import numpy as np


def red_gain(frames, reference, mask):
    """mean red change inside the region"""
    m = np.asarray(mask, np.float64)
    d = (np.asarray(frames, np.float64)[..., 0] - np.asarray(reference, np.float64)[None, ..., 0])
    return float(((d * m).sum((1, 2)) / m.sum()).mean())


def raising(frames):
    raise RuntimeError("this metric always fails")


NOT_A_FUNCTION = "nope"
'''

ENTRY_POINTS = '''
[mgm_analysis.methods]
mymethod = mymethod:directions
badshape = mymethod:bad_shape
broken = no_such_module_anywhere:fn
sefa = mymethod:directions

[mgm_analysis.metrics]
red_gain = mymetric:red_gain
raising = mymetric:raising
not_a_metric = mymetric:NOT_A_FUNCTION
'''

DRIVER = '''
import json, sys
from pathlib import Path
from click.testing import CliRunner
from mgm_analysis.cli import main

ckpt, runs, report, other = sys.argv[1:5]
flags = json.loads(sys.argv[5])
r = CliRunner()
out = {}
for key, args in [
        ("help", ["baselines", "--help"]),
        ("run", ["baselines", "--methods", "mymethod", "--strength", "2", "--generator", ckpt, "--out", runs, *flags]),
        ("badshape", ["baselines", "--methods", "badshape", "--generator", ckpt, "--out", other + "-x", *flags]),
        ("broken", ["baselines", "--methods", "broken", "--generator", ckpt, "--out", other + "-y", *flags]),
        ("builtin", ["baselines", "--methods", "sefa", "--generator", ckpt, "--out", runs, *flags]),
        ("analyze", ["analyze", runs, "--out", report])]:
    res = r.invoke(main, args)
    out[key] = [res.exit_code, res.output, repr(res.exception) if res.exit_code not in (0, 2) else None]
from dashboards import data, layout as L
from dashboards.app import create_app


def find(c, id_):
    if isinstance(c, dict):
        if c.get("props", {}).get("id") == id_:
            return c
        c = list(c.get("props", {}).values())
    if isinstance(c, list):
        for v in c:
            f = find(v, id_)
            if f is not None:
                return f
    return None


page = create_app(runs).server.test_client().get("/_dash-layout").get_json()
out["method_filter"] = [o["value"] for o in find(page, L.METHODS_PICK)["props"]["options"]]
out["metric_pick"] = find(page, L.METRICS_PICK)["props"]["options"]
out["method_filter_other"] = data.method_options(data.snapshot(other))
print("JSON" + json.dumps(out))
'''


@pytest.mark.slow
def test_a_method_and_a_metric_added_as_entry_points(tiny_ckpt, tmp_path):
    ckpt, G = tiny_ckpt
    plugins = tmp_path / "plugins"
    info = plugins / "mgm_test_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (plugins / "mymethod.py").write_text(PLUGIN_METHOD)
    (plugins / "mymetric.py").write_text(PLUGIN_METRIC)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mgm-test-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    runs, other = tmp_path / "runs", tmp_path / "other"
    before = [make_run(runs, seed=0), make_run(runs, region="eyes", seed=1)]   # made before the metric existed
    make_run(other, seed=2)                                                      # a store without the method's runs
    assert "red_gain" not in store.load_run(before[0]).meta["metrics"]
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(ckpt), str(runs), str(tmp_path / "report"),
                           str(other), json.dumps(FLAGS)], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("JSON", 1)[1])
    # --help lists the plugin's method with its docstring; the bad plugins are one warning line each, no traceback
    code, text, _ = out["help"]
    assert code == 0 and "mymethod: three fixed directions in w (a test plugin)" in " ".join(text.split())
    lines = text.splitlines()
    broken = [ln for ln in lines if "broken = no_such_module_anywhere:fn" in ln]
    assert len(broken) == 1 and broken[0].startswith("warning: method plugin broken") and "cannot be imported" in \
        broken[0] and "uninstall the package" in broken[0]
    clash = [ln for ln in lines if "entry point sefa = mymethod:directions" in ln]
    assert len(clash) == 1 and "taken by a built-in method" in clash[0]
    assert all("Traceback" not in v[1] for v in out.values() if isinstance(v, list) and len(v) == 3)
    # accepted by --methods and run: one line, exit 0
    assert out["run"][0] == 0, out["run"]
    # a wrong return and a plugin that does not import: exit 2, one line that names it, nothing written
    code, text, _ = out["badshape"]
    err = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(err) == 1 and "method badshape (entry point badshape = mymethod:bad_shape" in err[0]
    assert "directions have shape [2, 5]; expected [k, 16]" in err[0] and not (tmp_path / "other-x").exists()
    code, text, _ = out["broken"]
    assert code == 2 and "error: method plugin broken" in text and not (tmp_path / "other-y").exists()
    assert out["builtin"][0] == 0                                  # the clash left the built-in sefa as it was
    assert out["analyze"][0] == 0, out["analyze"]

    # the method's run: equal strength K·c (K = 2) and the oracle's choice, computed here
    rng_dirs = np.random.default_rng(7).normal(size=(3, 16))
    runs_by_method = {store.load_run(p).meta["provenance"].get("method"): store.load_run(p)
                      for p in runs.iterdir() if (p / "run.json").exists()}
    run = runs_by_method["mymethod"]
    assert run.meta["provenance"]["params"]["info"] == {"plugin": "mymethod"}
    _check_method_run(run, G, {"a": rng_dirs[0], "b": rng_dirs[1], "c": rng_dirs[2]}, K=2)
    # methods.csv, the report, the dashboard's method filter
    report = tmp_path / "report"
    methods = pd.read_csv(report / "methods.csv")
    assert {"mymethod", "sefa"} <= set(methods.method)
    assert methods.loc[methods.method == "mymethod", "strength"].tolist() == [2.0]
    html = (report / "report.html").read_text()
    assert "mymethod" in html
    assert "mymethod" in out["method_filter"] and out["method_filter"][0] == "discovery"
    assert "mymethod" in out["method_filter_other"]         # from the registry, not only from the store's runs

    # the metric: in metrics.csv for every run, the older ones included, with the value computed here
    cat = pd.read_csv(report / "metrics.csv")
    assert "red_gain" in cat.columns and cat.red_gain.notna().all()
    for rid, value in zip(cat.run_id, cat.red_gain, strict=True):
        r = store.load_run(runs / rid)
        # the older runs were measured on their saved frames; the new ones at run time on the rendered frames
        tol = 1e-9 if rid in {p.name for p in before} else 1.0 / 255
        assert value == pytest.approx(_red_gain(r.frames, r.reference_img, r.mask), abs=tol), rid
        assert "red_gain" in r.meta["metrics"]                                     # saved into run.json
    # a metric that raises is NaN, its reason recorded, the run kept; the non-function plugin is left out
    assert cat.raising.isna().all()
    old = store.load_run(before[0]).meta
    assert any(e.startswith("raising: RuntimeError: this metric always fails") for e in old["metrics_errors"])
    assert "not_a_metric" not in cat.columns
    assert "red_gain" in html and "mean red change inside the region" in html            # the table and its legend
    assert "metric plugin not_a_metric = mymetric:NOT_A_FUNCTION" in out["analyze"][1]
    assert "red_gain" in out["metric_pick"]
    # no plugin here: this process's registries never saw them
    assert "mymethod" not in CliRunner().invoke(main, ["baselines", "--help"]).output


# ------------------------------------------------------------------ (b) a method registered at run time
def test_a_method_registered_at_run_time(tiny_ckpt, tmp_path, registered):
    from mgm_analysis.analysis.report import analyze

    ckpt, G = tiny_ckpt
    method, _ = registered
    planes = np.random.default_rng(3).normal(size=(2, 3, 16))      # one direction per free layer: [k, F, w_dim]
    seen = {}

    def two_planes(ctx):
        """two directions of my own, one per free layer"""
        seen.update(w_ref=type(ctx.w_ref).__name__, mask=float(ctx.mask.max()), layers=ctx.layers,
                    device=str(ctx.device), cache=ctx.cache_dir is not None)
        return torch.as_tensor(planes, dtype=torch.float32, device=ctx.device), ["u", "v"]

    method("rt_planes", two_planes)
    r = CliRunner()
    help_text = " ".join(r.invoke(main, ["baselines", "--help"]).output.split())
    assert "rt_planes: two directions of my own, one per free layer" in help_text
    runs = tmp_path / "runs"
    res = r.invoke(main, ["baselines", "--methods", "rt_planes", "--generator", str(ckpt), "--out", str(runs),
                          "--quiet", *FLAGS])
    assert res.exit_code == 0, res.output
    assert seen == {"w_ref": "Tensor", "mask": 1.0, "layers": (1, 4), "device": "cpu", "cache": True}
    (path,) = [p for p in runs.iterdir() if (p / "run.json").exists()]
    run = store.load_run(path)
    assert run.meta["provenance"]["method"] == "rt_planes"
    _check_method_run(run, G, {"u": planes[0].astype(np.float32), "v": planes[1].astype(np.float32)}, K=1)
    paths = analyze(runs, tmp_path / "report", quiet=True)
    assert pd.read_csv(paths["methods"]).method.tolist() == ["rt_planes"]
    methods, _ = _dashboard_options(runs)
    assert methods[0] == "discovery" and "rt_planes" in methods and "sefa" in methods


def test_a_bad_method_is_one_line_and_writes_nothing(tiny_ckpt, tmp_path, registered):
    ckpt, _ = tiny_ckpt
    method, _ = registered
    method("rt_nan", lambda ctx: (np.full((2, 16), np.nan), ["p", "q"]))
    method("rt_names", lambda ctx: (np.ones((2, 16)), ["p"]))
    method("rt_zero", lambda ctx: (np.zeros((1, 3, 16)), ["z"]))
    method("rt_boom", lambda ctx: 1 / 0)
    method("rt_info", lambda ctx: (np.ones((1, 16)), ["p"], {"x": object()}))
    method("rt_tuple", lambda ctx: np.ones((1, 16)))
    expect = {"rt_nan": "direction 0 (p) has NaN or inf values", "rt_names": "gave 1 names for 2 directions",
              "rt_zero": "direction 0 (z) is zero", "rt_boom": "failed: ZeroDivisionError: division by zero",
              "rt_info": "its info is not JSON-ready", "rt_tuple": "returned ndarray; a method returns (directions, names)"}
    r = CliRunner()
    for name, says in expect.items():
        out = tmp_path / name
        res = r.invoke(main, ["baselines", "--methods", name, "--generator", str(ckpt), "--out", str(out), *FLAGS])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1, (name, res.output)
        assert lines[0].startswith(f"error: method {name} (run time)") and says in lines[0], (name, lines[0])
        assert not out.exists(), name
    with pytest.raises(MGMError, match="taken by a built-in method"):
        register_method("sefa", lambda ctx: None)
    with pytest.raises(MGMError, match="reserved"):
        register_method("discovery", lambda ctx: None)
    with pytest.raises(MGMError, match="not usable"):
        register_method("a,b", lambda ctx: None)
    res = r.invoke(main, ["baselines", "--methods", "nope", "--generator", str(ckpt), "--out", str(tmp_path / "n")])
    assert res.exit_code == 2 and "unknown method(s) nope; known: jacobian_loop, jacobian," in res.output


def test_a_method_that_polls_stop_is_cancelled_not_failed(tiny_ckpt, registered):
    """``ctx.stop`` reaches a run-time method; the SearchStopped it raises passes through (a cancel), while any
    other exception of the method is still its one-line failure."""
    from mgm_analysis.errors import SearchStopped
    from mgm_analysis.finders.registry import candidate_directions
    from mgm_analysis.masks import parse_region

    _, G = tiny_ckpt
    method, _ = registered
    polled = []

    def patient(ctx):
        polled.append(ctx.stop is not None and ctx.stop())
        if polled[-1]:
            raise SearchStopped("asked to stop")
        return np.eye(2, 16), ["e0", "e1"]

    method("rt_patient", patient)
    w_ref = np.zeros((G.num_ws, G.w_dim), np.float32)
    region = parse_region("rect:4,4,12,10", G.resolution)
    with pytest.raises(SearchStopped):
        candidate_directions("rt_patient", G, w_ref, region, (1, 4), stop=lambda: True)
    d, names, _ = candidate_directions("rt_patient", G, w_ref, region, (1, 4), stop=lambda: False)
    assert names == ["e0", "e1"] and polled == [True, False]


def test_check_method_runs_the_contract_on_a_tiny_generator():
    rng = np.random.default_rng(0)
    fixed = rng.normal(size=(4, 16))

    def good(ctx):
        return fixed, [f"f{i}" for i in range(4)]

    assert check_method(good) == {"k": 4, "shape": [4, 3, 16], "names": ["f0", "f1", "f2", "f3"]}
    state = {"n": 0}

    def drifting(ctx):  # another answer each time: not deterministic
        state["n"] += 1
        return fixed + state["n"], ["a", "b", "c", "d"]

    def in_place(ctx):
        ctx.w_ref.add_(1.0)
        return fixed, ["a", "b", "c", "d"]

    def ignores_layers(ctx):  # always three free layers, whatever ctx.layers says
        return np.ones((1, 3, 16)), ["a"]

    def weights(ctx):
        with torch.no_grad():
            next(iter(ctx.G.parameters())).mul_(2)
        return fixed, ["a", "b", "c", "d"]

    for fn, says in [(drifting, "not deterministic"), (in_place, "changed ctx.w_ref or ctx.mask in place"),
                     (ignores_layers, "directions have shape [1, 3, 16]; expected [k, 16] (one direction in w) or "
                                      "[k, 2, 16]"), (weights, "changed the generator's weights")]:
        with pytest.raises(MGMError, match=None) as err:
            check_method(fn)
        assert says in str(err.value), (fn.__name__, str(err.value))
    assert check_method("sefa")["k"] == 10                       # a built-in passes its own check


# ------------------------------------------------------------------ (c) a metric registered at run time
def test_a_metric_registered_at_run_time_is_measured_for_older_runs(tmp_path, registered):
    from mgm_analysis.analysis.report import analyze

    _, metric = registered
    runs = tmp_path / "runs"
    paths = [make_run(runs, seed=0), make_run(runs, region="eyes", seed=1, box=(1, 1, 4, 3))]

    def box_contrast(frames, mask):
        """largest inside change of brightness between two frames"""
        f = np.asarray(frames, np.float64).mean(-1)
        inside = (f * mask).sum((1, 2)) / mask.sum()
        return float(inside.max() - inside.min())

    def boom(latents):
        raise ValueError("no")

    metric("box_contrast", box_contrast, higher_is_better=True)
    metric("boom", boom, headline=False)
    out = analyze(runs, tmp_path / "report", quiet=True)
    cat = pd.read_csv(out["metrics"])
    for rid, value in zip(cat.run_id, cat.box_contrast, strict=True):
        r = store.load_run(runs / rid)
        means = []                                       # written out: the brightness inside the box, per frame
        for f in r.frames:
            vals = [float(np.mean(f[y, x], dtype=np.float64)) for y in range(f.shape[0]) for x in range(f.shape[1])
                    if r.mask[y, x] > 0]
            means.append(sum(vals) / len(vals))
        assert value == pytest.approx(max(means) - min(means), rel=1e-9), rid
        assert r.meta["metrics"]["box_contrast"] == value                     # saved into run.json
        assert any(e.startswith("boom: ValueError: no") for e in r.meta["metrics_errors"])
    assert cat.boom.isna().all() and len(cat) == 2
    html = out["report"].read_text()
    assert "box_contrast" in html and "largest inside change of brightness between two frames" in html
    assert "box_contrast" in pd.read_csv(out["regions"]).columns             # a headline metric: in the summaries
    _, picks = _dashboard_options(runs)
    assert "box_contrast" in picks and "boom" in picks
    from dashboards import data

    first = data.metric_columns(data.snapshot(runs).catalog)
    assert first.index("box_contrast") < first.index("locality_gain")         # headline: among the first columns
    # a run made now has it from the start (run_metrics computes every registered metric)
    r = store.load_run(paths[0])
    m = run_metrics(r.latents, r.reference, r.frames, r.reference_img, r.mask, layers=(1, 3), failures=[])
    assert m["box_contrast"] == pytest.approx(r.meta["metrics"]["box_contrast"], rel=1e-12)
    with pytest.warns(UserWarning, match="metric boom .* failed: ValueError: no"):  # no list for failures: a warning
        m = run_metrics(r.latents, r.reference, r.frames, r.reference_img, r.mask)
    assert math.isnan(m["boom"])
    # a second analysis measures nothing again
    mtime = (paths[0] / "run.json").stat().st_mtime_ns
    analyze(runs, tmp_path / "report", quiet=True)
    assert (paths[0] / "run.json").stat().st_mtime_ns == mtime


def test_bad_metric_registrations_are_one_line(registered):
    _, metric = registered
    with pytest.raises(ValueError, match="taken by a built-in metric"):
        register_metric("locality", lambda frames: 1.0)
    with pytest.raises(ValueError, match="asks for 'weights'; a metric takes keyword arguments among frames"):
        register_metric("mine", lambda weights: 1.0)
    with pytest.raises(ValueError, match="not usable"):
        register_metric("run_id", lambda frames: 1.0)
    metric("returns_text", lambda frames: "high")
    errors = []
    r = run_metrics(np.zeros((2, 2, 3)), np.zeros((2, 3)), np.zeros((2, 4, 4, 3)), np.zeros((4, 4, 3)),
                    np.ones((4, 4)), failures=errors)
    assert math.isnan(r["returns_text"]) and errors == [
        "returns_text: ValueError: returned 'high'; a metric returns a float (NaN when undefined) (run time)"]


def test_the_methods_card_filters_on_the_picked_methods(tmp_path):
    from dashboards.app import create_app
    from dashboards.synthetic import callback_body, make_store

    ids = make_store(tmp_path, 3, methods=("jacobian", "sefa"))
    app = create_app(tmp_path)

    def table(picked):
        body = callback_body(app, "methods-table", {"projection-drawn.data": ids, "methods-pick.value": picked},
                             "methods-pick.value")
        res = app.server.test_client().post("/_dash-update-component", json=body)
        return res.status_code, (res.get_json() or {}).get("response")

    code, every = table([])
    assert code == 200 and {r["method"] for r in every["methods-table"]["data"]} == {"discovery", "jacobian", "sefa"}
    code, some = table(["sefa", "discovery"])
    assert {r["method"] for r in some["methods-table"]["data"]} == {"discovery", "sefa"}
    assert {t["name"].split(" · ")[0] for t in some["frontier"]["figure"]["data"]} == {"discovery", "sefa"}
    assert table("sefa")[0] == 204 and table([3])[0] == 204                 # not a list of names: no update


def test_listing_methods_and_metrics_imports_no_torch():
    """--help, the method table's order and columns, and the dashboard's lists read the registries without torch
    (the built-in method modules import it inside their functions)."""
    from _fake_runs import BLOCK_TORCH

    code = BLOCK_TORCH + textwrap.dedent("""
        from click.testing import CliRunner
        from mgm_analysis.cli import main
        from mgm_analysis.analysis.table import METHOD_ORDER, TABLE_METRICS
        from mgm_analysis.metrics import metric_names
        res = CliRunner().invoke(main, ["baselines", "--help"])
        assert res.exit_code == 0 and "sefa (default)" in res.output, res.output
        assert METHOD_ORDER[:3] == ["discovery", "jacobian_loop", "jacobian"] and "spread" in TABLE_METRICS
        assert metric_names("summary")[:2] == ["locality", "semantic_locality"]
        import sys
        assert "torch" not in sys.modules
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
