"""The pieces of a package the package stage assembles: samples, tokenizer files, the file list
with hashes, library versions, and the deterministic zip.

The manifest's schema version is the runtime's own (edgepack_runtime.SCHEMA_VERSION): the
writer writes exactly the version the shipped readers were built for.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import zipfile
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


def _save_outputs(folder: Path, sess, outs) -> dict[str, str]:
    files = {}
    for o, value in zip(sess.get_outputs(), outs, strict=True):
        np.save(folder / f"samples/{o.name}.npy", value)
        files[o.name] = f"samples/{o.name}.npy"
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
    for name, value in feeds.items():
        np.save(folder / f"samples/{name}.npy", value)
        inputs[name] = f"samples/{name}.npy"
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
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(tree).as_posix(), ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())
