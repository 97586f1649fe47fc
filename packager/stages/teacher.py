"""teacher: build, train or load the teacher once; cached like any other stage.

Every teacher is asked for what the data needs through its source's Teacher class
(packager.sources.teacher); a teacher you can only call (api:MODEL) is asked for its answers
instead (packager.stages.teacher_api). Array data: `builtin:` teachers are trained here
(seeded), `python:` factories load their weights (packager.sources.teachers). Image data: a pretrained architecture or a python:
factory with local weights, checked on real images, its output classes its own. Text data: an `hf:` folder is copied into the cache with
its tokenizer and checked on the data's text (packager.sources.hf).
"""

from __future__ import annotations

from typing import Any

from packager.artifact import Artifact, Output
from packager.config import TeacherStepConfig
from packager.errors import RecipeError
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import images_of, splits_of
from packager.stages.teacher_api import HANDLERS as API_HANDLERS


def _compute(cfg: TeacherStepConfig):
    """Where a teacher trained here trains (packager.nets.device.Compute); None: loaded only."""
    from packager.nets.device import Compute

    return Compute(**cfg.compute.job()) if cfg.compute is not None else None


def _array(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    import torch

    from packager.nets.array import save_torch
    from packager.nets.train import accuracy
    from packager.sources.teacher import teacher_of

    splits = splits_of(data)
    t = teacher_of(cfg).array_model(splits, ctx.reporter, _compute(cfg))
    meta = save_torch(t.model, ctx.workdir, t.factory, t.kwargs, t.info.get("import_path"))
    val = accuracy(
        t.model, torch.from_numpy(splits.model_input("val")), torch.from_numpy(splits.y["val"])
    )
    ctx.log(f"{cfg.source}: {meta['params']:,} params, val accuracy {val:.4f}")
    return Output("torch", {**meta, "source": cfg.source, "val_accuracy": val, **t.info})


def _text(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    """Copy model + tokenizer into the cache, checked on the data's text."""
    from packager.data.text import load_tokenizer, read_split
    from packager.sources import hf
    from packager.sources.teacher import teacher_of

    task = cfg.task
    folder = teacher_of(cfg).folder()
    info: dict[str, Any] = {"folder": str(folder)}
    if cfg.train.fine_tune:
        model, info["fine_tune_val_accuracy"] = _fine_tuned(folder, data, cfg, ctx)
    else:
        model = hf.load_model(folder, task)
    dest = ctx.workdir / hf.MODEL_DIR
    model.save_pretrained(str(dest), safe_serialization=True)
    hf.save_tokenizer(folder, dest)
    if task == "text-classification":
        hf.check_labels(model, data.meta["labels"], cfg.source)
    else:
        info |= hf.pooling_of(folder)
    tok = load_tokenizer(dest, data.meta["max_length"])
    texts, y = read_split(data.path, "val", limit=256)
    info |= _check_on_text(model, tok, texts, y, task, info, cfg.source)
    info |= hf.describe(model)
    info |= {"file": hf.MODEL_DIR, "task": task, "source": cfg.source}
    info["trained"] = cfg.train.fine_tune
    shown = f", val accuracy {info['val_accuracy']:.4f}" if "val_accuracy" in info else ""
    pooled = (
        f"; pooling {info['pooling']}, normalize {info['normalize']}" if "pooling" in info else ""
    )
    ctx.log(
        f"{cfg.source}: {info['architecture']}, {info['layers']} layers x {info['hidden_size']}, "
        f"{info['params']:,} params{pooled}{shown}"
    )
    return Output("hf", info)


def _fine_tuned(folder, data: Artifact, cfg: TeacherStepConfig, ctx: StageContext):
    """(the folder fine-tuned on the data's training split, its best val accuracy)."""
    from packager.data.text import load_tokenizer
    from packager.sources.finetune import fine_tune_classifier

    if cfg.task != "text-classification" or not data.meta["labels"]:
        raise RecipeError(
            "teacher.train.fine_tune: fine-tunes a text-classification teacher on labelled "
            "data (task text-classification, data.label_column)"
        )
    t = cfg.train
    settings = {"epochs": t.epochs, "batch_size": t.batch_size, "lr": t.lr, "seed": t.seed}
    settings["threads"] = t.threads
    tok = load_tokenizer(folder, data.meta["max_length"])
    model, acc = fine_tune_classifier(
        folder, data.meta["labels"], tok, data.path, settings, ctx.reporter, _compute(cfg)
    )
    ctx.log(f"fine-tuned {t.epochs} epochs on the training split: val accuracy {acc:.4f}")
    return model, acc


def _check_on_text(model, tok, texts, y, task: str, info: dict, source: str) -> dict[str, Any]:
    """The teacher runs on the data's text (its output width, and accuracy for classifiers)."""
    import torch

    from packager.data.text import encode
    from packager.nets.text import predict

    try:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in encode(tok, texts[:8]).items()})
    except Exception as err:
        raise RecipeError(f"teacher {source}: fails on the data's text ({err})") from None
    checked: dict[str, Any] = {"output_dim": int(out[0].shape[-1])}
    if task == "text-classification":
        logits = predict(model, tok, texts, task, info)
        checked["val_accuracy"] = float((logits.argmax(-1) == y).mean())
    return checked


