"""tokenize: the training split's token ids with the teacher's tokenizer, once per tokenizer
and corpus (packager.data.tokens), cached like any step: the teacher pass and every epoch of
distillation, on every rank, read them instead of tokenizing again. A text student's are ragged
rows, padded per batch; a language model's are packed sequences (its teacher's completions
first, when the generate step wrote some)."""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import TokenizeConfig
from packager.stage import Handlers, StageContext, register_stage


def _text(teacher: Artifact, cfg: TokenizeConfig, ctx: StageContext) -> Output:
    from packager.data.text import load_tokenizer, pad_token
    from packager.data.tokens import write_tokens

    data, folder = ctx.inputs["data"], teacher.file()
    tok = load_tokenizer(folder, cfg.max_length)
    n = data.meta["sizes"]["train"]
    with ctx.reporter.track("tokenize", n) as advance:
        texts, count = write_tokens(
            data.path, "train", tok, data.meta["stream_batch"], ctx.workdir, advance
        )
    pad_name, pad_id = pad_token(folder, tok)
    ctx.log(f"{texts} training texts, {count:,} tokens ({count / max(texts, 1):.1f} a text)")
    return Output(
        "tokens",
        {
            "texts": texts,
            "tokens": count,
            "pad_id": pad_id,
            "pad_token": pad_name,
            "max_length": cfg.max_length,
        },
    )


def _lm(teacher: Artifact, cfg: TokenizeConfig, ctx: StageContext) -> Output:
    """A language model's training text (its teacher's completions first, when generated),
    packed into sequences of max_length tokens, in the order the trainer reads them."""
    from packager.data.tokens import write_sequences
    from packager.distill.lm.distill import training_texts
    from packager.sources.lm import encoder, lm_tokenizer

    gen = ctx.inputs.get("generated")
    texts = training_texts(ctx.inputs["data"].path, gen.file() if gen else None)
    eos = (teacher.meta.get("eos_token_ids") or [None])[0]
    encode = encoder(lm_tokenizer(teacher.file()))
    with ctx.reporter.track("tokenize", 0) as advance:
        n = write_sequences(texts, encode, eos, cfg.max_length, ctx.workdir, advance)
    ctx.log(f"{n:,} training sequences of {cfg.max_length} tokens ({n * cfg.max_length:,})")
    return Output(
        "tokens",
        {
            "file": "sequences.npy",
            "sequences": n,
            "tokens": n * cfg.max_length,
            "max_length": cfg.max_length,
            "modality": "lm",
        },
    )


_HANDLERS = Handlers(
    "tokenize",
    text=_text,
    lm=_lm,
    refused={
        "array": "array data is read as arrays: there is no text to tokenize",
        "image": "image data is decoded from images: there is no text to tokenize",
    },
)


@register_stage(TokenizeConfig)
def tokenize(teacher: Artifact, cfg: TokenizeConfig, ctx: StageContext) -> Output:
    return _HANDLERS(ctx.inputs["data"].modality)(teacher, cfg, ctx)
