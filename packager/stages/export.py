"""export: torch -> ONNX with dynamic axes, checked against torch on held-out data.

Array models: one `input` tensor with a dynamic batch axis, parity on the test split
(packager.export.torch_export). Transformers folders: optimum-onnx or torch, pooling inside the
graph, parity on test texts at several batch sizes (packager.export.hf_export). The handler is
chosen by the model artifact's modality.
"""

from __future__ import annotations

import shutil

from packager.artifact import Artifact, Output
from packager.config import ExportConfig
from packager.errors import CheckFailed, StageError, one_line
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import images_of, splits_of


def _check(ctx: StageContext, diff: float, n: int, what: str, atol: float) -> None:
    if not diff <= atol:
        raise CheckFailed(
            ctx.step,
            f"max |onnx - torch| = {diff:.3g} on {n} test {what} exceeds export.atol = {atol:g}",
        )


def _torch_module(model_art: Artifact, x_test, cfg: ExportConfig, ctx: StageContext, what: str):
    """torch.onnx.export of the step's torch model (arrays, images), then parity on `x_test`:
    (the model file, the max abs difference)."""
    import torch

    from packager.export.torch_export import export_module, parity
    from packager.nets.array import load_torch

    model = load_torch(model_art.path, model_art.meta)
    out = ctx.workdir / "model.onnx"
    try:
        export_module(model, torch.from_numpy(x_test[:2]), out, opset=cfg.opset, dynamo=cfg.dynamo)
    except Exception as err:
        raise StageError(
            ctx.step, f"torch.onnx.export(dynamo={cfg.dynamo}) failed: {one_line(err)}"
        ) from err
    diff = parity(model, out, x_test)
    _check(ctx, diff, len(x_test), what, cfg.atol)
    return out, diff


def _array(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    from packager.onnx_utils import io_spec

    x_test = splits_of(ctx.inputs["data"]).model_input("test")
    out, diff = _torch_module(model_art, x_test, cfg, ctx, "examples")
    ctx.log(
        f"opset {cfg.opset}, dynamo={cfg.dynamo}; parity max abs diff {diff:.2e} <= {cfg.atol:g}"
    )
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "precision": "fp32",
            "size_bytes": out.stat().st_size,
            "params": model_art.meta["params"],
            "parity_max_abs_diff": diff,
            "parity_examples": len(x_test),
            **io_spec(out),
        },
    )


def _text(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    from packager.data.text import TOKENIZER_FILES, load_tokenizer, read_split
    from packager.export import hf_export
    from packager.onnx_utils import io_spec
    from packager.sources.hf import load_model

    task, data = model_art.meta["task"], ctx.inputs["data"]
    info = {k: model_art.meta.get(k) for k in ("pooling", "normalize")}
    folder = model_art.file()
    model = load_model(folder, task)
    out = ctx.workdir / "model.onnx"
    tok = load_tokenizer(folder, data.meta["max_length"])
    try:
        exporter = hf_export.export(
            model,
            folder,
            out,
            task,
            info,
            tok,
            exporter=cfg.exporter,
            opset=cfg.opset,
            dynamo=cfg.dynamo,
            log=ctx.log,
        )
    except hf_export.ExporterFailed as err:
        raise StageError(ctx.step, str(err)) from err
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, ctx.workdir / name)
    texts, _ = read_split(data.path, "test", limit=64)
    diff, n = hf_export.parity(model, tok, texts, out, task, info)
    _check(ctx, diff, n, "texts", cfg.atol)
    ctx.log(
        f"{exporter} exporter, opset {cfg.opset}; parity max abs diff {diff:.2e} <= {cfg.atol:g}"
    )
    return Output(
        "onnx",
        {
            **info,
            "file": "model.onnx",
            "precision": "fp32",
            "task": task,
            "exporter": exporter,
            "tokenizer": "tokenizer.json",
            "max_length": data.meta["max_length"],
            "size_bytes": out.stat().st_size,
            "params": model_art.meta["params"],
            "parity_max_abs_diff": diff,
            "parity_examples": n,
            "modality": "text",
            **io_spec(out),
        },
    )


def _image(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    """Image models: input `input` (batch, C, H, W) or (batch, H, W, C) with a dynamic batch,
    parity on up to 16 real test images preprocessed as the runtimes do."""
    from packager.onnx_utils import io_spec

    x_test = images_of(ctx.inputs["data"]).array("test", limit=16)
    out, diff = _torch_module(model_art, x_test, cfg, ctx, "images")
    ctx.log(f"opset {cfg.opset}; parity max abs diff {diff:.2e} <= {cfg.atol:g}")
    keep = ("params", "macs", "labels", "output_classes")
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "precision": "fp32",
            "modality": "image",
            "size_bytes": out.stat().st_size,
            **{k: model_art.meta.get(k) for k in keep},
            "parity_max_abs_diff": diff,
            "parity_examples": len(x_test),
            **io_spec(out),
        },
    )


