"""package_file: bring a `.edgepack` package (zip or folder) into the cache as its model plus
its sample feeds, so `edgepack bench PKG` measures the shipped model on the package's own
inputs, through the same runner as every other command."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from packager.artifact import Output
from packager.config import PackageFileConfig
from packager.errors import InputFileError
from packager.stage import StageContext, register_stage


class _Reader:
    """Reads members of a package zip or folder, checking each against the manifest's sha256."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._zip = None if path.is_dir() else zipfile.ZipFile(path)
            self.manifest = json.loads(self._raw("manifest.json"))
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise InputFileError(
                f"{path}: not an edgepack package ({type(err).__name__}: {err})"
            ) from None

    def _raw(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def read(self, name: str) -> bytes:
        try:
            data = self._raw(name)
        except (OSError, KeyError) as err:
            raise InputFileError(f"{self.path}: {name} is missing ({err})") from None
        expected = (self.manifest.get("files") or {}).get(name, {}).get("sha256")
        if expected is None or hashlib.sha256(data).hexdigest() != expected:
            raise InputFileError(f"{self.path}: {name} does not match the manifest's sha256")
        return data


@register_stage(PackageFileConfig, name="package_file", version=2)
def package_file(_inp: None, cfg: PackageFileConfig, ctx: StageContext) -> Output:
    import numpy as np

    from packager.onnx_utils import io_spec

    pkg = _Reader(Path(cfg.path))
    manifest = pkg.manifest
    model_name = manifest.get("model", "model.onnx")
    dest = ctx.workdir / "model.onnx"
    dest.write_bytes(pkg.read(model_name))
    meta: dict[str, Any] = {
        "file": "model.onnx",
        "source": cfg.path,
        "name": manifest.get("name", Path(cfg.path).stem),
        "size_bytes": dest.stat().st_size,
        **io_spec(dest),
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
