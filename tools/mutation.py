"""Mutation testing of the core numeric modules with mutmut, each against its own tests (``make mutation``).

    python tools/mutation.py                      # all modules below, table at the end
    python tools/mutation.py masks losses -j 2    # some of them, two test processes at a time

Each module is mutated in a scratch copy of the project (``build/mutation/<module>/``; the checkout is never
touched) and only its own tests run against each mutant, so a module takes minutes, not hours.  The table
gives mutmut's counts and the kill rate = (killed + timeouts) / all mutants; a mutant that no test executes
("no tests") counts as surviving.  The surviving mutants' changed lines go to
``build/mutation/<module>/survivors.txt`` for review.

mutmut 3 does not mutate decorated functions.  ``metrics/measures.py`` wraps its metrics in ``@_quiet``
(numpy floating-point warnings off inside the call); in the scratch copy that decorator is removed and the
same setting applied to the whole test process, so that every metric is mutated.

Not part of CI (slow, and mutmut's numbers drift with the tests); needs ``pip install mutmut``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: module name -> (source file, its test files)
MODULES = {
    "metrics": ("mgm_analysis/metrics/measures.py", ["tests/test_metrics.py"]),
    "masks": ("mgm_analysis/masks.py", ["tests/test_masks.py"]),
    "losses": ("mgm_analysis/losses.py", ["tests/test_losses.py", "tests/test_explore.py"]),
    "compare": ("mgm_analysis/analysis/compare.py", ["tests/test_compare.py"]),
}
KILLED = {1, 3, 36, 24, -24, 152, 255, -11, -9}  # mutmut: killed, pytest internal error, timeouts, crashes
SURVIVED, NO_TESTS = {0}, {5, 33}
# (the model ships inside mgm_analysis/data; test_explore.py reads benchmarks/bench_time_to_quality.py's bar)
COPY = ["mgm_analysis", "tests", "dashboards", "benchmarks", "pyproject.toml"]


def _scratch(name: str, source: str, tests: list[str], out: Path) -> Path:
    work = out / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for item in COPY:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, work / item, ignore=shutil.ignore_patterns("__pycache__", "fixtures"))
        elif src.exists():
            shutil.copy2(src, work / item)
    text = (work / source).read_text()
    if "\n@_quiet\n" in text:  # see the module docstring
        text = text.replace("\n@_quiet\n", "\n")
        (work / source).write_text(text)
        conftest = work / "tests" / "conftest.py"
        conftest.write_text(conftest.read_text() + "\nimport numpy as _np\n\n_np.seterr(all='ignore')  # mutation run\n")
    lines = ["[mutmut]", "source_paths = mgm_analysis", f"only_mutate = {source}",
             "pytest_add_cli_args_test_selection = " + "\n    ".join(tests),
             "pytest_add_cli_args = -p no:cacheprovider -q",
             "also_copy = tests\n    data\n    dashboards\n    benchmarks", "use_git_change_detection = false", ""]
    (work / "setup.cfg").write_text("\n".join(lines))
    return work


def _survivors(meta_path: Path) -> list[str]:
    """The changed lines of every mutant that was not killed, read from mutmut's trampolined copy."""
    src = meta_path.with_suffix("").read_text()
    codes = json.loads(meta_path.read_text())["exit_code_by_key"]
    lines = src.splitlines()
    funcs = {n.name: "\n".join(lines[n.lineno - 1:n.end_lineno]) for n in ast.walk(ast.parse(src))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = []
    for key, code in sorted(codes.items()):
        if code in KILLED:
            continue
        name = key.rsplit(".", 1)[1]
        orig, mut = funcs.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"), funcs.get(name)
        out.append(f"## {name} ({'no tests' if code in NO_TESTS else 'survived' if code in SURVIVED else code})")
        if orig and mut:
            out += [line.rstrip() for line in difflib.unified_diff(orig.splitlines()[1:], mut.splitlines()[1:],
                                                                    lineterm="", n=0)
                    if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    return out


def run(name: str, out: Path, jobs: int) -> dict:
    source, tests = MODULES[name]
    work = _scratch(name, source, tests, out)
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if mutmut is None:
        sys.exit("mutmut is not installed: pip install mutmut")
    print(f"== {name}: mutating {source} against {' '.join(tests)} in {work}", flush=True)
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(work / "mutmut.log", "w") as log:
        r = subprocess.run([mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    meta = work / "mutants" / (source + ".meta")
    if r.returncode != 0 or not meta.exists():
        tail = (work / "mutmut.log").read_text()[-2000:]
        sys.exit(f"mutmut failed on {name} (exit {r.returncode}); the end of {work / 'mutmut.log'}:\n{tail}")
    codes = list(json.loads(meta.read_text())["exit_code_by_key"].values())
    row = {"module": name, "mutants": len(codes), "killed": sum(c in KILLED for c in codes),
           "survived": sum(c in SURVIVED for c in codes), "no_tests": sum(c in NO_TESTS for c in codes)}
    row["other"] = row["mutants"] - row["killed"] - row["survived"] - row["no_tests"]
    row["kill_rate"] = row["killed"] / max(1, row["mutants"])
    (work / "survivors.txt").write_text("\n".join(_survivors(meta)) + "\n")
    (work / "result.json").write_text(json.dumps(row, indent=1))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", default=list(MODULES), help=f"some of {', '.join(MODULES)}")
    ap.add_argument("-j", "--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                    help="test processes at a time [default: half the cores]")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "mutation", help="scratch folder")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    rows = [run(m, args.out, args.jobs) for m in args.modules]
    print(f"\n{'module':10} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} {'other':>6} {'kill rate':>10}")
    for r in rows:
        print(f"{r['module']:10} {r['mutants']:8d} {r['killed']:7d} {r['survived']:9d} {r['no_tests']:9d} "
              f"{r['other']:6d} {r['kill_rate']:10.1%}")
    print(f"survivors: {args.out}/<module>/survivors.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
