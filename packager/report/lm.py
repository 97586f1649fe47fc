"""Language-model tables: the build's comparison (perplexity, top-1 agreement, size, prefill
and decode tokens/s per thread count, time to first token, peak RSS) and llama-bench's layout
for benchmark records (model | size | threads | test | t/s)."""

from __future__ import annotations

from typing import Any

ORDER = ("teacher_fp32", "student_fp32", "student_int4", "student_int8", "student_fp16")


def shown_variant(label: str, info: dict[str, Any]) -> str:
    """A variant's name in tables: a teacher with no model file here is one only called (an
    API), whose answers stood for it."""
    if label == "teacher_fp32" and info.get("size_bytes") is None:
        return "teacher (api answers)"
    return label


def is_lm(report: dict[str, Any]) -> bool:
    return report.get("metric") == "perplexity"


def _records(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        b
        for b in report.get("benchmarks", [])
        if b.get("kind") == "measured" and b.get("target", "host") == "host" and b.get("lm")
    ]


def lm_rows(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int], str]:
    """(one row per variant, the thread counts, the prefill length shown)."""
    bench = _records(report)
    threads = sorted({b["threads"] for b in bench})
    pp = min((int(k) for b in bench for k in b["lm"]["prefill_tokens_per_s"]), default=None)
    rows = []
    labels = sorted(report["variants"], key=lambda v: ORDER.index(v) if v in ORDER else 99)
    for label in labels:
        m, info = report["metrics"].get(label, {}), report["variants"][label]
        mine = {b["threads"]: b for b in bench if b["variant"] == label}
        first = mine.get(threads[0]) if threads else None
        rows.append(
            {
                "variant": shown_variant(label, info),
                "perplexity": m.get("perplexity"),
                "agreement": m.get("top1_agreement"),
                "mean_kl": m.get("mean_kl"),
                "params": info.get("params"),
                "size_mb": info["size_bytes"] / 2**20 if info.get("size_bytes") else None,
                "pp": {t: b["lm"]["prefill_tokens_per_s"].get(str(pp)) for t, b in mine.items()},
                "tg": {t: b["lm"]["decode_tokens_per_s"] for t, b in mine.items()},
                "ttft_ms": first["lm"]["ttft_ms"] if first else None,
                "peak_rss_mb": first["peak_rss_mb"] if first else None,
            }
        )
    return rows, threads, f"pp{pp}" if pp else "pp"


def _f(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def lm_markdown_table(report: dict[str, Any]) -> str:
    rows, threads, pp = lm_rows(report)
    head = ["model", "perplexity", "top-1 agreement", "params", "size MiB"]
    head += [f"{pp} t/s {t}t" for t in threads] + [f"tg t/s {t}t" for t in threads]
    head += ["TTFT ms", "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cells = [r["variant"], _f(r["perplexity"], ".2f"), _f(r["agreement"], ".4f")]
        cells += [_f(r["params"], ","), _f(r["size_mb"], ".2f")]
        cells += [_f(r["pp"].get(t), ".0f") for t in threads]
        cells += [_f(r["tg"].get(t), ".0f") for t in threads]
        cells += [_f(r["ttft_ms"], ".1f"), _f(r["peak_rss_mb"], ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(report: dict[str, Any]) -> str | None:
    """How much smaller and faster to decode the shipped student is than the teacher."""
    rows, threads, _ = lm_rows(report)
    by = {r["variant"]: r for r in rows}
    t, s = by.get("teacher_fp32"), by.get(report.get("shipped", ""))
    if not t or not s:
        return None
    fast = [
        f"{s['tg'][n] / t['tg'][n]:.1f}x faster to decode at {n} thread(s)"
        for n in threads
        if t["tg"].get(n) and s["tg"].get(n)
    ]
    return f"{s['variant']} vs teacher_fp32: {t['size_mb'] / s['size_mb']:.1f}x smaller" + (
        ", " + ", ".join(fast) if fast else ""
    )


def llama_bench_table(records: list[dict[str, Any]]) -> str:
    """llama-bench's layout: one row per (model, threads, test), tokens per second."""
    lines = ["| model | kind | size MiB | threads | test | t/s |", "|---|---|---:|---:|---|---:|"]
    for r in records:
        if not r.get("lm"):
            continue
        lm, size = r["lm"], r["file_size_mb"] * 1e6 / 2**20
        tests = [(f"pp{k}", v) for k, v in lm["prefill_tokens_per_s"].items()]
        tests.append((f"tg{lm['decode_tokens']}", lm["decode_tokens_per_s"]))
        for test, tps in tests:
            lines.append(
                f"| {r['model_name']} | {r['kind']} | {size:.2f} | {r['threads']} | {test} | {tps:.1f} |"
            )
    return "\n".join(lines)
