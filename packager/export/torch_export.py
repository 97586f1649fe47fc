"""Export an array model (an nn.Module taking one tensor) with a dynamic batch axis, and check it."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

INPUT, OUTPUT = "input", "logits"


def export_module(model, example, path: Path, *, opset: int, dynamo: bool) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter; failures still raise
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=dynamo,  # explicit: torch 2.13 defaults to the dynamo exporter
            opset_version=opset,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            external_data=False,
        )


def parity(model, path: Path, x: np.ndarray) -> float:
    """Max |onnx - torch| on `x`, run batched in onnxruntime."""
    import torch

    from packager.onnx_utils import run_batched, session

    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = run_batched(session(path), x)
    return float(np.max(np.abs(got - ref)))


@contextlib.contextmanager
def _quiet():
    """The exporters' chatter (warnings, the dynamo exporter's progress lines on stdout, its
    logger) stays out of edgepack's output; failures still raise."""
    import logging

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def flat_outputs(out) -> list[np.ndarray]:
    """A forward's outputs (a tensor, or tuples/lists/dicts of them) as arrays, in order."""
    import torch
    from torch.utils._pytree import tree_flatten

    leaves, _ = tree_flatten(out)
    return [t.detach().cpu().numpy() for t in leaves if isinstance(t, torch.Tensor)]


def export_factory(
    model,
    inputs: list[tuple[str, list[int | str], str]],
    example: dict[str, np.ndarray],
    path: Path,
    *,
    outputs: list[str],
    opset: int,
    dynamo: bool,
) -> None:
    """A user's nn.Module with the inputs as declared: every named dim a dynamic axis (the same
    name, one size: torch.export Dims when dynamo), traced on `example`. Weights go to one
    external-data file beside `path` (packager.export.external decides whether they stay)."""
    import torch

    args = tuple(torch.from_numpy(example[name]) for name, _, _ in inputs)
    axes = {
        name: {i: d for i, d in enumerate(shape) if isinstance(d, str)} for name, shape, _ in inputs
    }
    kwargs: dict = {"input_names": [n for n, _, _ in inputs], "opset_version": opset}
    if outputs:
        kwargs["output_names"] = list(outputs)
    if dynamo:
        dims = {d: torch.export.Dim(d) for a in axes.values() for d in a.values()}
        kwargs["dynamic_shapes"] = tuple({i: dims[d] for i, d in a.items()} for a in axes.values())
    else:
        kwargs["dynamic_axes"] = {n: a for n, a in axes.items() if a}
    with _quiet():
        torch.onnx.export(
            model.eval(), args, str(path), dynamo=dynamo, external_data=True, verbose=False,
            **kwargs,
        )  # fmt: skip


def export_program(program, path: Path, *, opset: int) -> None:
    """A torch.export ExportedProgram (already traced, its dynamic dims included)."""
    import torch

    with _quiet():
        torch.onnx.export(
            program, (), f=str(path), dynamo=True, opset_version=opset, external_data=True,
            verbose=False,
        )  # fmt: skip


def program_inputs(program) -> tuple[list[tuple[str, list[int | str], str]], dict[str, int]]:
    """The ExportedProgram's user inputs as (name, shape with symbolic dims named, dtype), and
    the example value of each symbolic dim (from its example inputs, else its lower bound)."""
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    examples = _program_examples(program)
    inputs, values = [], {}
    for i, name in enumerate(program.graph_signature.user_inputs):
        val = placeholders[name].meta["val"]
        shape: list[int | str] = []
        for axis, d in enumerate(val.shape):
            if isinstance(d, torch.SymInt):
                sym = str(d)
                shape.append(sym)
                if sym not in values:
                    ex = examples[i].shape[axis] if i < len(examples) else None
                    values[sym] = int(ex) if ex is not None else _lower(program, d)
            else:
                shape.append(int(d))
        inputs.append((name, shape, str(val.dtype).removeprefix("torch.")))
    return inputs, values


def _program_examples(program) -> list:
    try:
        args, kwargs = program.example_inputs or ((), {})
    except (AttributeError, TypeError, ValueError):
        return []
    return [*args, *kwargs.values()]


def _lower(program, sym) -> int:
    for s, r in program.range_constraints.items():
        if str(s) == str(sym) and r.lower is not None and int(r.lower) >= 2:
            return int(r.lower)
    return 2


def parity_at(reference, path: Path, feeds_list: list[dict[str, np.ndarray]]) -> list[dict]:
    """Per feed set: its input shapes and max |onnx - torch| over every output (inf when the
    shapes of an output differ)."""
    import torch

    from packager.onnx_utils import session

    sess = session(path)
    names = [i.name for i in sess.get_inputs()]
    rows = []
    for feeds in feeds_list:
        with torch.no_grad():
            ref = flat_outputs(reference(*(torch.from_numpy(feeds[n]) for n in names)))
        got = sess.run(None, {n: feeds[n] for n in names})
        diffs = [
            float(np.max(np.abs(g.astype(np.float64) - r), initial=0.0))
            if g.shape == r.shape
            else float("inf")
            for g, r in zip(got, ref, strict=False)
        ]
        if len(got) != len(ref):
            diffs.append(float("inf"))
        rows.append(
            {"inputs": {n: list(feeds[n].shape) for n in names}, "max_abs_diff": max(diffs)}
        )
    return rows
