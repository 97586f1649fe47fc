"""Time each runtime's whole check of one package, side by side, as a device app would run it.

    python scripts/bench_runtimes.py [PKG] [--pubkey KEY.pub] [--runs 5]

Each run is one child process from start to exit: start-up, signature (with --pubkey), every
sha256, session creation and the sample replay. Prints the median and min wall time per runtime
and the package's model files; runtimes that are not built are listed as such.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from packager.verify import CPP_CHECK, JS_CHECK


def _commands(pkg: Path, folder: Path) -> dict[str, list[str] | None]:
    node = shutil.which("node")
    js_ok = node is not None and (JS_CHECK.parent.parent / "node_modules").is_dir()
    return {
        "python": [sys.executable, "-m", "edgepack_runtime", str(pkg), "--check"],
        "cpp": [str(CPP_CHECK), str(folder)] if CPP_CHECK.is_file() else None,
        "js (node)": [node, str(JS_CHECK), str(pkg), "--backend", "node"] if js_ok else None,
        "js (wasm)": [node, str(JS_CHECK), str(pkg), "--backend", "wasm"] if js_ok else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="dist/digits.edgepack")
    parser.add_argument("--pubkey", help="also verify the signature with this public key")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pkg = Path(args.package)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(pkg) as zf:
        zf.extractall(tmp)  # the C++ runtime reads folders
        sizes = {i.filename: i.file_size for i in zf.infolist() if "model" in i.filename}
        print(f"{pkg}: " + ", ".join(f"{n} {s / 1024:.1f} KiB" for n, s in sizes.items()))
        print(f"{'runtime':<12}{'median ms':>11}{'min ms':>9}  result")
        for name, argv in _commands(pkg, Path(tmp)).items():
            if argv is None:
                print(f"{name:<12}{'-':>11}{'-':>9}  not built (see README: Use it in your app)")
                continue
            if args.pubkey:
                argv = [*argv, "--pubkey", args.pubkey]
            times, last = [], None
            for _ in range(args.runs):
                t0 = time.perf_counter()
                last = subprocess.run(argv, capture_output=True, text=True)
                times.append((time.perf_counter() - t0) * 1000)
            out = (last.stdout + last.stderr).strip().splitlines()
            verdict = out[-1][:60] if out else f"exit {last.returncode}"
            print(f"{name:<12}{statistics.median(times):>11.0f}{min(times):>9.0f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
