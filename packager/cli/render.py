"""Terminal rendering for the CLI: build summary, plan, auto; `plain` and `inert`, the escaping
of whatever a command prints (render_inspect: inspect). Formatting only."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table


def plain(text: Any) -> str:
    """Text from a package, a model, a recipe or a user's file, safe to print on a terminal:
    control characters, bidi overrides and undecodable bytes shown escaped (`\\x1b`), so no
    name can forge an output line, recolour the terminal or reorder what is shown. The
    runtime's own rule (edgepack_runtime.text.printable), so every CLI escapes alike."""
    from packager.edge_runtime import load_runtime
    from packager.errors import EdgepackError

    try:
        return load_runtime().text.printable(text)
    except EdgepackError:  # no runtime installed: escape whatever Python cannot print as is
        return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def inert(value: Any) -> Any:
    """`value` (JSON-like data) with every string `plain` and its Rich markup escaped: data shown
    through a Rich console or table is never read as markup ([red]) or a control sequence."""
    from rich.markup import escape

    if isinstance(value, str):
        return escape(plain(value))
    if isinstance(value, dict):
        return {k: inert(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [inert(v) for v in value]
    return value


def make_console(width: int = 140) -> Console:
    # Piped output (CI logs, files) gets a wide fixed width so tables are not truncated.
    return Console(highlight=False, width=None if sys.stdout.isatty() else width)


def print_plan(out: Console, result) -> None:
    t = Table(title=f"plan for recipe {inert(result.name)}", title_justify="left")
    for col in ("step", "stage", "status", "key"):
        t.add_column(col)
    for r in result.steps:
        status = "cached" if r.status == "cached" else "will run"
        key = r.key[:12] if r.key else "(after inputs)"
        t.add_row(inert(r.step.name), r.stage, status, key)
    out.print(t)
    n = sum(r.status != "cached" for r in result.steps)
    out.print(f"{n} of {len(result.steps)} steps would run")


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_warnings(console: Console, report: dict[str, Any], reporter=None) -> None:
    """The package's warnings (consistent with the table above them: the speed verdict is the
    bench's), then what the run's stages warned that the report does not already say, minus
    verdicts the table's own measurement overturned: one line per fact."""
    said = list(report.get("warnings", []))  # as written: the reporter's are compared with them
    for w in said:
        console.print(f"[yellow]warning:[/] {inert(w)}")
    if reporter is not None:
        reporter.flush_warnings([*said, *report.get("superseded_warnings", [])], console)


def print_lm_build(console: Console, result, report: dict[str, Any], reporter=None) -> None:
    from packager.report.lm import lm_rows, ratios

    raw, report = report, inert(report)
    rows, threads, pp = lm_rows(report)
    t = Table(
        title=f"{report['name']}: teacher vs student ({report['dataset']})", title_justify="left"
    )
    cols = ["model", "perplexity", "top-1 agr.", "params", "size MiB"]
    cols += [f"{pp} t/s {n}t" for n in threads] + [f"tg t/s {n}t" for n in threads]
    for col in [*cols, "TTFT ms", "peak RSS MB"]:
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for r in rows:
        t.add_row(
            r["variant"],
            _fmt(r["perplexity"], ".2f"),
            _fmt(r["agreement"], ".4f"),
            _fmt(r["params"], ","),
            _fmt(r["size_mb"], ".2f"),
            *[_fmt(r["pp"].get(n), ".0f") for n in threads],
            *[_fmt(r["tg"].get(n), ".0f") for n in threads],
            _fmt(r["ttft_ms"], ".1f"),
            _fmt(r["peak_rss_mb"], ".1f"),
        )
    console.print(t)
    line = ratios(report)
    if line:
        console.print(line)
    print_warnings(console, raw, reporter)
    calls = _teacher_calls(result)
    if calls:
        console.print(calls)
    console.print(
        f"ran: {', '.join(result.ran) or 'nothing (all cached)'} in {result.seconds:.1f}s"
    )
    console.print(f"package: {inert(str(result.package_path))}")
    _print_report_path(console, result)


def print_build(console: Console, result, reporter=None) -> None:
    from packager.report import comparison_rows
    from packager.report.lm import is_lm

    report = result.artifact("package").meta["report"]
    if is_lm(report):
        print_lm_build(console, result, report, reporter)
        return
    raw, report = report, inert(report)  # names and dataset texts come from the recipe and files
    rows = comparison_rows(report)
    # One p50 column per thread count when several were measured (e.g. 1 and 2 threads).
    threads = sorted({t for r in rows for t in r.get("p50_by_threads", {})})
    p50_cols = [f"p50 ms {n}t" for n in threads] if len(threads) > 1 else ["p50 ms"]
    t = Table(
        title=f"{report['name']}: teacher vs student ({report['dataset']})", title_justify="left"
    )
    probe = report.get("probe_metric")
    metric = report.get("metric", "accuracy")
    for col, just in [
        ("model", "left"),
        (f"{metric} (test)" if probe else metric, "right"),
        *([(probe.replace("_", " "), "right")] if probe else []),
        ("params", "right"),
        ("size KiB", "right"),
        *[(c, "right") for c in p50_cols],
        ("p99 ms", "right"),
        ("cold start ms", "right"),
        ("peak RSS MB", "right"),
    ]:
        t.add_column(col, justify=just)
    for r in rows:
        p50s = (
            [_fmt(r["p50_by_threads"].get(n), ".3f") for n in threads]
            if len(threads) > 1
            else [_fmt(r["p50_ms"], ".3f")]
        )
        t.add_row(
            r["variant"],
            _fmt(r["accuracy"], ".4f"),
            *([_fmt(r["probe"], ".4f")] if probe else []),
            _fmt(r["params"], ","),
            _fmt(r["size_kb"], ".1f"),
            *p50s,
            _fmt(r["p99_ms"], ".3f"),
            _fmt(r["cold_start_ms"], ".1f"),
            _fmt(r["peak_rss_mb"], ".1f"),
        )
    console.print(t)
    _print_ratios(console, rows, threads)
    print_warnings(console, raw, reporter)
    d = report["distill"]
    ran = ", ".join(result.ran) or "nothing (all cached)"
    calls = _teacher_calls(result)
    if calls:
        console.print(calls)
    if d.get("compression") is None and d.get("arch"):  # a teacher only called: no size to compare
        console.print(f"student: {d['params']:,} params, learned from the teacher's answers")
    elif d.get("compression") is None:  # distill: none ships the teacher itself
        console.print(
            f"model: the teacher itself (no distillation), {_fmt(d['params'], ',')} params"
        )
    else:
        console.print(
            f"student: {d['params']:,} params, {d['compression']:.1f}x fewer than the teacher"
        )
    console.print(f"ran: {ran} in {result.seconds:.1f}s")
    console.print(f"package: {inert(str(result.package_path))}")
    _print_report_path(console, result)


def _teacher_calls(result) -> str | None:
    """A teacher only called: the calls this run made (none when its step was cached)."""
    step = next((s for s in result.steps if s.step.name == "teacher"), None)
    art = step.artifact if step else None
    if art is None or art.kind != "api":
        return None
    c = art.meta["teacher_calls"]
    if step.status == "cached":
        return (
            f"teacher calls: 0 this run (its {c['requests']} answers were cached by an earlier "
            f"build that made {c['calls']} calls)"
        )
    return (
        f"teacher calls: {c['calls']} made this run, {c['cached']} answers from the call cache "
        f"({c['tokens_in']:,} tokens in, {c['tokens_out']:,} out)"
    )


def _print_report_path(console: Console, result) -> None:
    report = result.package_path and result.package_path.with_name(
        result.package_path.name.removesuffix(".edgepack") + ".report.html"
    )
    if report and report.is_file():
        console.print(f"report:  {inert(str(report))}")


def _print_ratios(console: Console, rows: list[dict[str, Any]], threads: list[int]) -> None:
    """How much smaller and faster the shipped-candidate student is than the teacher."""
    by = {r["variant"]: r for r in rows}
    t = by.get("teacher_fp32")
    s = next((r for v, r in by.items() if v not in ("teacher_fp32", "student_fp32")), None)
    s = s or by.get("student_fp32")
    if not t or not s:
        return
    fast = [
        f"{t['p50_by_threads'][n] / s['p50_by_threads'][n]:.1f}x faster at {n} thread(s)"
        for n in threads
        if t["p50_by_threads"].get(n) and s["p50_by_threads"].get(n)
    ]
    console.print(
        f"{s['variant']} vs teacher_fp32: {t['size_kb'] / s['size_kb']:.1f}x smaller"
        + (", " + ", ".join(fast) if fast else "")
    )


def print_auto(out: Console, result) -> None:
    """`edgepack auto`: the Pareto front (metric vs latency on the target vs size), the pick and
    why, what it misses, the package."""
    from packager.report.front import front_rows, latency_text

    rec = inert(result.record)
    t = Table(
        title=f"Pareto front on {rec['target']}: {rec.get('metric') or 'metric'} vs latency vs size",
        title_justify="left",
    )
    cols = ["", "candidate", "threads", "training", rec.get("metric") or "metric", "drop"]
    cols += ["latency ms (band)", "latency is", "size KB", "memory MB"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("", "candidate", "latency is") else "right")
    for r in front_rows(rec):
        t.add_row(
            "*" if r["picked"] else "",
            r["describe"],
            str(r["threads"]),
            f"{r['fidelity']:g}",
            f"{r['metric']:.4f}",
            f"{r['drop']:.4f}",
            latency_text(r),
            r["label"],
            f"{r['size_mb'] * 1e3:.1f}",
            f"{r['memory_mb']:.2f}",
        )
    out.print(t)
    trained = sum(x["phase"] == "train" for x in rec["trials"])
    out.print(
        f"{len(rec['front'])} points on the front; {len(rec['trials'])} trials ({trained} "
        f"trained, the rest costed from their graphs); search {rec['stopped']}"
    )
    pick = rec["pick"]
    if pick is None:
        out.print("[red]no candidate could be trained within the budget[/]")
        return
    out.print(
        f"pick: {pick['describe']} at {pick['threads']} thread(s): {rec['metric']} "
        f"{pick['metric']:.4f} (drop {pick['drop']:.4f}), {latency_text(pick)} ms "
        f"({pick['label']}), {pick['size_mb'] * 1e3:.1f} KB"
    )
    out.print(f"why: {rec['why']}")
    if rec["misses"]:
        from packager.search.constraints import describe_miss

        out.print(f"[yellow]misses: {'; '.join(describe_miss(m) for m in rec['misses'])}[/]")
    out.print(f"overrides: {' '.join('--set ' + o for o in pick['overrides'])}")
    if result.package_path is not None:
        out.print(
            f"package: {inert(str(result.package_path))} (manifest.search records the search)"
        )
    out.print(f"took {result.seconds:.1f}s")
