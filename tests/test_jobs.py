"""The job API: deterministic keys, one run per job, provenance, write-tested output, NaN and errors that never lose
a run, resume that refuses ignored flags, baseline runs of registered methods."""

import warnings
from dataclasses import fields

import numpy as np
import pytest
import torch
from _cli import FAST_CONFIG
from click.testing import CliRunner

from mgm_analysis import config, jobs, store
from mgm_analysis.cli import main
from mgm_analysis.errors import MGMError
from mgm_analysis.jobs import JobSpec, run_job

FAST = FAST_CONFIG
FAST_FLAGS = ["--frames", "5", "--layers", "1:4", "--prim-dist", "0.2", "--offset", "0.05", "--outside-weight", "5",
              "--distance", "l2", "--quiet"]


@pytest.fixture(scope="module")
def G(tiny_G):
    return tiny_G


def _spec(ckpt, **kw):
    base = dict(kind="discover", generator=str(ckpt), region="rect:4,8,12,14", seed=3, config=FAST)
    base.update(kw)
    return JobSpec(**base)


def test_key_is_canonical_and_changes_with_every_field(ckpt, tmp_path, monkeypatch):
    a = _spec(ckpt)
    # same content, other order of the config and a relative path: the same key
    monkeypatch.chdir(ckpt.parent)
    b = JobSpec(kind="discover", generator=ckpt.name, region="rect:4,8,12,14", seed=3,
                config=dict(reversed(list(FAST.items()))))
    assert a.key == b.key and a == b and hash(a) == hash(b) and len(a.key) == 64
    import hashlib
    import json

    expected = hashlib.sha256(json.dumps(a.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert a.key == expected
    others = [_spec(ckpt, seed=4), _spec(ckpt, region="eyes"), _spec(ckpt, config={**FAST, "epochs": 3}),
              _spec(ckpt, layout="ffhq"), _spec(ckpt, preset="paper")]
    assert len({a.key, *(o.key for o in others)}) == 1 + len(others)
    assert a.run_id.startswith("rect_4_8_12_14-s3-") and a.run_id.endswith(a.key[:12])
    assert JobSpec.from_dict(a.to_dict()) == a


@pytest.mark.parametrize("kw, needle", [
    (dict(kind="train"), "job kind"),
    (dict(config={"epochs": 2, "epoch": 3}), "unknown config field 'epoch'"),
    (dict(kind="transfer", sources=()), "needs 1 source"),
    (dict(kind="baseline"), "params['method']"),
    (dict(seed=None), "give a reference"),
])
def test_bad_specs(ckpt, kw, needle):
    with pytest.raises(MGMError, match=None) as err:
        _spec(ckpt, **kw)
    assert needle in str(err.value)


def test_run_job_equals_the_engine_called_directly(ckpt, G, tmp_path):
    """The run's latents are what discover() gives for the same reference, region and config (computed here)."""
    from mgm_analysis.config import DiscoveryConfig
    from mgm_analysis.discovery import discover
    from mgm_analysis.masks import parse_region

    spec = _spec(ckpt)
    path = run_job(spec, tmp_path / "runs")
    run = store.load_run(path)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3))
    w_ref = G.broadcast(G.mapping(z, 0.7))[0].contiguous()
    cfg = DiscoveryConfig(**FAST)
    traj = discover(G, w_ref, parse_region("rect:4,8,12,14", 16), cfg)
    assert np.array_equal(run.latents, traj.ws.numpy())
    assert np.array_equal(run.reference, w_ref.numpy())
    prov = run.meta["provenance"]
    assert prov["kind"] == "discover" and prov["key"] == spec.key and prov["sources"] == []
    assert JobSpec.from_dict(prov["spec"]) == spec
    assert run.meta["config"]["truncation"] == 0.7 and run.status == "complete"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [path.name]  # exactly one folder, no temp left


