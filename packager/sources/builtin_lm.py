"""`builtin:tiny-llama`: a small Llama-architecture teacher trained here, seeded, on the
recipe's own text, when no pretrained causal LM small enough ships on the package index.

A byte-level BPE tokenizer is trained on the training split first (`tokenizers`), then a
LlamaForCausalLM of `teacher.kwargs`' size on the packed token stream (next-token CE, AdamW,
linear warm-up and cosine decay, `teacher.train.steps` at most). The result is an ordinary
transformers folder: every later step treats it like an `hf:` teacher.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from packager.errors import RecipeError

EOS, PAD = "<|endoftext|>", "<pad>"
SHAPE = {  # teacher.kwargs and their defaults
    "vocab_size": 4096,
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_layers": 6,
    "num_heads": 4,
    "num_kv_heads": 4,
}


def shape_of(kwargs: dict[str, Any]) -> dict[str, int]:
    unknown = sorted(set(kwargs) - set(SHAPE))
    if unknown:
        raise RecipeError(f"teacher.kwargs {unknown}: builtin:tiny-llama takes {', '.join(SHAPE)}")
    return {k: int(kwargs.get(k, v)) for k, v in SHAPE.items()}


def train_tokenizer(texts: Iterator[str], vocab_size: int, dest: Path):
    """A byte-level BPE (GPT-2's scheme: every byte encodable, no unknown token) saved with
    its transformers config files in `dest`; returns the tokenizers.Tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD
    )
    fast.save_pretrained(str(dest))
    return tok


def make_llama(shape: dict[str, int], vocab: int, context: int, eos: int, pad: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape["hidden_size"] % shape["num_heads"] or shape["num_heads"] % shape["num_kv_heads"]:
        raise RecipeError(
            "teacher.kwargs: hidden_size must divide by num_heads, num_heads by num_kv_heads"
        )
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_layers"],
        num_attention_heads=shape["num_heads"],
        num_key_value_heads=shape["num_kv_heads"],
        max_position_embeddings=context,
        tie_word_embeddings=False,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    return LlamaForCausalLM(cfg)


def lr_at(step: int, total: int, lr: float, warmup: float = 0.05) -> float:
    """Linear warm-up over the first `warmup` of the steps, then cosine decay to 10%."""
    w = max(1, int(total * warmup))
    if step < w:
        return lr * (step + 1) / w
    t = (step - w) / max(1, total - w)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train_llama(
    model,
    batches: Callable[[], Iterator[Any]],
    steps: int,
    lr: float,
    seed: int,
    advance: Callable[..., None],
    compute: Any = None,
) -> dict[str, Any]:
    """Next-token CE on `batches()` (re-read each epoch) until `steps` optimizer steps, on
    `compute`'s device and precision (packager.nets.loop)."""
    import torch

    from packager.nets.device import Compute
    from packager.nets.loop import Run, Trainer, loop

    run = Run(compute or Compute())
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_at(k, steps, lr) / lr)
    losses: list[float] = []

    def loss_fn(ids):
        ids = ids.to(run.compute.device)
        loss = model(input_ids=ids, labels=ids).loss
        losses.append(float(loss.detach()))
        return loss, ids.numel(), ids.numel()

    if next(batches(), None) is None:
        raise RecipeError("builtin:tiny-llama: the training split has no full sequence")
    trainer = Trainer({"model": model}, loss_fn, opt, run, sched=sched, clip=1.0)
    res = loop(
        trainer,
        lambda _epoch, start: itertools.islice(batches(), start, None),
        epochs=steps,
        steps_per_epoch=steps,
        max_steps=steps,
        advance=advance,
        unit="tokens/s",
    )
    tail = losses[-20:]
    return {
        "steps": res.steps,
        "final_loss": sum(tail) / len(tail),
        "first_loss": losses[0],
        "seconds": res.seconds,
        "compute": {
            **run.compute.describe(),
            "throughput": round(res.throughput(), 3),
            "unit": "tokens/s",
        },
    }


def build_tiny_llama(
    data: Path,
    kwargs: dict[str, Any],
    train: Any,
    seq_len: int,
    dest: Path,
    reporter: Any,
    compute: Any = None,
) -> dict[str, Any]:
    """Tokenizer + teacher trained on the train split of the LM data folder `data` (rows of
    packager.data.lm), saved as a transformers folder in `dest`; returns what was done.
    `train` holds epochs, batch_size, lr, seed and steps (TeacherTrainConfig); `compute` the
    device and precision (packager.nets.device.Compute)."""
    import torch

    from packager.data.lm import pack, row_text, rows

    shape = shape_of(kwargs)
    if train.threads:
        torch.set_num_threads(train.threads)
    dest.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer((row_text(r) for r in rows(data, "train")), shape["vocab_size"], dest)
    eos, pad = tok.token_to_id(EOS), tok.token_to_id(PAD)
    torch.manual_seed(train.seed)
    model = make_llama(shape, tok.get_vocab_size(), max(2 * seq_len, 512), eos, pad)

    def batches() -> Iterator[Any]:
        seqs = pack(
            (row_text(r) for r in rows(data, "train")), lambda t: tok.encode(t).ids, eos, seq_len
        )
        buf = []
        for s in seqs:
            buf.append(torch.from_numpy(s))
            if len(buf) == train.batch_size:
                yield torch.stack(buf)
                buf = []

    per_epoch = sum(1 for _ in batches())
    steps = min(train.steps or per_epoch * train.epochs, per_epoch * train.epochs)
    with reporter.track("teacher (tiny-llama)", steps) as advance:
        stats = train_llama(model, batches, steps, train.lr, train.seed, advance, compute)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.cpu().save_pretrained(str(dest), safe_serialization=True)
    return {
        **stats,
        "shape": shape,
        "steps_per_epoch": per_epoch,
        "tokens_per_step": train.batch_size * seq_len,
    }
