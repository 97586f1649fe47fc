"""Accuracy-aware quantization: keep the most sensitive nodes in float until the budget holds.

Sensitivity is measured once, per node, as the output error the node *adds* against fp32:
relative error of its output minus the largest relative error of its inputs, both in the
quantized model versus the float one on a few evaluation examples. A node whose inputs arrive
clean but whose output is wrong is where quantization hurt (an outlier-heavy activation
squeezed into 8 bits, a weight matrix with a wide range). The search then excludes nodes in
that order, one more per trial, re-quantizing and re-scoring each time on the task metric.
Every trial is kept, and the best one is returned even when none meets the budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from packager.quantize.data import Batch

_SENSITIVITY_EXAMPLES = 32  # enough to rank nodes; keeps the augmented runs' memory small


@dataclass
class Trial:
    """One quantized candidate: which nodes stayed float and what that bought."""

    trial: int
    excluded: list[str]
    metric: float | None
    drop: float | None
    size_bytes: int
    p50_ms: float | None = None
    within_budget: bool | None = None
    path: str = field(default="", repr=False)
    error: str | None = None  # the candidate failed (quantizer or onnxruntime): one line
    accepted: bool | None = None  # search: its nodes stayed in float (drop or guide lowered)
    speedup: float | None = None  # fp32 p50 / this p50, timed back to back (min_speedup)
    guide: float | None = None  # classifiers: mean KL(fp32 || this) on the same examples
    over_cap: bool = False  # search: over a size/speed/MAC cap, never the pick
    float_macs: float | None = None  # share of the model's MACs in float nodes (max_float_macs)


def _augmented(path: Path, names: list[str]) -> bytes:
    """The model with every tensor in `names` that it computes added as a graph output."""
    import onnx

    model = onnx.load(str(path))
    have = {o for n in model.graph.node for o in n.output} - {o.name for o in model.graph.output}
    # onnxruntime accepts outputs without type information, which fused ops lack.
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n in have)
    return model.SerializeToString()


def _consumed_names(path: Path) -> dict[str, str]:
    """tensor -> the DequantizeLinear output its consumers read, where a Q->DQ pair sits on it."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    q_of = {n.input[0]: n.output[0] for n in nodes if n.op_type == "QuantizeLinear"}
    dq_of = {n.input[0]: n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    return {t: dq_of[q] for t, q in q_of.items() if q in dq_of}


def _outputs_as_quantized(model, quantized: Path, nodes: dict) -> dict[str, str]:
    """Each node's output as the quantized graph names it. Quantizers drop a Relu/Clip after a
    Conv and give the Conv the activation's output (a tensor both graphs hold): comparing the
    float Conv's own output would find nothing and rank the node last, by guesswork."""
    import onnx

    q_nodes = onnx.load(str(quantized), load_external_data=False).graph.node
    q_out = {n.name: n.output[0] for n in q_nodes if n.name in nodes and n.output}
    produced = {o for n in model.graph.node for o in n.output}
    return {
        name: q_out[name] if q_out.get(name) in produced else n.output[0]
        for name, n in nodes.items()
    }


def node_sensitivity(
    graph: Path, quantized: Path, batches: list[Batch], candidates: list[str]
) -> list[tuple[str, float | None]]:
    """Candidates ranked by the error each adds (most sensitive first); None: not measurable
    (the quantized graph no longer has the node's tensors), ranked last in graph order.

    A tensor is compared twice where the quantized graph has a Q->DQ pair on it: as produced
    (raw) and as its consumers read it (after the pair). A node's input error is the smaller
    of the two (quantizers fold a Relu into the pair, so the raw tensor can be pre-Relu), its
    output error is the raw one: the difference is what the node and its input quantization add.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(graph))
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    nodes = {n.name: n for n in model.graph.node if n.name in set(candidates)}
    out_of = _outputs_as_quantized(model, quantized, nodes)
    ins = {t for n in nodes.values() for t in n.input if t and t not in inits}
    tensors = sorted((ins | set(out_of.values())) - graph_inputs)
    consumed = {t: c for t, c in _consumed_names(quantized).items() if t in set(tensors)}
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Without graph optimizations the tensors keep their names in both models.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions = [
        ort.InferenceSession(_augmented(p, names), opts, providers=["CPUExecutionProvider"])
        for p, names in ((graph, tensors), (quantized, [*tensors, *consumed.values()]))
    ]
    versions = [(t, t) for t in tensors] + [(t, c) for t, c in consumed.items()]
    sq_err: dict[tuple[str, str], float] = {}
    sq_ref: dict[str, float] = {}
    seen = 0
    for feeds, _ in batches:
        if seen >= _SENSITIVITY_EXAMPLES:
            break
        seen += len(next(iter(feeds.values())))
        ref, out = (
            dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds), strict=True))
            for s in sessions
        )
        for t, v in versions:
            if t in ref and v in out and np.shape(ref[t]) == np.shape(out[v]):
                r = np.asarray(ref[t], np.float64)
                diff = np.asarray(out[v], np.float64) - r
                sq_err[t, v] = sq_err.get((t, v), 0.0) + float((diff**2).sum())
                if t == v:
                    sq_ref[t] = sq_ref.get(t, 0.0) + float((r**2).sum())

    def err(t: str, v: str) -> float | None:
        if (t, v) not in sq_err or t not in sq_ref:
            return None
        return float(np.sqrt(sq_err[t, v] / max(sq_ref[t], 1e-30)))

    def err_in(t: str) -> float | None:
        if t in graph_inputs or t in inits or not t:
            return 0.0
        found = [e for v in (t, consumed.get(t)) if v and (e := err(t, v)) is not None]
        return min(found, default=None)

    scored: list[tuple[str, float | None]] = []
    for name in candidates:
        node = nodes.get(name)
        t = out_of.get(name)
        # A renamed output is the dropped activation's: its clipping happens in the Q->DQ pair,
        # so it is compared as its consumers read it.
        renamed = node is not None and t != node.output[0] and t in consumed
        e_out = (err(t, consumed[t]) if renamed else err(t, t)) if node is not None else None
        e_in = [err_in(t) for t in node.input] if node is not None else [None]
        if e_out is None or any(e is None for e in e_in):
            scored.append((name, None))
        else:
            scored.append((name, e_out - max(e_in, default=0.0)))
    order = {name: i for i, name in enumerate(candidates)}
    return sorted(scored, key=lambda s: (s[1] is None, -(s[1] or 0.0), order[s[0]]))


def candidates_of(graph: Path, ops: set[str] | None, excluded: list[str]) -> list[str]:
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    skip = set(excluded)
    return [
        n.name for n in model.graph.node if n.name not in skip and (ops is None or n.op_type in ops)
    ]


def schedule(n: int, max_trials: int) -> list[int]:
    """How many top-ranked nodes each trial keeps in float: one more per trial when the
    candidates fit in `max_trials`, else a geometric ramp that still ends at all of them, so a
    large model reaches "nothing left to exclude" within the trial budget."""
    if n <= max_trials:
        return list(range(1, n + 1))
    return sorted({max(1, round(n ** (k / max_trials))) for k in range(1, max_trials + 1)})


def with_producers(
    ranking: list[tuple[str, float | None]], graph: Path, quantized: Path, candidates: list[str]
) -> list[tuple[str, float | None, tuple[str, ...]]]:
    """Each ranked node with the candidates that produce its quantized (Q->DQ) inputs.

    In QDQ models a pair on an edge is requested by both ends, so keeping one node in float
    leaves its input quantized by the producer (BERT's scores + mask Add before Softmax is the
    classic case), and onnxruntime's WeightBiasQuantization re-quantizes the weights of a float
    node that still sits between DequantizeLinear and QuantizeLinear. Excluding the producer too
    is what actually gives the node float inputs.
    """
    import onnx

    nodes = onnx.load(str(graph), load_external_data=False).graph.node
    producer = {o: n.name for n in nodes for o in n.output}
    by_name = {n.name: n for n in nodes}
    pairs = _consumed_names(quantized)
    allowed = set(candidates)

    def upstream(t: str) -> list[str]:
        """The candidate producing `t`, and past a Relu/Clip the node it activates: the
        quantizer folds the activation into the pair, so that node's output is what is
        quantized (EfficientNet's first depthwise conv needs its stem conv in float too)."""
        found, node = [], by_name.get(producer.get(t, ""))
        while node is not None and node.name in allowed:
            found.append(node.name)
            if node.op_type not in ("Relu", "Clip") or not node.input:
                break
            node = by_name.get(producer.get(node.input[0], ""))
        return found

    out = []
    for name, score in ranking:
        ins = by_name[name].input if name in by_name else []
        extra = [n for t in ins if t in pairs for n in upstream(t)]
        out.append((name, score, tuple(dict.fromkeys([name, *extra]))))
    return out


@dataclass(frozen=True)
class Limits:
    """What the search may spend and what a kept trial must respect (quantize.max_* fields)."""

    max_drop: float
    max_trials: int = 16
    max_size: int | None = None  # bytes
    min_speedup: float | None = None
    max_float_macs: float | None = None


def search(
    first: Trial,
    ranking: list[tuple[str, float | None, tuple[str, ...]]],
    attempt: Callable[[int, list[str]], Trial],
    limits: Limits,
    log: Callable[[str], None],
) -> list[Trial]:
    """Try the ranked nodes (with their groups) in float, a chunk per trial in ranking order
    (packager.quantize.search.schedule), on top of the chunks kept so far; a chunk is kept only
    when its trial lowers the drop, or, where trials carry a guide (top-1 agreement's KL to
    fp32, Evaluator.guide), when it lowers that: a top-1 drop moves in steps and by chance.
    Putting a node back in float can make things worse (its neighbours' quantization changes,
    and onnxruntime re-quantizes a float node's weights when it sits between DequantizeLinear
    and QuantizeLinear), so the kept model's drop (or guide) never rises from one trial to the
    next; a trial within budget ends the search and is kept. A trial whose model is over
    `max_size` bytes, less than `min_speedup` times faster than fp32, or with more than
    `max_float_macs` of the MACs in float, is never kept (nor within budget). Stops within
    `max_drop`, or when the ranking is spent."""
    max_size, min_speedup, max_float_macs = (
        limits.max_size,
        limits.min_speedup,
        limits.max_float_macs,
    )
    trials = [first]
    kept: list[str] = []
    best = first
    done = 0
    for size in schedule(len(ranking), limits.max_trials):
        added, done = ranking[done:size], size
        new = [n for _, _, g in added for n in g if n not in kept]
        if not new:
            continue
        t = attempt(len(trials), list(dict.fromkeys([*kept, *new])))
        big = max_size is not None and t.size_bytes > max_size
        slow = min_speedup is not None and t.speedup is not None and t.speedup < min_speedup
        heavy = max_float_macs is not None and (t.float_macs or 0) > max_float_macs
        over = big or slow or heavy
        t.within_budget, t.over_cap = t.within_budget and not over, over
        t.accepted = (bool(t.within_budget) or _closeness(t) < _closeness(best)) and not over
        trials.append(t)
        if t.accepted:
            kept, best = list(dict.fromkeys([*kept, *new])), t
        shown = ", ".join(
            f"{name} ({'n/a' if score is None else f'{score:.3g}'})" for name, score, _ in added[:3]
        ) + (f" and {len(added) - 3} more" if len(added) > 3 else "")
        result = (
            f"failed: {t.error}"
            if t.error
            else f"drop {t.drop:.4f}" + ("" if t.guide is None else f", kl {t.guide:.4f}")
        )
        verdict = (
            "kept in float"
            if t.accepted
            else f"put back (over {max_size / 2**20:.2f} MiB)"
            if big
            else f"put back (only {t.speedup:.2f}x faster than fp32)"
            if slow
            else f"put back ({t.float_macs:.1%} of the MACs in float, over {max_float_macs:.1%})"
            if heavy
            else "put back (no better)"
        )
        log(f"trial {t.trial}: {shown} in float: {result}: {verdict}")
        if t.within_budget:
            break
    return trials


def best_of(trials: list[Trial]) -> Trial:
    """Within budget with the fewest float nodes; otherwise the smallest guide (a classifier's
    KL to fp32) or, without one, the smallest drop on the chosen metric (failed trials, which
    have neither, last)."""
    return ranked(trials)[0]


def ranked(trials: list[Trial]) -> list[Trial]:
    # By the drop (or the guide), not the metric: "lost vs fp32" whichever way it points (mse).
    return sorted(
        trials,
        key=lambda t: (
            t.over_cap,
            not t.within_budget,
            _closeness(t) if not t.within_budget else (False, 0.0),
            len(t.excluded),
            t.size_bytes,
        ),
    )


def _closeness(t: Trial) -> tuple[bool, float]:
    """How far a trial is from fp32, smaller is closer: its guide (one search's trials all have
    one or none), else its drop; a failed trial is farthest."""
    if t.error is not None or t.drop is None:
        return (True, np.inf)
    return (t.guide is None, t.guide if t.guide is not None else t.drop)


def write_table(trials: list[Trial], folder: Path, *, metric: str, fp32: float, max_drop) -> None:
    """search.json (every field) and search.md (the ranked table) in `folder`."""
    rows = ranked(trials)
    (folder / "search.json").write_text(
        json.dumps(
            {
                "metric": metric,
                "fp32": fp32,
                "max_drop": max_drop,
                "trials": [{"rank": i + 1, **asdict(t)} for i, t in enumerate(rows)],
            },
            indent=2,
        )
    )
    from packager.quantize.metrics import LOWER_IS_BETTER

    drop = "quantized - fp32" if metric in LOWER_IS_BETTER else "fp32 - quantized"
    lines = [
        f"# accuracy search on {metric}: fp32 {fp32:.4f}, max_drop {max_drop} (drop = {drop})",
        "",
        f"| rank | trial | kept in float | {metric} | {metric} drop | kl to fp32 | within budget "
        "| size KiB | MACs in float | p50 ms | search |",
        "|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for i, t in enumerate(rows):
        names = ", ".join(t.excluded[:4]) + (" …" if len(t.excluded) > 4 else "")
        kept = f"{len(t.excluded)}: {names}" if t.excluded else "(none)"  # all in search.json
        p50 = "-" if t.p50_ms is None else f"{t.p50_ms:.3f}"
        metric_s = "-" if t.metric is None else f"{t.metric:.4f}"
        drop_s = "-" if t.drop is None else f"{t.drop:.4f}"
        within = "failed" if t.error else "yes" if t.within_budget else "no"
        step = {True: "kept", False: "put back", None: "-"}[t.accepted]
        lines.append(
            f"| {i + 1} | {t.trial} | {kept} | {metric_s} | {drop_s} | "
            f"{'-' if t.guide is None else f'{t.guide:.4f}'} | "
            f"{within} | {t.size_bytes / 1024:.1f} | "
            f"{'-' if t.float_macs is None else f'{t.float_macs:.1%}'} | {p50} | {step} |"
        )
    failed = [t for t in rows if t.error]
    if failed:
        lines += ["", "Failed trials:", ""]
        lines += [f"- trial {t.trial}: {t.error}" for t in failed]
    (folder / "search.md").write_text("\n".join(lines) + "\n")
