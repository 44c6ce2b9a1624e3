"""Bad input to every command: one line on stderr, exit status 2, no traceback, no run left behind, no search
started, nothing the user made changed.  And the other side: a store with bad runs is analysed with one
warning per bad run and the rest done, into a report that is never half-written.

The table runs in-process through click's CliRunner (the search is replaced by a tripwire: an input error must
come before it); a few cases also run as real subprocesses.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _fake_runs import fake_meta, make_run
from click.testing import CliRunner
from PIL import Image

from mgm_analysis import config, discovery, store
from mgm_analysis.cli import main
from mgm_analysis.errors import MGMError, RunReadError
from mgm_analysis.masks import parse_region


# ------------------------------------------------------------------ inputs
def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width × height pixels (8-bit grey) and holds no image data."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + chunk
                     + zlib.crc32(chunk).to_bytes(4, "big"))


@pytest.fixture(scope="module")
def gen():
    from mgm_analysis.generators import load_generator

    return load_generator("toyfaces")


@pytest.fixture(scope="module")
def d(tmp_path_factory, gen):
    """A folder of hostile inputs, and runs to resume and render."""
    d = tmp_path_factory.mktemp("inputs")
    L, D, R = gen.num_ws, gen.w_dim, gen.resolution
    np.save(d / "str.npy", np.array(["a", "b"]))
    np.save(d / "cplx.npy", np.ones((L, D), complex))
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(d / "int.npy", np.ones(D, np.int64))
    nan = np.zeros((L, D), np.float32)
    nan[1, 2] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "shape.npy", np.zeros((3, 3), np.float32))
    np.save(d / "trunc.npy", np.zeros((L, D), np.float32))
    (d / "trunc.npy").write_bytes((d / "trunc.npy").read_bytes()[:300])
    _png_header_only(d / "huge_header.png", 20000, 20000)
    Image.new("1", (5000, 5000), 1).save(d / "huge.png")  # 25 Mpx of real, compressible data
    (d / "garbage.png").write_bytes(b"not a png at all")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(d / "small.png")
    Image.fromarray(np.zeros((R, R), np.uint8)).save(d / "black.png")
    Image.fromarray(np.full((R, R), 255, np.uint8)).save(d / "white.png")
    (d / "file.txt").write_text("a regular file")
    (d / "notjson.json").write_text("{not json")
    (d / "list.json").write_text("[1, 2, 3]")
    (d / "garbage.pt").write_bytes(os.urandom(2048))
    from mgm_analysis.generators.checkpoints import save_checkpoint
    from mgm_analysis.generators.toyfaces.train import TrainConfig, build_generator

    save_checkpoint(build_generator(TrainConfig(channels={4: 8, 8: 8, 16: 8, 32: 8, 64: 8}, w_dim=16)),
                    d / "other_model.pt")
    # an interrupted toyfaces run (2 of 3 epochs done), as run_job saves one
    rng = np.random.default_rng(0)
    w_ref = rng.normal(size=(L, D)).astype(np.float32)
    ws = np.repeat(w_ref[None], 4, 0)
    ws[1:, 2:8] += 0.01 * rng.normal(size=(3, 6, D)).astype(np.float32)
    cfg = config.default_config("toyfaces", region="mouth", n_frames=4, epochs=3).to_dict()
    region = parse_region("mouth", R)
    spec = {"kind": "discover", "generator": "toyfaces", "region": "mouth", "seed": 0, "reference": None,
            "layout": None, "preset": None, "config": {"epochs": 3, "n_frames": 4}, "sources": [], "params": {}}
    meta = {"status": "interrupted", "stop_reason": "interrupted", "region": region.to_dict(),
            "generator": gen.info.to_dict(), "reference": {"seed": 0, "truncation": 0.7, "file": None}, "seed": 0,
            "config": cfg, "history": {k: [0.0, 0.0] for k in ("epoch", "total", "l_x", "spring", "stiffener",
                                                              "d_in", "d_out", "seconds")},
            "metrics": {"locality": 0.5}, "provenance": {"kind": "discover", "sources": [], "spec": spec},
            "resume": {"epochs_done": 2, "resumed": False}}
    frames = rng.uniform(size=(4, R, R, 3)).astype(np.float32)
    src = d / "src"
    store.write_run(src, meta=meta, latents=ws, reference=w_ref, reference_img=frames[0], mask=region.mask,
                    frames=frames, run_id="irun", gif=False)
    store.write_run(src, meta={**meta, "status": "complete"}, latents=ws, reference=w_ref, reference_img=frames[0],
                    mask=region.mask, frames=frames, run_id="crun", gif=False)
    return d


def _variant(d: Path, dest: Path, name: str) -> Path:
    """A copy of the interrupted run at ``dest/run``, spoiled as ``name`` says."""
    run = dest / "run"
    shutil.copytree(d / "src" / ("crun" if name == "complete" else "irun"), run)
    meta = json.loads((run / "run.json").read_text())
    if name == "region_str":
        meta["region"] = "mouth"
    elif name == "config_str":
        meta["config"] = "fast"
    elif name == "deep":
        meta["metrics"] = json.loads("[" * 50 + "]" * 50)
    elif name == "spec_bad":
        meta["provenance"]["spec"]["config"] = "abc"
    elif name == "nan_latents":
        lat = np.load(run / "latents.npy")
        lat[1, 3, 7] = np.nan
        np.save(run / "latents.npy", lat)
    elif name == "obj_latents":
        np.save(run / "latents.npy", np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    elif name == "trunc_latents":
        (run / "latents.npy").write_bytes((run / "latents.npy").read_bytes()[:500])
    elif name == "bad_frame":
        (run / "frames" / "002.png").write_bytes(b"\x89PNG garbage")
    elif name in ("small_frame", "big_frame"):
        side = 16 if name == "small_frame" else 2048
        Image.new("RGB", (side, side)).save(run / "frames" / "001.png")
    if name not in ("nan_latents", "obj_latents", "trunc_latents", "bad_frame", "small_frame", "big_frame",
                    "complete", "plain"):
        (run / "run.json").write_text(json.dumps(meta))
    return run


# ------------------------------------------------------------------- table
@dataclass
class Case:
    id: str
    argv: str                    # {d}: inputs, {out}: an empty store, {run}: a spoiled run (see `run`)
    needle: str                  # a word of the one error line
    code: int = 2
    run: str | None = None       # which _variant {run} is


D = "discover --quiet --out {out}"
R = "discover --quiet"  # --resume: the run resumes in its own store
CASES = [
    # discover: numbers
    Case("frames_huge", f"{D} --frames 1000000000", "--frames must be <= 4096"),
    Case("frames_two", f"{D} --frames 2", "--frames must be >= 3"),
    Case("frames_text", f"{D} --frames abc", "not a valid integer"),
    Case("seed_beyond_64_bits", f"{D} --seed 99999999999999999999999", "--seed must be in 0..4294967295"),
    Case("seed_negative", f"{D} --seed -1", "--seed must be in"),
    Case("init_seed_huge", f"{D} --init-seed 18446744073709551616", "--init-seed must be in"),
    Case("offset_1e308", f"{D} --offset 1e308", "--offset must be <= 4"),
    Case("offset_nan", f"{D} --offset nan", "finite"),
    Case("offset_negative", f"{D} --offset -1", "finite number >= 0"),
    Case("alpha_inf", f"{D} --alpha inf", "finite"),
    Case("gamma_huge", f"{D} --gamma 1e30", "--gamma must be <= 1e+06"),
    Case("lr_zero", f"{D} --lr 0", "--lr must be > 0"),
    Case("epochs_zero", f"{D} --epochs 0", "--epochs must be >= 1"),
    Case("epochs_huge", f"{D} --epochs 999999999999", "--epochs must be <="),
    Case("history_zero", f"{D} --history-size 0", "--history-size"),
    Case("chunk_negative", f"{D} --chunk-size -1", "--chunk-size"),
    Case("patience_negative", f"{D} --patience -1", "--patience"),
    Case("init_noise_1e300", f"{D} --init-noise 1e300", "--init-noise must be <= 100"),
    Case("layers_reversed", f"{D} --layers 5:2", "--layers"),
    Case("layers_text", f"{D} --layers abc", "--layers"),
    Case("layers_beyond_generator", f"{D} --layers 2:99", "W+"),
    Case("truncation_two", f"{D} --truncation 2", "--truncation"),
    Case("distance_unknown", f"{D} --distance cosine", "--distance"),
    # discover: regions
    Case("poly_nan", f"{D} --region poly:1,1,nan,2,30,30", "not a finite number"),
    Case("poly_1e30", f"{D} --region poly:1,1,1e30,2,30,30", "outside"),
    Case("poly_collinear", f"{D} --region poly:1,1,2,2,30,30", "collinear"),
    Case("poly_two_points", f"{D} --region poly:1,1,2,2", "at least 3"),
    Case("rect_empty", f"{D} --region rect:5,5,5,9", "outside"),
    Case("rect_outside", f"{D} --region rect:0,0,99,9", "outside"),
    Case("rect_whole", f"{D} --region rect:0,0,64,64", "whole image"),
    Case("rect_inf", f"{D} --region rect:0,0,inf,9", "not a finite number"),
    Case("ellipse_zero", f"{D} --region ellipse:30,30,0,4", "radii"),
    Case("ellipse_far", f"{D} --region ellipse:-500,-500,3,3", "empty"),
    Case("region_unknown", f"{D} --region lips", "unknown region"),
    Case("region_blank", f"{D} --region ' '", "empty --region"),
    Case("region_tilde", f"{D} --region ~0", "unknown region"),
    Case("mask_header_20000", f"{D} --region {{d}}/huge_header.png", "larger than"),
    Case("mask_25_megapixels", f"{D} --region {{d}}/huge.png", "larger than"),
    Case("mask_garbage", f"{D} --region {{d}}/garbage.png", "not a readable image"),
    Case("mask_missing", f"{D} --region {{d}}/nope.png", "does not exist"),
    Case("mask_wrong_size", f"{D} --region {{d}}/small.png", "is 32x32"),
    Case("mask_black", f"{D} --region {{d}}/black.png", "empty"),
    Case("mask_white", f"{D} --region {{d}}/white.png", "whole image"),
    # discover: reference latents
    Case("reference_strings", f"{D} --reference {{d}}/str.npy", "real floating point"),
    Case("reference_complex", f"{D} --reference {{d}}/cplx.npy", "real floating point"),
    Case("reference_objects", f"{D} --reference {{d}}/obj.npy", "Python objects"),
    Case("reference_ints", f"{D} --reference {{d}}/int.npy", "real floating point"),
    Case("reference_nan", f"{D} --reference {{d}}/nan.npy", "NaN"),
    Case("reference_shape", f"{D} --reference {{d}}/shape.npy", "shape"),
    Case("reference_truncated", f"{D} --reference {{d}}/trunc.npy", "--reference"),
    Case("reference_missing", f"{D} --reference {{d}}/nope.npy", "no such file"),
    Case("reference_not_npy", f"{D} --reference {{d}}/file.txt", "--reference"),
    # discover: where it goes, what makes it
    Case("out_under_a_file", "discover --quiet --out {d}/file.txt/runs", "--out"),
    Case("out_is_a_file", "discover --quiet --out {d}/file.txt", "--out"),
    Case("out_in_proc", "discover --quiet --out /proc/mgm-test", "--out"),
    Case("generator_missing", f"{D} --generator {{d}}/nope.pt", "nope.pt"),
    Case("generator_garbage", f"{D} --generator {{d}}/garbage.pt", "garbage.pt"),
    # resume
    Case("resume_region_str", f"{R} --resume {{run}}", "region", run="region_str"),
    Case("resume_config_str", f"{R} --resume {{run}}", "config", run="config_str"),
    Case("resume_deep_nesting", f"{R} --resume {{run}}", "run.json", run="deep"),
    Case("resume_spec_malformed", f"{R} --resume {{run}}", "provenance.spec", run="spec_bad"),
    Case("resume_nan_latents", f"{R} --resume {{run}}", "NaN", run="nan_latents"),
    Case("resume_object_latents", f"{R} --resume {{run}}", "real floating point", run="obj_latents"),
    Case("resume_truncated_latents", f"{R} --resume {{run}}", "truncated", run="trunc_latents"),
    Case("resume_complete", f"{R} --resume {{run}}", "already complete", run="complete"),
    Case("resume_not_a_run", f"{R} --resume {{d}}", "missing"),
    Case("resume_other_frames", f"{R} --resume {{run}} --frames 8", "--frames", run="plain"),
    Case("resume_fewer_epochs", f"{R} --resume {{run}} --epochs 1", "below", run="plain"),
    # render
    Case("render_bad_frame", "render {run}", "not a readable image", run="bad_frame"),
    Case("render_small_frame", "render {run}", "a frame of 16x16 in a run of 64x64", run="small_frame"),
    Case("render_big_frame", "render {run}", "larger than the 4096 pixels", run="big_frame"),
    Case("render_rerender_nan", "render {run} --rerender", "NaN", run="nan_latents"),
    Case("render_rerender_objects", "render {run} --rerender", "real floating point", run="obj_latents"),
    Case("render_bad_run_json", "render {run}", "region", run="region_str"),
    Case("render_missing", "render {d}/nope", "not a run folder"),
    Case("render_fps_zero", "render {run} --fps 0", "--fps", run="plain"),
    # sweep
    Case("sweep_regions_commas", "sweep --quiet --out {out} --regions ,,,", "names no region"),
    Case("sweep_seeds_billion", "sweep --quiet --out {out} --seeds 0-1000000000", "--seeds"),
    Case("sweep_seeds_text", "sweep --quiet --out {out} --seeds abc", "--seeds"),
    Case("sweep_bad_region", "sweep --quiet --out {out} --regions mouth,poly:1,1,2,2,3,3 --seeds 0", "collinear"),
    # analyze
    Case("analyze_missing_store", "analyze {d}/nope --out {out}/rep", "no such run store"),
    Case("analyze_single_run", "analyze {run} --out {out}/rep", "single run", run="plain"),
    Case("analyze_out_is_a_file", "analyze {d}/src --out {d}/file.txt", "is a file"),
    Case("analyze_out_other_files", "analyze {d}/src --out {d}", "other files"),
    Case("analyze_k_zero", "analyze {d}/src --k 0 --out {out}/rep", "--k"),
    # toyfaces
    Case("train_batch_zero", "toyfaces-train --batch 0 --out {out}/g.pt", "--batch"),
    Case("train_steps_negative", "toyfaces-train --steps -5 --out {out}/g.pt", "--steps"),
    Case("train_init_other_model", "toyfaces-train --quiet --minutes 0.01 --init {d}/other_model.pt --out {out}/g.pt",
         "do not fit"),
    Case("train_init_garbage", "toyfaces-train --quiet --minutes 0.01 --init {d}/garbage.pt --out {out}/g.pt",
         "garbage.pt"),
    Case("train_channels_text", "toyfaces-train --channels abc --out {out}/g.pt", "--channels"),
    Case("regressor_steps_negative", "toyfaces-regressor --steps -1 --out {out}/r.pt", "--steps"),
    Case("report_bench_not_json", "toyfaces-report --from-bench {d}/notjson.json --recipe {out}/r.json "
         "--samples {out}/s.png", "not a JSON file"),
    Case("report_bench_a_list", "toyfaces-report --from-bench {d}/list.json --recipe {out}/r.json "
         "--samples {out}/s.png", "not a toyfaces benchmark"),
    # other commands
    Case("dashboard_missing_store", "dashboard {d}/nope", "does not exist"),
    Case("dashboard_port_zero", "dashboard {d}/src --port 0", "--port"),
    Case("info_missing", "info {d}/nope.pt", "nope.pt"),
    Case("info_garbage", "info {d}/garbage.pt", "garbage.pt"),
    Case("unknown_command", "nosuch", "No such command"),
]


class SearchStarted(BaseException):
    """Raised by the tripwire that replaces discovery.discover: an input error must come before any search."""


def _tree(path: Path) -> dict:
    """{relative path: sha256} of every file under ``path``."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()} if path.exists() else {}


