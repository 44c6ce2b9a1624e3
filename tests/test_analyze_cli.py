"""`mgm analyze` and the report: tables, self-contained HTML, one warning per broken folder, no torch needed."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _fake_runs import BLOCK_TORCH, make_run
from click.testing import CliRunner

from mgm_analysis.cli import main

REPO = Path(__file__).resolve().parents[1]


def _store(root):
    for i, region in enumerate(["mouth", "eyes", "brows", "mouth", "eyes", "brows"]):
        make_run(root, region=region, seed=i // 3, n=6 + i % 2)
    return root


def test_analyze_writes_tables_and_a_self_contained_report(tmp_path):
    from mgm_analysis.analysis import analyze

    root = _store(tmp_path / "runs")
    (root / "broken").mkdir()
    paths = analyze(root, tmp_path / "report", quiet=True)
    for name in ["metrics", "metrics_parquet", "regions", "projection_pca", "layer_profiles", "overlap",
                 "overlap_summary", "report"]:
        assert paths[name].exists(), name
    assert "projection_umap" not in paths and "transfer" not in paths
    cat = pd.read_parquet(paths["metrics_parquet"])
    assert len(cat) == 6 and set(cat.region) == {"mouth", "eyes", "brows"}
    assert len(pd.read_csv(paths["projection_pca"])) == 3 * 6 + 3 * 7
    regions = pd.read_csv(paths["regions"])
    assert list(regions.runs) == [2, 2, 2]
    html = paths["report"].read_text()
    assert html.count("<script") >= 4 and "Plotly.newPlot" in html
    assert "src=\"https://cdn" not in html and "src='https://cdn" not in html  # plotly.js inline: works offline
    assert html.count("<img src='data:image/png;base64,") == 6
    assert "Subspace overlap" in html and "Layer profiles" in html and "Metrics by region" in html
    assert "skipping" in html and "broken" in html


def test_cli_prints_a_summary_and_one_warning_per_broken_folder(tmp_path):
    root = _store(tmp_path / "runs")
    (root / "broken").mkdir()
    bad = make_run(root, "nose", 9)
    (bad / "run.json").write_text("{")
    r = CliRunner().invoke(main, ["analyze", str(root), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and any("broken" in w for w in warnings) and any(bad.name in w for w in warnings)
    assert "by region" in r.output and "subspace overlap" in r.output and "analysed 6 runs" in r.output
    assert (tmp_path / "rep" / "report.html").exists()
    q = CliRunner().invoke(main, ["analyze", str(root), "--out", str(tmp_path / "rep2"), "--quiet"])
    assert q.exit_code == 0 and q.output == ""


def test_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(main, ["analyze", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such run store" in r.output and len(r.output.strip().splitlines()) == 1
    run = make_run(tmp_path / "runs")
    r = CliRunner().invoke(main, ["analyze", str(run)])
    assert r.exit_code == 2 and "single run" in r.output


def test_cli_on_an_empty_store(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0 and "no runs" in r.output
    assert "No runs in this store" in (tmp_path / "rep" / "report.html").read_text()
    # a warning naming the store and what to do, even with --quiet (the rest of the work is done: an empty report)
    import warnings

    own = warnings.showwarning  # the caller's (pytest's); the command's one-line format is its own while it runs
    q = CliRunner().invoke(main, ["analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "rep2"), "--quiet"])
    assert q.exit_code == 0 and q.output.strip().splitlines() == [
        f"warning: {tmp_path / 'empty'} holds no readable runs, so the report is empty; make some with "
        f"`mgm discover --out {tmp_path / 'empty'}` or `mgm demo`"]
    assert warnings.showwarning is own


def test_recompute_flag_refreshes_metrics(tmp_path):
    root = _store(tmp_path / "runs")
    r = CliRunner().invoke(main, ["analyze", str(root), "--out", str(tmp_path / "rep"), "--recompute", "--quiet"])
    assert r.exit_code == 0, r.output
    cat = pd.read_csv(tmp_path / "rep" / "metrics.csv")
    assert np.allclose(cat.locality, 1.0) and "jump_ratio" in cat.columns


def test_figures_and_tables_for_notebooks(tmp_path):
    import plotly.graph_objects as go

    from mgm_analysis.analysis import layer_profiles, load_runs, overlap_matrix, project, report

    root = _store(tmp_path / "runs")
    cat = load_runs(root)
    assert isinstance(cat, pd.DataFrame) and len(cat) == 6
    runs = report.runs_of(root)
    figs = [report.fig_projection(project(root)), report.fig_projection(project(root, n_components=3)),
            report.fig_metric_bars(cat), report.fig_layer_heatmap(layer_profiles(runs)),
            report.fig_overlap(overlap_matrix(runs))]
    assert all(isinstance(f, go.Figure) for f in figs)
    # one trace per region, one line per run in it (runs apart by a gap)
    assert len(figs[0].data) == 3 and sum(np.isnan(np.asarray(t.x, float)).sum() for t in figs[0].data) == 6
    assert isinstance(figs[1].data[0], go.Scatter3d)
    strip = report.frame_strip(runs[0])
    assert strip.ndim == 3 and strip.shape[0] >= 64 and strip.max() <= 1


def test_analysis_works_with_torch_blocked(tmp_path):
    root = _store(tmp_path / "runs")
    code = BLOCK_TORCH + f"""
