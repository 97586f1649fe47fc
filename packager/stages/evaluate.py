"""evaluate: teacher fp32, student fp32 and the quantized student on the held-out test split, all
in onnxruntime, then the budgets every task shares (the quantized student's drop against its
fp32, a floor for the shipped variant). The quantized student is labelled by its precision
(packager.artifact.variant_label: student_int8, student_fp16, student_int4).

Array data and text classifiers: accuracy and macro-F1. Embedding models: each variant's mean
cosine to the teacher's embedding and top-k neighbour agreement (packager.metrics). The
handler is chosen by the data input's modality.
"""

from __future__ import annotations

import json

import numpy as np

from packager.artifact import VARIANTS, Artifact, Output, variant_label
from packager.config import EvaluateStepConfig
from packager.errors import CheckFailed
from packager.metrics import classification_metrics, embedding_metrics
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import images_of, splits_of


def variant_models(ctx: StageContext) -> dict[str, Artifact]:
    """The model variants among the stage's inputs by label, in report order."""
    return {
        variant_label(role, ctx.inputs[role].meta): ctx.inputs[role]
        for role in VARIANTS
        if role in ctx.inputs
    }


def quantized_label(metrics: dict[str, dict[str, float]]) -> str | None:
    """The quantized student's label among a build's variants (None: the build has none)."""
    return next((k for k in metrics if k not in ("teacher_fp32", "student_fp32")), None)


def shipped_label(metrics: dict[str, dict[str, float]]) -> str:
    return quantized_label(metrics) or "student_fp32"


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
    return checked_output(cfg, ctx, metrics, ["accuracy"], cfg.min_accuracy, dataset)


def _text_metrics(task: str, outputs: dict, y, classes: int, top_k: int, prefix: str = ""):
    """(metric key, per-variant metrics) on one text set: classifiers get accuracy (when there
    are labels) and top-1 agreement with the teacher; embeddings the cosine to the teacher and
    top-k neighbour agreement."""
    ref = outputs["teacher_fp32"]
    metrics: dict[str, dict[str, float]] = {}
    for label, out in outputs.items():
        if task == "text-classification":
            m = classification_metrics(y, out, classes) if y is not None else {}
            agree = (out[:, :classes].argmax(-1) == ref[:, :classes].argmax(-1)).mean()
            m["agreement"] = float(agree)
        else:
            m = embedding_metrics(out, ref, top_k)
        metrics[label] = {f"{prefix}{k}": v for k, v in m.items()}
    key = (
        "cosine"
        if task != "text-classification"
        else ("accuracy" if y is not None else "agreement")
    )
    return f"{prefix}{key}", metrics


def _split_outputs(ctx: StageContext, toks, folder, split: str, classes: int):
    """(every variant's outputs, the texts, their labels) on one split. A teacher only called
    (an API) answered a first part of the split: its recorded answers are its outputs on just
    those texts (a label as one-hot scores; texts it gave no parseable label left out)."""
    from packager.data.text import read_split
    from packager.onnx_utils import run_texts

    variants = variant_models(ctx)
    teacher = variants["teacher_fp32"]
    called = teacher.kind == "api"
    texts, y = read_split(folder, split, limit=teacher.meta["sizes"][split] if called else None)
    outputs = {}
    if called:
        said = np.load(teacher.path / f"{split}.npy")
        if said.ndim == 1:  # labels: -1 where no label could be parsed
            keep = said >= 0
            texts = [t for t, k in zip(texts, keep, strict=True) if k]
            y = y[keep] if y is not None else None
            said = np.eye(classes, dtype=np.float32)[said[keep]]
        outputs["teacher_fp32"] = said
    for label, art in variants.items():
        if label not in outputs:
            outputs[label] = run_texts(art.file(), toks[label], texts)
    return outputs, texts, y


