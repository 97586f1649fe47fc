"""evaluate: accuracy of teacher fp32, student fp32 and student int8, all in onnxruntime."""

from __future__ import annotations

import json

import numpy as np

from packager.errors import CheckFailed
from packager.recipe import EvaluateConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.data import is_text, splits_of

# Build steps whose ONNX output is a model variant, and the name each has in reports.
VARIANTS = {"export_teacher": "teacher_fp32", "export": "student_fp32", "quantize": "student_int8"}


def variant_models(ctx: StageContext) -> dict[str, Artifact]:
    return {label: ctx.inputs[step] for step, label in VARIANTS.items() if step in ctx.inputs}


def classification_metrics(
    y_true: np.ndarray, logits: np.ndarray, num_classes: int
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    pred = logits[:, :num_classes].argmax(-1)
    return {
        "accuracy": float((pred == y_true).mean()),
        "macro_f1": float(f1_score(y_true, pred, average="macro", labels=list(range(num_classes)))),
    }


@register_stage(EvaluateConfig)
def evaluate(_first: Artifact, cfg: EvaluateConfig, ctx: StageContext) -> Output:
    from packager.onnx_utils import run_batched, session

    data = ctx.inputs["data"]
    if is_text(data):
        from packager.stages.text_evaluate import evaluate_text

        return evaluate_text(cfg, ctx)
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


def checked_output(
    cfg: EvaluateConfig,
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
