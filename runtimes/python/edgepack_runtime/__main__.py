"""python -m edgepack_runtime PKG [--input FILE.npy] [--info] [--check] [--pubkey KEY.pub]
python -m edgepack_runtime PKG --image PHOTO.jpg [--tensor]   (image packages)
python -m edgepack_runtime PKG (--text T | --text-file F)... [--tokens]   (text packages)
python -m edgepack_runtime PKG (--prompt T | --prompt-file F) [--chat] [--max-new-tokens N]
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
from ._source import open_regular
from .errors import EdgepackRuntimeError
from .postprocessing import Prediction


def _prediction_json(pred: Prediction) -> dict[str, Any]:
    if pred.embeddings is not None:
        return {"embeddings": pred.embeddings.tolist()}
    if pred.labels is not None:
        rows = zip(pred.labels, pred.indices.tolist(), pred.scores.tolist(), strict=True)
        return {"predictions": [{"label": la, "index": i, "score": s} for la, i, s in rows]}
    return {"outputs": {name: value.tolist() for name, value in pred.outputs.items()}}


def _load_input(path: str) -> np.ndarray:
    try:
        with open_regular(path) as f:  # a FIFO or device: refused, not waited on
            return np.load(f, allow_pickle=False)
    except OSError as exc:
        raise EdgepackRuntimeError(f"{path}: cannot read a .npy array ({exc.strerror})") from exc
    except (ValueError, EOFError) as exc:  # EOFError: an empty file
        raise EdgepackRuntimeError(f"{path}: cannot read a .npy array ({exc or 'empty'})") from exc
    except MemoryError:  # a header that claims more rows than memory holds
        raise EdgepackRuntimeError(
            f"{path}: its .npy header claims more than fits in memory"
        ) from None


def _read_bytes(path: str) -> bytes:
    try:
        with open_regular(path) as f:  # a FIFO or device: refused, not waited on
            return f.read()
    except OSError as exc:
        raise EdgepackRuntimeError(f"{path}: cannot read the input ({exc.strerror})") from exc


def _texts(items: list[tuple[str, str]]) -> list[str]:
    """--text values and --text-file contents (a file's bytes as one UTF-8 text), in order."""
    from .text import decode_utf8

    return [
        v if kind == "text" else decode_utf8(_read_bytes(v), f"text {i}")
        for i, (kind, v) in enumerate(items)
    ]


def _generate(package, args) -> dict[str, Any]:
    """The greedy continuation of --prompt, with its ids (what the other runtimes print too)."""
    from .text import decode_utf8

    prompt = (
        args.prompt
        if args.prompt_file is None
        else decode_utf8(_read_bytes(args.prompt_file), "prompt")
    )
    lm = package.lm
    ids = lm.prompt_ids(prompt, args.chat)
    generated: list[int] = []
    options = {"max_new_tokens": args.max_new_tokens, "temperature": 0}
    text = "".join(lm.stream(prompt, (), args.chat, on_token=generated.append, **options))
    return {"prompt_ids": ids, "generated_ids": generated, "text": text}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
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
    parser.add_argument(
        "--text",
        dest="texts",
        action="append",
        type=lambda v: ("text", v),
        metavar="TEXT",
        help="a text to predict on (text packages); repeatable",
    )
    parser.add_argument(
        "--text-file",
        dest="texts",
        action="append",
        type=lambda v: ("file", v),
        metavar="FILE",
        help="a file whose bytes (UTF-8) are one text; repeatable",
    )
    parser.add_argument("--tokens", action="store_true", help="with --text: print the feeds")
    parser.add_argument("--prompt", help="a language model: print the greedy continuation")
    parser.add_argument("--prompt-file", metavar="FILE", help="--prompt from a file's UTF-8 bytes")
    parser.add_argument("--chat", action="store_true", help="apply the chat template to --prompt")
    parser.add_argument("--max-new-tokens", type=int, help="--prompt: tokens to generate")
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
                print(f"ok: {len(reader.names())} files verified and written to {args.extract_to}")
            return 0
        package = load(args.package, threads=args.threads, pubkey=args.pubkey)
        if args.image and args.tensor:
            x = next(iter(package.preprocess(args.image).values()))
            print(json.dumps({"shape": list(x.shape), "data": x.ravel().tolist()}))
            return 0
        if args.image:
            print(json.dumps(_prediction_json(package.predict(args.image))))
        if args.texts:
            raw = _texts(args.texts)
            if args.tokens:
                print(json.dumps({k: v.tolist() for k, v in package.preprocess(raw).items()}))
            else:
                print(json.dumps(_prediction_json(package.predict(raw))))
            return 0
        if args.prompt is not None or args.prompt_file is not None:
            print(json.dumps(_generate(package, args), ensure_ascii=False))
            return 0
        if args.info or not (args.input or args.check or args.image):
            print(json.dumps(package.info(), indent=2))
        if args.check:
            print(f"ok: {package.verify().message}")
        if args.input:
            print(json.dumps(_prediction_json(package.predict(_load_input(args.input)))))
    except (EdgepackRuntimeError, ValueError, OSError) as exc:
        # ValueError: a bad option value (e.g. --threads 0); OSError: --extract-to could not
        # write (disk full, permissions); anything else is a bug: traceback.
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
