"""`edgepack inspect`: what a package or an ONNX model is, as plain data (cli/render formats it)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from packager.errors import InputFileError, PackageError


def _manifest_of(path: Path) -> tuple[dict[str, Any], bytes, dict[str, list[int]]]:
    """The manifest, the model's bytes and the shapes of one sample input each, through the
    runtime's checked reader: a package a device would refuse (unsafe names, symlinks, sizes,
    schema) is refused here too."""
    import io

    import numpy as np

    from packager.edge_runtime import load_runtime, open_package, package_error

    rt = load_runtime()
    with open_package(path) as reader:
        try:
            manifest = reader.manifest
            shapes = {}
            for name, member in (manifest.get("samples") or {}).get("inputs", {}).items():
                value = np.load(io.BytesIO(reader.read(member)), allow_pickle=False)
                shapes[name] = [1, *value.shape[1:]]
            return manifest, reader.read(manifest["model"]), shapes
        except rt.EdgepackRuntimeError as err:
            raise PackageError(package_error(path, err)) from None


def inspect_target(
    path: Path, *, dims: dict[str, int] | None = None, batch: int = 1
) -> dict[str, Any]:
    """What `path` is; its cost table at `batch` with symbolic dims bound by `dims` (a
    package's own sample shapes when no dim is given)."""
    from packager.onnx_utils import summary
    from packager.provenance.onnx_meta import read

    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.suffix == ".onnx":
        try:
            info = {**summary(path), "metadata": read(path)}
        except Exception as err:
            raise InputFileError(
                f"{path}: not a readable ONNX model ({type(err).__name__})"
            ) from None
        return {"kind": "onnx", "path": str(path), **info, "cost": _cost(path, batch, dims)}
    manifest, model_bytes, shapes = _manifest_of(path)
    if dims or batch != 1:
        shapes = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.onnx"
        model_path.write_bytes(model_bytes)
        try:
            model = {
                **summary(model_path),
                "cost": _cost(model_path, batch, dims, shapes),
                "metadata": read(model_path),
            }
        except Exception as err:  # its hashes hold, but it is no ONNX model: verify refuses it too
            raise PackageError(
                f"{path}: {manifest['model']}: not a readable ONNX model ({type(err).__name__})"
            ) from None
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


def _cost(path: Path, batch: int, dims, shapes=None) -> dict[str, Any] | None:
    """The cost model's per-op table (None when the graph cannot be analyzed)."""
    from packager.bench.costmodel import analyze

    try:
        cost = analyze(path, batch=batch, dims=dims, shapes=shapes).to_json()
    except Exception:  # inspect still shows everything else about a graph it cannot cost
        return None
    return {**cost, "batch": batch}
