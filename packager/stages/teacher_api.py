"""The teacher stage for a teacher you can only call (api:MODEL): its answers on the data are
its outputs, asked once per text through the call cache (packager.sources.api), so an
interrupted step resumes without paying twice and a rebuild makes no call.

Text: an embeddings endpoint's vectors (feature-extraction), or a chat endpoint's label for each
text, parsed strictly (text-classification: unparseable answers counted and left out, the label
distribution recorded). Language models: a completions endpoint's completion of each training
prompt (sequence-level KD data, with its top-k log-probabilities when asked for) and of held-out
prompts (the agreement table). Every output records `teacher_calls`: requests, cached answers,
calls made, tokens in and out, failures by kind, wall time, cost where prices are given.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from packager.artifact import Artifact, Output
from packager.config import TeacherStepConfig
from packager.errors import RecipeError
from packager.stage import Handlers, StageContext

# Split -> file of the teacher's answers; the train split's also as teacher_outputs' format.
OUTPUTS = "outputs.npy"
LABELED = "labeled"  # text-classification: train/val .jsonl with the teacher's labels
GENERATED = "generated.jsonl"  # text-generation: completions of the training prompts
HELD_OUT = "test.jsonl"  # text-generation: completions of held-out prompts


def _progress(ctx: StageContext, what: str, total: int):
    """The stage's progress: the bar (on a terminal), and a log line with the rate and the ETA
    every tenth of the way (in a log)."""
    state = {"next": 0.1, "t0": time.monotonic()}

    def show(advance):
        def progress(done: int, of: int, rate: float, eta: float | None) -> None:
            advance(1, total=of, rate=f"{rate:.1f}/s", eta=f"{eta:.0f}s" if eta else "-")
            if done >= of * state["next"] or done == of:
                state["next"] = done / of + 0.1
                eta_text = f", ETA {eta:.0f} s" if eta else ""
                ctx.log(f"{what}: {done}/{of} answered, {rate:.1f} answers/s{eta_text}")

        return progress

    return show


def _caller(cfg: TeacherStepConfig, ctx: StageContext, advance, what: str):
    from packager.sources.api_cache import CALLS_DIR
    from packager.sources.teacher import teacher_of

    teacher = teacher_of(cfg)
    root = ctx.cache_root or Path(".edgepack") / "cache"
    return teacher, teacher.caller(root / CALLS_DIR, _progress(ctx, what, 0)(advance))


def _calls_meta(cfg: TeacherStepConfig, teacher, caller, ctx: StageContext) -> dict[str, Any]:
    """What every API teacher output records: the endpoint (never the key), the model asked
    for and the ids the server answered with, and the teacher_calls record."""
    api = teacher.api
    prices = api.prices.to_json() if api.prices else None
    calls = caller.stats.to_json(prices)
    cost = f", ${calls['cost_usd']:.4f}" if calls["cost_usd"] is not None else ""
    failed = ", ".join(f"{k} {v}" for k, v in calls["failures"].items()) or "none"
    ctx.log(
        f"teacher_calls: {calls['requests']} answers, {calls['cached']} from the cache, "
        f"{calls['calls']} calls made ({calls['tokens_in']:,} tokens in, {calls['tokens_out']:,} "
        f"out{cost}); failures retried: {failed}; {calls['wall_seconds']:.1f} s"
    )
    endpoint = {"host": api.host, "base_url": api.base_url, "endpoint": api.endpoint_for(cfg.task)}
    return {
        "kind": "api",
        "source": cfg.source,
        "task": cfg.task,
        "trained": False,
        "endpoint": endpoint | {"model": teacher.model, "served_models": calls["models"]},
        "teacher_calls": calls,
        "params": None,
    }


def _texts(folder: Path, split: str, limit: int | None) -> tuple[list[str], list[int]]:
    from packager.data.text import read_split

    return read_split(folder, split, limit=limit)


def _splits(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext):
    """The texts the teacher answers: the training split (to teacher.api.limit), and
    eval_limit of val, test and the probe."""
    api = cfg.api
    out = {"train": _texts(data.path, "train", api.limit)}
    for split in ("val", "test"):
        out[split] = _texts(data.path, split, api.eval_limit)
    probe = ctx.inputs.get("probe")
    if probe is not None:
        out["probe"] = _texts(probe.path, "probe", api.eval_limit)
    return out


def _text(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    """Vectors (feature-extraction) or labels (text-classification) for every split's texts."""
    splits = _splits(data, cfg, ctx)
    total = sum(len(t) for t, _ in splits.values())
    with ctx.reporter.track("teacher api", total) as advance:
        teacher, caller = _caller(cfg, ctx, advance, "teacher api")
        if cfg.task == "feature-extraction":
            info = _vectors(teacher, caller, splits, ctx.workdir)
        else:
            info = _labels(teacher, caller, splits, data.meta["labels"], ctx)
    meta = _calls_meta(cfg, teacher, caller, ctx)
    sizes = {split: len(texts) for split, (texts, _) in splits.items()}
    return Output("api", {**meta, **info, "modality": "text", "sizes": sizes})


