"""onnxruntime-genai's model builder as the exporter of causal LMs it knows (Llama, Qwen2/3,
Mistral, Phi-3, Gemma, SmolLM3, ...): GroupQueryAttention with the rotary embedding inside, one
fused QKV MatMul, a KV cache that past and present share between steps, and (prune_lm_head)
logits for the last position only.

The builder wants a newer transformers than the one optimum-onnx pins here, so it lives in a
folder of its own (`make genai-builder`: `pip install --no-deps --target` of the versions in
genai_builder.txt beside this file; torch, onnx, onnx-ir and onnxruntime come from edgepack's own
environment) and runs in a child process with that folder first on PYTHONPATH, offline, on a
local folder. Its graph keeps optimum's names (input_ids, attention_mask,
past_key_values.{i}.key/value in; logits, present.{i}.key/value out; no position_ids), so every
edgepack runtime decodes it; its genai_config.json ships in the package so that
`onnxruntime_genai.Model(package_folder)` loads it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from packager.config.lm import GENAI_BUILDER_ENV as ENV
from packager.config.lm import genai_builder_home as home

REQUIREMENTS = Path(__file__).with_name("genai_builder.txt")
KV_META = "edgepack.kv_cache"  # metadata_props key: "shared-buffer" for GroupQueryAttention
SHARED = "shared-buffer"
TIMEOUT_S = 3600


class BuilderUnavailable(Exception):
    """The builder is not installed, or does not build this model; the message is one line."""


def installed() -> bool:
    return (home() / "onnxruntime_genai" / "models" / "builder.py").is_file()


def pins() -> dict[str, str]:
    """name -> version of what the builder's folder holds (genai_builder.txt)."""
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.strip()] = version.strip()
    return out


def head_dim(folder: Path) -> int:
    cfg = json.loads((folder / "config.json").read_text())
    heads = cfg.get("num_attention_heads") or cfg.get("n_head") or 1
    return int(cfg.get("head_dim") or (cfg.get("hidden_size") or cfg.get("n_embd") or 0) // heads)


def build(folder: Path, out_dir: Path, precision: str = "fp32", **options: Any) -> Path:
    """Run the builder on the local transformers `folder` into `out_dir` (model.onnx, its
    external data, genai_config.json, tokenizer files); returns out_dir. BuilderUnavailable
    when it is not installed, cannot build the model, or fails."""
    if not installed():
        raise BuilderUnavailable(
            f"onnxruntime-genai's model builder is not installed at {home()} (make genai-builder, "
            f"or pip install --no-deps --target DIR -r {REQUIREMENTS.name} and set {ENV}=DIR)"
        )
    head = head_dim(folder)
    if head % 16:  # GroupQueryAttention's CPU kernel
        raise BuilderUnavailable(
            f"head_dim {head} is not a multiple of 16 (GroupQueryAttention on CPU needs it)"
        )
    extra = {"hf_token": "false", "prune_lm_head": "true", **options}
    with tempfile.TemporaryDirectory(prefix="genai-builder-") as cache:
        cmd = [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-i", str(folder), "-o", str(out_dir), "-p", precision, "-e", "cpu", "-c", cache,
            "--extra_options", *(f"{k}={v}" for k, v in extra.items()),
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(home()), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TQDM_DISABLE": "1",
        }
        try:
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise BuilderUnavailable(f"the builder ran past {TIMEOUT_S} s") from None
    model = out_dir / "model.onnx"
    if done.returncode != 0 or not model.is_file():
        lines = [x for x in (done.stderr or done.stdout).strip().splitlines() if x.strip()]
        raise BuilderUnavailable(
            f"the builder failed (exit {done.returncode}): {lines[-1] if lines else 'no output'}"
        )
    return out_dir


def finish_graph(model, head_dim: int) -> None:
    """The builder's graph (a ModelProto, changed in place) made self-describing: the cache's
    head dim written as a number (the builder leaves it symbolic, `kv_cache_dim`) and metadata
    saying that past and present may share one buffer (GroupQueryAttention writes the new
    positions into the buffer it is given when both are bound to it)."""
    for vi in [*model.graph.input, *model.graph.output]:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param == "kv_cache_dim":
                d.Clear()
                d.dim_value = head_dim
    props = {p.key: p for p in model.metadata_props}
    if KV_META in props:
        props[KV_META].value = SHARED
    else:
        model.metadata_props.add(key=KV_META, value=SHARED)
