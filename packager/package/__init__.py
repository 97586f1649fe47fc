"""The pieces of a package the package stage assembles: samples, tokenizer files, the file list
with hashes, library versions, and the deterministic zip.

The manifest's schema version is the runtime's own (edgepack_runtime.SCHEMA_VERSION): the
writer writes exactly the version the shipped readers were built for.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import re
import shutil
import zipfile
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from packager.hashing import sha256_file

LIBRARIES = ("edgepack", "torch", "onnx", "onnxruntime", "onnxscript", "numpy", "scikit-learn")
# Zip entries get a fixed timestamp so equal content gives an equal archive.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def schema_version() -> str:
    from packager.edge_runtime import load_runtime

    return load_runtime().SCHEMA_VERSION


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


# A tensor name that is safe as one file name of a package on every system: the model's own
# names (an output named "../x", "a/b" or 300 characters long) never become paths.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def sample_file(kind: str, name: str, index: int) -> str:
    """samples/NAME.npy for a tensor's recorded values, or samples/KIND_INDEX.npy when NAME is
    not a plain file name (the manifest maps each tensor to its file: readers follow it)."""
    return f"samples/{name if _SAFE_NAME.fullmatch(name) else f'{kind}_{index}'}.npy"


def _save_outputs(folder: Path, sess, outs) -> dict[str, str]:
    files = {}
    for i, (o, value) in enumerate(zip(sess.get_outputs(), outs, strict=True)):
        files[o.name] = sample_file("output", o.name, i)
        np.save(folder / files[o.name], value)
    return files


def array_samples(
    folder: Path, model: Path, raw: np.ndarray | None, x: np.ndarray, mkdir: bool = True
) -> dict[str, Any]:
    """samples/: raw inputs (none: the caller records its own, e.g. image files), the
    preprocessed tensor and the model's outputs on it."""
    from packager.onnx_utils import session

    if mkdir:
        (folder / "samples").mkdir()
    sess = session(model)
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: x})
    np.save(folder / "samples/input.npy", x)
    out: dict[str, Any] = {"count": len(x)}
    if raw is not None:
        np.save(folder / "samples/raw.npy", raw.astype(np.float32))
        out["raw"] = "samples/raw.npy"
    return out | {
        "inputs": {name: "samples/input.npy"},
        "outputs": _save_outputs(folder, sess, outs),
    }


def text_samples(folder: Path, model: Path, tok, texts: list[str]) -> dict[str, Any]:
    """samples/: raw strings, their token ids and the model's outputs on them."""
    from packager.data.text import encode
    from packager.onnx_utils import session

    (folder / "samples").mkdir()
    (folder / "samples/raw.json").write_text(json.dumps(texts, ensure_ascii=False, indent=1))
    sess = session(model)
    feeds = encode(tok, texts, [i.name for i in sess.get_inputs()])
    outs = sess.run(None, feeds)
    inputs = {}
    for i, (name, value) in enumerate(feeds.items()):
        inputs[name] = sample_file("input", name, i)
        np.save(folder / inputs[name], value)
    return {
        "count": len(texts),
        "raw": "samples/raw.json",
        "inputs": inputs,
        "outputs": _save_outputs(folder, sess, outs),
    }


def copy_tokenizer(src: Path, tree: Path, tok) -> None:
    """tokenizer.json with truncation and padding baked in (as the manifest records them), plus
    the tokenizer's config files."""
    from packager.data.text import TOKENIZER_FILES

    tok.save(str(tree / "tokenizer.json"))
    for name in TOKENIZER_FILES[1:]:
        if (src / name).is_file():
            shutil.copyfile(src / name, tree / name)


def file_list(tree: Path) -> dict[str, dict[str, Any]]:
    return {
        p.relative_to(tree).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(tree.rglob("*"))
        if p.is_file()
    }


def zip_tree(tree: Path, dest: Path) -> None:
    from packager.edge_runtime import load_runtime

    limits = load_runtime().limits  # the readers' memory budget
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(tree).as_posix(), ZIP_TIME)
                data = p.read_bytes()
                # Readers refuse a member that inflates more than 64 times (the memory budget):
                # such a member (an all-zero tensor, say) is stored as it is.
                bomb = _deflates_beyond(data, limits.MAX_INFLATE_RATIO, limits.INFLATE_RATIO_FLOOR)
                info.compress_type = zipfile.ZIP_STORED if bomb else zipfile.ZIP_DEFLATED
                zf.writestr(info, data)


