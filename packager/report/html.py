"""A self-contained HTML benchmark report: plots (matplotlib, embedded as PNG) and the table.

Plots: latency distribution per model, latency vs accuracy per variant (when accuracy is
known), and threads scaling. Estimates are drawn dashed and labelled, never mixed in with
measurements.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from packager.report.markup import html as escape  # control characters shown escaped too

_KIND_STYLE = {"measured": "-", "host-emulated": "--", "estimated": ":"}


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _label(r: dict[str, Any]) -> str:
    return f"{r.get('model_name')} @ {r['target']} ({r['kind']}, {r['threads']}t, b{r['batch']})"


def _distribution(results: list[dict[str, Any]]) -> str | None:
    rows = [r for r in results if r.get("latencies_ms")]
    if not rows:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    ax.boxplot(
        [r["latencies_ms"] for r in rows],
        orientation="horizontal",
        tick_labels=[_label(r) for r in rows],
        showfliers=True,
        flierprops={"markersize": 2},
    )
    ax.set_xlabel("latency per run (ms)")
    ax.set_title("latency distribution (every timed run; warm-up excluded)")
    return _png(fig)


def _accuracy(results: list[dict[str, Any]], metrics: dict[str, Any] | None) -> str | None:
    if not metrics:
        return None
    host = [
        r
        for r in results
        if r["kind"] == "measured" and r.get("variant") in metrics and r.get("latency_ms")
    ]
    if not host:
        return None
    threads = min(r["threads"] for r in host)
    batch = min(r["batch"] for r in host)
    points = [r for r in host if r["threads"] == threads and r["batch"] == batch]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in points:
        acc = metrics[r["variant"]].get("accuracy")
        if acc is None:
            continue
        ax.scatter(r["latency_ms"]["p50"], acc)
        ax.annotate(r["variant"], (r["latency_ms"]["p50"], acc), fontsize=8)
    ax.set_xlabel(
        f"p50 latency, measured on {r['target']} (ms, {threads} thread(s), batch {batch})"
    )
    ax.set_ylabel("accuracy")
    ax.set_title("latency vs accuracy per variant")
    return _png(fig)


def _value(r: dict[str, Any]) -> float | None:
    if r["kind"] == "estimated":  # the latency model's point where there is one
        return (r["estimate"].get("model") or r["estimate"])["latency_ms"]
    return r["latency_ms"]["p50"] if r.get("latency_ms") else None


def _scaling(results: list[dict[str, Any]]) -> str | None:
    lines: dict[tuple, list[tuple[int, float]]] = {}
    for r in results:
        v = None if r.get("oversubscribed") else _value(r)  # flagged rows are compared with nothing
        if v is not None:
            key = (r.get("model_name"), r["target"], r["kind"], r["batch"])
            lines.setdefault(key, []).append((r["threads"], v))
    if not any(len({t for t, _ in pts}) > 1 for pts in lines.values()):
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (model, target, kind, batch), pts in sorted(lines.items(), key=str):
        pts.sort()
        ax.plot(
            [t for t, _ in pts],
            [v for _, v in pts],
            _KIND_STYLE[kind],
            marker="o",
            label=f"{model} @ {target} ({kind}, b{batch})",
        )
    ax.set_xlabel("threads")
    ax.set_ylabel("latency (ms): p50, or the estimate")
    ax.set_yscale("log")
    ax.set_title("threads scaling (solid measured, dashed host-emulated, dotted estimated)")
    ax.legend(fontsize=7)
    return _png(fig)


def _estimate(est: dict[str, Any]) -> str:
    model = est.get("model")
    if model:
        return f"{model['latency_ms']:.3f} ({model['low_ms']:.3f}-{model['high_ms']:.3f})"
    return "-" if est.get("latency_ms") is None else f"&ge; {est['latency_ms']:.3f}"


def _table(results: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>model</th><th>target</th><th>kind</th><th>threads</th><th>batch</th>"
        "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>estimate ms</th><th>items/s</th>"
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


def bench_report_html(
    results: list[dict[str, Any]],
    *,
    title: str = "edgepack benchmark",
    metrics: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    """The report page. `results` are schema records (with raw latencies for the box plots);
    `metrics` maps variant -> {"accuracy": ...} for the latency vs accuracy plot; `extra` is
    HTML put before the benchmarks (edgepack auto's search)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines and devices
    plots = [
        ("Latency distribution per model", _distribution(results)),
        ("Latency vs accuracy per variant", _accuracy(results, metrics)),
        ("Threads scaling", _scaling(results)),
    ]
    body = []
    for heading, png in plots:
        body.append(f"<h2>{heading}</h2>")
        if png is None:
            body.append("<p class='none'>not enough data for this plot in this run.</p>")
        else:
            body.append(f"<img alt='{heading}' src='data:image/png;base64,{png}'>")
    machines = sorted({str(r["machine"].get("cpu")) for r in results if r["kind"] != "estimated"})
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}
tr.estimated{{color:#555;font-style:italic}}tr.host-emulated{{background:#f6f6ff}}
tr.picked{{font-weight:bold;background:#eef8ee}}</style>
</head><body><h1>{escape(title)}</h1>
<p>Every number is labelled: <b>measured</b> (on the machine named), <b>host-emulated</b> (this
machine under a target's thread count and memory cap) or <b>estimated</b> (a roofline cost
model against the target's published peaks: the latency model's point estimate and band where
this host was calibrated, else a roofline lower bound; never a measurement). Host-emulated rows
with more threads than this host has are flagged and compared with nothing.
Measured on: {escape(", ".join(machines) or "-")}.</p>
{extra}
{"".join(body)}
<h2>All results</h2>
{_table(results)}
</body></html>
"""