def _vectors(teacher, caller, splits, workdir: Path) -> dict[str, Any]:
    from packager.sources.api import embed

    width = None
    (workdir / LABELED).mkdir()
    for split, (texts, _) in splits.items():
        vectors = embed(caller, teacher.api, teacher.model, texts)
        width = vectors.shape[1]
        np.save(workdir / f"{split}.npy", vectors)
        if split == "train":  # what distill reads as the teacher's cached outputs
            np.save(workdir / OUTPUTS, vectors.astype(np.float16))
        if split in ("train", "val"):  # the texts those vectors are of, row for row
            _write_texts(workdir / LABELED / f"{split}.jsonl", texts, [-1] * len(texts))
    return {"file": OUTPUTS, "output_dim": int(width), "answers": "vectors"}


def _labels(teacher, caller, splits, labels: list[str], ctx: StageContext) -> dict[str, Any]:
    """Each text's label from the chat endpoint, parsed strictly; the parsed ones of train and
    val written as the student's training data (the teacher's labels, not the data's)."""
    from packager.sources.api import chat, parse_label

    if not labels:
        raise RecipeError(
            f"teacher {teacher.source}: text-classification asks the endpoint for label names: "
            "the data has none (data.label_column)"
        )
    (ctx.workdir / LABELED).mkdir()
    unparsed: dict[str, int] = {}
    answered: dict[str, list[str]] = {}
    for split, (texts, _) in splits.items():
        answers = chat(caller, teacher.api, teacher.model, texts, labels)
        ids = [parse_label(a["text"], labels) for a in answers]
        unparsed[split] = sum(i is None for i in ids)
        answered[split] = [a["text"] for a, i in zip(answers, ids, strict=True) if i is None][:5]
        np.save(ctx.workdir / f"{split}.npy", np.array([-1 if i is None else i for i in ids]))
        if split in ("train", "val"):
            kept = [(t, i) for t, i in zip(texts, ids, strict=True) if i is not None]
            _write_texts(ctx.workdir / LABELED / f"{split}.jsonl", *zip(*kept, strict=True))
    train = np.load(ctx.workdir / "train.npy")
    counts = Counter(labels[i] for i in train if i >= 0)
    kept = int((train >= 0).sum())
    if kept == 0:
        raise RecipeError(
            f"teacher {teacher.source}: no answer on the training texts names one of the labels "
            f"({', '.join(labels)}); e.g. {answered['train'][:2]}: say in teacher.api.prompt "
            "to answer with the label only"
        )
    distribution = {name: counts.get(name, 0) for name in labels}
    shown = ", ".join(f"{k} {v}" for k, v in distribution.items())
    ctx.log(
        f"labels: {kept} of {len(train)} training answers parsed ({shown}); unparseable, left "
        f"out: {unparsed}"
    )
    if unparsed["train"]:
        ctx.warn(f"{unparsed['train']} training answers named no label, e.g. {answered['train']}")
    return {
        "file": LABELED,
        "answers": "labels",
        "labels": labels,
        "label_distribution": distribution,
        "unparseable": unparsed,
        "train_labeled": kept,
    }


