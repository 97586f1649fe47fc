"""The pieces of a language-model package: its tokenizer, the recorded greedy generation every
runtime replays token for token (samples/generation.json), the prefill samples older readers
replay numerically, and the manifest's generation block (schema 1.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

# Beside tokenizer.json: its settings and special tokens, and the chat template (inside
# tokenizer_config.json, or its own file as newer transformers save it).
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
GENAI_CONFIG = "genai_config.json"


def sample_prompts(rows: list[dict[str, str]], words: int = 6) -> list[str]:
    """Prompts of the recorded sample: a row's prompt, or the first words of its text."""
    return [r["prompt"] if "prompt" in r else " ".join(r["text"].split()[:words]) for r in rows]


def lm_samples(
    tree: Path, model: Path, tokenizer_dir: Path, prompts: list[str], tokens: int, eos: list[int]
):
    """samples/: the greedy generation of each prompt, and the prefill of the first prompt
    (its feeds and logits); returns (the manifest's samples block, the generation sample)."""
    from packager.edge_runtime import load_runtime
    from packager.onnx_utils import session
    from packager.sources.lm import lm_tokenizer

    gen = load_runtime().generation
    tok = lm_tokenizer(tokenizer_dir)
    shutil.copyfile(tokenizer_dir / "tokenizer.json", tree / "tokenizer.json")
    for name in TOKENIZER_EXTRAS:
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, tree / name)
    template = chat_template(tokenizer_dir)
    if template is not None:
        (tree / CHAT_TEMPLATE).write_text(template, encoding="utf-8")
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
    for name, value in feeds.items():  # the caches are empty (length 0): a prefill
        np.save(tree / f"samples/{name}.npy", value)
        inputs[name] = f"samples/{name}.npy"
    np.save(tree / "samples/logits.npy", logits)
    block = {"count": 1, "inputs": inputs, "outputs": {"logits": "samples/logits.npy"}}
    return block, sample


CHAT_TEMPLATE = "chat_template.jinja"


def chat_template(folder: Path) -> str | None:
    """The tokenizer's chat template: transformers' chat_template.jinja, else the
    `chat_template` of tokenizer_config.json (a string, or a list whose "default" entry is)."""
    if (folder / CHAT_TEMPLATE).is_file():
        return (folder / CHAT_TEMPLATE).read_text(encoding="utf-8")
    config = _json(folder / "tokenizer_config.json")
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template.strip() else None


def stop_strings(folder: Path) -> list[str]:
    """generation_config.json's `stop_strings` (a string or a list): generation ends before them."""
    stops = _json(folder / "generation_config.json").get("stop_strings") or []
    stops = [stops] if isinstance(stops, str) else stops
    return [s for s in stops if isinstance(s, str) and s]


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = json.loads(path.read_text(encoding="utf-8"))
    return value if isinstance(value, dict) else {}


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


def generation(
    meta: dict[str, Any], g: dict[str, Any], tree: Path, source: Path, export_dir: Path
) -> dict[str, Any]:
    """The manifest's generation block of a language-model package: its KV-cache layout, the
    sampling defaults (`g`: package.generation), the chat template and stop strings, and the
    genai_config.json the exporter wrote (`export_dir`), from the student's metadata."""
    cache = {
        "layers": meta["layers"],
        "kv_heads": meta["kv_heads"],
        "head_dim": meta["head_dim"],
        "dtype": "float32",
    }
    cache["bytes_per_token"] = 2 * meta["layers"] * meta["kv_heads"] * meta["head_dim"] * 4
    defaults = {k: g[k] for k in ("max_new_tokens", "temperature", "top_k", "top_p")}
    block = generation_block(meta, cache, defaults, tree, stop_strings(source))
    return block | genai_files(tree, export_dir, source, defaults)


def generation_block(
    meta: dict[str, Any],
    dec_info: dict[str, Any],
    defaults: dict[str, Any],
    tree: Path | None = None,
    stops: list[str] | None = None,
) -> dict[str, Any]:
    """The manifest's generation block from the exported model's metadata (the chat template
    when lm_samples wrote one into `tree`; the generation config's stop strings)."""
    chat = {"chat_template": CHAT_TEMPLATE} if tree and (tree / CHAT_TEMPLATE).is_file() else {}
    return {
        "tokenizer": "tokenizer.json",
        "sample": "samples/generation.json",
        **chat,
        "stop_strings": list(stops or []),
        "eos_token_ids": list(meta.get("eos_token_ids") or []),
        "bos_token_id": meta.get("bos_token_id"),
        "context_length": meta.get("context_length"),
        "kv_cache": dec_info,
        "defaults": defaults,
    }


def genai_files(
    tree: Path, export_dir: Path, source: Path, defaults: dict[str, Any]
) -> dict[str, Any]:
    """genai_config.json in the package, when the model's exporter wrote one (onnxruntime-genai's
    builder): the package folder is then an onnxruntime-genai model folder
    (`onnxruntime_genai.Model(folder)`: model.onnx, the tokenizer files, this config), with the
    package's sampling defaults as its search options. Returns the manifest's fields for it."""
    path = export_dir / GENAI_CONFIG
    if not path.is_file():
        return {"genai_config": None}
    config = json.loads(path.read_text())
    config["model"]["decoder"]["filename"] = "model.onnx"
    search = config.setdefault("search", {})
    search |= {
        "do_sample": defaults["temperature"] > 0,
        "temperature": defaults["temperature"] or 1.0,
    }
    search |= {"top_k": defaults["top_k"] or 1, "top_p": defaults["top_p"]}
    (tree / GENAI_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return {"genai_config": GENAI_CONFIG}