def _deflates_beyond(data: bytes, ratio: int, floor: int) -> bool:
    """Whether deflate shrinks `data` (over `floor` bytes) more than `ratio` times; streamed,
    and stopped as soon as the output is big enough (a few percent of real data)."""
    if len(data) <= floor:
        return False
    packer, out, step = zlib.compressobj(6, zlib.DEFLATED, -15), 0, 1 << 20
    for i in range(0, len(data), step):
        out += len(packer.compress(data[i : i + step]))
        if out * ratio >= len(data):
            return False
    return (out + len(packer.flush())) * ratio < len(data)


# An absolute POSIX path inside a text ("/home/me/x.npy", "hf:/home/me/bert"): a "/" that
# continues no relative path ("samples/x", "hf:pkg/model") and starts no URL's "//", then name
# characters (no space, quote or bracket).
_PATH_CHARS = r"[^\s/\"'`<>()\[\]{}|,;]"
_ABSOLUTE = re.compile(rf"(?<![\w/.~\\-])/(?:{_PATH_CHARS}+/)*{_PATH_CHARS}+")


class Portable:
    """Makes every absolute path of the builder's machine in what a package publishes portable
    (docs/guarantees.md): under the recipe's folder, relative to it (`data/x.npy`); under the
    stage cache, `cache:STAGE/KEY/FILE`; anywhere else, the file's name alone (the manifest
    lists each data file and teacher weight beside its sha256). Whole values are mapped, and so
    are paths inside texts ("/home/me/x.npy test split (120 examples)")."""

    def __init__(self, recipe_dir: str | Path | None, cache_root: str | Path | None) -> None:
        roots = [(Path(r), p) for r, p in ((recipe_dir, ""), (cache_root, "cache:")) if r]
        self.roots = sorted(roots, key=lambda rp: len(rp[0].parts), reverse=True)  # deepest first

    def path(self, text: str) -> str:
        p = Path(text)
        for root, prefix in self.roots:
            if p == root or root in p.parents:
                return prefix + (p.relative_to(root).as_posix() if p != root else ".")
        return p.name or text

    def __call__(self, value: Any) -> Any:
        """`value` (JSON-like) with every absolute path made portable."""
        known = sorted(set(_absolute_values(value)), key=len, reverse=True)
        # A whole value first (it may hold spaces or backticks), where it is not followed by
        # more of a path; then any other absolute path inside a text.
        exact = re.compile(
            "|".join(rf"{re.escape(k)}(?!/|{_PATH_CHARS})" for k in known) or r"(?!)"
        )
        return self._walk(value, exact)

    def _walk(self, value: Any, exact: re.Pattern[str]) -> Any:
        if isinstance(value, str):
            text = exact.sub(lambda m: self.path(m.group()), value)
            return _ABSOLUTE.sub(lambda m: self.path(m.group()), text)
        if isinstance(value, dict):
            return {k: self._walk(v, exact) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v, exact) for v in value]
        return value


def _absolute_values(value: Any):
    """Every string of `value` that is, whole, an absolute path."""
    if isinstance(value, str):
        if value.startswith("/") and "\n" not in value and len(value) > 1:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _absolute_values(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _absolute_values(v)


def _non_finite(value: Any, path: str = "") -> str | None:
    """Where in `value` a NaN or an infinity sits (a JSON path), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "."
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list | tuple)
        else ()
    )
    return next((p for k, v in items if (p := _non_finite(v, f"{path}.{k}"))), None)


def strict_json(value: Any, name: str) -> str:
    """`value` as JSON with no NaN or infinity (every runtime refuses them); ValueError naming
    where one sits (`report.json.metrics.x`) otherwise."""
    where = _non_finite(value)
    if where is not None:
        raise ValueError(f"{name}{where} is not a finite number (NaN or infinity)")
    return json.dumps(value, indent=2, allow_nan=False)
