"""What kind of model a quantizer faces: conv-heavy graphs (CNNs: convolutions do most of the
multiply-accumulates) want static QDQ with per-channel weights; dynamic quantization turns their convolutions into ConvInteger, which
onnxruntime runs slowly on CPUs (measured on EfficientNet-Lite0 here: 9x slower than fp32, top-1
agreement with fp32 0.33 on held-out photos, against 1.4x faster and 0.77+ for static)."""

from __future__ import annotations

from pathlib import Path

WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")
CONV_HEAVY = 0.5  # convolutions doing at least this share of the MACs make a CNN


def conv_share(
    model: Path, shapes: dict[str, list[int]] | None = None, dims: dict[str, int] | None = None
) -> tuple[int, float]:
    """(Conv nodes with constant weights, their share of the multiply-accumulates of every
    weighted op), counted on the graph (packager.bench.costmodel) at `shapes` (real inputs')
    or `dims`; a dim nobody gave is taken as 1, which leaves the share of the weights. Compute,
    not bytes, decides: the digits teacher's convolutions hold 82% of its MACs but 15% of its
    weights, and dynamic int8 made it 4.5x slower than fp32."""
    import onnx

    from packager.bench.costmodel import analyze

    graph = onnx.load(str(model), load_external_data=False).graph
    consts = {t.name for t in graph.initializer}
    weighted = {
        n.name
        for n in graph.node
        if n.op_type in WEIGHTED and len(n.input) > 1 and n.input[1] in consts
    }
    cost = analyze(model, batch=1, dims=dims, shapes=shapes)
    by_name = {op.name: op for op in cost.ops}
    total = sum(by_name[n].macs for n in weighted if n in by_name)
    convs = [n for n in weighted if n in by_name and by_name[n].op_type.startswith("Conv")]
    conv = sum(by_name[n].macs for n in convs)
    return len(convs), (conv / total if total else 0.0)


def is_conv_heavy(model: Path, **shapes_or_dims) -> bool:
    """A CNN: at least two convolutions doing at least half the weighted ops' MACs."""
    count, share = conv_share(model, **shapes_or_dims)
    return count >= 2 and share >= CONV_HEAVY


def weight_bits(reduce_range: bool | str, int8_weights: bool) -> tuple[bool, str]:
    """(7-bit weights?, why): quantize.reduce_range resolved on this host, for a scheme that
    writes int8 weights (`int8_weights`)."""
    if not int8_weights:
        return False, "no int8 weights in this mode"
    if reduce_range != "auto":
        return bool(reduce_range), "as configured (quantize.reduce_range)"
    from packager.quantize.speed import cpu_features

    if cpu_features()["int8_dot_product"]:
        return False, (
            "8-bit: this CPU has int8 dot-product instructions (VNNI/AMX/dotprod), whose kernels "
            "are exact, so 8-bit weights lose nothing to saturation and reproduce on arm64 and "
            "wasm (on EfficientNet-Lite0 here, 7-bit weights cost 18 points of top-1 agreement)"
        )
    return True, (
        "7-bit: this x86 CPU has no VNNI; its u8 x s8 kernels saturate with full-range weights "
        "(wrong answers, and outputs no arm64 device or wasm reproduces); 7-bit weights are exact"
    )