def _write_texts(path: Path, texts, labels) -> None:
    """A split the student trains on: each text with its label (-1: none), as data splits are."""
    with path.open("w", encoding="utf-8") as f:
        for text, label in zip(texts, labels, strict=True):
            f.write(json.dumps({"text": text, "label": int(label)}, ensure_ascii=False) + "\n")


def _lm(data: Artifact, cfg: TeacherStepConfig, ctx: StageContext) -> Output:
    """Completions of the training prompts (sequence-level KD) and of held-out prompts."""
    from packager.sources.api import complete

    api = cfg.api
    train = _prompts(data.path, "train", api.limit, api.prompt_words)
    test = _prompts(data.path, "test", api.eval_limit, api.prompt_words)
    with ctx.reporter.track("teacher api", len(train) + len(test)) as advance:
        teacher, caller = _caller(cfg, ctx, advance, "teacher api")
        by = f"{cfg.source} at {api.host}"
        counts = {}
        for name, prompts in ((GENERATED, train), (HELD_OUT, test)):
            answers = complete(caller, api, teacher.model, prompts)
            counts[name] = _write_completions(ctx.workdir / name, prompts, answers, by)
    meta = _calls_meta(cfg, teacher, caller, ctx)
    stats = counts[GENERATED]
    ctx.log(
        f"{stats['completions']} completions of {len(train)} training prompts by {by} "
        f"({stats['tokens']} tokens, {stats['with_logprobs']} with top-{api.top_logprobs} "
        f"log-probabilities; {stats['empty']} empty, left out); {len(test)} held-out prompts"
    )
    meta |= {"file": GENERATED, "modality": "lm", "generated_by": by, "answers": "completions"}
    meta |= {"completions": stats["completions"], "prompts": len(train), "held_out": len(test)}
    return Output("api", {**meta, "settings": api.to_json(), "top_logprobs": api.top_logprobs})


def _prompts(folder: Path, split: str, limit: int | None, words: int) -> list[str]:
    """The split's prompts: a prompt column as it is, else the first `words` words of each
    text (the rest is what the teacher is asked to continue)."""
    from packager.data.lm import rows

    out = []
    for row in rows(folder, split):
        if limit is not None and len(out) >= limit:
            break
        prompt = row["prompt"] if "prompt" in row else " ".join(row["text"].split(" ")[:words])
        if prompt.strip():
            out.append(prompt)
    return out


def _write_completions(path: Path, prompts: list[str], answers: list[dict], by: str) -> dict:
    counts = {"completions": 0, "tokens": 0, "with_logprobs": 0, "empty": 0}
    with path.open("w", encoding="utf-8") as f:
        for prompt, a in zip(prompts, answers, strict=True):
            if not a["text"]:
                counts["empty"] += 1
                continue
            row = {"prompt": prompt, "completion": a["text"], "generated_by": by}
            row |= {k: a[k] for k in ("tokens", "token_logprobs", "top_logprobs", "finish_reason")}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts["completions"] += 1
            counts["tokens"] += len(a["tokens"] or [])
            counts["with_logprobs"] += bool(a["top_logprobs"])
    return counts


HANDLERS = Handlers(
    "teacher (api)",
    text=_text,
    lm=_lm,
    refused={
        "array": "an API teacher answers text: array data needs a builtin: or python: teacher",
        "image": "an API teacher answers text: image data needs a builtin: or python: teacher",
    },
)
