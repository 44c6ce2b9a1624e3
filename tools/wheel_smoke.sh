#!/usr/bin/env bash
# The package as a user gets it: build the sdist and the wheel (python -m build: the wheel is built from the
# sdist, in a clean folder), check them (twine check), install the wheel into a new virtual environment
# without the editable install, and run every `mgm` command once from a folder outside the checkout.
#   bash tools/wheel_smoke.sh [WORK]        (WORK: default build/wheel-smoke; TORCH: the torch requirement)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mkdir -p "${1:-$ROOT/build/wheel-smoke}" && cd "${1:-$ROOT/build/wheel-smoke}" && pwd)"
TORCH="${TORCH:-torch==2.14.1 torchvision==0.29.1}"
PYTHON="${PYTHON:-python3}"
rm -rf "$WORK"/{tools,dist,venv,run}
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "build sdist and wheel"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build twine
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >/dev/null
ls -l "$WORK/dist"
"$WORK/tools/bin/twine" check --strict "$WORK"/dist/*

step "install the wheel into a clean environment"
"$PYTHON" -m venv "$WORK/venv"
# shellcheck disable=SC2086
"$WORK/venv/bin/pip" install -q $TORCH
"$WORK/venv/bin/pip" install -q "$WORK"/dist/*.whl
mkdir -p "$WORK/run" && cd "$WORK/run"
MGM="$WORK/venv/bin/mgm"
PY="$WORK/venv/bin/python"
where="$("$PY" -c 'import mgm_analysis, dashboards; print(mgm_analysis.__file__, dashboards.__file__)')"
case "$where" in
  *"$WORK/venv/"*"$WORK/venv/"*) echo "imports from the wheel: $where" ;;
  *) echo "mgm_analysis or dashboards is not imported from the installed wheel: $where" >&2; exit 1 ;;
esac

step "mgm info"
"$MGM" info toyfaces
step "mgm discover --epochs 1"
"$MGM" discover --region mouth --seed 0 --epochs 1 --out runs
step "mgm baselines --methods sefa"
"$MGM" baselines --region mouth --seed 0 --methods sefa --out runs
step "mgm analyze"
"$MGM" analyze runs --out report
test -s report/report.html
step "mgm render"
run="$(ls -d runs/mouth-s0-* | head -n 1)"
"$MGM" render "$run" --sheet
test -s "$run/sheet.png"
step "the first notebook (examples/01, as a script, small settings) with the installed package"
sed -e 's/^EPOCHS = None .*/EPOCHS = 1/' -e 's/^N_FRAMES = None .*/N_FRAMES = 6/' \
    "$ROOT/examples/01_discover_a_mouth.py" > notebook01.py
grep -q '^EPOCHS = 1$' notebook01.py && grep -q '^N_FRAMES = 6$' notebook01.py
MPLBACKEND=Agg "$PY" notebook01.py
test -s mouth.gif && ls runs/notebook/mouth-s3-*/run.json
step "mgm dashboard answers a request"
port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$MGM" dashboard runs --port "$port" >dashboard.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
"$PY" - "$port" <<'EOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(240):
    try:
        with urllib.request.urlopen(url + "/_dash-layout", timeout=5) as r:
            assert r.status == 200 and b"run-table" in r.read(), "the layout has no run table"
        print("dashboard: /_dash-layout 200")
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the dashboard did not answer within 2 minutes")
EOF
step "done"
