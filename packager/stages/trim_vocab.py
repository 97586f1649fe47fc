"""trim_vocab: the student with its vocabulary cut to the word pieces its training text uses,
its word table with it, and its tokenizer rewritten to the new ids (packager.distill.text.vocab)."""

from __future__ import annotations

import json
import shutil

from packager.artifact import Artifact, Output
from packager.config import TrimVocabConfig
from packager.stage import StageContext, register_stage


@register_stage(TrimVocabConfig)
def trim_vocab(student: Artifact, cfg: TrimVocabConfig, ctx: StageContext) -> Output:
    from packager.data.text import TOKENIZER_FILES, load_tokenizer, stream_split
    from packager.distill.text.vocab import count_pieces, kept_ids, rewrite_tokenizer, trim_model
    from packager.sources.hf import MODEL_DIR, load_model

    data, folder = ctx.inputs["data"], student.file()
    tok = load_tokenizer(folder, data.meta["max_length"])
    chunks = (texts for texts, _ in stream_split(data.path, "train", data.meta["stream_batch"]))
    counts = count_pieces(tok, chunks)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    kept = kept_ids(spec, counts, cfg.min_count)
    model = load_model(folder, student.meta["task"])
    before = model.config.vocab_size
    trim_model(model, kept)
    dest = ctx.workdir / MODEL_DIR
    model.save_pretrained(str(dest), safe_serialization=True)
    trimmed = rewrite_tokenizer(spec, kept)
    (dest / "tokenizer.json").write_text(json.dumps(trimmed, ensure_ascii=False), encoding="utf-8")
    for name in TOKENIZER_FILES[1:]:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, dest / name)
    by_id = {i: p for p, i in trimmed["model"]["vocab"].items()}
    (dest / "vocab.txt").write_text("".join(by_id[i] + "\n" for i in range(len(kept))))
    params = sum(p.numel() for p in model.parameters())
    ctx.log(
        f"vocabulary {before} -> {len(kept)} pieces (seen >= {cfg.min_count} times, plus "
        f"specials and single characters); {student.meta['params']:,} -> {params:,} params"
    )
    return Output(
        "hf",
        {
            **student.meta,
            "file": MODEL_DIR,
            "params": params,
            "vocab": len(kept),
            "vocab_before": before,
            "trim_min_count": cfg.min_count,
        },
    )
