"""The terminal comparison table of `edgepack bench`: one row per record, its kind always shown."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_KIND_STYLE = {"measured": "green", "host-emulated": "cyan", "estimated": "magenta"}


def _latency(r: dict[str, Any]) -> float | None:
    if r["status"] != "ok" or r.get("oversubscribed"):  # flagged: compared with nothing
        return None
    if r["kind"] == "estimated":  # the figure the table shows: the latency model's, else the bound
        est = r["estimate"]
        return (est.get("model") or {}).get("latency_ms") or est["latency_ms"]
    return r["latency_ms"]["p50"]


def relative_to_first(results: list[dict[str, Any]]) -> list[float | None]:
    """Each row's latency over the first model's in the same (target, kind, threads, batch)."""
    first_model = results[0]["model_name"] if results else None
    base = {
        (r["target"], r["kind"], r["threads"], r["batch"]): _latency(r)
        for r in results
        if r["model_name"] == first_model
    }
    out = []
    for r in results:
        b, v = base.get((r["target"], r["kind"], r["threads"], r["batch"])), _latency(r)
        out.append(None if b is None or v is None or b <= 0 else v / b)
    return out


def versus_text(rel: float | None, first: bool) -> str:
    """`vs first` in words: the first model is the baseline; others are so many times faster
    or slower at the same target, kind, threads and batch (within 1%: the same)."""
    if first:
        return "baseline"
    if rel is None:
        return "-"
    if abs(rel - 1) < 0.01:
        return "same"
    return f"{rel:.2f}x slower" if rel > 1 else f"{1 / rel:.2f}x faster"


def faster_than_host(results: list[dict[str, Any]]) -> list[bool]:
    """Host-emulated rows that came out faster than the host row they emulate (same model,
    threads and batch, measured here): a cap cannot speed a model up, so the gap is noise."""
    host = {
        (r["model_name"], r["threads"], r["batch"]): _latency(r)
        for r in results
        if r["kind"] == "measured" and r["target"] == "host"
    }
    out = []
    for r in results:
        h, v = host.get((r["model_name"], r["threads"], r["batch"])), _latency(r)
        out.append(r["kind"] == "host-emulated" and None not in (h, v) and v < h)
    return out


def _estimate_text(bound: float | None, model: dict[str, Any] | None) -> str:
    """The latency model's point and band when there is one, else the roofline bound."""
    if model is not None:
        return f"{model['latency_ms']:.3f} ({model['low_ms']:.3f}-{model['high_ms']:.3f})"
    return "-" if bound is None else f"≥{bound:.3f}"


