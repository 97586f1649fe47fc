"""Spec for packager/report/bench_table.py: the bench table tells the truth at a glance."""

from __future__ import annotations

import io

from rich.console import Console

from packager.report.bench_table import faster_than_host, print_bench, versus_text


def _row(model: str, p50: float, *, target="host", kind="measured", threads=1) -> dict:
    return {
        "model_name": model,
        "target": target,
        "kind": kind,
        "threads": threads,
        "batch": 1,
        "status": "ok",
        "latency_ms": {"p50": p50, "p99": p50 * 2, "throughput": 1000.0 / p50},
        "file_size_mb": 1.0,
        "machine": {"cpu": "test cpu", "arch": "x86_64", "logical_cores": 2},
    }


def _table(rows: list[dict]) -> str:
    out = io.StringIO()
    print_bench(Console(file=out, width=250), rows, title="t")
    return out.getvalue()


def test_vs_first_says_slower_or_faster_in_words():
    # main: `vs first 1.86x` for a model 1.86x slower, which reads as a speed-up.
    text = _table([_row("a.onnx", 1.0), _row("b.onnx", 1.86), _row("c.onnx", 0.5)])
    assert "1.86x slower" in text and "2.00x faster" in text and "baseline" in text
    assert versus_text(1.004, first=False) == "same"
    assert versus_text(None, first=False) == "-"


def test_items_per_second_column_says_it_is_read_off_the_p50():
    text = _table([_row("a.onnx", 0.065)])
    assert "items/s (p50)" in text and "15,385" in text


def test_an_emulated_row_faster_than_the_host_it_emulates_is_flagged():
    rows = [
        _row("a.onnx", 1.0),
        _row("a.onnx", 0.8, target="rpi4", kind="host-emulated"),  # faster: noise
        _row("a.onnx", 0.9, target="rpi4", kind="host-emulated", threads=4),  # no host row
        _row("a.onnx", 1.5, target="rpi5", kind="host-emulated"),  # slower: fine
    ]
    assert faster_than_host(rows) == [False, True, False, False]
    text = _table(rows)
    assert text.count("<host") == 2  # the flagged cell and the note under the table
    assert "run-to-run noise" in text


def test_nothing_is_flagged_when_every_emulated_row_is_slower():
    rows = [_row("a.onnx", 1.0), _row("a.onnx", 1.2, target="rpi4", kind="host-emulated")]
    assert "noise" not in _table(rows)