def _lm(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    """A causal LM with its KV cache (packager.export.lm_export): prefill and 8 decode steps
    within export.atol of torch, 32 greedy tokens identical."""
    from packager.data.lm import sequences
    from packager.export import hf_export, lm_export
    from packager.onnx_utils import io_spec
    from packager.sources.lm import encoder, lm_tokenizer, load_causal_lm

    folder, out = model_art.file(), ctx.workdir / "model.onnx"
    try:
        exporter = lm_export.export_lm(folder, out, cfg.opset, cfg.exporter, log=ctx.log)
    except hf_export.ExporterFailed as err:
        raise StageError(ctx.step, str(err)) from err
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
    ):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, ctx.workdir / name)
    model, tok, data = load_causal_lm(folder), lm_tokenizer(folder), ctx.inputs["data"]
    eos = (model_art.meta.get("eos_token_ids") or [None])[0]
    prompts = [list(s[:16]) for s in sequences(data.path, "test", encoder(tok), eos, 16, 2)]
    p = lm_export.parity(model, out, prompts)
    worst = max(p["prefill_max_abs_diff"], p["decode_max_abs_diff"])
    _check(ctx, worst, len(prompts), "prompts (prefill + 8 cached decode steps)", cfg.atol)
    if not p["greedy_identical"]:
        raise CheckFailed(
            ctx.step,
            f"greedy generation of {p['greedy_tokens']} tokens differs from torch at token "
            f"{p['greedy_first_difference']} (fp32 must match exactly)",
        )
    ctx.log(
        f"{exporter} ({lm_export.TASK} layout), opset {cfg.opset}; prefill {p['prefill_max_abs_diff']:.2e}, "
        f"decode {p['decode_max_abs_diff']:.2e} <= {cfg.atol:g}; {p['greedy_tokens']} greedy tokens identical"
    )
    keep = (
        "layers",
        "kv_heads",
        "head_dim",
        "vocab_size",
        "context_length",
        "params",
        "model_type",
    )
    meta = {
        k: model_art.meta.get(k) for k in (*keep, "eos_token_ids", "bos_token_id", "pad_token_id")
    }
    meta |= {"file": "model.onnx", "precision": "fp32", "task": model_art.meta["task"]}
    meta |= {"exporter": lm_export.describe(exporter), "tokenizer": "tokenizer.json"}
    meta |= {"modality": "lm", "genai_config": (ctx.workdir / lm_export.GENAI_CONFIG).is_file()}
    meta |= {"size_bytes": out.stat().st_size, "parity": p, "parity_max_abs_diff": worst}
    return Output("onnx", {**meta, **io_spec(out)})


def _static(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    """A static-embedding student (packager.export.static_export): Gather, weighted mean and
    L2 normalisation (and a Gemm head for classifiers), parity against numpy on test texts."""
    from packager.data.text import TOKENIZER_FILES, load_tokenizer, read_split
    from packager.distill.text.static import StaticStudent
    from packager.export.static_export import export_static, parity
    from packager.onnx_utils import io_spec

    data, folder, out = ctx.inputs["data"], model_art.file(), ctx.workdir / "model.onnx"
    student = StaticStudent.load(folder)
    export_static(student, out, cfg.opset)
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, ctx.workdir / name)
    tok = load_tokenizer(folder, data.meta["max_length"])
    texts, _ = read_split(data.path, "test", limit=64)
    diff = parity(student, out, tok, texts)
    _check(ctx, diff, len(texts), "texts", cfg.atol)
    ctx.log(f"static graph, opset {cfg.opset}; parity max abs diff {diff:.2e} <= {cfg.atol:g}")
    keep = {k: model_art.meta.get(k) for k in ("pooling", "normalize", "task", "params")}
    return Output(
        "onnx",
        {
            **keep,
            "file": "model.onnx",
            "precision": "fp32",
            "exporter": "static",
            "tokenizer": "tokenizer.json",
            "max_length": data.meta["max_length"],
            "size_bytes": out.stat().st_size,
            "parity_max_abs_diff": diff,
            "parity_examples": len(texts),
            "modality": "text",
            **io_spec(out),
        },
    )


_HANDLERS = Handlers("export", array=_array, text=_text, image=_image, lm=_lm)


@register_stage(ExportConfig, version=4)
def export(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    if model_art.meta.get("arch") == "static":  # a table, not a transformers folder
        return _static(model_art, cfg, ctx)
    return _HANDLERS(ctx.inputs["data"].modality)(model_art, cfg, ctx)
