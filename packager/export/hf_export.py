"""Export for transformers models (the export stage's text handler).

optimum-onnx's `main_export` with the task's exporter config comes first; when it does not
support the architecture (or `export.exporter = torch`), `torch.onnx.export` with explicit
`dynamo=` and dynamic batch and sequence axes takes over. Either way the graph ends as a device
app wants it: inputs named input_ids / attention_mask (/ token_type_ids when the model takes
them) with dims "batch" and "sequence", and one output: "logits" for classifiers, or a pooled
(and, like the teacher, L2-normalised) "sentence_embedding" for feature extraction. Pooling
lives inside the graph, so the C++/JS/Python runtimes need no pooling code. The ONNX output is
then checked against torch on test texts, batched at several sizes (so at several padded
sequence lengths), feeding only the inputs the graph takes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from packager.errors import one_line

EMBEDDING, LOGITS = "sentence_embedding", "logits"
_DIMS = {"batch_size": "batch", "sequence_length": "sequence"}
PARITY_BATCHES = (1, 3, 8, 16)  # each batch pads to its own longest text: several shapes


class ExporterFailed(Exception):
    """The exporter (optimum or torch) could not export the model; the message is one line."""


@contextmanager
def _quiet() -> Iterator[None]:
    """Exporter chatter (tracer warnings, opset advice) off; failures still raise."""
    from optimum.utils import logging as optimum_logging
    from transformers.utils import logging as hf_logging

    optimum_logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def main_export_into(
    folder: Path, tmp: str, task: str, opset: int, library: str = "transformers", **kw: Any
) -> list[Path]:
    """optimum's main_export of the local `folder` for `task` into the folder `tmp` (no
    validation: edgepack's own parity checks cover every exporter); the ONNX files it wrote.
    `library`: transformers, or sentence_transformers (the folder's own modules: pooling and
    normalisation in the graph, outputs token_embeddings and sentence_embedding)."""
    from optimum.exporters.onnx import main_export

    main_export(
        str(folder),
        output=tmp,
        task=task,
        opset=opset,
        device="cpu",
        do_validation=False,
        library_name=library,
        local_files_only=True,
        **kw,
    )
    return sorted(Path(tmp).glob("*.onnx"))


def export_optimum(folder: Path, out: Path, task: str, opset: int) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        main_export_into(folder, tmp, task, opset)
        shutil.move(str(Path(tmp) / "model.onnx"), out)


def export_torch(
    model,
    example: dict[str, np.ndarray],
    out: Path,
    task: str,
    info: dict,
    *,
    opset: int,
    dynamo: bool,
) -> None:
    import torch

    from packager.nets.text import pool, project

    class Head(torch.nn.Module):
        """The model plus its task head as one traceable module with positional inputs."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            feeds = dict(zip(names, args, strict=True))
            o = self.model(**feeds)
            if task == "text-classification":
                return o.logits
            mask = feeds["attention_mask"]
            pooled = project(self.model, pool(o.last_hidden_state, mask, info["pooling"], False))
            if info["normalize"]:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            return pooled

    names = list(example)
    output = LOGITS if task == "text-classification" else EMBEDDING
    torch.onnx.export(
        Head().eval(),
        tuple(torch.from_numpy(v) for v in example.values()),
        str(out),
        dynamo=dynamo,  # explicit: torch 2.13 defaults to the dynamo exporter
        opset_version=opset,
        input_names=names,
        output_names=[output],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names} | {output: {0: "batch"}},
        external_data=False,
    )