def _text(data: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    from packager.data.text import load_tokenizer

    # Each variant reads text with its own tokenizer (a trimmed student's is not the teacher's);
    # the quantized student's is the fp32 student's; a teacher only called has its answers.
    max_length = data.meta["max_length"]
    toks = {
        label: load_tokenizer(
            ctx.inputs[label if label == "teacher_fp32" else "student_fp32"].path, max_length
        )
        for label, art in variant_models(ctx).items()
        if art.kind != "api"
    }
    classes = len(data.meta["labels"])
    outputs, texts, y = _split_outputs(ctx, toks, data.path, "test", classes)
    key, metrics = _text_metrics(cfg.task, outputs, y, classes, cfg.top_k)
    keys, probe = [key], ctx.inputs.get("probe")
    if probe is not None:  # text of another kind than the training data: the honest figure
        outputs, probe_texts, _ = _split_outputs(ctx, toks, probe.path, "probe", classes)
        probe_key, extra = _text_metrics(cfg.task, outputs, None, classes, cfg.top_k, "probe_")
        for label in metrics:
            metrics[label] |= extra[label]
        keys.append(probe_key)
    for label, m in metrics.items():
        ctx.log(f"{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    what = "test split" if key == "accuracy" else "held-out test split (cosine to the teacher)"
    dataset = f"{data.meta['source']} {what} ({len(texts)} texts)"
    if probe is not None:
        dataset += f"; probe {probe.meta['source']} ({len(probe_texts)} texts)"
    floor = cfg.min_accuracy if key == "accuracy" else cfg.min_cosine
    return checked_output(cfg, ctx, metrics, keys, floor, dataset, _gap_warnings(cfg, metrics))


def _gap_warnings(cfg: EvaluateStepConfig, metrics: dict[str, dict[str, float]]) -> list[str]:
    """When the shipped student is much less faithful on the probe than on the test split, say
    so in words: the in-domain figure alone would mislead."""
    shipped = shipped_label(metrics)
    m = metrics[shipped]
    key = "agreement" if "probe_agreement" in m else "cosine"
    if f"probe_{key}" not in m or key not in m:
        return []
    gap = m[key] - m[f"probe_{key}"]
    if gap <= cfg.probe_gap:
        return []
    return [
        f"the student is faithful on text like its training data, much less elsewhere: "
        f"{shipped} {key} {m[key]:.4f} on the test split but {m[f'probe_{key}']:.4f} on the "
        f"probe ({gap:.4f} lower, over evaluate.probe_gap = {cfg.probe_gap:g}); train on "
        "broader text (scripts/make_corpus.py) before trusting it on general input"
    ]


def _image(data: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    """Every variant on the test split's images: top-1/top-5 agreement and KL against the
    teacher and against the fp32 student (what int8 changed); top-1/top-5 accuracy when the
    data's labels are the teacher's classes. Budgets on accuracy, else on agreement."""
    from packager.metrics import agreement_metrics, topk_accuracy
    from packager.onnx_utils import run_batched, session

    images = images_of(data)
    x, y = images.array("test"), images.labels("test")
    arts = variant_models(ctx)
    outputs: dict[str, np.ndarray] = {}
    by_id: dict[str, np.ndarray] = {}
    for label, art in arts.items():  # distill: none ships the teacher: run it once
        if art.id not in by_id:
            by_id[art.id] = run_batched(session(art.file()), x)
        outputs[label] = by_id[art.id]
    classes = outputs["teacher_fp32"].shape[1]
    scored = y is not None and len(data.meta["labels"]) == classes
    metrics: dict[str, dict[str, float]] = {}
    for label, out in outputs.items():
        m = agreement_metrics(out, outputs["teacher_fp32"])
        if label == quantized_label(outputs):
            m |= agreement_metrics(out, outputs["student_fp32"], prefix="fp32_")
        if scored:
            m["accuracy"] = float((out.argmax(-1) == y).mean())
            m["top5"] = topk_accuracy(y, out)
        metrics[label] = m
        ctx.log(f"{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    key = "accuracy" if scored else "agreement"
    dataset = f"{data.meta['source']} test split ({len(x)} images{'' if scored else ', unlabeled'})"
    distilled = arts["student_fp32"].id != arts["teacher_fp32"].id
    return checked_output(
        cfg,
        ctx,
        metrics,
        [key],
        cfg.min_accuracy if scored else None,
        dataset,
        unfaithful_warnings(metrics) if distilled else [],
        agreement_floor=cfg.min_agreement,
    )


# Below this top-1 agreement with its teacher a distilled image student is said to have not
# learned the teacher (a build still ships it unless evaluate.min_agreement says otherwise).
FAITHFUL = 0.5


def unfaithful_warnings(metrics: dict[str, dict[str, float]]) -> list[str]:
    """When the shipped student mostly does not give its teacher's answer, say so in words:
    the quantized drop against its own fp32 (the budget) can be tiny for a student that is
    useless."""
    shipped = shipped_label(metrics)
    m = metrics[shipped]
    if m.get("agreement", 1.0) >= FAITHFUL:
        return []
    return [
        f"the student has not learned its teacher: {shipped} gives the teacher's top-1 on "
        f"{m['agreement']:.1%} of the held-out images (top-5 {m['top5_agreement']:.1%}); distil "
        "on more images or longer, or prune less, before shipping it (evaluate.min_agreement "
        "makes this an error)"
    ]


def _lm(data: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    """Language models: perplexity of each variant on held-out sequences, next-token top-1
    agreement and mean KL against the teacher (packager.metrics.lm); the max_ppl_ratio and
    min_agreement gates on the shipped (quantized) student."""
    from packager.data.lm import sequences
    from packager.metrics.lm import gate_failures, lm_metrics
    from packager.sources.lm import encoder, lm_tokenizer

    variants = variant_models(ctx)
    teacher = ctx.inputs["teacher_fp32"]
    if teacher.kind == "api":  # only called: measured on the completions it wrote
        return _lm_api(data, cfg, ctx)
    eos = (teacher.meta.get("eos_token_ids") or [None])[0]
    tok = lm_tokenizer(teacher.path)
    ids = sequences(data.path, "test", encoder(tok), eos, data.meta["max_length"], cfg.lm_sequences)
    metrics = lm_metrics({label: a.file() for label, a in variants.items()}, ids)
    for label, m in metrics.items():
        ctx.log(
            f"{label}: perplexity {m['perplexity']:.3f}, top-1 agreement {m['top1_agreement']:.4f}, "
            f"mean KL {m['mean_kl']:.4f}"
        )
    shipped = shipped_label(metrics)
    failures = gate_failures(metrics, shipped, cfg.max_ppl_ratio, cfg.min_agreement)
    if failures:
        raise CheckFailed(ctx.step, "; ".join(failures))
    (ctx.workdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    sizes = {
        label: {"size_bytes": a.file().stat().st_size, "params": a.meta.get("params")}
        for label, a in variants.items()
    }
    dataset = f"{data.meta['source']} test split ({len(ids)} sequences x {ids.shape[1]} tokens)"
    return Output(
        "metrics",
        {
            "file": "metrics.json",
            "metrics": metrics,
            "metric": "perplexity",
            "probe_metric": None,
            "checks": {},
            "dataset": dataset,
            "variants": sizes,
            "shipped": shipped,
            "warnings": [],
        },
    )


def _lm_api(data: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    """A language model taught by an API: every variant on the completions the endpoint wrote
    for held-out prompts (perplexity of them, top-1 agreement with its tokens), and each
    student's perplexity on the data's test text."""
    import json as _json

    from packager.data.lm import sequences
    from packager.metrics.lm import api_lm_metrics, gate_failures, lm_metrics
    from packager.sources.lm import encoder, lm_tokenizer
    from packager.stages.teacher_api import HELD_OUT

    students = {k: a for k, a in variant_models(ctx).items() if a.kind != "api"}
    teacher = ctx.inputs["teacher_fp32"]
    encode = encoder(lm_tokenizer(ctx.inputs["student_fp32"].path))
    lines = (teacher.path / HELD_OUT).read_text(encoding="utf-8").splitlines()
    rows = [_json.loads(line) for line in lines][: cfg.lm_sequences]
    metrics = api_lm_metrics({k: a.file() for k, a in students.items()}, rows, encode)
    eos = (ctx.inputs["student_fp32"].meta.get("eos_token_ids") or [None])[0]
    ids = sequences(data.path, "test", encode, eos, data.meta["max_length"], cfg.lm_sequences)
    own = lm_metrics({k: a.file() for k, a in students.items()}, ids, "student_fp32")
    for label, m in own.items():
        metrics[label]["test_perplexity"] = m["perplexity"]
    for label, m in metrics.items():
        ctx.log(
            f"{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
        )
    shipped = shipped_label(metrics)
    failures = gate_failures(metrics, shipped, cfg.max_ppl_ratio, cfg.min_agreement)
    if failures:
        raise CheckFailed(ctx.step, "; ".join(failures))
    (ctx.workdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    sizes = {
        k: {"size_bytes": _size(a), "params": a.meta.get("params")}
        for k, a in variant_models(ctx).items()
    }
    dataset = (
        f"the teacher's completions of {len(rows)} held-out prompts of {data.meta['source']} "
        f"(perplexity and top-1 agreement on them); test_perplexity: {len(ids)} test sequences"
    )
    meta = {"file": "metrics.json", "metrics": metrics, "metric": "perplexity", "checks": {}}
    meta |= {"probe_metric": None, "dataset": dataset, "variants": sizes, "shipped": shipped}
    return Output("metrics", meta | {"warnings": []})


_HANDLERS = Handlers("evaluate", array=_array, text=_text, image=_image, lm=_lm)


@register_stage(EvaluateStepConfig, name="evaluate", version=7)
def evaluate(_first: Artifact, cfg: EvaluateStepConfig, ctx: StageContext) -> Output:
    data = ctx.inputs["data"]
    return _HANDLERS(data.modality)(data, cfg, ctx)


def checked_output(
    cfg: EvaluateStepConfig,
    ctx: StageContext,
    metrics: dict[str, dict[str, float]],
    keys: list[str],
    floor: float | None,
    dataset: str,
    warnings: list[str] = (),
    agreement_floor: float | None = None,
) -> Output:
    """The budgets every task shares, on each of `keys` (the test split's metric, and the
    probe's): the INT8 drop and a floor for the shipped variant. Then the stage's output:
    metrics.json plus each variant's size and parameters."""
    checks = {}
    shipped, quantized = shipped_label(metrics), quantized_label(metrics)
    for key in keys:
        if quantized is not None:
            drop = metrics["student_fp32"][key] - metrics[quantized][key]
            checks[f"quantized_{key}_drop"] = drop
            if drop > cfg.max_drop:
                raise CheckFailed(
                    ctx.step,
                    f"{quantized} {key} {metrics[quantized][key]:.4f} is {drop:.4f} below "
                    f"fp32 {metrics['student_fp32'][key]:.4f}, over evaluate.max_drop = "
                    f"{cfg.max_drop:g}",
                )
        base = key.removeprefix("probe_")
        least = agreement_floor if base == "agreement" else floor
        if least is not None and metrics[shipped][key] < least:
            raise CheckFailed(
                ctx.step,
                f"{shipped} {key} {metrics[shipped][key]:.4f} is below evaluate.min_{base} = "
                f"{least:g}",
            )
    for w in warnings:
        ctx.warn(w)
    (ctx.workdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    variants = {
        label: {"size_bytes": _size(art), "params": art.meta.get("params")}
        for label, art in variant_models(ctx).items()
    }
    return Output(
        "metrics",
        {
            "file": "metrics.json",
            "metrics": metrics,
            "metric": keys[0],
            "probe_metric": keys[1] if len(keys) > 1 else None,
            "checks": checks,
            "dataset": dataset,
            "variants": variants,
            "shipped": shipped,
            "warnings": list(warnings),
        },
    )


def _size(art: Artifact) -> int | None:
    """A variant's model file size; None for a teacher only called (its weights are not here)."""
    return None if art.kind == "api" else art.file().stat().st_size
