"""Replay a package's samples with edgepack_runtime; run by the emulated aarch64 python.

Usage: ``python3 -I _arm64_child.py RUNTIME_DIR PACKAGE OUT.npz``

RUNTIME_DIR holds a copy of the edgepack_runtime package. This file runs inside the sysroot's
python, so it imports only the standard library, numpy, onnxruntime and edgepack_runtime
(itself numpy + onnxruntime only), never ``packager``. It prints one JSON line: the runtime's
sample check against the recorded outputs, and the versions that produced it; the model's
outputs on the samples go to OUT.npz for the host to compare with its own.
"""

import json
import os
import platform
import sys


def replay(rt, package):
    """(Package, SampleCheck, {output name: array}) for `package` loaded with runtime `rt`.

    The outputs are captured from the runtime's own check_samples run, so they come from
    exactly the feeds it builds (raw samples preprocessed, or the recorded model inputs).
    """
    pkg = rt.load(package, threads=1)
    captured = {}
    run = pkg.run

    def capturing_run(feeds):
        outputs = run(feeds)
        captured.update(outputs)
        return outputs

    pkg.run = capturing_run
    return pkg, pkg.check_samples(), captured


def main(argv):
    # Native code may print to fd 1; keep stdout for the one JSON line.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        runtime_dir, package, out_path = argv[1:4]
        sys.path.insert(0, runtime_dir)
        import edgepack_runtime as rt
        import numpy as np
        import onnxruntime as ort

        _, check, outputs = replay(rt, package)
        np.savez(out_path, **outputs)
        result = {
            "ok": True,
            "samples_ok": bool(check.ok),
            "count": int(check.count),
            "message": check.message,
            "max_abs_diff": {k: float(v) for k, v in check.max_abs_diff.items()},
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
        }
        status = 0
    except BaseException as exc:  # any failure, even SystemExit, ends as one JSON line
        text = " ".join(str(exc).split()) or repr(exc)
        result, status = {"ok": False, "error": f"{type(exc).__name__}: {text}"[:500]}, 1
    with os.fdopen(out_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(result) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
