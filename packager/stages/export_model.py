"""export_model: any model a user brings to one ONNX file (`edgepack export`), checked against
torch at several shapes.

Sources, one handler each (chosen by ExportModelConfig.kind): a transformers folder (optimum-onnx,
any task it exports; packager.export.hf_tasks), a `python:MODULE:FACTORY` nn.Module with declared
inputs and named dynamic dims, or a torch.export ExportedProgram (.pt2); packager.export
.torch_export does both. The opset is the one asked for or the stage fails; weights past
protobuf's 2 GiB go to external data (packager.export.external); the parity check's every shape
is recorded, and a miss is CheckFailed naming the number, the shape and --atol.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from packager.artifact import Output
from packager.config import ExportModelConfig
from packager.errors import CheckFailed, EdgepackError, InputFileError, StageError, one_line
from packager.stage import StageContext, register_stage


def _feeds_list(cfg: ExportModelConfig, inputs, example: dict[str, int]) -> list[dict]:
    """Generated inputs at the parity shapes, plus the feeds file (when given, it alone if an
    integer input cannot be generated)."""
    from packager.bench.errors import BenchError
    from packager.bench.feeds import load_feeds
    from packager.export.shapes import make_feeds, parity_dims

    given = []
    if cfg.feeds:
        try:
            feeds = load_feeds(cfg.feeds)
        except BenchError as err:
            raise InputFileError(f"--feeds: {err}") from None
        missing = [n for n, _, _ in inputs if n not in feeds]
        if missing:
            raise InputFileError(f"--feeds {cfg.feeds}: no array for input(s) {missing}")
        given = [{n: feeds[n] for n, _, _ in inputs}]
    try:
        return [make_feeds(inputs, dims) for dims in parity_dims(example)] + given
    except ValueError as err:
        if given:
            return given
        raise InputFileError(str(err)) from None


def _torch_step(ctx: StageContext, what: str, fn):
    try:
        return fn()
    except EdgepackError:
        raise
    except Exception as err:
        raise StageError(ctx.step, f"{what} failed: {one_line(err)}") from err


def _output_names(ctx: StageContext, model, inputs, feeds: dict) -> list[str]:
    """`output` (or output_0, output_1, ...): torch would name them by node number."""
    import torch

    from packager.export.torch_export import flat_outputs

    args = [torch.from_numpy(feeds[name]) for name, _, _ in inputs]
    with torch.no_grad():
        n = len(_torch_step(ctx, "the model's forward", lambda: flat_outputs(model.eval()(*args))))
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]


def _python(cfg: ExportModelConfig, ctx: StageContext, raw: Path) -> dict[str, Any]:
    from packager.export.shapes import example_dims, is_batch
    from packager.export.torch_export import export_factory
    from packager.nets.array import build, load_weights

    import_path = str(Path(cfg.import_path or Path.cwd()).resolve())
    model = build(cfg.source.split(":", 1)[1], dict(cfg.kwargs), import_path=import_path)
    if cfg.weights:
        load_weights(model, cfg.weights)
    inputs = [(i.name, list(i.shape), i.dtype) for i in cfg.inputs]
    symbolic = [d for _, shape, _ in inputs for d in shape if isinstance(d, str)]
    example, guessed = example_dims(symbolic, cfg.dims)
    guessed = {k: v for k, v in guessed.items() if not is_batch(k)}  # a batch of 2 is no guess
    feeds = _feeds_list(cfg, inputs, example)
    outputs = list(cfg.outputs) or _output_names(ctx, model, inputs, feeds[0])
    _torch_step(
        ctx,
        f"torch.onnx.export(dynamo={cfg.dynamo})",
        lambda: export_factory(
            model, inputs, feeds[0], raw, outputs=outputs, opset=cfg.opset,
            dynamo=cfg.dynamo,
        ),
    )  # fmt: skip
    return {"exporter": f"torch.onnx.export(dynamo={cfg.dynamo})", "reference": model.eval(),
            "feeds": feeds, "guessed": guessed}  # fmt: skip


def _program(cfg: ExportModelConfig, ctx: StageContext, raw: Path) -> dict[str, Any]:
    import torch

    from packager.export.torch_export import export_program, program_inputs

    path = Path(cfg.source)
    if not path.is_file():
        raise InputFileError(f"{cfg.source}: file not found")
    try:
        program = torch.export.load(str(path))
    except Exception as err:
        raise InputFileError(
            f"{cfg.source}: not a torch.export ExportedProgram ({one_line(err)}); save one with "
            "torch.export.save(torch.export.export(model, args, dynamic_shapes=...), PATH)"
        ) from None
    inputs, example = program_inputs(program)
    example |= {k: v for k, v in cfg.dims.items() if k in example}
    feeds = _feeds_list(cfg, inputs, example)
    _torch_step(ctx, "torch.onnx.export(ExportedProgram, dynamo=True)",
                lambda: export_program(program, raw, opset=cfg.opset))  # fmt: skip
    return {"exporter": "torch.onnx.export(ExportedProgram, dynamo=True)",
            "reference": program.module(), "feeds": feeds, "guessed": {}}  # fmt: skip


def _hf(cfg: ExportModelConfig, ctx: StageContext, raw: Path) -> dict[str, Any]:
    from packager.config.sources import hf_folder
    from packager.export import hf_tasks
    from packager.export.hf_export import ExporterFailed
    from packager.hub import split_id
    from packager.provenance.detect import revision_of
    from packager.sources.hf import resolve

    path = hf_folder(cfg.source)
    if path is not None and not path.exists() and not split_id(cfg.source.removeprefix("hf:")):
        raise InputFileError(
            f"{path}: not found (SOURCE is a transformers folder, hf:pkg:MODULE/DIR, a Hub id in "
            "the local Hugging Face cache, python:MODULE:FACTORY or an ExportedProgram .pt2)"
        )
    folder = resolve(cfg.source, "SOURCE")  # a folder, hf:pkg:, a Hub id's cached snapshot
    library = hf_tasks.library_of(folder)
    task = hf_tasks.infer_task(folder, library) if cfg.task == "auto" else cfg.task
    if task == "text-generation-with-past":
        return _hf_lm(cfg, ctx, folder, raw)
    try:
        sidecars = hf_tasks.export_folder(folder, raw, task, cfg.opset, library)
    except ExporterFailed as err:
        raise StageError(ctx.step, str(err)) from err
    for name in sidecars:  # tokenizer and config: beside the model, as optimum-cli leaves them
        shutil.move(str(raw.parent / name), ctx.workdir / name)
    return {"exporter": "optimum-onnx main_export", "task": task, "library": library,
            "sidecars": sidecars, "revision": revision_of(folder),
            "parity": lambda out: hf_tasks.parity(folder, task, out, cfg.dims, library),
            "guessed": {}}  # fmt: skip


def _hf_lm(cfg: ExportModelConfig, ctx: StageContext, folder: Path, raw: Path) -> dict[str, Any]:
    """A causal LM with its KV cache (packager.export.lm_export): onnxruntime-genai's builder,
    else optimum, else torch; parity of the prefill and of cached decode steps (past key values
    fed), and greedy tokens identical to torch."""
    from packager.export import lm_export
    from packager.export.hf_export import ExporterFailed
    from packager.sources.lm import load_causal_lm

    try:
        exporter = lm_export.export_lm(folder, raw, cfg.opset, cfg.exporter, log=ctx.log)
    except ExporterFailed as err:
        raise StageError(ctx.step, str(err)) from err

    def parity(out: Path) -> list[dict]:
        model = load_causal_lm(folder)
        prompts = lm_export.random_prompts(model.config.vocab_size)
        p = lm_export.parity(model, out, prompts)
        if not p["greedy_identical"]:
            raise CheckFailed(
                ctx.step,
                f"greedy generation of {p['greedy_tokens']} tokens differs from torch at token "
                f"{p['greedy_first_difference']} (fp32 must match exactly)",
            )
        return lm_export.parity_rows(p, prompts)

    return {"exporter": lm_export.describe(exporter), "task": lm_export.TASK, "parity": parity,
            "guessed": {}, "opset_fixed": exporter == "genai"}  # fmt: skip


_HANDLERS = {"hf": _hf, "python": _python, "program": _program}


def _check(
    cfg: ExportModelConfig, ctx: StageContext, out: Path, rows: list[dict], fixed: bool
) -> tuple[float, int]:
    import onnx

    opset = next(o.version for o in onnx.load(str(out), load_external_data=False).opset_import
                 if o.domain in ("", "ai.onnx"))  # fmt: skip
    if opset != cfg.opset and not fixed:
        raise StageError(
            ctx.step, f"asked for opset {cfg.opset}, the exporter wrote opset {opset}: choose an "
            "opset the exporter supports (the dynamo exporter writes 18 and newer)",
        )  # fmt: skip
    worst = max(rows, key=lambda r: r["max_abs_diff"])
    shown = ", ".join(f"{k} {v}" for k, v in worst["inputs"].items())
    if not worst["max_abs_diff"] <= cfg.atol:
        raise CheckFailed(
            ctx.step,
            f"max |onnx - torch| = {worst['max_abs_diff']:.3g} at inputs {shown} exceeds --atol "
            f"{cfg.atol:g} (parity at {len(rows)} shapes)",
        )
    return worst["max_abs_diff"], opset


@register_stage(ExportModelConfig, name="export_model", version=2)
def export_model(_inp: None, cfg: ExportModelConfig, ctx: StageContext) -> Output:
    from packager.export.external import finish
    from packager.export.torch_export import parity_at
    from packager.onnx_utils import io_spec, summary

    raw_dir = ctx.workdir / "raw"
    raw_dir.mkdir()
    made = _HANDLERS[cfg.kind](cfg, ctx, raw_dir / "model.onnx")
    out = ctx.workdir / "model.onnx"
    external = finish(raw_dir / "model.onnx", out)
    for name in ("genai_config.json",):  # what an exporter wrote beside the model
        if (raw_dir / name).is_file():
            shutil.move(str(raw_dir / name), ctx.workdir / name)
    shutil.rmtree(raw_dir)
    if made["guessed"]:
        shown = ", ".join(f"{k}={v}" for k, v in made["guessed"].items())
        ctx.warn(f"symbolic dims not given, traced with guessed values {shown} (--dim NAME=N)")
    if "parity" in made:
        rows = _torch_step(ctx, "the parity check", lambda: made["parity"](out))
    else:
        rows = _torch_step(
            ctx, "the parity check", lambda: parity_at(made["reference"], out, made["feeds"])
        )
    worst, opset = _check(cfg, ctx, out, rows, made.get("opset_fixed", False))
    (ctx.workdir / "parity.json").write_text(json.dumps(rows, indent=2))
    info = summary(out)
    ctx.log(f"{made['exporter']}, opset {opset}: parity at {len(rows)} shapes, max {worst:.2e}")
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "source": cfg.source,
            "exporter": made["exporter"],
            "task": made.get("task"),
            "library": made.get("library"),
            "files": made.get("sidecars", []),  # tokenizer/config files beside model.onnx
            "revision": made.get("revision"),  # a Hub snapshot's commit, a git commit
            "opset": opset,
            "external_data": "model.onnx.data" if external else None,
            "parity": rows,
            "parity_max_abs_diff": worst,
            "atol": cfg.atol,
            "guessed_dims": made["guessed"],
            "params": info["params"],
            "size_bytes": out.stat().st_size,
            **io_spec(out),
        },
    )
