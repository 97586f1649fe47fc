"""The report's plots (matplotlib, embedded as PNG), drawn for a person to read at a glance.

Latency spans orders of magnitude between a teacher and its int8 student, and one stalled run
can be 100x the median: every latency axis is logarithmic. The distribution is one panel per
model (so no label names a model twice and none overlap); points are told apart by a legend
outside the axes, never by text placed beside them. A plot with nothing to show is not drawn
(the page leaves its section out). Estimates are drawn with their band, never as measurements.
"""

from __future__ import annotations

import base64
import io
from typing import Any

_KIND_STYLE = {"measured": "-", "host-emulated": "--", "estimated": ":"}
_MARKERS = "osD^v<>ph*"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _log(ax, which: str) -> None:
    """A log scale whose ticks read as plain numbers (0.012, not 1.2x10^-2); minor ticks are
    labelled at 2 and 5 only, so labels never run into each other."""
    from matplotlib.ticker import FuncFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def _row_label(r: dict[str, Any]) -> str:
    return f"{r['target']} · {r['kind']} · {r['threads']}t · b{r['batch']}"


def distribution(results: list[dict[str, Any]]) -> str | None:
    """One panel per model: a horizontal box per (target, kind, threads, batch), log axis."""
    rows = [r for r in results if r.get("latencies_ms")]
    if not rows:
        return None
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(str(r.get("model_name")) for r in rows))
    per = {m: [r for r in rows if str(r.get("model_name")) == m] for m in models}
    heights = [0.45 * len(per[m]) + 0.9 for m in models]
    fig, axes = plt.subplots(
        len(models), 1, figsize=(8.5, sum(heights)), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, model in zip(axes[:, 0], models, strict=True):
        mine = per[model]
        ax.boxplot(
            [r["latencies_ms"] for r in mine],
            orientation="horizontal",
            tick_labels=[_row_label(r) for r in mine],
            showfliers=True,
            flierprops={"markersize": 2},
        )
        _log(ax, "x")
        ax.set_title(model, fontsize=10, loc="left")
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[-1, 0].set_xlabel("latency per run (ms, log scale; warm-up excluded)")
    fig.tight_layout()
    return _png(fig)


def accuracy(
    results: list[dict[str, Any]], metrics: dict[str, Any] | None, metric: str = "accuracy"
) -> str | None:
    """The task's metric against the p50 measured here, one marker per variant (legend)."""
    if not metrics:
        return None
    host = [
        r
        for r in results
        if r["kind"] == "measured"
        and r.get("variant") in metrics
        and r.get("latency_ms")
        and metrics[r["variant"]].get(metric) is not None
    ]
    if not host:
        return None
    threads = min(r["threads"] for r in host)
    batch = min(r["batch"] for r in host)
    points = [r for r in host if r["threads"] == threads and r["batch"] == batch]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, r in enumerate(points):
        ax.scatter(
            r["latency_ms"]["p50"], metrics[r["variant"]][metric], s=60,
            marker=_MARKERS[i % len(_MARKERS)], label=r["variant"],
        )  # fmt: skip
    _log(ax, "x")
    ax.set_xlabel(f"p50 latency measured on {points[0]['target']} (ms, log; {threads} thread(s))")
    ax.set_ylabel(metric)
    ax.grid(which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return _png(fig)


def _value(r: dict[str, Any]) -> float | None:
    if r["kind"] == "estimated":  # the latency model's point where there is one
        return (r["estimate"].get("model") or r["estimate"])["latency_ms"]
    return r["latency_ms"]["p50"] if r.get("latency_ms") else None


def scaling(results: list[dict[str, Any]]) -> str | None:
    """Latency against threads, one line per (model, target, kind, batch), legend outside."""
    lines: dict[tuple, list[tuple[int, float]]] = {}
    for r in results:
        v = None if r.get("oversubscribed") else _value(r)  # flagged rows are compared with nothing
        if v is not None:
            key = (str(r.get("model_name")), r["target"], r["kind"], r["batch"])
            lines.setdefault(key, []).append((r["threads"], v))
    if not any(len({t for t, _ in pts}) > 1 for pts in lines.values()):
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (model, target, kind, batch), pts in sorted(lines.items()):
        pts.sort()
        ax.plot([t for t, _ in pts], [v for _, v in pts], _KIND_STYLE[kind], marker="o",
                label=f"{model} @ {target} ({kind}, b{batch})")  # fmt: skip
    ax.set_xlabel("threads")
    ax.set_xticks(sorted({t for pts in lines.values() for t, _ in pts}))
    ax.set_ylabel("latency (ms, log): p50, or the estimate")
    _log(ax, "y")
    ax.grid(which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7)
    return _png(fig)


def estimates(results: list[dict[str, Any]]) -> str | None:
    """Each target's estimated latency: the calibrated latency model's point and band, else
    the roofline lower bound (drawn as a bound, `>`), beside the host-emulated p50 for the same
    model and threads; one row per estimate."""
    est = [
        r
        for r in results
        if r["kind"] == "estimated" and (r.get("estimate") or {}).get("latency_ms")
    ]
    if not est:
        return None
    import matplotlib.pyplot as plt

    emulated = {
        (str(r.get("model_name")), r["target"], r["threads"], r["batch"]): _value(r)
        for r in results
        if r["kind"] == "host-emulated" and not r.get("oversubscribed")
    }
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(est) + 1.4))
    labelled: set[str] = set()

    def once(label: str) -> str | None:
        new = label not in labelled
        labelled.add(label)
        return label if new else None

    for y, r in enumerate(est):
        m = r["estimate"].get("model")
        if m:
            err = [[m["latency_ms"] - m["low_ms"]], [m["high_ms"] - m["latency_ms"]]]
            ax.errorbar(m["latency_ms"], y, xerr=err, fmt="o", color="tab:purple", capsize=4,
                        label=once("latency model: point and band"))  # fmt: skip
        else:
            ax.scatter(r["estimate"]["latency_ms"], y, marker=">", color="tab:purple",
                       label=once("roofline lower bound (at least)"))  # fmt: skip
        seen = emulated.get((str(r.get("model_name")), r["target"], r["threads"], r["batch"]))
        if seen is not None:
            ax.scatter(seen, y, marker="x", color="tab:cyan",
                       label=once("host-emulated p50 (this CPU, capped)"))  # fmt: skip
    labels = [f"{r.get('model_name')} @ {r['target']}, {r['threads']}t" for r in est]
    ax.set_yticks(range(len(est)), labels, fontsize=8)
    _log(ax, "x")
    ax.set_xlabel("latency (ms, log): estimates from the target's published peaks, never measured")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return _png(fig)
