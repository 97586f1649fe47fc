"""data: materialise the train/val/test split once, so every later stage keys on its content."""

from __future__ import annotations

from packager.data import Splits, load_splits
from packager.recipe import DataConfig, is_text_source
from packager.stage import Artifact, Output, StageContext, register_stage


@register_stage(DataConfig)
def data(inp: None, cfg: DataConfig, ctx: StageContext) -> Output:
    if is_text_source(cfg.source):  # text files: streamed into .jsonl splits (packager.data.text)
        from packager.data.text import build_splits

        meta = build_splits(cfg, ctx.workdir)
        ctx.log(f"{cfg.source}: " + ", ".join(f"{s} {n}" for s, n in meta["sizes"].items()))
        return Output("data", meta)
    splits = load_splits(cfg)
    splits.save(ctx.workdir / "data.npz")
    sizes = {s: len(v) for s, v in splits.x.items()}
    ctx.log(f"{splits.source}: train {sizes['train']}, val {sizes['val']}, test {sizes['test']}")
    return Output(
        "data",
        {
            "file": "data.npz",
            "source": splits.source,
            "sizes": sizes,
            "labels": splits.labels,
            "preprocessing": splits.preprocessing.to_manifest(),
        },
    )


def splits_of(art: Artifact) -> Splits:
    return Splits.load(art.file(), art.meta)


def is_text(art: Artifact) -> bool:
    """A text data artifact (train/val/test .jsonl) rather than array splits."""
    return art.meta.get("format") == "text"
