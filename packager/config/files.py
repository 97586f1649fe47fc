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
        from packager.edge_runtime import MAX_MODEL_BYTES, user_file

        p = user_file(path, MAX_MODEL_BYTES)  # a FIFO: "not a regular file", never waited on
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
        from packager.edge_runtime import MAX_DATA_BYTES, user_file

        p = Path(path)
        if not p.is_dir():  # a folder, or a regular .edgepack zip (not a FIFO to block on)
            user_file(p, MAX_DATA_BYTES)
        return cls(path=str(p.resolve()))

    def input_paths(self) -> dict[str, str]:
        return {"path": self.path}
