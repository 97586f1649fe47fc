"""distill: train the recipe's student on the teacher's outputs (and the labels, when used).

Array data: a cnn/mlp student on the teacher's soft targets, Hinton's KD + CE by default
(packager.nets.train). Text data: a transformer student derived from the teacher (k of its n
layers, optionally narrower feed-forwards), trained on the recipe's weighted losses
(packager.distill.text_trainer). Image data: a cnn with global pooling or the teacher pruned
to a width (packager.distill.image), refused unless smaller than the teacher, trained on the
teacher's logits over augmented training images. The handler is chosen by the teacher
artifact's modality.
"""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import DistillStepConfig
from packager.errors import RecipeError
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import images_of, splits_of
from packager.stages.distill_api import HANDLERS as API_HANDLERS

STUDENT_FACTORIES = {"cnn": "packager.nets.array:cnn", "mlp": "packager.nets.array:mlp"}


def _array(teacher: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    import torch

    from packager.distill.losses import kd_loss
    from packager.nets.array import build, load_torch, save_torch
    from packager.nets.train import fit, predict_logits

    splits = splits_of(ctx.inputs["data"])
    x_train = splits.model_input("train")
    teacher_model = load_torch(teacher.path, teacher.meta)
    # The teacher is frozen: its logits on the training set are computed once, not per epoch.
    soft = predict_logits(teacher_model, torch.from_numpy(x_train))
    kwargs = array_student_kwargs(splits, cfg.student, int(soft.shape[1]))
    factory = STUDENT_FACTORIES.get(cfg.student.arch)
    if factory is None:
        raise RecipeError(f"distill.student.arch = {cfg.student.arch} needs image data")
    torch.manual_seed(cfg.seed)
    student = build(factory, kwargs)
    _smaller(student, teacher_model, torch.from_numpy(x_train[:1]), cfg)

    w = cfg.losses.active() if cfg.losses is not None else None

    def loss_fn(logits, labels, idx):
        if w is None:  # the classic Hinton mix, from alpha
            return kd_loss(logits, soft[idx], labels, cfg.temperature, cfg.alpha)
        kd = kd_loss(logits, soft[idx], None, cfg.temperature, 1.0) if "logits_kd" in w else 0.0
        ce = torch.nn.functional.cross_entropy(logits, labels) if "label_ce" in w else 0.0
        return w.get("logits_kd", 0.0) * kd + w.get("label_ce", 0.0) * ce

    res = fit(
        student,
        loss_fn,
        x_train,
        splits.y["train"],
        splits.model_input("val"),
        splits.y["val"],
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        weight_decay=cfg.weight_decay,
        patience=cfg.patience,
        reporter=ctx.reporter,
        description="distill",
    )
    meta = save_torch(student, ctx.workdir, factory, kwargs)
    return _array_output(teacher, cfg, ctx, meta, res)


def array_student_kwargs(splits, student, num_classes: int) -> dict:
    """The cnn/mlp factory's arguments (distill trains it, sketch costs it untrained). The
    student answers in the teacher's classes (its output width), not max(label) + 1."""
    kwargs = {
        "in_shape": list(splits.preprocessing.sample_shape),
        "num_classes": num_classes,
        "hidden": student.hidden,
    }
    if student.arch == "cnn":
        kwargs["channels"] = list(student.channels)
    return kwargs


def _smaller(student, teacher, x, cfg: DistillStepConfig) -> None:
    from packager.distill.image import smaller_or_refused
    from packager.nets.array import count_macs, param_count

    def size(m):
        return {"params": param_count(m), "macs": count_macs(m, x)}

    smaller_or_refused(size(student), size(teacher), cfg.allow_larger)


def _array_output(teacher: Artifact, cfg, ctx: StageContext, meta: dict, res) -> Output:
    ratio = teacher.meta["params"] / max(1, meta["params"])
    ctx.log(
        f"student {cfg.student.arch}: {meta['params']:,} params ({ratio:.1f}x fewer than the teacher), "
        f"best val accuracy {res.best_val_accuracy:.4f} at epoch {res.best_epoch}/{res.epochs_run}"
    )
    return Output(
        "torch",
        {
            **meta,
            "arch": cfg.student.arch,
            "size_bytes": (ctx.workdir / meta["file"]).stat().st_size,
            "teacher_params": teacher.meta["params"],
            "compression": ratio,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            "val_accuracy": res.best_val_accuracy,
            "curve": res.curve,
        },
    )


def _text(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    import numpy as np
    import torch

    from packager.data.text import load_tokenizer, stream_split
    from packager.distill import text_trainer as T
    from packager.distill.transformer import derive_student, init_kind, matched_states
    from packager.nets.hf import feeds, input_names
    from packager.sources.hf import MODEL_DIR, load_model, save_tokenizer

    data, spec, task = ctx.inputs["data"], cfg.student, cfg.task
    if task == "text-classification" and not data.meta["labels"]:
        raise RecipeError(
            f"text-classification needs labels: data.source {data.meta['source']} has no "
            f"{data.meta.get('label_column')!r} column (data.label_column)"
        )
    info = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")}
    folder = teacher_art.file()
    torch.manual_seed(cfg.seed)  # the student's init, its projections and dropout: one stream
    teacher = load_model(folder, task, eager_attention="attention_kl" in cfg.weights)
    for p in teacher.parameters():
        p.requires_grad = False
    tok = load_tokenizer(folder, data.meta["max_length"])
    names = input_names(teacher)  # a derived student takes the same inputs
    sample_texts, _ = next(stream_split(data.path, "train", 128), ([], []))
    student, ids = derive_student(teacher, spec, feeds(tok, sample_texts, names))
    if task == "feature-extraction" and student.config.hidden_size != teacher.config.hidden_size:
        raise RecipeError(
            f"distill.student.hidden_size {student.config.hidden_size}: a feature-extraction "
            f"student must keep the teacher's width ({teacher.config.hidden_size}), since its "
            "embeddings are compared with (and replace) the teacher's; use fewer layers or a "
            "narrower intermediate_size instead"
        )
    if spec.freeze_embeddings:
        T.freeze_embeddings(student)
    if cfg.int4_embedding_block is not None:  # the frozen table as its int4 blocks will be
        from packager.quantize.embeddings import int4_round_trip

        table = student.get_input_embeddings().weight
        rounded = int4_round_trip(
            table.detach().numpy(), cfg.int4_embedding_block, cfg.int4_embedding_symmetric
        )
        with torch.no_grad():
            table.copy_(torch.from_numpy(rounded))
    text = T.TextData(data.path, data.meta["sizes"]["train"], data.meta["stream_batch"])
    if "teacher_outputs" in ctx.inputs:  # a memory map: the rows a batch needs are read
        text.teacher_outputs = np.load(ctx.inputs["teacher_outputs"].file(), mmap_mode="r")
    res = T.train(teacher, student, matched_states(ids), tok, names, text, cfg, info, ctx.reporter)
    dest = ctx.workdir / MODEL_DIR
    student.save_pretrained(str(dest), safe_serialization=True)
    save_tokenizer(folder, dest)
    init = init_kind(teacher.config, spec)
    return _text_output(teacher_art, teacher, student, ids, init, cfg, ctx, info, res)


def _text_output(teacher_art, teacher, student, ids, init, cfg, ctx, info, res) -> Output:
    n, tn = sum(p.numel() for p in student.parameters()), teacher_art.meta["params"]
    metric = "val_accuracy" if cfg.task == "text-classification" else "val_cosine"
    ctx.log(
        f"student: {len(ids)} of {teacher.config.num_hidden_layers} layers {ids}"
        f" ({init} init), {n:,} params ({tn / n:.1f}x fewer); "
        f"losses {cfg.weights}; {metric.replace('_', ' ')} {res.curve[0]['val']:.4f} before, "
        f"{res.best_val:.4f} at epoch {res.best_epoch}/{res.epochs_run}"
    )
    return Output(
        "hf",
        {
            **info,
            "file": "model",
            "task": cfg.task,
            "arch": "transformer",
            "params": n,
            "teacher_params": tn,
            "compression": tn / n,
            "layers_kept": ids,
            "init": init,
            "losses": cfg.weights,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            metric: res.best_val,
            "curve": res.curve,
        },
    )


def _image_student(teacher_art: Artifact, teacher, cfg: DistillStepConfig, x):
    """(student, factory, kwargs, shapes): a fresh cnn, or the teacher pruned to a width."""
    from packager.distill.image import pruned
    from packager.nets.array import build

    spec = cfg.student
    if spec.arch == "pruned":
        student, shapes = pruned(teacher, spec.width, x)
        return student, teacher_art.meta["factory"], teacher_art.meta["kwargs"], shapes
    if spec.arch != "cnn":
        raise RecipeError(
            f"distill.student.arch = {spec.arch} does not apply to images (cnn, pruned)"
        )
    kwargs = {
        "in_shape": list(x.shape[1:]),
        "num_classes": int(teacher_art.meta["output_classes"]),
        "channels": list(spec.channels),
        "hidden": spec.hidden,
    }
    torch_seed(cfg.seed)
    return (
        build("packager.nets.array:image_cnn", kwargs),
        "packager.nets.array:image_cnn",
        kwargs,
        None,
    )


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _image(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    import torch

    from packager.distill import image as D
    from packager.nets.array import count_macs, load_torch, param_count, save_torch

    data = images_of(ctx.inputs["data"])
    teacher = load_torch(teacher_art.path, teacher_art.meta)
    x = torch.from_numpy(data.array("val", limit=2))
    torch_seed(cfg.seed)
    student, factory, kwargs, shapes = _image_student(teacher_art, teacher, cfg, x)
    size = {"params": param_count(student), "macs": count_macs(student, x)}
    D.smaller_or_refused(size, teacher_art.meta, cfg.allow_larger)
    weights = D.default_weights(cfg, data.labeled)
    res = D.train(teacher, student, data, cfg, weights, ctx.reporter)
    meta = save_torch(
        student, ctx.workdir, factory, kwargs, teacher_art.meta.get("import_path"), shapes
    )
    tn, tm = teacher_art.meta["params"], teacher_art.meta.get("macs") or 0
    ctx.log(
        f"student {cfg.student.arch}: {size['params']:,} params ({tn / size['params']:.1f}x fewer), "
        f"{size['macs'] / 1e6:.1f} M MACs ({tm / max(size['macs'], 1):.1f}x fewer); top-1 "
        f"agreement with the teacher on val {res.start_val_agreement:.4f} before, "
        f"{res.best_val_agreement:.4f} at epoch {res.best_epoch}/{res.epochs_run}"
    )
    keep = {k: teacher_art.meta.get(k) for k in ("labels", "output_classes")}
    return Output(
        "torch",
        {
            **meta,
            **keep,
            "macs": size["macs"],
            "modality": "image",
            "arch": cfg.student.arch,
            "size_bytes": (ctx.workdir / meta["file"]).stat().st_size,
            "teacher_params": tn,
            "teacher_macs": tm,
            "compression": tn / size["params"],
            "losses": weights,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            "val_agreement": res.best_val_agreement,
            "start_val_agreement": res.start_val_agreement,
            "curve": res.curve,
        },
    )


def _lm(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    """A causal-LM student (packager.distill.lm_distill), here or under torchrun (nproc > 1)."""
    from packager.distill import lm_ddp, lm_distill
    from packager.stages.distill_api import lm_settings

    data, gen, topk = (ctx.inputs.get(r) for r in ("data", "generated", "teacher_logits"))
    s = lm_settings(cfg, cfg.weights)
    job = {
        "teacher": str(teacher_art.file()),
        "data": str(data.path),
        "generated": str(gen.file()) if gen else None,
        "topk": str(topk.path) if topk else None,
        "out": str(ctx.workdir / "model"),
        "spec": cfg.student.to_json(),
        "settings": s,
        "length": data.meta["max_length"],
        "threads": cfg.threads,
    }
    if cfg.nproc > 1:
        res = lm_ddp.launch(job, cfg.nproc, ctx.workdir)
    else:
        res = lm_distill.run(job, reporter=ctx.reporter)
    return _lm_output(teacher_art, cfg, ctx, res)


def _lm_output(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext, res) -> Output:
    from packager.sources.lm import describe_lm, load_causal_lm

    desc = describe_lm(load_causal_lm(ctx.workdir / "model"))
    n, tn = desc["params"], teacher_art.meta["params"]
    ctx.log(
        f"student: layers {res['layers_kept']} of {teacher_art.meta['layers']} ({res['init']}), "
        f"{n:,} params ({tn / n:.1f}x fewer); losses {cfg.weights}; {res['steps']} steps in "
        f"{res['seconds']:.0f} s on {cfg.nproc} process(es), on-policy batches {res['on_policy_batches']}"
    )
    keep = ("layers_kept", "init", "steps", "epochs_run", "curve", "on_policy_batches")
    meta = {k: res[k] for k in keep} | {"best_epoch": res["epochs_run"], "nproc": cfg.nproc}
    meta |= {"file": "model", "task": cfg.task, "arch": "causal-lm", "modality": "lm"}
    meta |= {"teacher_params": tn, "compression": tn / n, "losses": cfg.weights, **desc}
    meta |= {"on_policy_fraction": res["on_policy_batches"] / max(1, res["steps"])}
    meta |= {"source": cfg.student.source}
    return Output("hf", meta)


def _static(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    """A static-embedding student (packager.distill.static): model2vec's table of the teacher,
    then, with student.tune, trained on the teacher's cached outputs."""
    from packager.distill import static as S
    from packager.sources.hf import MODEL_DIR, save_tokenizer

    if ctx.inputs["data"].modality != "text":
        raise RecipeError("distill.student.arch static needs a text teacher (hf:) and text data")
    data, folder = ctx.inputs["data"], teacher_art.file()
    student = S.distill_table(folder, cfg.student.sif_coefficient)
    curve = {"best_epoch": 0, "epochs_run": 0, "curve": []}
    classes = len(data.meta["labels"]) if cfg.task == "text-classification" else None
    if cfg.student.tune:
        s = {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr", "seed", "patience")}
        s |= {"weights": cfg.weights, "temperature": cfg.temperature}
        info = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")}
        tune_data = S.tune_data(
            folder,
            cfg.task,
            info,
            data.path,
            data.meta["max_length"],
            ctx.inputs["teacher_outputs"].file(),
        )
        student, res = S.tune(student, tune_data, s, classes)
        curve = {"best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "curve": res.curve}
    dest = ctx.workdir / MODEL_DIR
    dest.mkdir()
    student.save(dest)
    save_tokenizer(folder, dest)
    n, tn = (
        student.table.size + (0 if student.head is None else student.head.size),
        teacher_art.meta["params"],
    )
    metric = "val_accuracy" if classes else "val_cosine"
    best = (
        curve["curve"][-1]["val"] if not curve["curve"] else max(c["val"] for c in curve["curve"])
    )
    ctx.log(
        f"static student: {student.table.shape[0]:,} x {student.table.shape[1]} table, {n:,} params "
        f"({tn / n:.1f}x fewer); {metric.replace('_', ' ')} "
        + (
            f"{curve['curve'][0]['val']:.4f} untuned, {best:.4f} at epoch {curve['best_epoch']}"
            if curve["curve"]
            else "untuned"
        )
    )
    meta = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")} | {"pooling": "mean"}
    meta |= {"file": MODEL_DIR, "task": cfg.task, "arch": "static", "modality": "text"}
    meta |= {"params": n, "teacher_params": tn, "compression": tn / n, "losses": cfg.weights}
    return Output("static", {**meta, **curve, **({metric: best} if curve["curve"] else {})})


_HANDLERS = Handlers("distill", array=_array, text=_text, image=_image, lm=_lm)


@register_stage(DistillStepConfig, name="distill", version=6)
def distill(teacher: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    if teacher.kind == "api":  # a teacher only called: its answers are what the student learns
        return API_HANDLERS(ctx.inputs["data"].modality)(teacher, cfg, ctx)
    if cfg.student.arch == "static":  # a table, not layers: its own handler for text
        return _static(teacher, cfg, ctx)
    return _HANDLERS(ctx.inputs["data"].modality)(teacher, cfg, ctx)
