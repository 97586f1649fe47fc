"""One ONNX file, or one file plus its weights beside it when protobuf cannot hold them.

A protobuf message stops at 2 GiB, so a model whose weights come near it is written as
`NAME.onnx` plus `NAME.onnx.data` (ONNX external data: every tensor in one file, named relative
to the model). Smaller models stay one self-contained file, whatever the exporter wrote.
"""

from __future__ import annotations

from pathlib import Path

# protobuf's hard limit, less room for the graph itself.
EXTERNAL_DATA_BYTES = 2**31 - 64 * 2**20


def weight_bytes(model) -> int:
    return sum(t.ByteSize() for t in model.graph.initializer)


def finish(src: Path, dst: Path) -> bool:
    """Write the exported model `src` (with whatever external data its exporter wrote) to
    `dst`; returns whether its weights went to `dst.name + ".data"`."""
    import onnx

    return save(onnx.load(str(src)), dst)  # reads any external data in


def save(model, dst: Path) -> bool:
    """Write the ModelProto `model` to `dst`, its weights to `dst.name + ".data"` only when
    protobuf cannot hold them; returns whether they went there."""
    import onnx

    big = weight_bytes(model) >= EXTERNAL_DATA_BYTES
    onnx.save(
        model,
        str(dst),
        save_as_external_data=big,
        all_tensors_to_one_file=True,
        location=f"{dst.name}.data",
        size_threshold=1024,
    )
    return big