def _const(name: str, value, dtype) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def finish_graph(path: Path, task: str, info: dict, width: int | None = None) -> None:
    """Rename optimum's dims to batch/sequence and, for embeddings, append pooling (+ L2 norm)
    to last_hidden_state so the graph's one output is the sentence embedding, `width` wide."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    g = model.graph
    for vi in [*g.input, *g.output, *g.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in _DIMS:
                d.dim_param = _DIMS[d.dim_param]
    names = [o.name for o in g.output]
    if names == [EMBEDDING] and width:  # torch's trace leaves the width symbolic
        dim = g.output[0].type.tensor_type.shape.dim[1]
        dim.Clear()
        dim.dim_value = width
    elif task != "text-classification":
        if "last_hidden_state" not in names:
            raise ExporterFailed(f"expected a last_hidden_state output, got {names}")
        width = g.output[names.index("last_hidden_state")].type.tensor_type.shape.dim[2]
        h, p = "last_hidden_state", "ep_pool"
        mean = info["pooling"] == "mean"
        consts = [("ep_axis_seq", [1], np.int64), ("ep_axis_last", [-1], np.int64)]
        consts += [("ep_eps_count", 1e-9, np.float32)] if mean else [("ep_zero", 0, np.int64)]
        consts += [("ep_eps_norm", 1e-12, np.float32)] if info["normalize"] else []
        g.initializer.extend(_const(*c) for c in consts)
        nodes = (
            [
                helper.make_node("Cast", ["attention_mask"], [f"{p}_mf"], to=TensorProto.FLOAT),
                helper.make_node("Unsqueeze", [f"{p}_mf", "ep_axis_last"], [f"{p}_m"]),
                helper.make_node("Mul", [h, f"{p}_m"], [f"{p}_hm"]),
                helper.make_node("ReduceSum", [f"{p}_hm", "ep_axis_seq"], [f"{p}_sum"], keepdims=0),
                helper.make_node("ReduceSum", [f"{p}_m", "ep_axis_seq"], [f"{p}_n"], keepdims=0),
                helper.make_node("Max", [f"{p}_n", "ep_eps_count"], [f"{p}_nc"]),
                helper.make_node("Div", [f"{p}_sum", f"{p}_nc"], [f"{p}_out"]),
            ]
            if mean
            else [helper.make_node("Gather", [h, "ep_zero"], [f"{p}_out"], axis=1)]
        )
        last = f"{p}_out"
        if info["normalize"]:  # x / max(||x||, eps), as torch.nn.functional.normalize
            nodes += [
                helper.make_node("Mul", [last, last], [f"{p}_sq"]),
                helper.make_node("ReduceSum", [f"{p}_sq", "ep_axis_last"], [f"{p}_ss"], keepdims=1),
                helper.make_node("Sqrt", [f"{p}_ss"], [f"{p}_l2"]),
                helper.make_node("Max", [f"{p}_l2", "ep_eps_norm"], [f"{p}_l2c"]),
                helper.make_node("Div", [last, f"{p}_l2c"], [f"{p}_norm"]),
            ]
            last = f"{p}_norm"
        nodes[-1].output[0] = EMBEDDING
        g.node.extend(nodes)
        del g.output[:]
        out = helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", None])
        out.type.tensor_type.shape.dim[1].CopyFrom(width)
        g.output.append(out)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def parity(model, tok, texts: list[str], path: Path, task: str, info: dict) -> tuple[float, int]:
    """Max |onnx - torch| over `texts`, cut into batches of PARITY_BATCHES sizes."""
    import torch

    from packager.data.text import encode
    from packager.nets.text import forward, input_names
    from packager.onnx_utils import session

    sess = session(path)
    wanted = [i.name for i in sess.get_inputs()]
    names = input_names(model)
    worst, i, k = 0.0, 0, 0
    while i < len(texts):
        chunk = texts[i : i + PARITY_BATCHES[k % len(PARITY_BATCHES)]]
        i, k = i + len(chunk), k + 1
        feeds = encode(tok, chunk)
        with torch.no_grad():
            ref, _, _ = forward(model, {n: torch.from_numpy(feeds[n]) for n in names}, task, info)
            if task != "text-classification" and info["normalize"]:
                ref = torch.nn.functional.normalize(ref, dim=-1)
        got = sess.run(None, {n: feeds[n] for n in wanted})[0]
        worst = max(worst, float(np.max(np.abs(got - ref.numpy()))))
    return worst, len(texts)


def export(
    model,
    folder: Path,
    out: Path,
    task: str,
    info: dict,
    tok,
    *,
    exporter: str,
    opset: int,
    dynamo: bool,
    log,
) -> str:
    """Export `model` (loaded from `folder`) to `out` with optimum, or torch when `exporter` is
    torch or optimum cannot (exporter auto); then finish the graph. Returns the exporter used."""
    from packager.data.text import encode
    from packager.nets.text import DENSE, input_names

    used = "torch"
    projected = getattr(model, DENSE, None) is not None  # optimum's graph has no Dense layer
    with _quiet():
        if exporter != "torch" and not projected:
            try:
                export_optimum(folder, out, task, opset)
                used = "optimum"
            except Exception as err:
                if exporter == "optimum":
                    raise ExporterFailed(f"optimum main_export failed: {one_line(err)}") from err
                log(f"optimum cannot export {type(model).__name__} ({one_line(err)}); using torch")
        if used == "torch":
            # Two texts of different lengths: the trace sees padding, the axes stay dynamic.
            example = encode(tok, ["a short text to trace", "short"], input_names(model))
            try:
                export_torch(model, example, out, task, info, opset=opset, dynamo=dynamo)
            except Exception as err:
                raise ExporterFailed(
                    f"torch.onnx.export(dynamo={dynamo}) failed: {one_line(err)}"
                ) from err
        width = getattr(model, DENSE).out_features if projected else model.config.hidden_size
        finish_graph(out, task, info, width)
    return used
