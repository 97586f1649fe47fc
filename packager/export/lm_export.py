"""Causal LMs to ONNX with a KV cache, checked against torch.

onnxruntime-genai's model builder comes first for the architectures it knows
(packager.export.genai_builder: GroupQueryAttention with rotary inside, a fused QKV MatMul, a KV
buffer shared between steps, last-position logits). Otherwise optimum-onnx's `text-generation-with-past` writes the decoder graph (Llama, Qwen2/Qwen3,
GPT-2, Phi-3, Mistral, ... every family it has an ONNX config for): input_ids,
attention_mask, position_ids and past_key_values.{i}.key/value in; logits and
present.{i}.key/value out, one graph for the prompt (past of length 0) and for each new
token. The check runs torch and onnxruntime side by side: logits of the prefill and of 8
decode steps on the cache (the same tokens fed to both) within `atol`, and 32 greedy tokens
that must be identical.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from packager.errors import one_line
from packager.export.hf_export import ExporterFailed, _quiet, main_export_into

TASK = "text-generation-with-past"
GENAI_CONFIG = "genai_config.json"


def export_lm(
    folder: Path, out: Path, opset: int, exporter: str = "auto", log: Callable[[str], Any] = print
) -> str:
    """`folder` exported into `out` by onnxruntime-genai's builder (genai; auto when it is
    installed and builds the architecture), optimum (optimum; auto next) or torch.onnx.export of
    a cache-aware wrapper (torch; auto last); returns the exporter used. The builder also
    writes genai_config.json beside `out`."""
    from packager.export.genai_builder import BuilderUnavailable

    if exporter in ("auto", "genai"):
        try:
            return export_genai(folder, out)
        except BuilderUnavailable as err:
            if exporter == "genai":
                raise ExporterFailed(f"onnxruntime-genai's builder: {err}") from None
            log(f"onnxruntime-genai's builder not used ({err}); exporting with optimum")
    if exporter == "torch":
        return export_torch(folder, out, opset)
    try:
        return export_optimum(folder, out, opset)
    except ExporterFailed:
        if exporter == "optimum":
            raise
        return export_torch(folder, out, opset)


def describe(exporter: str) -> str:
    """What the manifest and the export record say made the graph, with the versions."""
    if exporter == "genai":
        from packager.export.genai_builder import pins

        v = pins()
        return (
            f"onnxruntime-genai model builder {v['onnxruntime-genai']} "
            f"(transformers {v['transformers']})"
        )
    return {"optimum": "optimum-onnx main_export", "torch": "torch.onnx.export(dynamo=False)"}[
        exporter
    ]


def export_genai(folder: Path, out: Path) -> str:
    """The builder's fp32 graph of `folder` as one file `out` (weights beside it only past
    2 GiB), genai_config.json beside it; BuilderUnavailable when it cannot."""
    import onnx

    from packager.export import genai_builder
    from packager.export.external import save

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        genai_builder.build(folder, Path(tmp))
        model = onnx.load(str(Path(tmp) / "model.onnx"))
        genai_builder.finish_graph(model, genai_builder.head_dim(folder))
        save(model, out)
        config = json.loads((Path(tmp) / GENAI_CONFIG).read_text())
    config["model"]["decoder"]["filename"] = out.name
    (out.parent / GENAI_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return "genai"


def export_optimum(folder: Path, out: Path, opset: int) -> str:
    """optimum's export of `folder` into `out` (plus external data when optimum wrote some)."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp, _quiet():
        try:
            models = main_export_into(folder, tmp, TASK, opset)  # the parity below checks it
        except Exception as err:
            raise ExporterFailed(f"optimum main_export ({TASK}) failed: {one_line(err)}") from err
        if len(models) != 1:
            names = ", ".join(m.name for m in models) or "none"
            raise ExporterFailed(f"optimum wrote {len(models)} ONNX models ({names}), expected one")
        for f in Path(tmp).iterdir():
            if f.suffix == ".onnx" or f.name.startswith(models[0].name):
                dest = out if f == models[0] else out.parent / f.name
                shutil.move(str(f), dest)
    return "optimum"


def _cache_wrapper(model):
    """The model as a graph of plain tensors: (input_ids, attention_mask, position_ids,
    past k/v per layer) -> (logits, present k/v per layer). The 4-D causal mask is built here
    from the positions (transformers' own mask builder uses vmap, which the TorchScript-based
    exporter cannot trace)."""
    import torch
    from transformers import DynamicCache

    layers = model.config.num_hidden_layers

    class WithPast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache()
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            keys = torch.arange(attention_mask.shape[1])[None, None, :]
            allowed = (keys <= position_ids[:, :, None]) & attention_mask[:, None, :].bool()
            mask = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask[:, None],
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
            )
            presents = []
            for layer in out.past_key_values.layers:
                presents += [layer.keys, layer.values]
            return (out.logits, *presents)

    return WithPast()