def _argv(case: Case, d: Path, out: Path, run: Path | None) -> list[str]:
    import shlex

    return shlex.split(case.argv.format(d=d, out=out, run=run))


def test_the_table_is_big_enough():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(case, d, tmp_path, monkeypatch):
    out = tmp_path / "store"
    run = _variant(d, tmp_path / "runs", case.run) if case.run else None
    before_run, before_inputs = _tree(run) if run else {}, _tree(d)
    searched = []

    def tripwire(*a, **k):
        searched.append(1)
        raise SearchStarted

    monkeypatch.setattr(discovery, "discover", tripwire)
    monkeypatch.chdir(tmp_path)  # a default --out (runs/) would land here
    res = CliRunner().invoke(main, _argv(case, d, out, run))
    assert not searched, "the search started before the input was refused"
    assert isinstance(res.exception, SystemExit) or res.exception is None, repr(res.exception)
    assert res.exit_code == case.code, (res.exit_code, res.output[-500:])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and case.needle in lines[0], lines[0]
    assert "Traceback" not in res.output
    for store_dir in (out, tmp_path / "runs" if run is None else tmp_path / "none"):
        assert not [p for p in store_dir.rglob("*") if p.is_dir()], list(store_dir.rglob("*"))  # no run, no temp
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    if run is not None:
        assert _tree(run) == before_run  # the user's run is untouched
    assert _tree(d) == before_inputs  # and so is every input


