"""Terminal rendering for the CLI: build summary, plan, inspect. Formatting only."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table


def make_console(width: int = 140) -> Console:
    # Piped output (CI logs, files) gets a wide fixed width so tables are not truncated.
    return Console(highlight=False, width=None if sys.stdout.isatty() else width)


def print_plan(out: Console, result) -> None:
    t = Table(title=f"plan for recipe {result.name}", title_justify="left")
    for col in ("step", "stage", "status", "key"):
        t.add_column(col)
    for r in result.steps:
        status = "cached" if r.status == "cached" else "will run"
        t.add_row(r.step.name, r.stage, status, r.key[:12] if r.key else "(after inputs)")
    out.print(t)
    n = sum(r.status != "cached" for r in result.steps)
    out.print(f"{n} of {len(result.steps)} steps would run")


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_warnings(console: Console, report: dict[str, Any], reporter=None) -> None:
    """The package's warnings (consistent with the table above them: the speed verdict is the
    bench's), then what the run's stages warned that the report does not already say, minus
    verdicts the table's own measurement overturned: one line per fact."""
    said = list(report.get("warnings", []))
    for w in said:
        console.print(f"[yellow]warning:[/] {w}")
    if reporter is not None:
        reporter.flush_warnings([*said, *report.get("superseded_warnings", [])], console)


def print_lm_build(console: Console, result, report: dict[str, Any], reporter=None) -> None:
    from packager.report.lm import lm_rows, ratios

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
    print_warnings(console, report, reporter)
    calls = _teacher_calls(result)
    if calls:
        console.print(calls)
    console.print(
        f"ran: {', '.join(result.ran) or 'nothing (all cached)'} in {result.seconds:.1f}s"
    )
    console.print(f"package: {result.package_path}")
    _print_report_path(console, result)


def print_build(console: Console, result, reporter=None) -> None:
    from packager.report import comparison_rows
    from packager.report.lm import is_lm

    report = result.artifact("package").meta["report"]
    if is_lm(report):
        print_lm_build(console, result, report, reporter)
        return
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
    print_warnings(console, report, reporter)
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
    console.print(f"package: {result.package_path}")
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
        console.print(f"report:  {report}")


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


def print_cost(console: Console, cost: dict[str, Any], top: int = 15) -> None:
    """The per-op cost table (the `estimated` kind's inputs), heaviest ops first."""
    shapes = ", ".join(f"{k} {v}" for k, v in cost["inputs"].items())
    t = Table(title=f"cost model at input shapes {shapes}", title_justify="left")
    for col in ("op", "type", "output", "MACs", "FLOPs", "param KiB", "moved KiB"):
        t.add_column(col, justify="left" if col in ("op", "type", "output") else "right")
    ops = sorted(cost["ops"], key=lambda o: -o["flops"])
    for o in ops[:top]:
        t.add_row(
            o["name"],
            o["op_type"],
            str(o["output_shape"]) if o["known"] else "?",
            f"{o['macs']:,}",
            f"{o['flops']:,}",
            f"{o['param_bytes'] / 1024:.1f}",
            f"{o['bytes_moved'] / 1024:.1f}",
        )
    if len(ops) > top:
        t.add_row(f"... {len(ops) - top} more (--json lists all)", "", "", "", "", "", "")
    console.print(t)
    console.print(
        f"  total MACs {cost['macs']:,}   FLOPs {cost['flops']:,}   "
        f"params {cost['param_bytes'] / 1024:.1f} KiB   "
        f"peak activations {cost['activation_peak_bytes'] / 1024:.1f} KiB"
        + (f"   ({cost['unknown_ops']} op(s) with unknown shapes)" if cost["unknown_ops"] else "")
    )
    if cost.get("guessed_dims"):
        guessed = ", ".join(f"{k}={v}" for k, v in cost["guessed_dims"].items())
        console.print(
            f"  [yellow]guessed symbolic dims:[/] {guessed} (give real values: --dim NAME=VALUE)"
        )