def _f(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_lm_bench(console: Console, results: list[dict[str, Any]], title: str = "") -> None:
    """Language models, as llama-bench prints them: one row per (model, threads, test) in
    tokens per second (pp = prompt processing, tg = token generation), plus TTFT and RSS."""
    t = Table(title=title or "edgepack bench", title_justify="left")
    for c in (
        "model",
        "target",
        "kind",
        "size MiB",
        "threads",
        "test",
        "t/s",
        "TTFT ms",
        "inter-token p50/p99 ms",
        "KV B/token",
        "peak RSS MB",
    ):
        t.add_column(c, justify="left" if c in ("model", "target", "kind", "test") else "right")
    for r in results:
        lm = r["lm"]
        tests = [(f"pp{k}", v) for k, v in lm["prefill_tokens_per_s"].items()]
        tests.append((f"tg{lm['decode_tokens']}", lm["decode_tokens_per_s"]))
        it = lm["inter_token_ms"]
        for i, (test, tps) in enumerate(tests):
            first = i == 0
            t.add_row(
                r["model_name"] if first else "",
                r["target"] if first else "",
                f"[{_KIND_STYLE.get(r['kind'], '')}]{r['kind']}[/]" if first else "",
                f"{r['file_size_mb'] * 1e6 / 2**20:.2f}" if first else "",
                str(r["threads"]),
                test,
                f"{tps:,.1f}",
                f"{lm['ttft_ms']:.1f}" if first else "",
                f"{it['p50']:.3f} / {it['p99']:.3f}" if test.startswith("tg") else "",
                f"{lm['kv_cache_bytes_per_token']:,}" if first else "",
                _f(r.get("peak_rss_mb"), ".1f") if first else "",
            )
    console.print(t)
    console.print(
        f"[dim]pp: prefill of N seeded tokens; tg: N greedy tokens on the KV cache; TTFT: "
        f"prefill of the first prompt length; median of {results[0]['lm']['reps']} reps[/]"
    )


def _row(r: dict[str, Any], rel, fast: bool, compare: bool, first: bool) -> list[str]:
    lat = r.get("latency_ms") or {}
    est = (r.get("estimate") or {}).get("latency_ms")
    model = (r.get("estimate") or {}).get("model")
    p50 = _f(lat.get("p50"), ".3f")
    if r.get("oversubscribed"):
        p50 += " [red]oversubscribed[/]"
    if fast:
        p50 += " [yellow]<host[/]"
    row = [
        r["model_name"],
        r["target"],
        f"[{_KIND_STYLE.get(r['kind'], '')}]{r['kind']}[/]",
        str(r["threads"]),
        str(r["batch"]),
        p50,
        _f(lat.get("p99"), ".3f"),
        _f(lat.get("throughput"), ",.0f"),
        _estimate_text(est, model),
        _f(r.get("cold_start_ms"), ".1f"),
        _f(r.get("peak_rss_mb"), ".1f"),
        f"{r['file_size_mb']:.2f}",
    ]
    if r["status"] == "does-not-fit":
        cap = (r.get("memory_cap") or {}).get("mb")
        row[5] = "[red]does not fit[/]" + (f" in {cap:g} MB" if cap else "")
    if compare:
        row.append(versus_text(rel, first))
    return row


def print_bench(console: Console, results: list[dict[str, Any]], title: str = "") -> None:
    lm = [r for r in results if r.get("lm")]
    if lm:  # language models: tokens per second, then any other rows as usual
        print_lm_bench(console, lm, title)
        results = [r for r in results if not r.get("lm")]
        if not results:
            return
    compare = len({r["model_name"] for r in results}) > 1
    t = Table(title=title or "edgepack bench", title_justify="left")
    cols = ["model", "target", "kind", "thr", "batch", "p50 ms", "p99 ms", "items/s (p50)"]
    cols += ["estimate ms", "cold start ms", "peak RSS MB", "size MB"]
    cols += ["vs first"] if compare else []
    for c in cols:
        left = c in ("model", "target", "kind", "vs first")
        t.add_column(
            c,
            justify="left" if left else "right",
            no_wrap=c in ("model", "items/s (p50)", "vs first"),
        )
    first_model = results[0]["model_name"]
    flagged = faster_than_host(results)
    for r, rel, fast in zip(results, relative_to_first(results), flagged, strict=True):
        t.add_row(*_row(r, rel if compare else None, fast, compare, r["model_name"] == first_model))
    console.print(t)
    machines = {}
    for r in results:
        if r["kind"] != "estimated":
            m = r["machine"]
            machines[r["target"]] = (
                f"{m.get('cpu')} ({m.get('arch')}, {m.get('logical_cores')} cores, "
                f"onnxruntime {r.get('onnxruntime') or m.get('onnxruntime')})"
            )
    for target, desc in machines.items():
        console.print(f"[dim]{target}: ran on {desc}[/]")
    if any(flagged):
        console.print(
            "[yellow]<host[/]: a host-emulated row ran faster than this machine's own "
            "row at the same threads and batch; a thread or memory cap cannot make a model "
            "faster, so the gap is run-to-run noise: rerun with more --runs or --seconds"
        )
    if any(r["kind"] == "estimated" for r in results):
        console.print(
            "[dim]estimate ms: the latency model's point (band) where the host is calibrated, "
            "else the roofline lower bound (≥), from the target's published peaks (edgepack "
            "targets NAME shows the sources); never a measurement[/]"
        )
    for r in results:
        if r["status"] == "does-not-fit":
            console.print(
                f"[red]{r['model_name']} on {r['target']} ({r['kind']}):[/] {r['message']}"
            )
