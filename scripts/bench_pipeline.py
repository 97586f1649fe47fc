"""Cold and warm build times of a recipe (default: the embedded digits default).

Cold: an empty cache, every stage runs (teacher training included). Warm: the same recipe
again, every stage comes from the cache. Also a bench-only change, which must rerun only bench
and package. Times are measured in this one run, on this machine.

    python scripts/bench_pipeline.py [RECIPE] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(recipe: str, cache: str, out: str, *extra: str) -> tuple[float, str]:
    cmd = [
        sys.executable,
        "-m",
        "packager.cli",
        "build",
        recipe,
        "--cache-dir",
        cache,
        "-q",
        "--set",
        f"package.out_dir={out}",
        *extra,
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"build failed: {res.stderr.strip()}")
    ran = next((ln for ln in res.stdout.splitlines() if ln.startswith("ran: ")), "ran: ?")
    return seconds, ran.removeprefix("ran: ").rsplit(" in ", 1)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default="models/digits.yaml")
    ap.add_argument(
        "--repeat", type=int, default=1, help="cold builds to time (each from an empty cache)"
    )
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        colds, warms = [], []
        for i in range(args.repeat):
            cache, out = f"{tmp}/cache{i}", f"{tmp}/dist"
            colds.append(build(args.recipe, cache, out))
            warms.append(build(args.recipe, cache, out))
        bench_only = build(args.recipe, cache, out, "--set", "bench.runs=123")
        package = next(Path(out).glob("*.edgepack"))
        with zipfile.ZipFile(package) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            report = json.loads(zf.read("report.json"))
    rows.append(("cold build (empty cache)", statistics.median(s for s, _ in colds), colds[0][1]))
    rows.append(("warm rebuild (unchanged)", statistics.median(s for s, _ in warms), warms[0][1]))
    rows.append(("bench settings changed", bench_only[0], bench_only[1]))
    print(f"recipe: {args.recipe}  (wall time incl. process start-up, median of {args.repeat})")
    print(f"{'build':<28}{'seconds':>9}  stages run")
    for name, secs, ran in rows:
        print(f"{name:<28}{secs:>9.1f}  {ran}")
    print(f"warm / cold = {rows[1][1] / rows[0][1]:.3f}")
    m, d = manifest["metrics"], report["distill"]
    shipped = m["shipped"]
    print(
        f"{shipped} test accuracy {m[shipped]['accuracy']:.4f} "
        f"(teacher {m['teacher_fp32']['accuracy']:.4f}); student has {d['params']:,} params, "
        f"{d['compression']:.1f}x fewer than the teacher"
    )


if __name__ == "__main__":
    main()
