#!/usr/bin/env bash
# `pip install .` in a fresh venv gives a working tool (issue 12): from a clean copy of the
# committed tree (git archive HEAD, as a clone or CI has it), torch pinned first so nothing pulls
# a CUDA build, then `pip install .` (not editable); in an unrelated folder `edgepack build`
# (the bundled default recipe), `verify` and `run`. Then the Python runtime alone, in a second
# fresh venv, checks the same package. Prints the seconds each part took.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgepack-fresh-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { echo "== $1 ($(( SECONDS - T0 )) s so far)"; }
T0=$SECONDS

mkdir "$WORK/src" "$WORK/elsewhere"
git -C "$ROOT" archive HEAD | tar -x -C "$WORK/src"
step "fresh venv: torch==2.13.0, then pip install ."
$PY -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q torch==2.13.0
"$WORK/venv/bin/pip" install -q "$WORK/src"

cd "$WORK/elsewhere"  # not the repo: recipes and the runtime must come with the install
step "edgepack build (default recipe)"
"$WORK/venv/bin/edgepack" build -q
step "edgepack verify"
"$WORK/venv/bin/edgepack" verify dist/digits.edgepack
step "edgepack run"
"$WORK/venv/bin/python" -c "import numpy as np; np.save('x.npy', np.full((2, 64), 8.0))"
"$WORK/venv/bin/edgepack" run dist/digits.edgepack --input x.npy

step "the Python runtime alone: pip install ./runtimes/python"
$PY -m venv "$WORK/runtime"
"$WORK/runtime/bin/pip" install -q "$WORK/src/runtimes/python"
"$WORK/runtime/bin/python" -m edgepack_runtime dist/digits.edgepack --check
if "$WORK/runtime/bin/python" -c "import torch" 2>/dev/null; then
  echo "error: the runtime-only venv has torch" >&2
  exit 1
fi
step "ok"
