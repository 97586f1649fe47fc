"""Offline graph passes on an exported ONNX file: onnxslim and onnxruntime's optimizer.

onnxslim: constant folding, dead nodes, shape-level simplification (portable ONNX). onnxruntime
basic keeps standard ONNX ops; extended and all write onnxruntime-only fused ops (all also
CPU-specific layouts), so those files need onnxruntime on this kind of CPU.
"""

from __future__ import annotations

from pathlib import Path

LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def slim(src: Path, dst: Path) -> None:
    import onnx
    import onnxslim

    # Given a model and no output path, onnxslim returns the result instead of printing its
    # summary table (with our temporary paths) to stdout; saving it is ours to do.
    model = onnxslim.slim(onnx.load(str(src)))
    if model is None:
        raise ValueError("onnxslim returned no model")
    big = model.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF
    onnx.save(model, str(dst), save_as_external_data=big, location=f"{dst.name}.data")


def ort_optimize(src: Path, dst: Path, level: str) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
