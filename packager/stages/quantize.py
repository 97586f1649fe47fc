"""quantize: static/dynamic INT8, fp16 or int4 weight-only, with an accuracy budget and a speed check.

In a build, calibration defaults to the training split and evaluation to the validation split
(the test split stays for evaluate); single-stage commands point both at files. The data input's
modality picks the feeds (arrays, images, or text tokenised with the model's tokenizer). With
`max_drop`, the nodes that matter most are kept in float, a trial at a time, only while that
lowers the drop (for top-1 agreement: the KL to fp32; packager.quantize.search); every trial
goes to search.md/search.json, and a missed budget is said plainly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from packager.artifact import Artifact, Output
from packager.config import QuantizeConfig
from packager.errors import EdgepackError, RecipeError, StageError, one_line
from packager.stage import StageContext, register_stage
from packager.stages.data import images_of, splits_of


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
    if cfg.mode == "static":
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
    if cfg.max_drop is not None:
        raise RecipeError(
            "quantize.max_drop needs evaluation data: set quantize.eval (--eval DATA) to a "
            ".npz/.npy/.jsonl/.txt file"
        )
    return calib, None, None


def _text_sources(cfg: QuantizeConfig, model: Path, data: Artifact):
    """The train split calibrates, the validation split evaluates, tokenised by the tokenizer
    beside the model."""
    from packager.quantize.data import materialize, model_inputs, open_source

    folder = cfg.tokenizer or str(model.parent)
    if not (Path(folder) / "tokenizer.json").is_file() and not Path(folder).is_file():
        if cfg.mode == "static":
            raise RecipeError(
                "quantize: static calibration of a text model needs its tokenizer: set "
                "quantize.tokenizer, or quantize.mode = dynamic"
            )
        return None, None, None
    inputs = model_inputs(model)
    files = {"tokenizer": folder, "max_length": data.meta["max_length"]}
    calib = None
    if cfg.mode == "static":
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

    calib = split("train", cfg.calib_batch, cfg.calib_samples) if cfg.mode == "static" else None
    batches = materialize(split("val", 64, cfg.eval_samples))
    n = sum(len(next(iter(f.values()))) for f, _ in batches)
    return calib, batches, f"{data.meta['source']} validation split ({n} images)"


def _lm_sources(cfg: QuantizeConfig, model: Path, data: Artifact):
    """A language model: weight-only modes need no calibration; perplexity and agreement are
    the evaluate step's (its gates apply), the speed check times one decode step."""
    if cfg.mode == "static" or cfg.max_drop is not None:
        raise RecipeError(
            "quantize: a language model takes mode int4, fp16 or dynamic without max_drop "
            "(evaluate.max_ppl_ratio and evaluate.min_agreement are its accuracy gates)"
        )
    return None, None, None


_HANDLERS = {
    "array": _array_sources,
    "text": _text_sources,
    "image": _image_sources,
    "lm": _lm_sources,
}


def _sources(cfg: QuantizeConfig, model: Path, ctx: StageContext):
    """(calibration source or None, evaluation batches or None, evaluation dataset label)."""
    data = ctx.inputs.get("data")
    modality = data.modality if data is not None else "array"  # files: arrays or token rows
    return _HANDLERS[modality](cfg, model, data)


def _evaluator(cfg: QuantizeConfig, original: Path, batches, dataset):
    from packager.quantize.metrics import Evaluator

    if batches is None:
        return None
    return Evaluator(
        original,
        batches,
        cfg.metric,
        where=dataset,
        class_axis=cfg.class_axis,
        threshold=cfg.iou_threshold,
    )


def _log_upgrade(ctx: StageContext, up: dict[str, Any] | None) -> None:
    head = up and f"opset {up['from']} upgraded to {up['to']} with onnx's version converter"
    if up and up["checked"]:
        ctx.log(f"{head}; max |upgraded - original| = {up['max_abs_diff']:.2e}")
    elif up:
        ctx.warn(f"{head}, NOT checked against the original: {up['why']}")


