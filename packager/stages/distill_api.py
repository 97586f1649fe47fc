"""The distill stage for a teacher you can only call (an `api` teacher artifact): the student
starts from its own folder (distill.student.source) and learns the endpoint's answers.

Embeddings: the student's pooled output is trained towards the API's vectors (cosine and MSE),
through a learned Dense projection when the widths differ; the projection ships in the
student's folder (a sentence-transformers Dense module) and in its ONNX graph. Labels: the
student is trained on the endpoint's labels (cross-entropy), the answers no label parsed from
left out. Language models: sequence-level KD on the endpoint's completions, plus token-level KD
on its top-k log-probabilities where its tokens are the student's (packager.distill.lm.api).
"""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from packager.artifact import Artifact, Output
from packager.config import DistillStepConfig
from packager.stage import Handlers, StageContext


def lm_settings(cfg: DistillStepConfig, weights: dict[str, float]) -> dict[str, Any]:
    """The LM trainer's settings (packager.distill.lm.trainer.LMTrainSettings) from the config,
    with the losses it will use."""
    s = {"weights": weights, "temperature": cfg.temperature, "jsd_beta": cfg.jsd_beta}
    s |= {"on_policy": cfg.on_policy, "on_policy_tokens": cfg.on_policy_tokens, "lr": cfg.lr}
    s |= {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay}
    return s | {"warmup": cfg.warmup, "seed": cfg.seed, "max_steps": cfg.max_steps}


def _tokens(labeled, tok, base_folder, data: Artifact, ctx: StageContext):
    """The answered training texts' token ids (packager.data.tokens), in the step's folder
    while the student trains."""
    from packager.data.text import pad_token
    from packager.data.tokens import Tokens, write_tokens

    out = ctx.workdir / "tokens"
    write_tokens(labeled, "train", tok, data.meta["stream_batch"], out)
    return Tokens(out, pad_token(base_folder, tok)[1])


def _train(student, tok, names, text, cfg: DistillStepConfig, info, ctx: StageContext, target):
    """The student trained on the answers in this process, on the build's device and precision
    (packager.distill.text.trainer); (its result, the compute record)."""
    from packager.distill.text import trainer as T
    from packager.nets.device import Compute
    from packager.nets.loop import compute_record, this_run
    from packager.stages.distill_jobs import train_settings

    work = str(ctx.scratch) if ctx.scratch else None
    run = this_run(Compute(**cfg.compute.job()), work, cfg.compute.checkpoint_steps)
    s = train_settings(cfg) | {"task": cfg.task, "weights": cfg.weights, "threads": cfg.threads}
    s["relation_heads"] = cfg.relation_heads
    res = T.train(None, student, [], tok, names, text, s, info, ctx.reporter, run, target)
    shutil.rmtree(text.tokens.folder)
    return res, compute_record(run, res, "texts/s")


