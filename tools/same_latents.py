"""Behaviour unchanged, checked: the same specs give the same latents, bit for bit, before and after a change.

Runs a fixed set of small jobs through the command line (the stable interface) — discoveries of two regions,
two baselines, and the transfers and the combination that ``mgm analyze --transfer 1 --combine`` derives —
into a fresh store, and records the SHA-256 of every run's ``latents.npy`` by a name that does not depend on
time stamps (kind, region, seed, method).  ``--write FILE`` saves them; ``--check FILE`` compares them with a
saved set and exits 1 on any difference::

    python tools/same_latents.py --write build/latents-before.json     # on the old code
    python tools/same_latents.py --check build/latents-before.json     # on the new code
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

JOBS = [
    ["discover", "--region", "mouth", "--seed", "3", "--epochs", "2"],
    ["discover", "--region", "eyes", "--seed", "3", "--epochs", "2"],
    ["discover", "--region", "brows", "--seed", "3", "--epochs", "1", "--preset", "paper", "--distance", "l2",
     "--frames", "6"],
    ["baselines", "--region", "mouth", "--seed", "3", "--methods", "sefa,jacobian,jacobian_loop"],
]


def _mgm(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "mgm_analysis.cli", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def latents(store: Path) -> dict[str, str]:
    """name -> sha256 of latents.npy for every run in ``store``."""
    out = {}
    for run in sorted(p for p in store.iterdir() if (p / "run.json").exists()):
        meta = json.loads((run / "run.json").read_text())
        prov = meta.get("provenance") or {}
        kind = prov.get("kind") or "discover"
        name = f"{kind}:{meta['region']['name']}:s{meta.get('seed')}"
        if kind == "baseline":
            name += f":{prov.get('method')}"
        if kind in ("transfer", "combine"):
            name += ":" + "+".join(sorted(s.split("-")[0] for s in prov.get("sources") or []))
        while name in out:
            name += "'"
        out[name] = hashlib.sha256((run / "latents.npy").read_bytes()).hexdigest()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "runs"
        for job in JOBS:
            _mgm(*job, "--out", str(store), "--quiet")
        _mgm("analyze", str(store), "--out", str(Path(tmp) / "report"), "--transfer", "1", "--combine")
        got = latents(store)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps(got, indent=1, sort_keys=True))
        print(f"{len(got)} runs -> {args.write}")
        return 0
    want = json.loads(args.check.read_text())
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    for k in bad:
        print(f"differs: {k}: {want.get(k, 'missing')[:12]} -> {got.get(k, 'missing')[:12]}")
    print(f"{len(got)} runs, {len(set(want) & set(got)) - len([k for k in bad if k in want and k in got])} "
          f"identical, {len(bad)} different")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