@register_stage(QuantizeConfig, version=10)
def quantize(model_art: Artifact, cfg: QuantizeConfig, ctx: StageContext) -> Output:
    from packager.quantize import search as S
    from packager.quantize.modes import Quantizer
    from packager.quantize.speed import checked_speed, example_feeds

    src = model_art.file()
    # The model the user gave (before optimize/slim): sizes, the metric and the speed check
    # are relative to it.
    original = ctx.inputs.get("original", model_art).file()
    work = ctx.workdir / "work"
    work.mkdir()
    calib, batches, dataset = _sources(cfg, src, ctx)
    evaluator = _evaluator(cfg, original, batches, dataset)
    feeds = example_feeds(cfg, original, batches, calib)
    qz = _guard(cfg, ctx, lambda: Quantizer(src, cfg, work, calib, feeds["feeds"], feeds["why"]))
    _log_upgrade(ctx, qz.upgrade)
    for w in qz.warnings:
        ctx.warn(w)
    trials, candidates = _trials(cfg, ctx, qz, evaluator, batches, feeds["feeds"], work)
    best = S.best_of(trials)
    out = ctx.workdir / "model.onnx"
    shutil.copyfile(best.path, out)
    _carry_metadata(ctx, src, out)
    _check_output(cfg, ctx, original, out)
    if cfg.max_drop is not None:
        S.write_table(
            trials, ctx.workdir, metric=cfg.metric, fp32=evaluator.fp32, max_drop=cfg.max_drop
        )
    # Timed afresh, fp32 and quantized back to back: a search trial's p50 was taken minutes
    # earlier under other load, and a side-by-side claim needs both sides under the same.
    speed, warnings = checked_speed(cfg, original, out, feeds)
    for w in warnings:
        ctx.warn(w)
    verdict = _verdict(cfg, ctx, best, trials, candidates)
    shutil.rmtree(work)
    metric = None
    if evaluator is not None:
        metric = {
            "name": cfg.metric,
            "fp32": evaluator.fp32,
            "quantized": best.metric,
            "drop": best.drop,
            "examples": evaluator.examples,
            "dataset": dataset,
        }
    return _output(model_art, cfg, ctx, qz, best, trials, metric, speed, verdict)


def _trials(cfg: QuantizeConfig, ctx: StageContext, qz, evaluator, batches, feeds, work: Path):
    """Trial 0 quantizes everything the config allows; over budget, the search keeps the most
    sensitive nodes in float one more per trial. Returns (trials, the search's candidates)."""
    from packager.quantize import effects as E
    from packager.quantize import search as S
    from packager.quantize.modes import quantizable_ops
    from packager.quantize.speed import latency, node_macs

    macs, total = node_macs(qz.graph, feeds) if cfg.max_float_macs else ({}, 0)

    def scored(i: int, extra: list[str]) -> S.Trial:
        path = work / f"trial{i}.onnx"
        qz.run(path, extra)
        metric, guide = evaluator.scores(path) if evaluator else (None, None)
        drop = None if metric is None else evaluator.drop(metric)
        within = None if cfg.max_drop is None else drop <= cfg.max_drop + 1e-12
        # Each candidate is timed only when the search may compare several.
        p50 = (
            latency(path, cfg.speed_threads, cfg.speed_runs, feeds)
            if cfg.speed_check and cfg.max_drop is not None
            else None
        )
        excluded, size = [*qz.excluded, *extra], path.stat().st_size
        t = S.Trial(i, excluded, metric, drop, size, p50, within, str(path), guide=guide)
        t.float_macs = sum(macs.get(n, 0) for n in excluded) / total if total else None
        if cfg.min_speedup is not None and p50:  # fp32 timed right beside it: same load
            t.speedup = latency(qz.graph, cfg.speed_threads, cfg.speed_runs, feeds) / p50
        return t

    def attempt(i: int, extra: list[str]) -> S.Trial:
        if i == 0:  # nothing to fall back on: the stage fails
            return _guard(cfg, ctx, lambda: scored(i, extra))
        try:
            return scored(i, extra)
        except Exception as err:  # onnxruntime or the quantizer on one candidate
            # A failed candidate is a row in the table, not the end of the search: the
            # earlier trials (and the best model among them) are kept.
            ctx.warn(f"search trial {i} failed ({one_line(err)}); trials before it kept")
            path = work / f"trial{i}.onnx"
            size = path.stat().st_size if path.is_file() else 0
            excluded = [*qz.excluded, *extra]
            return S.Trial(i, excluded, None, None, size, within_budget=False, error=one_line(err))

    trials = [attempt(0, [])]
    if cfg.max_drop is None or trials[0].within_budget:
        return trials, []
    ctx.log(
        f"{cfg.mode}: {cfg.metric} drop {trials[0].drop:.4f} is over max_drop "
        f"{cfg.max_drop:g}; searching for nodes to keep in float"
    )
    candidates = S.candidates_of(qz.graph, quantizable_ops(cfg.mode), qz.excluded)
    first = Path(trials[0].path)
    try:
        ranking = S.node_sensitivity(qz.graph, first, batches, candidates)
        if cfg.mode in ("static", "dynamic"):  # weighted nodes first: effect per float weight
            bits = 7 if qz.settings().get("reduce_range") else 8
            effects = E.weight_effects(qz.graph, batches, candidates, cfg.per_channel, bits)
            ranking = E.by_measured_effect(ranking, effects)
    except Exception as err:  # the augmented models failed in onnxruntime
        ctx.warn(
            f"node sensitivity could not be measured ({one_line(err)}); "
            "trying candidates in graph order"
        )
        ranking = [(name, None) for name in candidates]
    ranking = S.with_producers(ranking, qz.graph, first, candidates)
    cap = None if cfg.max_size_ratio is None else int(cfg.max_size_ratio * qz.graph.stat().st_size)
    trials = S.search(
        trials[0],
        ranking,
        attempt,
        cfg.max_drop,
        cfg.max_trials,
        ctx.log,
        cap,
        cfg.min_speedup,
        cfg.max_float_macs,
    )
    return trials, candidates