def export_torch(folder: Path, out: Path, opset: int) -> str:
    """torch.onnx.export(dynamo=False) of the cache-aware wrapper, traced with a non-empty
    past so that its length stays a dynamic axis."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, attn_implementation="eager", dtype=torch.float32
    ).eval()
    cfg = model.config
    kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    past_len, seq = 3, 2
    layers = cfg.num_hidden_layers
    past = [torch.randn(1, kv, past_len, dim) for _ in range(2 * layers)]
    ids = torch.randint(0, cfg.vocab_size, (1, seq))
    feeds = (
        ids,
        torch.ones(1, past_len + seq, dtype=torch.long),
        torch.arange(past_len, past_len + seq)[None],
    )
    kv_names = [f"{i}.{k}" for i in range(layers) for k in ("key", "value")]
    inputs = ["input_ids", "attention_mask", "position_ids"] + [
        f"past_key_values.{n}" for n in kv_names
    ]
    outputs = ["logits"] + [f"present.{n}" for n in kv_names]
    axes = {
        n: {0: "batch_size", 1: "sequence_length"} for n in ("input_ids", "position_ids", "logits")
    }
    axes["attention_mask"] = {0: "batch_size", 1: "total_sequence_length"}
    axes |= {f"past_key_values.{n}": {0: "batch_size", 2: "past_sequence_length"} for n in kv_names}
    axes |= {f"present.{n}": {0: "batch_size", 2: "total_sequence_length"} for n in kv_names}
    with _quiet(), torch.no_grad():
        try:
            torch.onnx.export(
                _cache_wrapper(model),
                (*feeds, *past),
                str(out),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        except Exception as err:
            raise ExporterFailed(
                f"torch.onnx.export of the KV-cache wrapper failed: {one_line(err)}"
            ) from err
    return "torch"


def _torch_steps(model, prompt: list[int], feed: list[int]) -> list[np.ndarray]:
    """Last-position logits of torch after the prompt, then after each token of `feed`, on the
    model's own cache."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.tensor([prompt]), use_cache=True)
        logits = [out.logits[0, -1].float().numpy()]
        past = out.past_key_values
        for t in feed:
            out = model(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits.append(out.logits[0, -1].float().numpy())
    return logits


def _torch_greedy(model, prompt: list[int], n: int) -> list[int]:
    import torch

    ids: list[int] = []
    with torch.no_grad():
        out = model(input_ids=torch.tensor([prompt]), use_cache=True)
        for _ in range(n):
            t = int(out.logits[0, -1].argmax())
            ids.append(t)
            out = model(
                input_ids=torch.tensor([[t]]), past_key_values=out.past_key_values, use_cache=True
            )
    return ids


def parity(
    model, path: Path, prompts: list[list[int]], decode_steps: int = 8, greedy_tokens: int = 32
) -> dict[str, Any]:
    """max |onnx - torch| of the prefill logits and of `decode_steps` cached steps (torch's
    greedy tokens fed to both), and whether `greedy_tokens` greedy tokens are identical."""
    from packager.edge_runtime import load_runtime
    from packager.onnx_utils import session

    gen = load_runtime().generation
    dec = gen.Decoder(session(path))
    prefill, decode, same, first_diff = 0.0, 0.0, True, None
    for prompt in prompts:
        want = _torch_greedy(model, prompt, greedy_tokens)
        ref = _torch_steps(model, prompt, want[:decode_steps])
        dec.reset(1)
        got = [dec.forward(np.asarray([prompt])).logits[0]]
        for t in want[:decode_steps]:
            got.append(dec.forward(np.asarray([[t]])).logits[0])
        prefill = max(prefill, float(np.abs(got[0] - ref[0]).max()))
        decode = max(
            decode, max(float(np.abs(g - r).max()) for g, r in zip(got[1:], ref[1:], strict=True))
        )
        onnx_ids = gen.greedy(dec, prompt, greedy_tokens)
        if onnx_ids != want:
            same = False
            first_diff = next(
                i for i, (a, b) in enumerate(zip(onnx_ids, want, strict=True)) if a != b
            )
    return {
        "prefill_max_abs_diff": prefill,
        "decode_max_abs_diff": decode,
        "decode_steps": decode_steps,
        "greedy_tokens": greedy_tokens,
        "greedy_identical": same,
        "greedy_first_difference": first_diff,
        "prompts": len(prompts),
    }


def random_prompts(
    vocab: int, lengths: tuple[int, ...] = (5, 13), seed: int = 0
) -> list[list[int]]:
    """Seeded prompts of token ids (no tokenizer or text needed) at `lengths`."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, n).tolist() for n in lengths]


def parity_rows(p: dict[str, Any], prompts: list[list[int]]) -> list[dict[str, Any]]:
    """`parity`'s numbers as export rows (inputs, max_abs_diff): the prefill of the longest
    prompt, then the cached decode steps after it."""
    longest = max(len(x) for x in prompts)
    steps = p["decode_steps"]
    return [
        {"inputs": {"input_ids": [1, longest]}, "max_abs_diff": p["prefill_max_abs_diff"]},
        {
            "inputs": {"input_ids": [1, 1], "past_sequence_length": [longest, longest + steps - 1]},
            "max_abs_diff": p["decode_max_abs_diff"],
        },
    ]
