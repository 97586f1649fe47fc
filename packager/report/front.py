"""The Pareto front of an `edgepack auto` search (metric vs latency on the target vs size): rows for
the terminal table and report.md, and the HTML section of report.html (a plot, embedded as PNG,
and the table). Every point says whether its latency is measured or estimated."""

from __future__ import annotations

from html import escape
from typing import Any


def front_rows(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The front's trials, fastest first, each marked when it is the pick."""
    by_id = {t["id"]: t for t in search["trials"]}
    pick = (search.get("pick") or {}).get("id")
    return [{**by_id[i], "picked": i == pick} for i in search["front"] if i in by_id]


def latency_text(t: dict[str, Any]) -> str:
    if t.get("low_ms") is not None and t.get("label") == "estimated":
        return f"{t['latency_ms']:.4g} ({t['low_ms']:.3g}-{t['high_ms']:.3g})"
    return f"{t['latency_ms']:.4g}"


def _plot(search: dict[str, Any]) -> str | None:
    trained = [t for t in search["trials"] if t.get("metric") is not None]
    if not trained:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from packager.report.plots import _png

    front = set(search["front"])
    pick = (search.get("pick") or {}).get("id")
    c = search["constraints"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, marker in (("estimated", "o"), ("measured", "s")):
        for on_front in (False, True):
            pts = [t for t in trained if t.get("label") == label and (t["id"] in front) == on_front]
            if not pts:
                continue
            ax.scatter(
                [t["latency_ms"] for t in pts],
                [t["metric"] for t in pts],
                s=[20 + 400 * t["size_mb"] / max(x["size_mb"] for x in trained) for t in pts],
                marker=marker,
                alpha=0.9 if on_front else 0.25,
                label=f"{'front' if on_front else 'dominated'}, latency {label}",
            )
    for t in trained:
        if t["id"] in front:
            ax.annotate(f"{t['mode']} {t['threads']}t", (t["latency_ms"], t["metric"]), fontsize=7)
        if t["id"] == pick:
            ax.scatter([t["latency_ms"]], [t["metric"]], s=260, facecolors="none",
                       edgecolors="red", linewidths=2, label="pick")  # fmt: skip
    ax.axvline(c["latency_ms"], color="red", linestyle="--", linewidth=1, label="latency budget")
    floor = _metric_floor(search)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle=":", linewidth=1, label="metric floor")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency on {search['target']} (ms, log scale)")
    ax.set_ylabel(search.get("metric") or "metric")
    ax.set_title("edgepack auto: metric vs latency (marker area: size)")
    ax.legend(fontsize=7)
    return _png(fig)


def _metric_floor(search: dict[str, Any]) -> float | None:
    c = search["constraints"]
    if c.get("min_metric") is not None:
        return c["min_metric"]
    if c.get("max_drop") is not None and search.get("teacher_metric") is not None:
        return search["teacher_metric"] - c["max_drop"]
    return None


def front_html(search: dict[str, Any]) -> str:
    """The report.html section: the plot, the front's table, the pick and why."""
    png = _plot(search)
    rows = []
    for t in front_rows(search):
        cls = " class='picked'" if t["picked"] else ""
        rows.append(
            f"<tr{cls}><td>{escape(t['describe'])}</td><td>{t['threads']}</td>"
            f"<td>{t['fidelity']:g}</td><td>{t['metric']:.4f}</td><td>{t['drop']:.4f}</td>"
            f"<td>{escape(latency_text(t))}</td><td>{escape(t['label'])}</td>"
            f"<td>{t['size_mb'] * 1e3:.1f}</td><td>{t['memory_mb']:.2f}</td></tr>"
        )
    c = search["constraints"]
    asked = ", ".join(f"{k} {v:g}" for k, v in c.items() if v is not None)
    img = f"<img alt='Pareto front' src='data:image/png;base64,{png}'>" if png else ""
    trials = len(search["trials"])
    trained = sum(t["phase"] == "train" for t in search["trials"])
    return f"""<h2>edgepack auto: the search</h2>
<p>Target <b>{escape(search["target"])}</b>; asked: {escape(asked)}. {trials} trials
({trained} trained, the rest costed from their graphs); stopped: {escape(search["stopped"])}.
Pick: {escape((search.get("pick") or {}).get("describe", "none"))}: {escape(search["why"])}.</p>
{img}
<table><tr><th>candidate</th><th>threads</th><th>training</th><th>{escape(search.get("metric") or "metric")}</th>
<th>drop vs teacher</th><th>latency ms (band)</th><th>latency is</th><th>size KB</th>
<th>weights + activations MB</th></tr>{"".join(rows)}</table>
"""
