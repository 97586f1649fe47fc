"""model_file: bring a user's ONNX file into the cache, so single-stage commands (quantize,
bench, ...) go through the same runner and key on the file's content."""

from __future__ import annotations

import shutil
from pathlib import Path

from packager.artifact import Output
from packager.config import ModelFileConfig
from packager.errors import InputFileError, one_line
from packager.stage import StageContext, register_stage


@register_stage(ModelFileConfig, name="model_file", version=2)
def model_file(_inp: None, cfg: ModelFileConfig, ctx: StageContext) -> Output:
    import onnx

    from packager.onnx_utils import io_spec

    dest = ctx.workdir / "model.onnx"
    shutil.copyfile(cfg.path, dest)
    try:
        onnx.checker.check_model(str(dest))
    except Exception as err:
        # The checker names the file it read, our cache copy: the user knows only their path.
        first = one_line(err).replace(str(dest), cfg.path)
        first = first.replace(str(ctx.workdir), str(Path(cfg.path).parent))
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