def _text(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    import torch

    from packager.data.text import load_tokenizer, stream_split
    from packager.distill.text import trainer as T
    from packager.distill.text.transformer import derive_student, init_kind
    from packager.nets.text import DENSE, feeds, input_names
    from packager.sources import hf
    from packager.stages.teacher_api import LABELED, OUTPUTS

    data, spec, task = ctx.inputs["data"], cfg.student, cfg.task
    base_folder = hf.resolve(spec.source, "distill.student.source")
    torch.manual_seed(cfg.seed)
    base = hf.load_model(base_folder, task)
    if task == "text-classification":
        hf.check_labels(base, data.meta["labels"], spec.source)
    info = hf.pooling_of(base_folder) if task == "feature-extraction" else {}
    tok = load_tokenizer(base_folder, data.meta["max_length"])
    names = input_names(base)
    labeled = teacher_art.path / LABELED
    sample_texts, _ = next(stream_split(labeled, "train", 128), ([], []))
    student, ids = derive_student(base, spec, feeds(tok, sample_texts, names))
    rows = sum(1 for _ in (labeled / "train.jsonl").open(encoding="utf-8"))
    text = T.TextData(
        labeled, _tokens(labeled, tok, base_folder, data, ctx), data.meta["stream_batch"]
    )
    target, width = None, None
    if task == "feature-extraction":
        text.teacher_outputs = np.load(teacher_art.file(OUTPUTS), mmap_mode="r")
        target = np.load(teacher_art.path / "val.npy")
        width = int(text.teacher_outputs.shape[1])
        hidden = student.config.hidden_size
        if width != hidden:  # the API's vectors are wider or narrower: a learned projection
            setattr(student, DENSE, torch.nn.Linear(hidden, width))
            ctx.log(
                f"the endpoint's vectors are {width}-d, the student's {hidden}-d: a Dense projection learns the map"
            )
    res, compute = _train(student, tok, names, text, cfg, info, ctx, target)
    dest = ctx.workdir / hf.MODEL_DIR
    dense = getattr(student, DENSE, None)
    if dense is not None:
        delattr(student, DENSE)  # saved as its own module, which load_model attaches again
    student.save_pretrained(str(dest), safe_serialization=True)
    hf.save_tokenizer(base_folder, dest)
    if dense is not None:
        hf.save_dense(dense, dest)
    n = sum(p.numel() for p in student.parameters())
    n += sum(p.numel() for p in dense.parameters()) if dense is not None else 0
    metric = "val_accuracy" if task == "text-classification" else "val_cosine"
    ctx.log(
        f"student from {spec.source}: {len(ids)} of {base.config.num_hidden_layers} layers {ids}, "
        f"{n:,} params; losses {cfg.weights} on the endpoint's {teacher_art.meta['answers']} of "
        f"{rows} texts; {metric.replace('_', ' ')} (against the teacher) "
        f"{res.curve[0]['val']:.4f} before, {res.best_val:.4f} at epoch {res.best_epoch}/{res.epochs_run}"
    )
    return Output(
        "hf",
        {
            **info,
            "file": hf.MODEL_DIR,
            "task": task,
            "arch": "transformer",
            "params": n,
            "teacher_params": None,
            "layers_kept": ids,
            "init": "given",  # the student's own folder (its layers as chosen), not the teacher's
            "init_detail": init_kind(base.config, spec),
            "source": spec.source,
            "output_dim": width,
            "losses": cfg.weights,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            metric: res.best_val,
            "curve": res.curve,
            "trained_on": rows,
            "compute": compute,
        },
    )


def _lm(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    """A causal-LM student from its own folder: sequence-level KD on the endpoint's completions
    (and the data's text), token-level KD on the top-k of the completions whose tokens are the
    student's; sequence-level only, said in the log and the output, when none are."""
    from packager.distill.lm.api import cache_api_sequences
    from packager.sources import hf, lm
    from packager.stages.distill_jobs import job_for, run_entry

    data = ctx.inputs["data"]
    folder = hf.resolve(cfg.student.source, "distill.student.source")
    tok, length = lm.lm_tokenizer(folder), data.meta["max_length"]
    eos = (lm.describe_lm(lm.load_causal_lm(folder))["eos_token_ids"] or [None])[0]
    weights, k = dict(cfg.weights), teacher_art.meta.get("top_logprobs") or 0
    k = k if "logits_kd" in weights else 0
    packed = ctx.workdir / "packed"
    packed.mkdir()
    aligned = cache_api_sequences(data.path, teacher_art.file(), tok, eos, length, k, packed)
    topk = packed if (packed / "values.npy").is_file() else None
    if topk is None:
        weights.pop("logits_kd", None)
        weights = weights or {"label_ce": 1.0}
        why = "no top-k log-probabilities" if not k else "no completion's tokens are the student's"
        kd = f"sequence-level only ({why}): cross-entropy on the endpoint's completions"
    else:
        kd = (
            f"sequence-level and token-level: top-{k} KL on {aligned['positions']:,} positions of "
            f"{aligned['aligned']} of {aligned['completions']} completions whose tokens are the "
            f"student's (the rest: sequence-level only)"
        )
    ctx.log(kd)
    job = job_for(cfg, ctx) | {
        "teacher": None,
        "student_folder": str(folder),
        "tokens": str(packed),  # sequences.npy, as the tokenize step writes them
        "topk": str(topk) if topk else None,
        "out": str(ctx.workdir / "model"),
        "spec": cfg.student.to_json(),
        "settings": lm_settings(cfg, weights),
        "threads": cfg.threads,
    }
    res = run_entry("packager.distill.lm.distill:run", job, cfg, ctx)
    desc = lm.describe_lm(lm.load_causal_lm(ctx.workdir / "model"))
    ctx.log(
        f"student from {cfg.student.source}: {desc['params']:,} params; losses {weights}; "
        f"{res['steps']} steps in {res['seconds']:.0f} s"
    )
    keep = ("init", "steps", "epochs_run", "curve", "on_policy_batches")
    meta = {k: res[k] for k in keep} | {"best_epoch": res["epochs_run"], "nproc": cfg.nproc}
    meta |= {"file": "model", "task": cfg.task, "arch": "causal-lm", "modality": "lm", **desc}
    meta |= {"teacher_params": None, "losses": weights, "source": cfg.student.source}
    meta |= {"kd": kd, "token_level": topk is not None, "alignment": aligned}
    return Output("hf", meta | {"layers_kept": [], "on_policy_fraction": 0.0})


HANDLERS = Handlers(
    "distill (api)",
    text=_text,
    lm=_lm,
    refused={
        "array": "an API teacher answers text: array students need a builtin: or python: teacher",
        "image": "an API teacher answers text: image students need a builtin: or python: teacher",
    },
)
