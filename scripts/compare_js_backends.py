"""The JS runtime's two backends against the Python runtime, on every image of builtin:digits.

Runs a digits package through edgepack_runtime (onnxruntime, Python) and through runtimes/js on
onnxruntime-node and on onnxruntime-web's wasm backend, on all 1,797 sklearn digits (train and
test: this compares runtimes, it does not measure generalization), and prints a table: accuracy,
label agreement and logit differences against the Python runtime, load+predict seconds (one run
each, side by side, on this machine).

    python scripts/compare_js_backends.py [PACKAGE]     # default dist/digits.edgepack
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import edgepack_runtime
import numpy as np
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parent.parent

# Prints the logits of every row of a .npy file as JSON, plus load and predict seconds.
_NODE = """
const fs = require("fs");
const { load, readNpy } = require("./runtimes/js");
(async () => {
  const [pkgPath, npyPath, backend] = process.argv.slice(1);
  const t0 = performance.now();
  const pkg = await load(pkgPath, { backend });
  const t1 = performance.now();
  const pred = await pkg.predict(readNpy(fs.readFileSync(npyPath)));
  const t2 = performance.now();
  const logits = Array.from(pred.outputs[pkg.manifest.postprocessing.output].data);
  console.log(JSON.stringify({ logits, load: (t1 - t0) / 1e3, predict: (t2 - t1) / 1e3 }));
})();
"""


def _js(package: Path, raw_npy: Path, backend: str) -> tuple[np.ndarray, float, float]:
    res = subprocess.run(
        ["node", "-e", _NODE, str(package), str(raw_npy), backend],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if res.returncode != 0:
        sys.exit(f"error: JS runtime ({backend}) failed: {res.stderr.strip()}")
    out = json.loads(res.stdout)
    return np.asarray(out["logits"]), out["load"], out["predict"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="dist/digits.edgepack")
    package = Path(parser.parse_args().package).resolve()
    digits = load_digits()
    raw, target = digits.data, digits.target

    t0 = time.perf_counter()
    pkg = edgepack_runtime.load(package)
    t1 = time.perf_counter()
    pred = pkg.predict(raw)
    t2 = time.perf_counter()
    ref = np.asarray(pred.outputs[pkg.manifest["postprocessing"]["output"]], np.float64)
    rows = [("python (onnxruntime)", ref, t1 - t0, t2 - t1)]
    with tempfile.TemporaryDirectory() as tmp:
        raw_npy = Path(tmp) / "raw.npy"
        np.save(raw_npy, raw.astype(np.float32))
        for backend in ("node", "wasm"):
            logits, load_s, predict_s = _js(package, raw_npy, backend)
            rows.append((f"js {backend}", logits.reshape(ref.shape), load_s, predict_s))

    print(f"{package.name}: {len(raw)} images, logits compared with the Python runtime's")
    print(
        f"{'runtime':<22}{'accuracy':>9}{'labels agree':>14}{'max |dlogit|':>14}"
        f"{'mean |dlogit|':>15}{'load s':>8}{'predict s':>11}"
    )
    for name, logits, load_s, predict_s in rows:
        diff = np.abs(logits - ref)
        print(
            f"{name:<22}{(logits.argmax(1) == target).mean():>9.4f}"
            f"{(logits.argmax(1) == ref.argmax(1)).mean():>14.4f}"
            f"{diff.max():>14.3g}{diff.mean():>15.3g}{load_s:>8.2f}{predict_s:>11.3f}"
        )


if __name__ == "__main__":
    main()
