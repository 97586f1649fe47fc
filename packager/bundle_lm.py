"""The pieces of a language-model package: its tokenizer, the recorded greedy generation every
runtime replays token for token (samples/generation.json), the prefill samples older readers
replay numerically, and the manifest's generation block (schema 1.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from packager.bundle import sample_file


def sample_prompts(rows: list[dict[str, str]], words: int = 6) -> list[str]:
    """Prompts of the recorded sample: a row's prompt, or the first words of its text."""
    return [r["prompt"] if "prompt" in r else " ".join(r["text"].split()[:words]) for r in rows]


def lm_samples(
    tree: Path, model: Path, tokenizer_dir: Path, prompts: list[str], tokens: int, eos: list[int]
):
    """samples/: the greedy generation of each prompt, and the prefill of the first prompt
    (its feeds and logits); returns (the manifest's samples block, the generation sample)."""
    from packager.onnx_utils import session
    from packager.runtime import load_runtime
    from packager.sources.lm import lm_tokenizer

    gen = load_runtime().generation
    tok = lm_tokenizer(tokenizer_dir)
    shutil.copyfile(tokenizer_dir / "tokenizer.json", tree / "tokenizer.json")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, tree / name)
    dec = gen.Decoder(session(model))
    ids = [tok.encode(p).ids for p in prompts]
    # Every recorded token is compared: the sample runs `tokens` steps through any EOS (a
    # student of short texts would end most continuations after a token or two).
    out = [gen.greedy(dec, p, tokens) for p in ids]
    sample = {
        "prompts": prompts,
        "prompt_ids": ids,
        "generated_ids": out,
        "texts": [tok.decode(o) for o in out],
        "max_new_tokens": tokens,
        "decoding": "greedy",
        "stops_at_eos": False,
    }
    (tree / "samples").mkdir()
    (tree / "samples/generation.json").write_text(json.dumps(sample, ensure_ascii=False, indent=1))
    feeds = _prefill_feeds(dec, ids[0])
    sess = dec.session
    logits = sess.run(["logits"], feeds)[0]
    inputs = {}
    for i, (name, value) in enumerate(feeds.items()):  # empty caches (length 0): a prefill
        inputs[name] = sample_file("input", name, i)
        np.save(tree / inputs[name], value)
    np.save(tree / "samples/logits.npy", logits)
    block = {"count": 1, "inputs": inputs, "outputs": {"logits": "samples/logits.npy"}}
    return block, sample


def _prefill_feeds(dec, ids: list[int]) -> dict[str, np.ndarray]:
    n = len(ids)
    feeds = {"input_ids": np.asarray([ids], np.int64)}
    if dec.has_mask:
        feeds["attention_mask"] = np.ones((1, n), np.int64)
    if dec.has_positions:
        feeds["position_ids"] = np.arange(n, dtype=np.int64)[None]
    for name in dec.past_names:
        feeds[name] = np.zeros((1, dec.kv_heads, 0, dec.head_dim), dec.cache_dtype)
    return feeds


def generation_block(
    meta: dict[str, Any], dec_info: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    """The manifest's generation block from the exported model's metadata."""
    return {
        "tokenizer": "tokenizer.json",
        "sample": "samples/generation.json",
        "eos_token_ids": list(meta.get("eos_token_ids") or []),
        "bos_token_id": meta.get("bos_token_id"),
        "context_length": meta.get("context_length"),
        "kv_cache": dec_info,
        "defaults": defaults,
    }
