"""import_model: bring a user's ONNX file into the cache, so single-stage commands (quantize,
bench, ...) go through the same runner and key on the file's content."""

from __future__ import annotations

import shutil
from pathlib import Path

from packager.artifact import Output
from packager.config import ModelFileConfig
from packager.errors import InputFileError, one_line
from packager.stage import StageContext, register_stage


def loads_in_onnxruntime(path: Path, shown: str, workdir: Path) -> None:
    """A model every later step would fail on is refused here, in the user's words (before
    onnxruntime's quantization tools print their own tracebacks about it)."""
    from packager.onnx_utils import ort_message, session

    try:
        session(path)
    except Exception as err:
        first = ort_message(err).replace(str(path), shown)
        first = first.replace(str(workdir), str(Path(shown).parent))
        raise InputFileError(f"{shown}: onnxruntime cannot load this model ({first})") from None


def _copy_external_data(src: Path, workdir: Path) -> None:
    """The external-data files the model names (e.g. `edgepack export`'s OUT.onnx.data), copied
    beside the cache copy under the same relative names; a name that leaves the model's folder
    is refused."""
    import onnx

    try:
        model = onnx.load(str(src), load_external_data=False)
    except Exception:  # not ONNX at all: the checker says so next, in the user's words
        return
    names = {
        e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"
    }
    for name in sorted(names):
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise InputFileError(f"{src}: external data {name!r} is outside the model's folder")
        if not (src.parent / rel).is_file():
            raise InputFileError(f"{src}: its external data file {src.parent / rel} is missing")
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.parent / rel, workdir / rel)


def _not_onnx(err: Exception, dest: Path, cfg: ModelFileConfig, ctx: StageContext) -> None:
    # The checker names the file it read, our cache copy: the user knows only their path.
    first = one_line(err).replace(str(dest), cfg.path)
    first = first.replace(str(ctx.workdir), str(Path(cfg.path).parent))
    raise InputFileError(f"{cfg.path}: not a valid ONNX model ({first})") from None


@register_stage(ModelFileConfig, name="import_model", version=4)
def import_model(_inp: None, cfg: ModelFileConfig, ctx: StageContext) -> Output:
    import onnx

    from packager.onnx_utils import io_spec

    dest = ctx.workdir / "model.onnx"
    shutil.copyfile(cfg.path, dest)
    _copy_external_data(Path(cfg.path), ctx.workdir)
    try:
        onnx.checker.check_model(str(dest))
    except Exception as err:
        if "No Op registered for" in str(err):  # an onnxruntime-only op (the genai builder's
            pass  # SimplifiedLayerNormalization): onnxruntime's own load below judges it
        else:
            _not_onnx(err, dest, cfg, ctx)
    loads_in_onnxruntime(dest, cfg.path, ctx.workdir)
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "source": cfg.path,
            "size_bytes": dest.stat().st_size,
            **io_spec(dest),
        },
    )
