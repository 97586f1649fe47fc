"""probe: held-out text of another kind than the training data, sampled once (seeded) and
cached, so evaluate can say how faithful a student is on text it never saw
(packager.data.probe). Text builds only; the default is builtin:fortunes."""

from __future__ import annotations

import json

from packager.artifact import Output
from packager.config import ProbeConfig
from packager.stage import StageContext, register_stage


@register_stage(ProbeConfig)
def probe(_inp: None, cfg: ProbeConfig, ctx: StageContext) -> Output:
    from packager.data.probe import probe_texts

    texts = probe_texts(cfg.source, cfg.limit, cfg.seed, cfg.text_column)
    with (ctx.workdir / "probe.jsonl").open("w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    ctx.log(f"{cfg.source}: {len(texts)} held-out texts")
    return Output(
        "data",
        {"file": "probe.jsonl", "modality": "text", "source": cfg.source, "texts": len(texts)},
    )
