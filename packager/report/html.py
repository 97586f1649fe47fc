"""A self-contained HTML report (`NAME.report.html` beside a package and inside it, or
`edgepack bench --html`): the models side by side (metric, params, size, latency), the plots
(packager.report.plots: log axes, per-model panels, estimates with their bands) and every
benchmark row. A section with nothing to show is left out rather than printed empty.
"""

from __future__ import annotations

from html import escape
from typing import Any

from packager.report import plots


def _estimate(est: dict[str, Any]) -> str:
    model = est.get("model")
    if model:
        return f"{model['latency_ms']:.3f} ({model['low_ms']:.3f}-{model['high_ms']:.3f})"
    return "-" if est.get("latency_ms") is None else f"&ge; {est['latency_ms']:.3f}"


def _table(results: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>model</th><th>target</th><th>kind</th><th>threads</th><th>batch</th>"
        "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>estimate ms (band)</th>"
        "<th>items/s (p50)</th>"
        "<th>cold start ms</th><th>peak RSS MB</th><th>machine</th><th>notes</th></tr>"
    )
    rows = []
    for r in results:
        lat = r.get("latency_ms") or {}
        est = r.get("estimate") or {}

        def f(v, spec=".3f"):
            return "-" if v is None else format(v, spec)

        notes = [r["message"]] if r.get("message") else []
        notes += r.get("notes", [])
        rows.append(
            f"<tr class='{escape(r['kind'])}'><td>{escape(str(r.get('model_name')))}</td>"
            f"<td>{escape(r['target'])}</td><td>{escape(r['kind'])}</td>"
            f"<td>{r['threads']}</td><td>{r['batch']}</td><td>{f(lat.get('p50'))}</td>"
            f"<td>{f(lat.get('p90'))}</td><td>{f(lat.get('p99'))}</td>"
            f"<td>{_estimate(est)}</td><td>{f(lat.get('throughput'), '.1f')}</td>"
            f"<td>{f(r.get('cold_start_ms'), '.1f')}</td><td>{f(r.get('peak_rss_mb'), '.1f')}</td>"
            f"<td>{escape(str(r['machine'].get('cpu')))}</td>"
            f"<td>{escape('; '.join(notes))}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _models(report: dict[str, Any] | None) -> str:
    """The build's variants side by side: the task's metric, params, size, p50."""
    if not report or not report.get("variants"):
        return ""
    from packager.report import comparison_rows

    metric, probe = report.get("metric", "accuracy"), report.get("probe_metric")

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    head = f"<tr><th>model</th><th>{escape(metric)}</th>"
    head += f"<th>{escape(probe)}</th>" if probe else ""
    head += (
        "<th>params</th><th>size KiB</th><th>p50 ms</th><th>p99 ms</th><th>peak RSS MB</th></tr>"
    )
    rows = []
    for r in comparison_rows(report):
        cells = [escape(r["variant"]), f(r["accuracy"], ".4f")]
        cells += [f(r["probe"], ".4f")] if probe else []
        cells += [f(r["params"], ","), f(r["size_kb"], ".1f"), f(r["p50_ms"], ".3f")]
        cells += [f(r["p99_ms"], ".3f"), f(r["peak_rss_mb"], ".1f")]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    shipped = escape(str(report.get("shipped", "")))
    dataset = escape(str(report.get("dataset", "")))
    return (
        f"<h2>Models</h2><p>{escape(metric)} on {dataset}; shipped: <b>{shipped}</b>.</p>"
        f"<table class='models'>{head}{''.join(rows)}</table>"
    )


def bench_report_html(
    results: list[dict[str, Any]],
    *,
    title: str = "edgepack benchmark",
    metrics: dict[str, Any] | None = None,
    extra: str = "",
    report: dict[str, Any] | None = None,
) -> str:
    """The report page. `results` are schema records (with raw latencies for the box plots);
    `metrics` maps variant -> {metric: value} for the latency vs metric plot (`report`, a
    build's report.json, gives both the metric's name and the models table); `extra` is HTML
    put before the benchmarks (edgepack auto's search)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines and devices
    metric = (report or {}).get("metric", "accuracy")
    metrics = metrics if metrics is not None else (report or {}).get("metrics")
    sections = [
        ("Latency distribution per model", plots.distribution(results)),
        (f"Latency vs {metric} per variant", plots.accuracy(results, metrics, metric)),
        ("Threads scaling", plots.scaling(results)),
        ("Targets: estimated latency and its band", plots.estimates(results)),
    ]
    body = [
        f"<h2>{heading}</h2><img alt='{heading}' src='data:image/png;base64,{png}'>"
        for heading, png in sections
        if png is not None
    ]
    if results:
        body.append(f"<h2>All results</h2>{_table(results)}")
    warnings = "".join(f"<li>{escape(w)}</li>" for w in (report or {}).get("warnings", []))
    machines = sorted({str(r["machine"].get("cpu")) for r in results if r["kind"] != "estimated"})
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
img{{max-width:100%}}table{{border-collapse:collapse;font-size:13px;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:3px 6px}}td{{text-align:right}}td:first-child{{text-align:left}}
tr.estimated{{color:#555;font-style:italic}}tr.host-emulated{{background:#f6f6ff}}
tr.picked{{font-weight:bold;background:#eef8ee}}li{{margin:.3em 0}}</style>
</head><body><h1>{escape(title)}</h1>
<p>Every number is labelled: <b>measured</b> (on the machine named), <b>host-emulated</b> (this
machine under a target's thread count and memory cap) or <b>estimated</b> (a roofline cost
model against the target's published peaks: the latency model's point estimate and band where
this host was calibrated, else a roofline lower bound; never a measurement). Host-emulated rows
with more threads than this host has are flagged and compared with nothing.
Measured on: {escape(", ".join(machines) or "-")}.</p>
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
{_models(report)}
{extra}
{"".join(body)}
</body></html>
"""
