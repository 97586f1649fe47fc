"""quantize: the recipe's scheme (packager.quantize.schemes), an accuracy budget and a speed check.

In a build, calibration defaults to the training split and evaluation to the validation split
(the test split stays for evaluate); single-stage commands point both at files. The data input's
modality picks the feeds (arrays, images, or text tokenised with the model's tokenizer); the
work itself, the accuracy search included, is packager.quantize.apply's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packager.artifact import Artifact, Output
from packager.config import QuantizeConfig
from packager.errors import RecipeError, StageError
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import images_of, splits_of


def _calibrates(cfg: QuantizeConfig) -> bool:
    from packager.quantize.registry import scheme_of

    return scheme_of(cfg).calibrates


def _array_sources(cfg: QuantizeConfig, model: Path, data: Artifact | None):
    """Files the config names (calib, eval) first; else the recipe's train/val splits."""
    from packager.quantize.data import ArraySource, materialize, model_inputs, open_source

    inputs = model_inputs(model)
    splits = splits_of(data) if data is not None else None
    files = {"tokenizer": cfg.tokenizer, "max_length": cfg.max_length}

    def split(name: str, batch: int, limit: int):
        x = splits.model_input(name, limit=limit)
        return ArraySource(inputs, {inputs[0].name: x}, splits.y[name][:limit], batch, limit)

    calib = None
    if _calibrates(cfg):
        if cfg.calib:
            calib = open_source(
                cfg.calib, inputs, batch=cfg.calib_batch, limit=cfg.calib_samples, **files
            )
        elif splits is not None:
            calib = split("train", cfg.calib_batch, cfg.calib_samples)
    if cfg.eval:
        source = open_source(cfg.eval, inputs, batch=64, limit=cfg.eval_samples, **files)
        return calib, materialize(source), cfg.eval
    if splits is not None:
        batches = materialize(split("val", 256, cfg.eval_samples))
        n = sum(len(y) for _, y in batches)
        return calib, batches, f"{splits.source} validation split ({n} examples)"
    return calib, None, None  # packager.plans.quantize_plan refuses max_drop without eval


def _text_sources(cfg: QuantizeConfig, model: Path, data: Artifact):
    """The train split calibrates, the validation split evaluates, tokenised by the tokenizer
    beside the model."""
    from packager.quantize.data import materialize, model_inputs, open_source

    folder = cfg.tokenizer or str(model.parent)
    if not (Path(folder) / "tokenizer.json").is_file() and not Path(folder).is_file():
        if _calibrates(cfg):
            raise RecipeError(
                f"quantize: {cfg.mode} calibration of a text model needs its tokenizer: set "
                "quantize.tokenizer, or quantize.mode = dynamic"
            )
        return None, None, None
    inputs = model_inputs(model)
    files = {"tokenizer": folder, "max_length": data.meta["max_length"]}
    calib = None
    if _calibrates(cfg):
        calib = open_source(
            data.file("train.jsonl"),
            inputs,
            batch=cfg.calib_batch,
            limit=cfg.calib_samples,
            **files,
        )
    val = open_source(data.file("val.jsonl"), inputs, batch=64, limit=cfg.eval_samples, **files)
    batches = materialize(val)
    n = sum(len(next(iter(f.values()))) for f, _ in batches)
    return calib, batches, f"{data.meta['source']} validation split ({n} texts)"


def _image_sources(cfg: QuantizeConfig, model: Path, data: Artifact):
    """Calibration on the training split's images and evaluation on the validation split's,
    each preprocessed exactly as the runtimes do (no augmentation)."""
    from packager.quantize.data import ArraySource, materialize, model_inputs

    inputs = model_inputs(model)
    images = images_of(data)
    if not images.labeled and cfg.metric in ("accuracy", "top5"):
        raise RecipeError(
            f"quantize.metric = {cfg.metric} needs labels, and data.source "
            f"{data.meta['source']} is unlabeled: set quantize.metric = agreement"
        )

    def split(name: str, batch: int, limit: int) -> ArraySource:
        x = images.array(name, limit=limit)
        return ArraySource(inputs, {inputs[0].name: x}, images.labels(name, limit), batch, limit)

    calib = split("train", cfg.calib_batch, cfg.calib_samples) if _calibrates(cfg) else None
    batches = materialize(split("val", 64, cfg.eval_samples))
    n = sum(len(next(iter(f.values()))) for f, _ in batches)
    return calib, batches, f"{data.meta['source']} validation split ({n} images)"


