"""Causal language models from transformers folders (`hf:FOLDER`, task text-generation):
AutoModelForCausalLM (Llama, Qwen2/Qwen3, GPT-2, Phi-3 and the other decoder-only families
transformers knows), their fast tokenizer as a `tokenizers.Tokenizer` without padding or
truncation, and the special ids generation needs. Offline: packager.sources.hf sets the hub's
offline switches before transformers is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager.errors import InputFileError, one_line
from packager.sources import offline  # noqa: F401  (HF_HUB_OFFLINE before transformers loads)

# The families edgepack's tests build and export on the fly (tests/tiny_models.py).
TESTED_FAMILIES = ("llama", "qwen2", "qwen3", "gpt2", "phi3")


def load_causal_lm(folder: Path):
    """The model in eval mode, float32 (what the export and the parity check compare)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError) as err:
        raise InputFileError(
            f"{folder}: cannot load as AutoModelForCausalLM ({one_line(err)})"
        ) from None
    return model.eval()


def lm_tokenizer(folder: Path):
    """The folder's tokenizer.json as the runtime reads it: no padding, no truncation."""
    from tokenizers import Tokenizer

    file = Path(folder) / "tokenizer.json"
    if not file.is_file():
        raise InputFileError(f"{folder}: no tokenizer.json (a fast tokenizer is needed)")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as err:  # the tokenizers library raises plain Exceptions
        raise InputFileError(f"{file}: not a tokenizer.json ({one_line(err)})") from None
    tok.no_padding()
    tok.no_truncation()
    return tok


def encoder(tok):
    """text -> token ids, as every runtime encodes a prompt (the tokenizer's own specials)."""
    return lambda text: tok.encode(text).ids


def special_ids(model) -> dict[str, Any]:
    """EOS ids (a list: some models stop on several), BOS and pad ids, from the model's
    generation and model configs."""
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    if eos is None:
        eos = model.config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    bos = getattr(gen, "bos_token_id", None)
    pad = getattr(gen, "pad_token_id", None) or model.config.pad_token_id
    return {"eos_token_ids": eos_ids, "bos_token_id": bos, "pad_token_id": pad}


def describe_lm(model) -> dict[str, Any]:
    """The shape facts the log, the KV-cache layout and the manifest need."""
    cfg = model.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return {
        "architecture": type(model).__name__,
        "model_type": cfg.model_type,
        "params": sum(p.numel() for p in model.parameters()),
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "heads": heads,
        "kv_heads": getattr(cfg, "num_key_value_heads", None) or heads,
        "head_dim": head_dim,
        "vocab_size": cfg.vocab_size,
        "context_length": getattr(cfg, "max_position_embeddings", None)
        or getattr(cfg, "n_positions", None),
        **special_ids(model),
    }


def save_lm(model, src_tokenizer: Path, dest: Path) -> None:
    """The model (safetensors) and the source's tokenizer files (its chat template too), as one
    transformers folder."""
    import shutil

    model.save_pretrained(str(dest), safe_serialization=True)
    names = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    for name in (*names, "chat_template.jinja"):
        if (Path(src_tokenizer) / name).is_file():
            shutil.copyfile(Path(src_tokenizer) / name, dest / name)
