"""python -m edgepack_runtime PKG [--input FILE.npy] [--info] [--check] [--pubkey KEY.pub]
python -m edgepack_runtime PKG --image PHOTO.jpg [--tensor]   (image packages)
python -m edgepack_runtime PKG --extract-to DIR [--pubkey KEY.pub]

Errors are one line on stderr (`error: ...`) and exit code 1: a device script can grep them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import __version__, load, open_package
from .errors import EdgepackRuntimeError
from .npy import read_npy_file
from .postprocessing import Prediction
from .text import printable


def _prediction_json(pred: Prediction) -> dict[str, Any]:
    if pred.labels is not None:
        rows = zip(pred.labels, pred.indices.tolist(), pred.scores.tolist(), strict=True)
        return {"predictions": [{"label": la, "index": i, "score": s} for la, i, s in rows]}
    return {"outputs": {name: value.tolist() for name, value in pred.outputs.items()}}


def _load_input(path: str) -> np.ndarray:
    # A FIFO or device refused unopened, a file over the cap unread, the header checked first.
    return read_npy_file(path)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage block and error: one line, as any error
        print(f"error: {printable(message)} (see --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m edgepack_runtime",
        description="Verify and run an .edgepack package. With no option, print its info.",
    )
    parser.add_argument("package", help="a .edgepack zip or package folder")
    parser.add_argument("--input", metavar="FILE.npy", help="raw input to predict on")
    parser.add_argument("--image", metavar="FILE", help="an image file to predict on (PNG/JPEG)")
    parser.add_argument(
        "--tensor",
        action="store_true",
        help="with --image: print the preprocessed model input (JSON) instead of predicting",
    )
    parser.add_argument("--info", action="store_true", help="print the package info as JSON")
    parser.add_argument("--check", action="store_true", help="replay the recorded samples")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--pubkey", metavar="KEY.pub", help="refuse the package unless signed by this key"
    )
    parser.add_argument(
        "--extract-to",
        metavar="DIR",
        help="verify every file and write the package as a folder in DIR (empty or new), "
        "e.g. for the C++ runtime; nothing else runs",
    )
    parser.add_argument("--version", action="version", version=f"edgepack-runtime {__version__}")
    args = parser.parse_args(argv)
    try:
        if args.extract_to:
            with open_package(args.package, pubkey=args.pubkey) as reader:
                reader.extract_to(args.extract_to)
                written = printable(args.extract_to)
                print(f"ok: {len(reader.names())} files verified and written to {written}")
            return 0
        package = load(args.package, threads=args.threads, pubkey=args.pubkey)
        if args.image and args.tensor:
            x = next(iter(package.preprocess(args.image).values()))
            print(json.dumps({"shape": list(x.shape), "data": x.ravel().tolist()}))
            return 0
        if args.image:
            print(json.dumps(_prediction_json(package.predict(args.image))))
        if args.info or not (args.input or args.check or args.image):
            print(json.dumps(package.info(), indent=2))
        if args.check:
            print(f"ok: {printable(package.verify().message)}")
        if args.input:
            print(json.dumps(_prediction_json(package.predict(_load_input(args.input)))))
    except (EdgepackRuntimeError, ValueError, OSError) as exc:
        # ValueError: a bad option value (e.g. --threads 0); OSError: --extract-to could not
        # write (disk full, permissions); anything else is a bug: traceback.
        message = printable(" ".join(str(exc).split()))
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