def test_deterministic_run_id_is_written_once(ckpt, G, tmp_path, monkeypatch):
    spec = _spec(ckpt)
    path = run_job(spec, tmp_path, G=G)
    assert path.name == spec.run_id
    import mgm_analysis.discovery as discovery

    monkeypatch.setattr(discovery, "discover", lambda *a, **k: pytest.fail("a complete job ran again"))
    assert run_job(spec, tmp_path, G=G) == path
    other = _spec(ckpt, seed=9)
    (tmp_path / other.run_id).mkdir()                   # a folder of that name holding something else
    (path / "run.json").replace(tmp_path / "run.json.bak")
    with pytest.raises(MGMError, match="not a readable run"):
        run_job(spec, tmp_path, G=G)                    # the job's own folder, unreadable: said, not overwritten
    (tmp_path / "run.json.bak").replace(path / "run.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([spec.run_id, other.run_id])


@pytest.mark.parametrize("bad", ["file", "/dev/null", "/proc/mgm_runs", "/proc/self/x/y"])
def test_unwritable_out_fails_before_any_search(ckpt, tmp_path, monkeypatch, bad):
    import mgm_analysis.generators as generators

    if bad == "file":
        bad = tmp_path / "a_file"
        bad.write_text("not a folder")
    monkeypatch.setattr(generators, "load_generator", lambda *a, **k: pytest.fail("loaded a generator"))
    r = CliRunner().invoke(main, ["discover", "--generator", str(ckpt), "--out", str(bad), *FAST_FLAGS])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out ") and "folder" in lines[0], r.output


@pytest.fixture
def registered():
    """Methods registered at run time for one test, unregistered after it."""
    from mgm_analysis.finders.registry import register_method, unregister_method

    names = []

    def register(name, fn):
        register_method(name, fn)
        names.append(name)
        return fn

    yield register
    for n in names:
        unregister_method(n)


def test_nan_trajectory_is_saved_interrupted(ckpt, G, tmp_path, registered):
    """A registered method's path that leaves float32 (its direction, finite, at a scale of 1e40 from the spec)
    gives non-finite latents: the run is saved interrupted (stop_reason nan), its latents made finite."""
    def huge(ctx):
        return torch.ones(1, G.w_dim), ["d0"]

    registered("test_nan", huge)
    spec = _spec(ckpt, kind="baseline", params={"method": "test_nan", "component": "d0", "component_index": 0,
                                                 "scale": 1e40})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow in the cast to float32: the point here
        run = store.load_run(run_job(spec, tmp_path, G=G))
    assert run.status == "interrupted" and run.meta["stop_reason"] == "nan"
    prov = run.meta["provenance"]
    assert (prov["kind"], prov["method"], prov["component"], prov["scale"]) == ("baseline", "test_nan", "d0", 1e40)
    assert np.isfinite(run.latents).all()


def test_metrics_that_raise_become_nan(ckpt, G, tmp_path, monkeypatch):
    import mgm_analysis.metrics as metrics

    def broken(*a, **k):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(metrics, "run_metrics", broken)
    run = store.load_run(run_job(_spec(ckpt), tmp_path, G=G))
    m = run.meta["metrics"]
    assert run.status == "complete" and np.isnan(m["locality"]) and "SVD did not converge" in run.meta["metrics_errors"][0]


def test_a_registered_method_writes_a_run_of_its_line(ckpt, G, tmp_path, registered):
    """A method registered at run time with one direction in w: the spec's component and scale give the straight
    line w* + s·t_i·d̂ on the free layers 1..3, t_i evenly in [−1, 1], d̂ the direction on every free layer made
    unit length over them (written out here)."""
    direction = np.random.default_rng(0).normal(size=(32,)).astype(np.float32)

    def line(ctx):
        return direction[None], ["only"], {"note": "one direction"}

    registered("test_line", line)
    spec = _spec(ckpt, kind="baseline", params={"method": "test_line", "component": "only", "component_index": 0,
                                                 "scale": 0.5})
    run = store.load_run(run_job(spec, tmp_path, G=G))
    t = np.linspace(-1, 1, 5)
    d = direction.astype(np.float64)
    unit = d / np.sqrt(3 * (d ** 2).sum())            # the same direction on 3 free layers, unit length over them
    expected = np.repeat(run.reference[None].astype(np.float64), 5, 0)
    for i in range(5):
        for layer in (1, 2, 3):
            expected[i, layer] = run.reference[layer] + 0.5 * t[i] * unit
    assert np.allclose(run.latents, expected, atol=1e-6) and run.status == "complete"
    assert run.meta["provenance"]["method"] == "test_line" and run.meta["provenance"]["key"] == spec.key
    with pytest.raises(MGMError, match="unknown method 'nope'"):
        run_job(_spec(ckpt, kind="baseline", params={"method": "nope"}), tmp_path, G=G)


def _interrupted_run(ckpt, G, out):
    """A run stopped by its progress callback after 1 of 4 epochs (status interrupted)."""
    spec = _spec(ckpt, config={**FAST, "epochs": 4})
    path = run_job(spec, out, G=G, progress=lambda epoch, terms: epoch < 1)
    assert store.load_run(path).status == "interrupted"
    return path


@pytest.mark.parametrize("flags, needle", [
    (["--frames", "7"], "--frames 7 (the run has 5)"),
    (["--region", "eyes"], "--region eyes"),
    (["--seed", "5"], "--seed 5 (the run has 3)"),
    (["--layers", "0:3"], "--layers"),
    (["--epochs", "0"], "below the 1 epochs already done"),
    (["--init-seed", "4"], "--init-seed 4 (the run has 0)"),
    (["--truncation", "0.5"], "--truncation 0.5 (the run has 0.7)"),
])
def test_resume_refuses_flags_it_would_ignore(ckpt, G, tmp_path, flags, needle):
    path = _interrupted_run(ckpt, G, tmp_path)
    before = (path / "run.json").read_text()
    r = CliRunner().invoke(main, ["discover", "--resume", str(path), *flags])
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and needle in r.output, r.output
    assert (path / "run.json").read_text() == before


def test_resume_with_same_flags_and_more_epochs_completes(ckpt, G, tmp_path):
    path = _interrupted_run(ckpt, G, tmp_path)
    r = CliRunner().invoke(main, ["discover", "--resume", str(path), "--frames", "5", "--seed", "3", "--epochs", "3",
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    run = store.load_run(path)
    assert run.status == "complete" and run.meta["resume"]["epochs_done"] == 3
    assert run.meta["provenance"]["spec"]["config"]["epochs"] == 3
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_transfer_and_combine_are_jobs(ckpt, G, tmp_path):
    a = run_job(_spec(ckpt), tmp_path, G=G)
    b = run_job(_spec(ckpt, region="rect:2,2,8,6"), tmp_path, G=G)
    t = store.load_run(run_job(JobSpec(kind="transfer", generator=str(ckpt), region=None, seed=11, sources=(a,)),
                               tmp_path))  # the generator comes from the source run
    src = store.load_run(a)
    assert t.meta["provenance"]["kind"] == "transfer" and t.meta["provenance"]["sources"] == [src.run_id]
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(11))
    w11 = G.broadcast(G.mapping(z, 0.7))[0].numpy()
    assert np.allclose(t.latents, w11[None] + (src.latents - src.reference[None]), atol=1e-5)
    c = store.load_run(run_job(JobSpec(kind="combine", generator=str(ckpt), region=None, seed=None, sources=(a, b)),
                               tmp_path, G=G))
    assert c.meta["provenance"]["kind"] == "combine" and c.region == "rect+rect"
    rb = store.load_run(b)
    assert np.allclose(c.latents, src.latents + rb.latents - src.reference[None], atol=1e-5)


def test_config_fields_are_the_dataclass_fields_and_need_no_torch():
    """config.config_fields gives the engine's DiscoveryConfig fields with their types, and a job spec its key,
    without importing torch."""
    import subprocess
    import sys

    from mgm_analysis.config import DiscoveryConfig as EngineConfig

    types = config.config_fields()
    assert list(types) == [f.name for f in fields(EngineConfig)]  # the engine's class is the config's
    assert (types["n_frames"], types["offset"], types["offset_ramp"], types["distance"],
            types["truncation_cutoff"]) == ("int", "float", "bool", "str", "int | None")
    code = ("import sys; from mgm_analysis import config; t = config.config_fields(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(len(t))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and int(p.stdout) == len(types), p.stderr[-2000:]
    code = ("import sys; from mgm_analysis.jobs import JobSpec; "
            "s = JobSpec(kind='discover', generator='toyfaces', region='mouth', seed=3, config={'epochs': 2}); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(s.key)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    spec = jobs.JobSpec(kind="discover", generator="toyfaces", region="mouth", seed=3, config={"epochs": 2})
    assert p.returncode == 0 and p.stdout.strip() == spec.key, p.stderr[-2000:]  # a spec and its key need no torch
    assert config.parse_config_value("epochs", "12") == 12 and config.parse_config_value("offset_ramp", "on") is True
    with pytest.raises(MGMError, match="epochs takes an int, got 'x'"):
        config.parse_config_value("epochs", "x")


@pytest.mark.slow
def test_a_toyfaces_run_reads_back_with_its_semantic_metrics(tmp_path):
    """The built-in model's runs carry semantic locality (the factor readers); the written run.json must pass the
    store's schema (metrics are numbers; the reader's name sits beside them)."""
    spec = JobSpec(region="mouth", seed=0, config={"n_frames": 3, "epochs": 1, "init_mode": "noise", "stop_tol": 0.0})
    run = store.load_run(run_job(spec, tmp_path))
    m = run.meta["metrics"]
    assert 0 <= m["semantic_locality"] <= 1 and set(m["factor_change"]) and run.meta["semantic_reader"] in (
        "reader2", "shipped")
    assert all(not isinstance(v, str) for v in m.values())
