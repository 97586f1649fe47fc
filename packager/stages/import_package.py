"""import_package: bring a `.edgepack` package (zip or folder) into the cache as its model plus
its sample feeds, so `edgepack bench PKG` measures the shipped model on the package's own
inputs, through the same runner as every other command. Read with the runtime's checked reader:
what a device refuses, this refuses (names, symlinks, FIFOs, sizes, sha256)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from packager.artifact import Output
from packager.config import PackageFileConfig
from packager.errors import PackageError
from packager.stage import StageContext, register_stage


@register_stage(PackageFileConfig, name="import_package", version=3)
def import_package(_inp: None, cfg: PackageFileConfig, ctx: StageContext) -> Output:
    from packager.edge_runtime import load_runtime, open_package, package_error

    rt = load_runtime()
    with open_package(cfg.path) as pkg:
        try:
            return _bring(pkg, cfg, ctx)
        except rt.EdgepackRuntimeError as err:
            raise PackageError(package_error(cfg.path, err)) from None


def _bring(pkg, cfg: PackageFileConfig, ctx: StageContext) -> Output:
    import numpy as np

    from packager.onnx_utils import io_spec

    manifest = pkg.manifest
    model_name = manifest.get("model", "model.onnx")
    dest = ctx.workdir / "model.onnx"
    dest.write_bytes(pkg.read(model_name))
    try:
        spec = io_spec(dest)
    except Exception as err:  # its hashes hold, but it is no ONNX model: refused, as verify does
        raise PackageError(
            f"{cfg.path}: {model_name}: not a readable ONNX model ({type(err).__name__})"
        ) from None
    meta: dict[str, Any] = {
        "file": "model.onnx",
        "source": cfg.path,
        "name": manifest.get("name", Path(cfg.path).stem),
        "size_bytes": dest.stat().st_size,
        **spec,
    }
    sample_inputs = (manifest.get("samples") or {}).get("inputs") or {}
    if sample_inputs:
        feeds = {
            name: np.load(io.BytesIO(pkg.read(member)), allow_pickle=False)
            for name, member in sample_inputs.items()
        }
        np.savez(ctx.workdir / "samples.npz", **feeds)
        meta["samples"] = "samples.npz"
        meta["sample_count"] = int(min(len(v) for v in feeds.values()))
    return Output("onnx", meta)
