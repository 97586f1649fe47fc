"""Any transformers folder, any task optimum-onnx exports (`edgepack export FOLDER`).

optimum's `main_export` does the export (one file: `monolith`, no past key values unless the
task says `-with-past`); the parity check then runs the torch model and the ONNX file on
optimum's own dummy inputs for the task (its OnnxConfig knows every input a task takes: pixel
values, audio features, decoder ids, past key values) at three shapes, and returns the numbers
rather than only pass/fail. Offline: a local folder, local_files_only.

A sentence-transformers folder (modules.json, or the sentence_*.json files optimum looks for)
exports through optimum's sentence-transformers library: the folder's own pooling, dense and
normalisation modules are in the graph, which gives `token_embeddings` and `sentence_embedding`
as `optimum-cli export onnx` does. The tokenizer and config files optimum writes beside the
model are kept (`SIDECARS`), so an app has what it needs to tokenise.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from packager.errors import InputFileError, one_line
from packager.export.hf_export import ExporterFailed, _quiet, main_export_into

_VARIED = {"batch_size": (0, -1, 1), "sequence_length": (1.0, 0.5, 1.5)}
ST = "sentence_transformers"


def library_of(folder: Path) -> str:
    """Which library a folder belongs to, as optimum infers it (transformers, timm, diffusers,
    sentence_transformers), and sentence_transformers too for a folder whose modules.json is
    all that says so."""
    from optimum.exporters.tasks import TasksManager

    if (folder / "modules.json").is_file():
        return ST
    try:
        return TasksManager.infer_library_from_model(str(folder))
    except (OSError, ValueError) as err:
        raise InputFileError(
            f"{folder}: not a model folder optimum knows ({one_line(err)})"
        ) from None


def infer_task(folder: Path, library: str = "transformers") -> str:
    """The task of a local folder: feature-extraction for sentence-transformers, image
    classification for timm (as optimum decides for Hub ids), else from config.json's
    architecture (optimum infers the tasks of Hub ids only, from the Hub's metadata)."""
    import transformers
    from optimum.exporters.tasks import TasksManager

    if library == ST:
        return "feature-extraction"
    if library == "timm":
        return "image-classification"
    try:
        arch = json.loads((folder / "config.json").read_text())["architectures"][0]
        return TasksManager.infer_task_from_model(getattr(transformers, arch))
    except (KeyError, IndexError, AttributeError, TypeError, ValueError) as err:
        raise InputFileError(
            f"{folder}: the task cannot be inferred from config.json ({one_line(err)}): give "
            "--task (e.g. text-classification, feature-extraction, image-classification)"
        ) from None


def export_folder(
    folder: Path, out: Path, task: str, opset: int, library: str = "transformers"
) -> list[str]:
    """optimum's main_export of `folder` for `task` into the single file `out` (plus its
    external data, when optimum wrote some); the names of the tokenizer, preprocessor and
    config files optimum wrote beside it (in `out`'s folder)."""
    if library == ST and importlib.util.find_spec(ST) is None:
        raise InputFileError(
            f"{folder}: a sentence-transformers folder; its export needs the sentence-transformers "
            "package (pip install sentence-transformers)"
        )
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp, _quiet():
        try:
            monolith = not task.endswith("-with-past")
            models = main_export_into(folder, tmp, task, opset, library, monolith=monolith)
        except Exception as err:
            raise ExporterFailed(f"optimum main_export failed: {one_line(err)}") from err
        if len(models) != 1:
            names = ", ".join(m.name for m in models) or "none"
            raise ExporterFailed(
                f"optimum wrote {len(models)} ONNX models ({names}) for task {task}; edgepack "
                "export writes one file: choose a task without -with-past"
            )
        sidecars = []
        for f in Path(tmp).iterdir():  # the model, its external data, tokenizer and config
            if f != models[0] and f.is_file() and not f.name.startswith(models[0].name):
                sidecars.append(f.name)
            shutil.move(str(f), out.parent / (out.name if f == models[0] else f.name))
    return sorted(sidecars)


def _config(model, task: str, library: str):
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    ctor = TasksManager.get_exporter_config_constructor(
        model=model, exporter="onnx", task=task, library_name=library
    )
    return ctor(model.config)


def parity_shapes(dims: dict[str, int]) -> list[dict[str, int]]:
    """Three sets of optimum dummy shapes: its defaults (and `dims`), then batch and sequence
    length moved; other shapes (image size, audio length) stay, many models fix them."""
    from optimum.utils import DEFAULT_DUMMY_SHAPES

    base = {**DEFAULT_DUMMY_SHAPES, **dims}
    out = []
    for k in range(3):
        shapes = dict(base)
        shapes["batch_size"] = max(1, base["batch_size"] + _VARIED["batch_size"][k])
        shapes["sequence_length"] = max(
            2, round(base["sequence_length"] * _VARIED["sequence_length"][k])
        )
        out.append(shapes)
    return out


def _ort_inputs(config, dummy, names: list[str]) -> dict[str, np.ndarray]:
    feeds = {}
    for name, value in config.generate_dummy_inputs_for_validation(dummy, names).items():
        if isinstance(value, (list, tuple)):
            value = config.flatten_output_collection_property(name, value)
        if isinstance(value, dict):
            feeds.update({k: v.cpu().numpy() for k, v in value.items()})
        else:
            feeds[name] = value.cpu().numpy()
    return {k: v for k, v in feeds.items() if k in names}


def _torch_outputs(config, model, dummy) -> dict[str, np.ndarray]:
    import torch

    inputs = config.rename_ambiguous_inputs(copy.deepcopy(dummy))
    with config.patch_model_for_export(model), torch.inference_mode():
        outputs = model(**inputs)
    flat: dict[str, Any] = {}
    for name, value in outputs.items():
        name = "present" if name == "past_key_values" else name
        if isinstance(value, (list, tuple)):
            key = config.torch_to_onnx_output_map.get(name, name)
            flat.update(config.flatten_output_collection_property(key, value))
        else:
            flat[name] = value
    return {k: v.detach().cpu().numpy() for k, v in flat.items()}


def parity(
    folder: Path, task: str, path: Path, dims: dict[str, int], library: str = "transformers"
) -> list[dict[str, Any]]:
    """Max |onnx - torch| over the ONNX outputs, at each of parity_shapes(dims)."""
    from optimum.exporters.tasks import TasksManager

    from packager.onnx_utils import session

    with _quiet():
        model = TasksManager.get_model_from_task(
            task, str(folder), framework="pt", library_name=library, local_files_only=True
        ).eval()
        config = _config(model, task, library)
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    to_torch = {v: k for k, v in config.torch_to_onnx_output_map.items()}
    rows = []
    for shapes in parity_shapes(dims):
        dummy = config.generate_dummy_inputs(framework="pt", **shapes)
        feeds = _ort_inputs(config, dummy, names)
        ref = _torch_outputs(config, model, dummy)
        got = dict(zip(outputs, sess.run(None, feeds), strict=True))
        diffs = []
        for name, value in got.items():
            r = ref.get(to_torch.get(name, name))
            same = r is not None and r.shape == value.shape
            diffs.append(float(np.max(np.abs(value - r), initial=0.0)) if same else float("inf"))
        rows.append(
            {"inputs": {k: list(v.shape) for k, v in feeds.items()}, "max_abs_diff": max(diffs)}
        )
    return rows