def _carry_metadata(ctx: StageContext, src: Path, out: Path) -> None:
    """The input's metadata_props (an edgepack package's lineage, a user's own) survive."""
    from packager.provenance.onnx_meta import carry

    if carry(src, out):
        ctx.log("metadata_props the quantizer dropped were re-applied")


def _check_output(cfg: QuantizeConfig, ctx: StageContext, src: Path, out: Path) -> None:
    """The quantized model must load in onnxruntime (or it is an error, never exit 0), and a
    model that grew is said out loud."""
    from packager.onnx_utils import ort_message, session

    try:
        session(out)
    except Exception as err:
        # onnxruntime names the file it read: a temporary folder in the cache, no use to anyone.
        why = ort_message(err).replace(str(out), "the output")
        raise StageError(
            ctx.step,
            f"the {cfg.mode} model does not load in onnxruntime ({why}); nothing was written",
        ) from None
    grown = out.stat().st_size / max(1, src.stat().st_size)
    if grown > 1.0 and cfg.mode != "none":
        ctx.warn(
            f"the {cfg.mode} model is {grown:.0%} of the input's size: nothing in it was "
            "quantized that shrinks it (check the ops the mode covers, or exclude_* settings)"
        )


def _verdict(cfg: QuantizeConfig, ctx: StageContext, best, trials, candidates) -> dict[str, Any]:
    """Whether the budget held, and whether it held only by keeping everything in float."""
    budget_met = None if cfg.max_drop is None else bool(best.within_budget)
    all_float = bool(candidates) and set(candidates) <= set(best.excluded)
    if budget_met and all_float:
        ctx.warn(
            f"the budget held only with every {cfg.mode} candidate node in float: "
            "the model is effectively not quantized; raise max_drop or try another mode"
        )
    if budget_met is False:
        ctx.warn(
            f"accuracy budget NOT met: {cfg.metric} drop {best.drop:.4f} of the pick"
            f"{' (the lowest KL to fp32)' if best.guide is not None else ''} > "
            f"max_drop {cfg.max_drop:g} after {len(trials)} trial(s) ({len(best.excluded)} "
            "node(s) in float); the best model and search.md were written anyway"
        )
    return {"budget_met": budget_met, "all_candidates_in_float": all_float}


def _output(model_art, cfg, ctx, qz, best, trials, metric, speed, verdict) -> Output:
    from packager.onnx_utils import io_spec, summary
    from packager.quantize.modes import format_of

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
        **verdict,
        "trials": len(trials),
        "failed_trials": sum(t.error is not None for t in trials),
        "metric": metric,
        "size_bytes": size,
        "fp32_size_bytes": fp32_size,
        "speed": speed,
    }
    (ctx.workdir / "quantize.json").write_text(json.dumps(quantization, indent=2))
    shown = f", {cfg.metric} {metric['fp32']:.4f} -> {metric['quantized']:.4f}" if metric else ""
    ctx.log(
        f"{cfg.mode} ({format_of(cfg)}): {fp32_size / 1024:.1f} KiB -> {size / 1024:.1f} KiB{shown}"
    )
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "precision": settings["precision"],
            "mode": cfg.mode,
            "format": format_of(cfg),
            "calibration": settings.get("calibration"),
            "calibration_examples": qz.calibration_examples,
            "size_bytes": size,
            "fp32_size_bytes": fp32_size,
            "params": model_art.meta.get("params"),
            "ops": summary(out)["ops"],
            "metric": metric,
            "latency": speed,
            "budget_met": verdict["budget_met"],
            "search": "search.md" if cfg.max_drop is not None else None,
            "quantization": quantization,
            **io_spec(out),
        },
    )


def _guard(cfg: QuantizeConfig, ctx: StageContext, fn):
    """Run a library call; its failure becomes one line naming the stage and the mode."""
    try:
        return fn()
    except EdgepackError:
        raise
    except Exception as err:
        raise StageError(ctx.step, f"{cfg.mode} quantization failed: {one_line(err)}") from err
