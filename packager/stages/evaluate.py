"""evaluate: teacher fp32, student fp32 and student int8 on the held-out test split, all in
onnxruntime, then the budgets every task shares (INT8 drop, a floor for the shipped variant).

Array data and text classifiers: accuracy and macro-F1. Embedding models: each variant's mean
cosine to the teacher's embedding and top-k neighbour agreement (packager.metrics). The
handler is chosen by the data input's modality.
"""

from __future__ import annotations

import json

from packager.artifact import VARIANTS, Artifact, Output
from packager.config import EvaluateStepConfig
from packager.errors import CheckFailed
from packager.metrics import classification_metrics, embedding_metrics
from packager.stage import StageContext, register_stage
from packager.stages.data import splits_of


def variant_models(ctx: StageContext) -> dict[str, Artifact]:
    """The model variants among the stage's inputs, in report order."""
    return {label: ctx.inputs[label] for label in VARIANTS if label in ctx.inputs}


def _array(data: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    from packager.onnx_utils import run_batched, session

    splits = splits_of(data)
    x, y = splits.model_input("test"), splits.y["test"]
    metrics: dict[str, dict[str, float]] = {}
    for label, art in variant_models(ctx).items():
        metrics[label] = classification_metrics(
            y, run_batched(session(art.file()), x), splits.num_classes
        )
        ctx.log(f"{label}: accuracy {metrics[label]['accuracy']:.4f}")
    dataset = f"{splits.source} test split ({len(y)} examples)"
    return checked_output(cfg, ctx, metrics, "accuracy", cfg.min_accuracy, dataset)


def _text(data: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    from packager.data.text import load_tokenizer, read_split
    from packager.onnx_utils import run_texts

    texts, y = read_split(data.path, "test")
    tok = load_tokenizer(ctx.inputs["student_fp32"].path, data.meta["max_length"])
    outputs = {
        label: run_texts(art.file(), tok, texts) for label, art in variant_models(ctx).items()
    }
    metrics: dict[str, dict[str, float]] = {}
    if cfg.task == "text-classification":
        key = "accuracy"
        for label, logits in outputs.items():
            metrics[label] = classification_metrics(y, logits, len(data.meta["labels"]))
    else:
        key = "cosine"
        for label, emb in outputs.items():
            metrics[label] = embedding_metrics(emb, outputs["teacher_fp32"], cfg.top_k)
    for label, m in metrics.items():
        ctx.log(f"{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    what = "test split" if key == "accuracy" else "held-out test split (cosine to the teacher)"
    dataset = f"{data.meta['source']} {what} ({len(texts)} texts)"
    floor = cfg.min_accuracy if key == "accuracy" else cfg.min_cosine
    return checked_output(cfg, ctx, metrics, key, floor, dataset)


_HANDLERS = {"array": _array, "text": _text}


@register_stage(EvaluateStepConfig, name="evaluate", version=2)
def evaluate(_first: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    data = ctx.inputs["data"]
    return _HANDLERS[data.modality](data, cfg, ctx)


def checked_output(
    cfg: EvaluateStepConfig,
    ctx: StageContext,
    metrics: dict[str, dict[str, float]],
    key: str,
    floor: float | None,
    dataset: str,
) -> Output:
    """The budgets every task shares (INT8 drop on `key`, a floor for the shipped variant), then
    the stage's output: metrics.json plus each variant's size and parameters."""
    checks = {}
    if "student_int8" in metrics:
        drop = metrics["student_fp32"][key] - metrics["student_int8"][key]
        checks[f"int8_{key}_drop"] = drop
        if drop > cfg.max_drop:
            raise CheckFailed(
                ctx.step,
                f"student int8 {key} {metrics['student_int8'][key]:.4f} is {drop:.4f} below fp32 "
                f"{metrics['student_fp32'][key]:.4f}, over evaluate.max_drop = {cfg.max_drop:g}",
            )
    shipped = "student_int8" if "student_int8" in metrics else "student_fp32"
    if floor is not None and metrics[shipped][key] < floor:
        raise CheckFailed(
            ctx.step,
            f"{shipped} {key} {metrics[shipped][key]:.4f} is below evaluate.min_{key} = {floor:g}",
        )
    (ctx.workdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    variants = {
        label: {"size_bytes": art.file().stat().st_size, "params": art.meta.get("params")}
        for label, art in variant_models(ctx).items()
    }
    return Output(
        "metrics",
        {
            "file": "metrics.json",
            "metrics": metrics,
            "metric": key,
            "checks": checks,
            "dataset": dataset,
            "variants": variants,
        },
    )
