"""Files a user hands to a single-stage command (`quantize`, `bench`): an ONNX model or an
`.edgepack` package, brought into the cache so the command goes through the one runner."""

from __future__ import annotations

from pathlib import Path

from packager.config.base import Config
from packager.errors import InputFileError


class ModelFileConfig(Config):
    path: str

    @classmethod
    def for_file(cls, path: str | Path) -> ModelFileConfig:
        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"{path}: file not found")
        if p.suffix != ".onnx":
            raise InputFileError(f"{path}: expected an .onnx model")
        return cls(path=str(p.resolve()))

    def input_paths(self) -> dict[str, str]:
        # Its content is the key: an edited file is a new key; so is edgepack export's
        # external-data file beside it (NAME.onnx.data), when there is one.
        data = Path(f"{self.path}.data")
        return {"path": self.path, **({"data": str(data)} if data.is_file() else {})}


class PackageFileConfig(Config):
    path: str

    @classmethod
    def for_file(cls, path: str | Path) -> PackageFileConfig:
        p = Path(path)
        if not p.exists():
            raise InputFileError(f"{path}: file not found")
        return cls(path=str(p.resolve()))

    def input_paths(self) -> dict[str, str]:
        return {"path": self.path}
