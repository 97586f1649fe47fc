"""Small helpers over ONNX files: I/O spec, op counts, parameters, batched onnxruntime runs;
onnxruntime's MatMulNBits quantizer module, loaded quietly, and its int4 round trip of a table
(what a student's frozen word table trains on, as its GatherBlockQuantized will return it)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from packager.errors import one_line

_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}


def _dims(value_info) -> list[Any]:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(
            d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else "?")
        )
    return dims


def io_spec(path: Path) -> dict[str, list[dict[str, Any]]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}

    def spec(vi):
        dtype = _DTYPES.get(vi.type.tensor_type.elem_type, str(vi.type.tensor_type.elem_type))
        return {"name": vi.name, "dtype": dtype, "shape": _dims(vi)}

    return {
        "inputs": [spec(v) for v in model.graph.input if v.name not in inits],
        "outputs": [spec(v) for v in model.graph.output],
    }


def summary(path: Path) -> dict[str, Any]:
    """I/O, op counts (subgraphs included), parameter count and size of an ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    ops: Counter[str] = Counter()

    def walk(graph):
        for node in graph.node:
            ops[node.op_type] += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)

    walk(model.graph)
    params = sum(int(np.prod(numpy_helper.to_array(t).shape)) for t in model.graph.initializer)
    return {
        **io_spec(path),
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ops": dict(ops.most_common()),
        "nodes": sum(ops.values()),
        "params": params,
        "size_bytes": Path(path).stat().st_size,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
    }


def ort_message(err: BaseException) -> str:
    """onnxruntime's error without its prefix and C++ source location: what a user can act on."""
    import re

    text = one_line(err)
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"/onnxruntime_src/\S+:\d+ [^)]*\) ", "", text)
    return text


def session(path: Path | bytes, threads: int = 1):
    """An onnxruntime CPU session of a model file (or a serialized model's bytes)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def run_batched(sess, x: np.ndarray, batch: int = 256) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate(
        [sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    )


def run_texts(path: Path, tok, texts: list[str], batch: int = 64) -> np.ndarray:
    """The model's first output for every text, batched by length, in input order."""
    from packager.data.text import encode

    sess = session(path, threads=2)
    names = [i.name for i in sess.get_inputs()]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = [
        sess.run(None, encode(tok, [texts[j] for j in order[i : i + batch]], names))[0]
        for i in range(0, len(order), batch)
    ]
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result


def onnx_files(src: Path, dest: str | Path, folder: Path) -> list[tuple[Path, Path]]:
    """The (source, destination) pairs that publish the model `src` at `dest` (publish_files),
    the model first. With a `.data` external-data file, that is renamed after `dest` and the
    model's references are rewritten to it in a copy saved into `folder`."""
    import onnx

    dest = Path(dest)
    data = src.with_name(src.name + ".data")
    if not data.is_file():
        return [(src, dest)]
    model = onnx.load(str(src), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = f"{dest.name}.data"
    rewritten = folder / dest.name
    onnx.save(model, str(rewritten))
    return [(rewritten, dest), (data, dest.with_name(f"{dest.name}.data"))]


def nbits_module() -> ModuleType:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return matmul_nbits_quantizer


def int4_round_trip(table, block: int, symmetric: bool):
    """The table as GatherBlockQuantized will return it (float32, same shape): each row's blocks
    quantized and dequantized with onnxruntime's own int4 arithmetic. A student trained on this
    table (frozen) learns with exactly the vectors it ships with."""
    import numpy as np

    Q = nbits_module().DefaultWeightOnlyQuantizer

    data = np.asarray(table, dtype=np.float32)
    rows, width = data.shape
    out = np.empty_like(data)
    cube = data.reshape(rows, width, 1)
    for i in range(0, width, block):
        part = cube[:, i : i + block, :]
        if symmetric:
            q, scale = Q.quant_slice_symmetric(part)
            out[:, i : i + block] = (q.astype(np.float32) * scale)[..., 0]
        else:
            q, scale, zero = Q.quant_slice_asymmetric(part)
            out[:, i : i + block] = ((q.astype(np.float32) - zero) * scale)[..., 0]
    return out
