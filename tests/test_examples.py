"""The notebooks in examples/ run in a Jupyter kernel (jupytext reads the percent scripts, nbclient executes them)
with small settings written after each notebook's parameters cell, as papermill does; each must finish without
an error.  ``make examples`` runs them (CI too, after ``make test``, which leaves them out); their wall times are
printed."""

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"EPOCHS": 2, "N_FRAMES": 8}
NOTEBOOKS = {
    "01_discover_a_mouth.py": {**QUICK},
    "02_compare_regions.py": {**QUICK, "SEEDS": [0, 1], "UMAP": True},
    "03_report_card.py": {**QUICK, "METHODS": ["jacobian_loop", "jacobian", "sefa", "random"]},
    "04_real_checkpoint.py": {**QUICK, "CHECKPOINT": str(ROOT / "tests" / "fixtures" / "nvidia" / "ada_fp32.pkl"),
                              "REGION": "rect:4,8,12,14", "LAYERS": "1:4", "DISTANCE": "l2"},
}


def _execute(name: str, params: dict, cwd: Path) -> tuple[object, float]:
    import jupytext
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    nb = jupytext.read(ROOT / "examples" / name)
    (at,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    nb.cells.insert(at + 1, new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()),
                                          metadata={"tags": ["injected-parameters"]}))
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb, time.perf_counter() - t0


@pytest.mark.examples
@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs(name, tmp_path, capsys):
    nb, seconds = _execute(name, NOTEBOOKS[name], tmp_path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") == "execute_result" for o in outputs)  # it showed something
    with capsys.disabled():
        print(f"\n{name}: {seconds:.1f} s")


def test_every_notebook_is_executed_and_has_a_parameters_cell():
    import jupytext

    names = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert names == sorted(NOTEBOOKS)
    for name in names:
        nb = jupytext.read(ROOT / "examples" / name)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and nb.cells[0].cell_type == "markdown", name
        assert set(NOTEBOOKS[name]) <= {line.split("=")[0].strip() for line in params[0].source.splitlines()
                                         if "=" in line}, name  # only parameters the notebook declares