def _lm_sources(cfg: QuantizeConfig, model: Path, data: Artifact):
    """A language model: the schemes that serve it need no calibration (the recipe says which,
    packager.recipe); perplexity and agreement are the evaluate step's (its gates apply), the
    speed check times one decode step."""
    return None, None, None


def _file_sources(cfg: QuantizeConfig, model: Path, data: None):
    """A single-stage command: the files the config names (arrays or token rows)."""
    return _array_sources(cfg, model, None)


_HANDLERS = Handlers(
    "quantize",
    array=_array_sources,
    text=_text_sources,
    image=_image_sources,
    lm=_lm_sources,
)


def _sources(cfg: QuantizeConfig, model: Path, ctx: StageContext):
    """(calibration source or None, evaluation batches or None, evaluation dataset label)."""
    data = ctx.inputs.get("data")
    if data is None:
        return _file_sources(cfg, model, None)
    return _HANDLERS(data.modality)(cfg, model, data)


@register_stage(QuantizeConfig, version=12)
def quantize(model_art: Artifact, cfg: QuantizeConfig, ctx: StageContext) -> Output:
    from packager.quantize.apply import QuantizeFailed, quantize_model

    src = model_art.file()
    # The model the user gave (before optimize/slim): sizes, the metric and the speed check
    # are relative to it.
    original = ctx.inputs.get("original", model_art).file()
    calib, batches, dataset = _sources(cfg, src, ctx)
    try:
        result = quantize_model(
            src, original, cfg, ctx.workdir, out=ctx.workdir / "model.onnx", calib=calib,
            batches=batches, dataset=dataset, log=ctx.log, warn=ctx.warn,
        )  # fmt: skip
    except QuantizeFailed as err:
        raise StageError(ctx.step, str(err)) from err.__cause__
    return _output(model_art, cfg, ctx, result)


def _output(model_art: Artifact, cfg: QuantizeConfig, ctx: StageContext, result) -> Output:
    from packager.onnx_utils import io_spec, summary

    qz, best, trials, metric = result.quantizer, result.best, result.trials, result.metric
    src, out = model_art.file(), ctx.workdir / "model.onnx"
    original = ctx.inputs.get("original", model_art).file()
    fp32_size, size = original.stat().st_size, out.stat().st_size
    settings = qz.settings()
    if src.stat().st_size != fp32_size:  # optimize/slim ran first: say what it made
        settings["optimized_size_bytes"] = src.stat().st_size
    quantization: dict[str, Any] = {
        **settings,
        "excluded_nodes": best.excluded,
        "max_drop": cfg.max_drop,
        **result.verdict,
        "trials": len(trials),
        "failed_trials": sum(t.error is not None for t in trials),
        "metric": metric,
        "size_bytes": size,
        "fp32_size_bytes": fp32_size,
        "speed": result.speed,
    }
    (ctx.workdir / "quantize.json").write_text(json.dumps(quantization, indent=2))
    shown = f", {cfg.metric} {metric['fp32']:.4f} -> {metric['quantized']:.4f}" if metric else ""
    fmt = settings["format"]
    ctx.log(f"{cfg.mode} ({fmt}): {fp32_size / 1024:.1f} KiB -> {size / 1024:.1f} KiB{shown}")
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "precision": settings["precision"],
            "mode": cfg.mode,
            "format": fmt,
            "calibration": settings.get("calibration"),
            "calibration_examples": qz.calibration_examples,
            "size_bytes": size,
            "fp32_size_bytes": fp32_size,
            "params": model_art.meta.get("params"),
            "ops": summary(out)["ops"],
            "metric": metric,
            "latency": result.speed,
            "budget_met": result.verdict["budget_met"],
            "search": "search.md" if cfg.max_drop is not None else None,
            "quantization": quantization,
            **io_spec(out),
        },
    )