def _image(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    """A pretrained image teacher (builtin architecture + weights, or a python: factory),
    checked on real validation images; its output classes and class names are its own."""
    import torch

    from packager.nets.array import count_macs, save_torch
    from packager.sources.teacher import teacher_of
    from packager.sources.teachers import check_on_images, class_names

    images = images_of(data)
    probe = images.array("val", limit=32)
    source = teacher_of(cfg)
    t = check_on_images(source.image_model(images.input_shape()), probe[:2], cfg.source)
    classes = t.info["output_classes"]
    names = class_names(cfg, classes, data.meta["labels"], source.class_names(classes))
    meta = save_torch(t.model, ctx.workdir, t.factory, t.kwargs, t.info.get("import_path"))
    meta["macs"] = count_macs(t.model, torch.from_numpy(probe[:1]))
    info = {"source": cfg.source, "modality": "image", "labels": names, **t.info}
    y = images.labels("val", limit=32)
    shown = ""
    if y is not None and len(data.meta["labels"]) == classes:  # labels are its outputs
        with torch.no_grad():
            pred = t.model(torch.from_numpy(probe)).argmax(-1).numpy()
        info["val_accuracy"] = float((pred == y).mean())
        shown = f", val accuracy {info['val_accuracy']:.4f} ({len(y)} images)"
    ctx.log(
        f"{cfg.source}: {meta['params']:,} params, {meta['macs'] / 1e6:.1f} M MACs, "
        f"{classes} output classes{shown}"
    )
    return Output("torch", {**meta, **info})


def _lm(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    """A causal LM: an hf: folder copied into the cache, or builtin:tiny-llama trained here on
    the data's training text; either way checked by its perplexity on validation text."""
    from packager.nets.lm import torch_perplexity
    from packager.sources import hf, lm
    from packager.sources.teacher import teacher_of

    dest = ctx.workdir / hf.MODEL_DIR
    seq = data.meta["max_length"]
    info = teacher_of(cfg).causal_lm(data.path, seq, dest, ctx.reporter, _compute(cfg))
    model = lm.load_causal_lm(dest)
    desc = lm.describe_lm(model)
    eos = (desc["eos_token_ids"] or [None])[0]
    encode = lm.encoder(lm.lm_tokenizer(dest))
    ppl = torch_perplexity(model, encode, eos, data.path, "val", data.meta["max_length"], 16)
    ctx.log(
        f"{cfg.source}: {desc['architecture']}, {desc['layers']} layers x {desc['hidden_size']}, "
        f"{desc['params']:,} params, vocab {desc['vocab_size']}; val perplexity {ppl:.2f}"
    )
    meta = {**info, **desc, "file": hf.MODEL_DIR, "task": cfg.task, "source": cfg.source}
    return Output("hf", {**meta, "modality": "lm", "val_perplexity": ppl})


_HANDLERS = Handlers("teacher", array=_array, text=_text, image=_image, lm=_lm)


@register_stage(TeacherStepConfig, name="teacher", version=8)
def teacher(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    from packager.sources.teacher import teacher_of

    if not teacher_of(cfg).local:  # only called: its answers on the data are its outputs
        return API_HANDLERS(data.modality)(data, cfg, ctx)
    return _HANDLERS(data.modality)(data, cfg, ctx)