def print_inspect(console: Console, info: dict[str, Any]) -> None:
    head = f"{info['path']}: {info['kind']}"
    if info["kind"] == "package":
        head += (
            f" {info['name']} {info['version']} ({info['task']}, schema {info['schema_version']})"
        )
    console.print(head)
    for io in ("inputs", "outputs"):
        for v in info[io]:
            console.print(f"  {io[:-1]:<6} {v['name']}: {v['dtype']} {v['shape']}")
    console.print(
        f"  params {info['params']:,}   size {info['size_bytes'] / 1024:.1f} KiB   "
        f"nodes {info['nodes']}   opset {info['opset'].get('ai.onnx', '?')}"
    )
    console.print("  ops    " + ", ".join(f"{k} {v}" for k, v in info["ops"].items()))
    if info.get("cost"):
        print_cost(console, info["cost"])
    if info["kind"] == "package":
        m = info["metrics"]
        for label in m:  # teacher_fp32, student_fp32, the quantized student by its precision
            if isinstance(m[label], dict):
                # accuracy (classifiers) or cosine / top-k agreement (embeddings)
                shown = ", ".join(f"{k} {v:.4f}" for k, v in m[label].items() if k != "macro_f1")
                console.print(f"  {label:<13} {shown}")
        for b in info["benchmarks"]:
            if b.get("status", "ok") != "ok":
                value = b.get("message", "did not run")
            elif b["kind"] == "estimated":
                value = f"estimate >= {b['estimate']['latency_ms']:.3f} ms (roofline)"
            else:
                value = f"p50 {b['latency_ms']['p50']:.3f} ms"
            console.print(
                f"  bench {b.get('variant') or b.get('model_name')!s:<13} {b['kind']} on "
                f"{b.get('target', 'host')} ({b['machine']['cpu']}): {value}, "
                f"{b['threads']} thread(s), batch {b.get('batch', 1)}"
            )
        console.print(f"  files  {len(info['files'])} (sha256 in the manifest)")


def _teacher_line(t: dict[str, Any]) -> str:
    rev = t.get("revision") or {}
    pinned = rev.get("commit") or rev.get("version")
    weights = t.get("weights") or []
    first = f", weights {weights[0]['file']} sha256 {weights[0]['sha256'][:12]}" if weights else ""
    more = f" (+{len(weights) - 1} more)" if len(weights) > 1 else ""
    return (
        f"teacher [bold]{t['source']}[/]" + (f" ({t['hub_id']})" if t.get("hub_id") else "")
        + (f", revision {pinned}" if pinned else "") + first + more
    )  # fmt: skip


def print_provenance(console: Console, info: dict[str, Any]) -> None:
    """`inspect --provenance`: the lineage tree, licenses and duties, data, what was accepted."""
    from rich.markup import escape
    from rich.tree import Tree

    prov = info.get("provenance")
    console.print(f"{info['path']}: {info['name']} provenance")
    if not prov:
        console.print("  no provenance block (a package written before schema 1.1)")
        return
    t, init, q = prov["teacher"], prov["student_init"], prov.get("quantized") or {}
    lic, terms = t["license"], t["terms"]
    tree = Tree(_teacher_line(t))
    e = t.get("endpoint")
    if e:  # a teacher only called: the endpoint, the model, the calls
        c = t.get("calls") or {}
        served = ", ".join(e.get("served_models") or []) or "-"
        tree.add(
            escape(
                f"endpoint {e['base_url']} (host {e['host']}), model {e['model']} (served as {served})"
            )
        )
        tree.add(
            escape(
                f"calls {c.get('calls', 0)} made, {c.get('cached', 0)} cached, "
                f"{c.get('first_call') or '-'} .. {c.get('last_call') or '-'}; the student "
                "learned from its outputs"
            )
        )
    tree.add(f"license {lic['id']} ({terms['name']}, {terms['category']}; from {lic.get('from')})")
    student = tree.add(f"student {init['kind']}: {escape(init['how'])}")
    m = prov["method"]
    losses = " + ".join(f"{w:g} {k}" for k, w in m.get("losses", {}).items())
    student.add(
        f"method {losses}, {m.get('steps') or '-'} steps, on-policy {m['on_policy_fraction']:g}"
        if m.get("type") != "none"
        else "method none: the teacher itself ships"
    )
    student.add(
        f"quantized {q.get('mode', 'none')} {q.get('precision', '')} {q.get('format') or ''}"
    )
    console.print(tree)
    for d in prov["data"]:
        rows = ", ".join(f"{k} {v}" for k, v in (d.get("rows") or {}).items())
        lic_d = (d.get("license") or {}).get("id") or "license not given"
        console.print(
            f"  data     {d['source']}  sha256 {str(d.get('sha256'))[:12]}  {rows}  {lic_d}"
        )
    console.print(f"  terms    {escape(terms['clause'])} ({terms['link']})")
    for d in prov.get("duties", []):
        status = escape(f"[{d['status']}]")
        console.print(f"  duty     {status} {escape(d['duty'])}")
    for note in t.get("notes", []):
        console.print(f"  note     {escape(note)}")
    console.print(f"  policy   {prov['policy']} ({prov['gate']})")
    for a in prov.get("accepted", []):
        console.print(f"  accepted {a['terms']} ({a['name']}) with {a['flag']} at {a['at']}")
    if not prov.get("accepted"):
        console.print("  accepted nothing")
    console.print("  not legal advice: read the teacher's terms yourself")


def print_auto(out: Console, result) -> None:
    """`edgepack auto`: the Pareto front (metric vs latency on the target vs size), the pick and
    why, what it misses, the package."""
    from packager.report.front import front_rows, latency_text

    rec = result.record
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
        out.print(f"package: {result.package_path} (manifest.search records the search)")
    out.print(f"took {result.seconds:.1f}s")
