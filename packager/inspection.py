"""`edgepack inspect`: what a package or an ONNX model is, as plain data (cli/render formats it)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from packager.errors import InputFileError


def _manifest_of(path: Path) -> tuple[dict[str, Any], bytes]:
    """The manifest and the model's bytes, through the runtime's checked reader: a package a
    device would refuse (unsafe names, symlinks, sizes, schema) is refused here too."""
    from packager.runtime import load_runtime, open_package, package_error

    rt = load_runtime()
    with open_package(path) as reader:
        try:
            return reader.manifest, reader.read(reader.manifest["model"])
        except rt.EdgepackRuntimeError as err:
            raise InputFileError(package_error(path, err)) from None


def inspect_target(path: Path) -> dict[str, Any]:
    from packager.onnx_utils import summary
    from packager.provenance.onnx_meta import read

    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.suffix == ".onnx":
        try:
            info = {"kind": "onnx", "path": str(path), **summary(path), "cost": _cost(path)}
            return info | {"metadata": read(path)}
        except Exception as err:
            raise InputFileError(
                f"{path}: not a readable ONNX model ({type(err).__name__})"
            ) from None
    manifest, model_bytes = _manifest_of(path)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.onnx"
        model_path.write_bytes(model_bytes)
        model = {**summary(model_path), "cost": _cost(model_path), "metadata": read(model_path)}
    return {
        "kind": "package",
        "path": str(path),
        "name": manifest.get("name"),
        "version": manifest.get("version"),
        "task": manifest.get("task"),
        "schema_version": manifest.get("schema_version"),
        **model,
        "files": manifest.get("files", {}),
        "metrics": manifest.get("metrics", {}),
        "benchmarks": manifest.get("benchmarks", []),
        "preprocessing": manifest.get("preprocessing"),
        "provenance": manifest.get("provenance"),  # schema 1.1+; None in older packages
    }


def _cost(path: Path) -> dict[str, Any] | None:
    """The cost model's per-op table at batch 1 (None when the graph cannot be analyzed)."""
    from packager.bench.costmodel import analyze

    try:
        return analyze(path, batch=1).to_json()
    except Exception:  # inspect still shows everything else about a graph it cannot cost
        return None
