"""Sequence-level KD data: the teacher writes completions for the training prompts (the
data's prompt column, or the first tokens of each training text), seeded, with transformers'
generate (KV cache, left-padded batches), one JSON line per completion with its generator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from packager.data.lm import rows
from packager.nets.device import CPU, Compute
from packager.sources.lm import describe_lm, lm_tokenizer, load_causal_lm


def prompts_of(data: Path, tok, prompt_tokens: int, limit: int | None) -> Iterator[str]:
    for i, row in enumerate(rows(data, "train")):
        if limit is not None and i >= limit:
            return
        if "prompt" in row:
            yield row["prompt"]
        else:
            ids = tok.encode(row["text"]).ids[:prompt_tokens]
            if ids:
                yield tok.decode(ids)


def _left_padded(tok, texts: list[str], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    enc = [tok.encode(t).ids or [pad] for t in texts]
    n = max(len(e) for e in enc)
    ids = torch.full((len(enc), n), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(enc):
        ids[i, n - len(e) :] = torch.tensor(e)
        mask[i, n - len(e) :] = 1
    return ids, mask


def generate_completions(
    teacher_dir: Path,
    data: Path,
    out: Path,
    cfg: Any,
    source: str,
    advance=lambda *a, **k: None,
    compute: Compute = CPU,
) -> dict[str, Any]:
    """Write `out` (jsonl: prompt, completion, generated_by); `cfg` holds the GenerateConfig
    fields; the teacher runs on `compute`'s device and precision. Returns counts."""
    model = load_causal_lm(teacher_dir).to(compute.device)
    tok = lm_tokenizer(teacher_dir)
    info = describe_lm(model)
    eos = info["eos_token_ids"]
    pad = info["pad_token_id"] if info["pad_token_id"] is not None else (eos or [0])[0]
    torch.manual_seed(cfg.seed)
    prompts = list(prompts_of(data, tok, cfg.prompt_tokens, cfg.prompts))
    sample = cfg.temperature > 0
    kwargs = {"do_sample": sample, "max_new_tokens": cfg.max_new_tokens, "pad_token_id": pad}
    if sample:
        kwargs |= {"temperature": cfg.temperature, "top_p": cfg.top_p, "top_k": cfg.top_k}
    if eos:
        kwargs["eos_token_id"] = eos
    n_tokens = 0
    with out.open("w", encoding="utf-8") as f, torch.no_grad(), compute.autocast():
        for i in range(0, len(prompts), cfg.batch):
            batch = prompts[i : i + cfg.batch]
            ids, mask = (t.to(compute.device) for t in _left_padded(tok, batch, pad))
            gen = model.generate(
                input_ids=ids, attention_mask=mask, num_return_sequences=cfg.n, **kwargs
            )[:, ids.shape[1] :]
            for j, new in enumerate(gen.tolist()):
                kept = [t for t in new if t not in eos and t != pad]
                n_tokens += len(kept)
                row = {
                    "prompt": batch[j // cfg.n],
                    "completion": tok.decode(kept),
                    "generated_by": source,
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            advance(len(batch))
    return {"prompts": len(prompts), "completions": len(prompts) * cfg.n, "tokens": n_tokens}
