"""The measured effect of quantizing each weighted node, on the model's output: for every Conv,
Gemm or MatMul with constant weights, the float graph with only that node's weights rounded as
the quantizer rounds them (symmetric, per channel or per tensor, 8 or 7 bits) is run on a few
evaluation examples, and the relative error of the first output against fp32 is its score.

Local error (what a node adds at its own output, packager.quantize.search.node_sensitivity)
misses how errors grow downstream: on EfficientNet-Lite0 the first depthwise conv adds 1.2%
at its output but its rounded weights alone move the logits by 13% rms, the most of any layer.
The accuracy search tries nodes in this order first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_EXAMPLES = 16


def _weight_axis(node, weight: np.ndarray) -> int:
    """The output-channel axis of a node's weight: Conv's 0, Gemm's (transB) 0 or 1, MatMul's 1."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans else 1
    return weight.ndim - 1


def fake_quantized(w: np.ndarray, axis: int, per_channel: bool, bits: int) -> np.ndarray:
    """`w` rounded to symmetric signed integers of `bits` bits and back."""
    q = 2 ** (bits - 1) - 1
    if per_channel and w.ndim > 1:
        other = tuple(i for i in range(w.ndim) if i != axis)
        peak = np.abs(w).max(axis=other, keepdims=True)
    else:
        peak = np.abs(w).max()
    scale = np.where(peak > 0, peak / q, 1.0)
    return (np.clip(np.round(w / scale), -q, q) * scale).astype(w.dtype)


def weight_effects(
    graph: Path, feeds_batches, candidates: list[str], per_channel: bool, bits: int
) -> dict[str, tuple[float, int]]:
    """candidate -> (relative error of the first output with only its weights quantized, the
    number of those weights)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    inits = {t.name: i for i, t in enumerate(model.graph.initializer)}
    feeds = _examples(feeds_batches)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3

    def first_output(proto) -> np.ndarray:
        sess = ort.InferenceSession(
            proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        return np.asarray(sess.run(None, feeds)[0], np.float64)

    ref = first_output(model)
    norm = max(float(np.sqrt((ref**2).mean())), 1e-30)
    wanted = set(candidates)
    out: dict[str, tuple[float, int]] = {}
    for node in model.graph.node:
        if node.name not in wanted or node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        if len(node.input) < 2 or node.input[1] not in inits:
            continue
        tensor = model.graph.initializer[inits[node.input[1]]]
        w = numpy_helper.to_array(tensor)
        tensor.CopyFrom(
            numpy_helper.from_array(
                fake_quantized(w, _weight_axis(node, w), per_channel, bits), tensor.name
            )
        )
        try:
            error = float(np.sqrt(((first_output(model) - ref) ** 2).mean())) / norm
            out[node.name] = (error, int(w.size))
        finally:
            tensor.CopyFrom(numpy_helper.from_array(w, tensor.name))
    return out


def _examples(batches) -> dict[str, np.ndarray]:
    """The first `_EXAMPLES` rows of the evaluation batches, as one feed."""
    parts: dict[str, list[np.ndarray]] = {}
    seen = 0
    for feeds, _ in batches:
        for k, v in feeds.items():
            parts.setdefault(k, []).append(v)
        seen += len(next(iter(feeds.values())))
        if seen >= _EXAMPLES:
            break
    return {k: np.concatenate(v)[:_EXAMPLES] for k, v in parts.items()}


def by_measured_effect(ranking, effects: dict[str, tuple[float, int]]):
    """`ranking` (name, local score) with the measured nodes first, by effect per weight kept in
    float (the knapsack rule: the most accuracy back for the fewest float bytes, so an early
    depthwise conv of 288 weights goes before a 1280 x 1000 classifier of the same effect); the
    rest after, in their local order. Each measured node carries its effect as its score."""
    measured = sorted(
        (n for n, _ in ranking if n in effects),
        key=lambda n: -effects[n][0] / max(effects[n][1], 1),
    )
    rest = [(n, s) for n, s in ranking if n not in effects]
    return [(n, effects[n][0]) for n in measured] + rest
