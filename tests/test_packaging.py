"""The wheel installs whole: every module and every shipped data file of the source tree is in it.

The tests run on the editable install, which sees the source tree; a package left out of the wheel's
package list would only fail for a user (as ``mgm_analysis/finders`` once did). This builds the wheel
the way ``pip install .`` would and compares its file list with the tree.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree_files() -> set[str]:
    """What the wheel must hold: every .py under the two packages, the shipped data and the dashboard's assets."""
    want = set()
    for pkg in ("mgm_analysis", "dashboards"):
        want |= {p.relative_to(ROOT).as_posix() for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts}
    want |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "mgm_analysis" / "data").iterdir()
             if p.is_file() and p.suffix in (".pt", ".json", ".jsonl", ".md", ".png")}
    want |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "dashboards" / "assets").rglob("*") if p.is_file()}
    return want


def _clean_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones git does not ignore) copied to ``dest``: no ``build/`` left
    by an earlier build, whose stale copies setuptools would put into the wheel."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_the_wheel_holds_every_module_and_data_file(tmp_path):
    src = _clean_copy(tmp_path / "src")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("mgm_analysis-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    want = _tree_files()
    assert "mgm_analysis/finders/methods.py" in want and "mgm_analysis/data/toyfaces_G.pt" in want  # the tree is read
    missing = sorted(want - names)
    assert not missing, f"not in the wheel: {missing}"
    stray = sorted(n for n in names if n.endswith(".py") and n not in want)
    assert not stray, f"in the wheel but not in the tree (tests, benchmarks?): {stray}"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mgm = mgm_analysis.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
