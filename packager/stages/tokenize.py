"""tokenize: the training split's token ids with the teacher's tokenizer, once per tokenizer
and corpus (packager.data.tokens), cached like any step: the teacher pass and every epoch of
distillation, on every rank, read them instead of tokenizing again."""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import TokenizeConfig
from packager.stage import StageContext, register_stage


@register_stage(TokenizeConfig)
def tokenize(teacher: Artifact, cfg: TokenizeConfig, ctx: StageContext) -> Output:
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
