"""bench: every model x target x threads x batch, each number labelled measured, host-emulated
or estimated (packager.bench.suite). In a build the models are the variants (teacher, student
fp32, the quantized student); from `edgepack bench` they are the files given, in order."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from packager.artifact import VARIANTS, Artifact, Output, variant_label
from packager.config import BenchConfig
from packager.errors import StageError
from packager.stage import StageContext, register_stage


def _host_rows(results: list[dict]) -> list[dict]:
    """Measured-here rows at the smallest batch: the ones INT8 vs FP32 is judged on."""
    host = [r for r in results if r.get("kind") == "measured" and r.get("target", "host") == "host"]
    batch = min((r.get("batch", 1) for r in host), default=1)
    return [r for r in host if r.get("batch", 1) == batch and r.get("latency_ms")]


def quantized_speed(results: list[dict]) -> dict[int, tuple[float, float]] | None:
    """{threads: (quantized p50, fp32 p50)} measured here at the smallest batch, for every
    thread count where both the quantized student and the fp32 student were measured; None
    when the bench measured no such pair."""
    p50 = {(r["variant"], r["threads"]): r["latency_ms"]["p50"] for r in _host_rows(results)}
    pairs = {
        t: (q, p50[("student_fp32", t)])
        for (variant, t), q in p50.items()
        if variant not in ("teacher_fp32", "student_fp32") and ("student_fp32", t) in p50
    }
    return dict(sorted(pairs.items())) or None


def quantized_warnings(results: list[dict]) -> list[str]:
    """One warning (one fact) when the quantized student is not faster than its fp32 at some
    thread count measured here: the thread counts and p50s where it is not, from the rows the
    bench table shows."""
    slow = {t: qf for t, qf in (quantized_speed(results) or {}).items() if qf[0] >= qf[1]}
    if not slow:
        return []
    label = next(
        r["variant"]
        for r in results
        if r.get("variant") not in (None, "teacher_fp32", "student_fp32")
    )
    shown = ", ".join(f"{t} thread(s) p50 {q:.3f} ms vs {f:.3f} ms" for t, (q, f) in slow.items())
    return [
        f"{label} is not faster than fp32 at {shown} (tiny models are dominated by per-op "
        "overhead; QDQ adds nodes that only pay off when MatMul/Conv work dominates)"
    ]


def _text_samples(ctx: StageContext, role: str, sequence: int | None) -> Path:
    """Feeds of real test texts for a text variant, padded to `sequence` tokens (bench.dims):
    generated token ids would not be text, and need not even be in a trimmed vocabulary."""
    import numpy as np

    from packager.data.text import encode, load_tokenizer, read_split

    data = ctx.inputs["data"]
    source = ctx.inputs[role if role == "teacher_fp32" else "student_fp32"]  # has its tokenizer
    tok = load_tokenizer(source.path, data.meta["max_length"])
    if sequence:
        tok.enable_padding(
            pad_id=tok.padding["pad_id"], pad_token=tok.padding["pad_token"], length=sequence
        )
    texts, _ = read_split(data.path, "test", limit=8)
    names = [i["name"] for i in ctx.inputs[role].meta["inputs"]]
    out = ctx.workdir / f"{role}.samples.npz"
    np.savez(out, **encode(tok, texts, names))
    return out


def _models(ctx: StageContext, dims: dict[str, int]) -> list[Any]:
    """The build's variants (by role), or the files of `edgepack bench`, in order."""
    from packager.bench.suite import BenchModel

    if any(role in VARIANTS for role in ctx.inputs):
        text = "data" in ctx.inputs and ctx.inputs["data"].modality == "text"  # real texts
        return [
            BenchModel(
                art.file(),
                _label(role, art),
                variant=_label(role, art),
                samples=_text_samples(ctx, role, dims.get("sequence")) if text else None,
            )
            for role, art in ctx.inputs.items()
            if role in VARIANTS
        ]
    models, seen = [], set()
    for role, art in ctx.inputs.items():
        if role == "calibration":
            continue
        label = art.meta.get("name") or Path(art.meta.get("source", art.meta["file"])).name
        while label in seen:  # two files of the same name: keep table rows apart
            label += "'"
        seen.add(label)
        samples = art.file(art.meta["samples"]) if art.meta.get("samples") else None
        models.append(BenchModel(art.file(), label, samples=samples))
    return models


def _label(role: str, art: Artifact) -> str:
    """A variant's name in the records (the quantized student's by its precision)."""
    return variant_label(role, art.meta)


@register_stage(BenchConfig, version=4)
def bench(_first: Artifact, cfg: BenchConfig, ctx: StageContext) -> Output:
    from packager.bench import BenchError
    from packager.bench.runner import guess_notes
    from packager.bench.suite import BenchOptions, has_kv_cache, run_suite
    from packager.quantize.registry import op_classes

    options = BenchOptions(
        threads=cfg.threads,
        batches=cfg.batch,
        warmup=cfg.warmup,
        runs=cfg.runs,
        seconds=cfg.seconds,
        dims=cfg.dims,
        memory_cap_mb=cfg.memory_cap_mb,
        feeds=Path(cfg.feeds) if cfg.feeds else None,
        op_classes=op_classes(),
    )
    models = _models(ctx, dict(cfg.dims))
    if any(has_kv_cache(m.path) for m in models):  # language models: tokens per second
        lm = {"prefill": list(cfg.prefill), "decode": cfg.decode, "reps": cfg.lm_runs}
        options = dataclasses.replace(options, lm=lm)
    with ctx.reporter.track("bench", len(models)) as advance:  # resized once jobs are known

        def progress(done: int, n: int, what: str) -> None:
            advance(1 if done else 0, total=n)
            ctx.log(f"[{done + 1}/{n}] {what}")

        calibration = None
        if "calibration" in ctx.inputs:  # the latency model's host costs (calibrate step)
            calibration = json.loads(ctx.inputs["calibration"].file().read_text())
        try:
            results = run_suite(
                models,
                cfg.targets,
                options,
                targets_dir=cfg.targets_dir,
                progress=progress,
                calibration=calibration,
            )
        except BenchError as err:
            raise StageError(ctx.step, str(err)) from None
    guesses = {
        f"{r['model_name']}: {note}"
        for r in results
        for note in guess_notes(r.get("guessed_dims") or {})
    }
    for line in sorted(guesses):
        ctx.reporter.warn(line)
    for r in results:
        if r["status"] == "does-not-fit":
            ctx.reporter.warn(f"{r['model_name']} on {r['target']} ({r['kind']}): {r['message']}")
    warnings = quantized_warnings([r for r in results if r.get("variant")])
    for w in warnings:
        ctx.reporter.warn(w)
    # Raw latencies stay in bench.json (for plots); records that travel into manifests don't.
    (ctx.workdir / "bench.json").write_text(
        json.dumps({"results": results, "warnings": warnings}, indent=2)
    )
    compact = [{k: v for k, v in r.items() if k != "latencies_ms"} for r in results]
    return Output("bench", {"file": "bench.json", "results": compact, "warnings": warnings})