@pytest.mark.parametrize("argv, needle", [
    ("discover --quiet --out {out} --frames 1000000000", "--frames must be <= 4096"),
    ("sweep --quiet --out {out} --regions ,,,", "names no region"),
    ("analyze {d}/src --out {d}/file.txt", "is a file"),
], ids=["frames", "sweep_regions", "analyze_out"])
def test_bad_input_in_a_real_process(argv, needle, d, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "mgm_analysis.cli", *argv.format(d=d, out=out).split()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], (r.returncode, r.stderr[-800:])
    assert not [p for p in out.rglob("*") if p.is_dir()]


# ---------------------------------------------------------- analyze goes on
def _spoil(root: Path, name: str) -> None:
    """A copy of a good run, spoiled one way (its run_id made unique unless the case is the duplicate)."""
    src = sorted(p for p in root.iterdir() if p.is_dir())[0]
    run = root / f"bad-{name}"
    shutil.copytree(src, run)
    meta = json.loads((run / "run.json").read_text())
    meta["run_id"] = src.name if name == "duplicate" else run.name
    field, value = {"region_str": ("region", "mouth"), "config_str": ("config", "x"),
                    "metrics_str": ("metrics", "high"), "provenance_str": ("provenance", "discover"),
                    "generator_str": ("generator", "toyfaces"), "deep": ("history", json.loads("[" * 40 + "]" * 40)),
                    "seed_text": ("seed", "zero"), "newer_schema": ("schema_version", 7)}.get(name, (None, None))
    if field:
        meta[field] = value
    (run / "run.json").write_text(json.dumps(meta))
    lat = np.load(run / "latents.npy")
    if name in ("nan_latents", "inf_latents"):
        lat[2, 1, 0] = np.nan if name == "nan_latents" else np.inf
        np.save(run / "latents.npy", lat)
    elif name == "misshaped_latents":
        np.save(run / "latents.npy", lat[:, :, :-1])
    elif name == "complex_latents":
        np.save(run / "latents.npy", lat.astype(complex))
    elif name == "truncated_latents":
        (run / "latents.npy").write_bytes((run / "latents.npy").read_bytes()[:200])
    elif name == "nan_reference":
        ref = np.load(run / "reference.npy")
        ref[0, 0] = np.nan
        np.save(run / "reference.npy", ref)
    elif name == "not_json":
        (run / "run.json").write_text("{ oops")


