"""data: materialise the train/val/test split once, so every later stage keys on its content."""

from __future__ import annotations

from packager.data import Splits, load_splits
from packager.recipe import DataConfig
from packager.stage import Artifact, Output, StageContext, register_stage


@register_stage(DataConfig)
def data(inp: None, cfg: DataConfig, ctx: StageContext) -> Output:
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
