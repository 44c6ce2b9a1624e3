"""The house's layers hold: the import-linter contract in .importlinter passes on the tree, and fails as soon as
a module imports from a layer above its own (tried on a copy of the tree with one upward import added); no module
is over 600 lines."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache", "--config", str(tree / ".importlinter")], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_import_runs_downward():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    tree = tmp_path / "tree"
    for name in ("mgm_analysis", "dashboards"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / ".importlinter", tree / ".importlinter")
    assert _lint(tree).returncode == 0                    # the copy passes as the tree does
    metrics = tree / "mgm_analysis" / "metrics" / "verdicts.py"  # the bottom layer reaching for the top one
    metrics.write_text(metrics.read_text() + "\n\ndef _up():\n    from mgm_analysis.cli import main  # noqa: F401\n")
    r = _lint(tree)
    assert r.returncode != 0
    assert "mgm_analysis.metrics is not allowed to import mgm_analysis.cli" in r.stdout, r.stdout[-2000:]


MAX_LINES = 600  # a module a newcomer can read through; a longer one is split by what it owns


def test_no_module_is_over_600_lines():
    long = {}
    for pkg in ("mgm_analysis", "dashboards"):
        for path in (ROOT / pkg).rglob("*.py"):
            with open(path, encoding="utf-8") as f:
                n = sum(1 for _ in f)
            if n > MAX_LINES:
                long[str(path.relative_to(ROOT))] = n
    assert not long, f"modules over {MAX_LINES} lines: {long}"