BAD_RUNS = ["region_str", "config_str", "metrics_str", "provenance_str", "generator_str", "deep", "seed_text",
            "newer_schema", "nan_latents", "inf_latents", "misshaped_latents", "complex_latents", "truncated_latents",
            "nan_reference", "not_json", "duplicate"]


def test_analyze_skips_each_bad_run_with_one_warning_and_does_the_rest(tmp_path):
    root = tmp_path / "store"
    good = [make_run(root, region=r, seed=s, meta={**fake_meta(r, s)}) for r in ("mouth", "eyes") for s in (0, 1)]
    for name in BAD_RUNS:
        _spoil(root, name)
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["analyze", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output[-1000:]
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: skipping")]
    assert len(warnings) == len(BAD_RUNS), "\n".join(warnings)
    for name in BAD_RUNS:
        assert sum(f"bad-{name}" in w for w in warnings) == 1, name
    assert "Traceback" not in res.output
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 1 + len(good)  # header + the good runs, each once
    assert all(p.name in (out / "metrics.csv").read_text() for p in good)
    html = (out / "report.html").read_text()
    assert html.rstrip().endswith("</html>") and "bad-nan_latents" in html  # the warning is in the report too
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_a_failed_analysis_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    root = tmp_path / "store"
    for s in (0, 1):
        make_run(root, seed=s)
    out = tmp_path / "report"
    assert CliRunner().invoke(main, ["analyze", str(root), "--out", str(out)]).exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # a folder like any other, not a private temp folder
    (out / "notes.txt").write_text("my own notes")  # the user's file in the report folder
    assert CliRunner().invoke(main, ["analyze", str(root), "--out", str(out)]).exit_code == 0
    before = _tree(out)
    assert "report.html" in before and "notes.txt" in before

    from mgm_analysis.analysis import report

    def broken(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the analysis

    monkeypatch.setattr(report, "fig_overlap", broken)
    res = CliRunner().invoke(main, ["analyze", str(root), "--out", str(out)])
    assert res.exit_code == 130
    assert _tree(out) == before  # the earlier report, whole, and the user's notes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    monkeypatch.undo()
    make_run(root, seed=2)
    assert CliRunner().invoke(main, ["analyze", str(root), "--out", str(out)]).exit_code == 0
    after = _tree(out)
    assert after["notes.txt"] == before["notes.txt"] and after["metrics.csv"] != before["metrics.csv"]


# ------------------------------------------------------------ images, masks
def test_sixteen_bit_masks_are_scaled_by_their_range(tmp_path):
    a = np.zeros((16, 16), np.uint16)
    a[2:6, 3:9] = 200
    a[8:12, 8:12] = 65535
    Image.fromarray(a).save(tmp_path / "m16.png")
    assert Image.open(tmp_path / "m16.png").mode.startswith("I;16")
    m = parse_region(str(tmp_path / "m16.png"), 16).mask
    assert m[3, 4] == pytest.approx(200 / 65535) and m[9, 9] == 1.0 and m[0, 0] == 0.0
    b = np.zeros((16, 16), np.uint8)
    b[2:6, 3:9] = 200
    Image.fromarray(b).save(tmp_path / "m8.png")
    assert parse_region(str(tmp_path / "m8.png"), 16).mask[3, 4] == pytest.approx(200 / 255)
    Image.fromarray(a > 0).save(tmp_path / "m1.png")  # 1-bit
    assert parse_region(str(tmp_path / "m1.png"), 16).mask.sum() == 24 + 16


def test_store_never_loads_a_huge_image(tmp_path):
    _png_header_only(tmp_path / "h.png", 100_000, 100_000)
    with pytest.raises(MGMError, match="larger than"):
        store.read_png(tmp_path / "h.png")


# ------------------------------------------------------------ store limits
def _npy_header_only(path: Path, shape: tuple, dtype="<f4") -> None:
    """A sparse .npy whose header claims ``shape`` and whose size matches it (no data is written)."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)


@pytest.mark.parametrize("shape, needle", [((5000, 4, 5), "more than the 4096"),
                                           ((4096, 256, 1024), "MiB"),
                                           ((6, 4, 5, 2), "expected [n, num_ws, w_dim]")])
def test_array_headers_are_checked_before_anything_is_read(tmp_path, shape, needle):
    run = make_run(tmp_path, run_id="r")
    _npy_header_only(run / "latents.npy", shape)
    _npy_header_only(run / "reference.npy", shape[1:3])
    with pytest.raises(RunReadError, match=needle.replace("[", r"\[")):
        store.load_run(run)


def test_a_huge_run_json_is_not_read(tmp_path):
    run = make_run(tmp_path, run_id="r")
    with open(run / "run.json", "r+b") as f:
        f.truncate(40 * 2**20)  # sparse: costs nothing on disk
    with pytest.raises(RunReadError, match="40 MiB, more than the 32 MiB"):
        store.load_run(run)


def test_duplicate_run_ids_keep_the_folder_named_after_the_id(tmp_path):
    make_run(tmp_path, run_id="zz-run")
    shutil.copytree(tmp_path / "zz-run", tmp_path / "aa-copy")  # sorts first, same run_id inside
    found = {p.name: (run, reason) for p, run, reason in store.scan_runs(tmp_path)}
    assert found["zz-run"][0] is not None and found["zz-run"][0].run_id == "zz-run"
    assert found["aa-copy"][0] is None and "same run_id as zz-run" in found["aa-copy"][1]
    from dashboards.data import snapshot

    snap = snapshot(tmp_path)
    assert list(snap.runs) == ["zz-run"] and len(snap.problems) == 1 and "aa-copy" in snap.problems[0]