from mgm_analysis import store
from mgm_analysis.analysis import analyze, load_runs, projection, compare, report
from mgm_analysis.measure import recompute_metrics
assert len(load_runs({str(root)!r})) == 6
recompute_metrics({str(root)!r})
runs = list(store.iter_runs({str(root)!r}))
compare.overlap_matrix(runs)
print(len(projection.project(runs)))
analyze({str(root)!r}, {str(tmp_path / 'rep')!r}, quiet=True)
assert "torch" not in sys.modules
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "39"
    assert (tmp_path / "rep" / "report.html").exists()


def test_transfer_and_combine_from_the_cli(tmp_path):
    pytest.importorskip("torch")
    from _fake_runs import discovered_run

    from mgm_analysis.generators import load_generator
    from mgm_analysis.generators.checkpoints import save_checkpoint
    from mgm_analysis.generators.stylegan2 import tiny_generator

    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=0), tmp_path / "tiny.pt")
    G = load_generator(tmp_path / "tiny.pt")  # the runs record this checkpoint's path
    root = tmp_path / "runs"
    discovered_run(root, G, "mouth", 0, 1, box=(2, 8, 14, 14))
    discovered_run(root, G, "eyes", 0, 2, box=(2, 2, 14, 7))
    r = CliRunner().invoke(main, ["analyze", str(root), "--out", str(tmp_path / "rep"), "--transfer", "2",
                                  "--combine"])
    assert r.exit_code == 0, r.output
    assert "wrote 5 transfer/combination runs" in r.output and "transfer (mean" in r.output
    tt = pd.read_csv(tmp_path / "rep" / "transfer.csv")
    ct = pd.read_csv(tmp_path / "rep" / "combine.csv")
    assert len(tt) == 4 and tt.transfer_locality.between(0, 1).all()
    assert len(ct) == 1 and ct.region[0] in ("eyes+mouth", "mouth+eyes") and 0 <= ct.combined_locality[0] <= 1
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Transfer: " in html and "Combination: " in html
    # the analysis of discovered runs is not polluted by derived runs
    assert len(pd.read_csv(tmp_path / "rep" / "projection_pca.csv")) == 10
    r2 = CliRunner().invoke(main, ["analyze", str(root), "--out", str(tmp_path / "rep"), "--transfer", "2",
                                   "--combine", "--quiet"])
    assert r2.exit_code == 0 and len(pd.read_csv(tmp_path / "rep" / "metrics.csv")) == 7  # nothing new


def test_overlap_matrix_of_many_runs_is_a_sample_and_said(tmp_path, capsys):
    """Above overlap_runs (--overlap-runs, 500 by default) discovered runs the run x run matrix (overlap.csv, its
    figure) holds a seeded sample of that many, and the report's warnings say so; the summary covers every pair."""
    import pandas as pd

    from mgm_analysis.analysis import analyze

    root = _store(tmp_path / "runs")
    paths = analyze(root, tmp_path / "report", overlap_runs=4)
    M = pd.read_csv(paths["overlap"], index_col=0)
    assert M.shape == (4, 4) and set(M.index) <= {p.name for p in root.iterdir()}
    err = capsys.readouterr().err
    assert "a seeded sample of 4 of the 6 runs" in err
    assert pd.read_csv(paths["overlap_summary"])["count"].sum() == 6 * 5 // 2  # every pair
    again = analyze(root, tmp_path / "report2", quiet=True, overlap_runs=4)  # seeded: the same sample
    assert list(pd.read_csv(again["overlap"], index_col=0).index) == list(M.index)
