"""model_file: bring a user's ONNX file into the cache, so single-stage commands (quantize,
bench, ...) go through the same runner and key on the file's content."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import Field

from packager.cache import sha256_file
from packager.errors import InputFileError
from packager.recipe import Config
from packager.stage import Output, StageContext, register_stage


class ModelFileConfig(Config):
    path: str
    sha256: str = Field(description="content hash, so an edited file is a new cache key")

    @classmethod
    def for_file(cls, path: str | Path) -> ModelFileConfig:
        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"{path}: file not found")
        if p.suffix != ".onnx":
            raise InputFileError(f"{path}: expected an .onnx model")
        return cls(path=str(p.resolve()), sha256=sha256_file(p))


@register_stage(ModelFileConfig, name="model_file")
def model_file(_inp: None, cfg: ModelFileConfig, ctx: StageContext) -> Output:
    import onnx

    from packager.onnx_utils import io_spec

    dest = ctx.workdir / "model.onnx"
    shutil.copyfile(cfg.path, dest)
    try:
        onnx.checker.check_model(str(dest))
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        # The checker names the file it read, our cache copy: the user knows only their path.
        first = first.replace(str(dest), cfg.path).replace(
            str(ctx.workdir), str(Path(cfg.path).parent)
        )
        raise InputFileError(f"{cfg.path}: not a valid ONNX model ({first})") from None
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "source": cfg.path,
            "size_bytes": dest.stat().st_size,
            **io_spec(dest),
        },
    )
