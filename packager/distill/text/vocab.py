"""Trim a WordPiece model's vocabulary to the pieces a corpus uses, and its word table with it.

In a MiniLM-sized encoder the 30522 x 384 word table is 11.7 of 22.7 M parameters; a corpus of
general English uses about 25k of those pieces. Trimming keeps every piece seen at least
`min_count` times in the training texts, every special token, and every single character and
`##` single character, so that any word of known characters still tokenizes (into smaller
pieces) instead of becoming [UNK]: words whose pieces were all kept tokenize exactly as before,
and map to exactly the same vectors. The tokenizer.json is rewritten to the new ids (vocab,
added tokens, the post-processor's special tokens, the pad id), so every runtime tokenizes like
the trimmed model expects. What the re-segmented words cost is measured on the probe.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from packager.errors import RecipeError


def count_pieces(tok, texts: Iterable[list[str]]) -> Counter[int]:
    """How often each token id occurs in the texts (batches of strings), specials excluded."""
    counts: Counter[int] = Counter()
    for batch in texts:
        for enc in tok.encode_batch(batch):
            counts.update(
                i
                for i, special in zip(enc.ids, enc.special_tokens_mask, strict=True)
                if not special
            )
    return counts


def kept_ids(tokenizer: dict[str, Any], counts: Counter[int], min_count: int) -> list[int]:
    """Old ids to keep, ascending: the used pieces, the specials, the single characters."""
    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise RecipeError(
            f"distill.trim_vocab: trimming needs a WordPiece tokenizer (this one is "
            f"{model.get('type')}); leave trim_vocab unset"
        )
    prefix = model.get("continuing_subword_prefix", "##")
    specials = {t["id"] for t in tokenizer.get("added_tokens", [])}
    keep = set(specials)
    for piece, i in model["vocab"].items():
        single = len(piece) == 1 or (piece.startswith(prefix) and len(piece) == len(prefix) + 1)
        if single or counts.get(i, 0) >= min_count:
            keep.add(i)
    return sorted(keep)


def rewrite_tokenizer(tokenizer: dict[str, Any], kept: list[int]) -> dict[str, Any]:
    """tokenizer.json with the vocabulary cut to `kept` (old ids), renumbered 0..len-1 in order."""
    new_id = {old: new for new, old in enumerate(kept)}
    out = copy.deepcopy(tokenizer)
    vocab = out["model"]["vocab"]
    out["model"]["vocab"] = {p: new_id[i] for p, i in vocab.items() if i in new_id}
    for token in out.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    post = out.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    if out.get("padding"):
        out["padding"]["pad_id"] = new_id[out["padding"]["pad_id"]]
    return out


def trim_model(model: nn.Module, kept: list[int]) -> None:
    """Keep only the `kept` rows of the model's word table, in place (config included)."""
    old = model.get_input_embeddings()
    rows = torch.tensor(kept, dtype=torch.long)
    new = nn.Embedding(len(kept), old.embedding_dim, padding_idx=None)
    with torch.no_grad():
        new.weight.copy_(old.weight[rows])
    new.weight.requires_grad = old.weight.requires_grad
    model.set_input_embeddings(new)
    model.config.vocab_size = len(kept)
    pad = getattr(model.config, "pad_token_id", None)
    if pad is not None:
        model.config.pad_token_id = kept.index(pad) if pad in kept else None
