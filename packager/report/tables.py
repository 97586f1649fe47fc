"""Comparison rows (teacher vs student fp32 vs the quantized student) and their Markdown renderings."""

from __future__ import annotations

from typing import Any

from packager.report.lm import shown_variant


def measured_here(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Benchmarks measured on this host at the smallest batch: what the comparison shows.
    Host-emulated and estimated rows (other targets) belong to report.html and bench JSON."""
    bench = [
        b
        for b in report.get("benchmarks", [])
        if b.get("kind") == "measured" and b.get("target", "host") == "host" and b.get("latency_ms")
    ]
    batch = min((b.get("batch", 1) for b in bench), default=1)
    return [b for b in bench if b.get("batch", 1) == batch]


def comparison_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant: accuracy, params, size, p50 latency and peak RSS at the first thread count."""
    bench = measured_here(report)
    threads = min((b["threads"] for b in bench), default=None)
    rows = []
    order = ("teacher_fp32", "student_fp32")  # then the quantized student (student_int8, ...)
    for label in sorted(
        report["variants"], key=lambda v: order.index(v) if v in order else len(order)
    ):
        info = report["variants"][label]
        m = report["metrics"].get(label, {})
        b = next((r for r in bench if r["variant"] == label and r["threads"] == threads), None)
        rows.append(
            {
                "variant": shown_variant(label, info),
                # the task's metric: accuracy, or the mean cosine to the teacher for embeddings
                "accuracy": m.get(report.get("metric", "accuracy")),
                # the same on the out-of-domain probe (text builds), when there is one
                "probe": m.get(report.get("probe_metric") or "", None),
                "p50_by_threads": {
                    r["threads"]: r["latency_ms"]["p50"] for r in bench if r["variant"] == label
                },
                "params": info.get("params"),
                "size_kb": info["size_bytes"] / 1024 if info.get("size_bytes") else None,
                "p50_ms": b["latency_ms"]["p50"] if b else None,
                "p99_ms": b["latency_ms"]["p99"] if b else None,
                "cold_start_ms": b["cold_start_ms"] if b else None,
                "peak_rss_mb": b["peak_rss_mb"] if b else None,
                "threads": threads,
            }
        )
    return rows


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _table(rows: list[dict[str, Any]], metric: str = "accuracy", probe: str | None = None) -> str:
    extra = f" {probe} |" if probe else ""
    head = (
        f"| model | {metric} |{extra} params | size (KiB) | p50 (ms) | p99 (ms) | "
        "cold start (ms) | peak RSS (MB) |"
    )
    lines = [head, "|---|---:|" + ("---:|" if probe else "") + "---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        shown = f" {_fmt(r['probe'], '.4f')} |" if probe else ""
        lines.append(
            f"| {r['variant']} | {_fmt(r['accuracy'], '.4f')} |{shown} {_fmt(r['params'], ',')} | "
            f"{_fmt(r['size_kb'], '.1f')} | {_fmt(r['p50_ms'], '.3f')} | {_fmt(r['p99_ms'], '.3f')} | "
            f"{_fmt(r['cold_start_ms'], '.1f')} | {_fmt(r['peak_rss_mb'], '.1f')} |"
        )
    return "\n".join(lines)


def input_shape(bench: list[dict[str, Any]]) -> str:
    """ "batch 1", or "batch 1 x sequence 128" when the inputs have a second (token) axis."""
    if not bench:
        return "batch -"
    shapes = list((bench[0].get("inputs") or {}).values())
    seq = shapes[0][1] if shapes and len(shapes[0]) == 2 else None
    return f"batch {bench[0]['batch']}" + (f" x sequence {seq}" if seq else "")


def markdown_report(report: dict[str, Any]) -> str:
    from packager.report.lm import is_lm, lm_markdown_table, ratios

    if is_lm(report):  # language models: perplexity, agreement, tokens per second
        parts = [f"# {report['name']}: build report", "", f"Metrics on {report['dataset']}.", ""]
        parts += [lm_markdown_table(report), "", ratios(report) or ""]
        parts += [f"\n> **warning:** {w}" for w in report.get("warnings", [])]
        return "\n".join(parts) + "\n"
    rows = comparison_rows(report)
    bench = measured_here(report)
    machine = bench[0]["machine"] if bench else {}
    parts = [
        f"# {report['name']}: build report",
        "",
        f"Metrics on {report['dataset']}. Latency: `measured` on this host "
        f"({machine.get('cpu', 'unknown CPU')}, {input_shape(bench)}, "
        f"{rows[0]['threads'] if rows else '-'} thread(s)), each model in its own process.",
        "",
        _table(rows, report.get("metric", "accuracy"), report.get("probe_metric")),
    ]
    if len({b["threads"] for b in bench}) > 1:
        parts += [
            "",
            "| model | threads | p50 (ms) | p90 (ms) | mean (ms) |",
            "|---|---:|---:|---:|---:|",
        ]
        for b in bench:
            lat = b["latency_ms"]
            parts.append(
                f"| {b['variant']} | {b['threads']} | {lat['p50']:.3f} | {lat['p90']:.3f} | {lat['mean']:.3f} |"
            )
    others = sorted({b["target"] for b in report.get("benchmarks", []) if b not in bench})
    if others:
        parts += [
            "",
            f"Other targets ({', '.join(others)}): host-emulated and estimated rows, each "
            "labelled, are in report.html and the manifest's benchmarks.",
        ]
    for w in report.get("warnings", []):
        parts += ["", f"> **warning:** {w}"]
    return "\n".join(parts) + "\n"
