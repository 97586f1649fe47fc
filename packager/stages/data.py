"""data: materialise the train/val/test split once, so every later stage keys on its content.

Arrays (builtin:digits, .npz, .npy) become one data.npz; text files are streamed into
train/val/test .jsonl files (packager.data.text); images are listed (files with their sha256,
or rows of an array or datasets folder) into seeded splits, read later a batch at a time
(packager.data.image). The handler is chosen by the config's modality.
"""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import DataConfig, DataStepConfig
from packager.data import Splits, load_splits
from packager.stage import Handlers, StageContext, register_stage


def _text(cfg: DataConfig, ctx: StageContext) -> Output:
    from packager.data.text import build_splits

    meta = build_splits(cfg, ctx.workdir)
    if cfg.augment is not None:  # variants of the training texts, after the split
        from packager.data.text_augment import augment_train

        original = meta["sizes"]["train"]
        meta["sizes"]["train"] = augment_train(ctx.workdir, cfg.augment)
        meta["augmented"] = meta["sizes"]["train"] - original
    ctx.log(f"{cfg.source}: " + ", ".join(f"{s} {n}" for s, n in meta["sizes"].items()))
    return Output("data", meta)


def _array(cfg: DataConfig, ctx: StageContext) -> Output:
    splits = load_splits(cfg)
    splits.save(ctx.workdir / "data.npz")
    sizes = {s: len(v) for s, v in splits.x.items()}
    ctx.log(f"{splits.source}: train {sizes['train']}, val {sizes['val']}, test {sizes['test']}")
    return Output(
        "data",
        {
            "file": "data.npz",
            "modality": "array",
            "source": splits.source,
            "sizes": sizes,
            "labels": splits.labels,
            "preprocessing": splits.preprocessing.to_manifest(),
        },
    )


def _image(cfg: DataConfig, ctx: StageContext) -> Output:
    from packager.data.image import build_listing

    meta = build_listing(cfg, ctx.workdir)
    labels = f", {len(meta['labels'])} classes" if meta["labels"] else ", unlabeled"
    ctx.log(
        f"{cfg.source} ({meta['kind']}): "
        + ", ".join(f"{s} {n}" for s, n in meta["sizes"].items())
        + labels
    )
    return Output("data", meta)


def _lm(cfg: DataConfig, ctx: StageContext) -> Output:
    from packager.data.lm import build_lm_splits

    meta = build_lm_splits(cfg, ctx.workdir)
    ctx.log(
        f"{cfg.source} ({meta['kind']}): " + ", ".join(f"{s} {n}" for s, n in meta["sizes"].items())
    )
    return Output("data", meta)


_HANDLERS = Handlers("data", array=_array, text=_text, image=_image, lm=_lm)


@register_stage(DataStepConfig, version=3)
def data(_inp: None, cfg: DataStepConfig, ctx: StageContext) -> Output:
    return _HANDLERS(cfg.modality)(cfg, ctx)


def splits_of(art: Artifact) -> Splits:
    """The array splits of a data artifact."""
    return Splits.load(art.file(), art.meta)


def images_of(art: Artifact):
    """The image splits of a data artifact (packager.data.image.ImageData)."""
    from packager.data.image import ImageData

    return ImageData(art.file(), art.meta)
