"""bench: latency, cold start and peak RSS of every model variant, one child process each."""

from __future__ import annotations

import json

from packager.errors import StageError
from packager.recipe import BenchConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.evaluate import variant_models


def int8_warnings(results: list[dict]) -> list[str]:
    """A warning for each thread count where INT8 is not faster than FP32."""
    p50 = {(r["variant"], r["threads"]): r["latency_ms"]["p50"] for r in results}
    out = []
    for (variant, threads), q in p50.items():
        f = p50.get(("student_fp32", threads))
        if variant == "student_int8" and f is not None and q >= f:
            out.append(
                f"student int8 is not faster than fp32 at {threads} thread(s): p50 {q:.3f} ms vs {f:.3f} ms "
                "(tiny models are dominated by per-op overhead; QDQ adds nodes that only pay off when "
                "MatMul/Conv work dominates)"
            )
    return out


@register_stage(BenchConfig)
def bench(_first: Artifact, cfg: BenchConfig, ctx: StageContext) -> Output:
    from packager.bench import BenchError, run_one

    models = variant_models(ctx)
    configs = [(label, art, t) for label, art in models.items() for t in cfg.threads]
    results = []
    with ctx.reporter.track("bench", len(configs)) as advance:
        for label, art, threads in configs:
            try:
                r = run_one(
                    art.file(),
                    threads=threads,
                    batch=cfg.batch,
                    warmup=cfg.warmup,
                    runs=cfg.runs,
                    seconds=cfg.seconds,
                )
            except BenchError as err:
                raise StageError(ctx.step, f"{label} ({threads} threads): {err}") from None
            r["variant"] = label
            r["model"] = art.meta["file"]
            results.append(r)
            advance(p50_ms=r["latency_ms"]["p50"])
            ctx.log(
                f"{label} threads={threads}: p50 {r['latency_ms']['p50']:.3f} ms, "
                f"peak RSS {r['peak_rss_mb']:.1f} MB"
            )
    warnings = int8_warnings(results)
    for w in warnings:
        ctx.reporter.warn(w)
    (ctx.workdir / "bench.json").write_text(
        json.dumps({"results": results, "warnings": warnings}, indent=2)
    )
    return Output("bench", {"file": "bench.json", "results": results, "warnings": warnings})
