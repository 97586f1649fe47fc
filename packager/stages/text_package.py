"""The text-specific parts of a package (called by the package stage for text data).

The tokenizer ships as `tokenizer.json` with truncation and padding baked in (the same settings
the manifest records), plus tokenizer_config.json and special_tokens_map.json; samples are raw
strings in `samples/raw.json`, their token ids, and the outputs the package must reproduce.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from packager.recipe import PackageConfig
from packager.stage import Artifact, StageContext


def text_blocks(
    tree: Path, model: Artifact, data: Artifact, cfg: PackageConfig, ctx: StageContext
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]:
    """Write tokenizer files and samples into `tree`; return (samples, preprocessing,
    postprocessing, labels) for the manifest."""
    from packager.data.text import TOKENIZER_FILES, encode, load_tokenizer, pad_token, read_split
    from packager.onnx_utils import session

    exported = ctx.inputs["distill"]  # the student folder: its tokenizer is the teacher's
    folder = exported.file()
    max_length = data.meta["max_length"]
    tok = load_tokenizer(folder, max_length)
    tok.save(str(tree / "tokenizer.json"))  # truncation + padding baked in, as recorded below
    for name in TOKENIZER_FILES[1:]:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, tree / name)
    pad_name, pad_id = pad_token(folder, tok)

    texts, _ = read_split(data, "test", limit=cfg.samples)
    (tree / "samples").mkdir()
    (tree / "samples/raw.json").write_text(json.dumps(texts, ensure_ascii=False, indent=1))
    sess = session(tree / "model.onnx")
    names = [i.name for i in sess.get_inputs()]
    feeds = encode(tok, texts, names)
    outs = sess.run(None, feeds)
    inputs, outputs = {}, {}
    for name, value in feeds.items():
        np.save(tree / f"samples/{name}.npy", value)
        inputs[name] = f"samples/{name}.npy"
    for o, value in zip(sess.get_outputs(), outs, strict=True):
        np.save(tree / f"samples/{o.name}.npy", value)
        outputs[o.name] = f"samples/{o.name}.npy"
    samples = {"count": len(texts), "raw": "samples/raw.json", "inputs": inputs, "outputs": outputs}

    preprocessing = {
        "type": "text",
        "tokenizer": "tokenizer.json",
        "tokenizer_config": "tokenizer_config.json",
        "max_length": max_length,
        "truncation": True,
        "padding": "longest",  # each batch pads to its longest text (dynamic sequence axis)
        "pad_id": pad_id,
        "pad_token": pad_name,
        "inputs": names,
    }
    output = model.meta["outputs"][0]["name"]
    labels = list(data.meta["labels"]) if ctx.recipe.task == "text-classification" else []
    if labels:
        post = {"type": "classification", "output": output, "activation": "softmax"}
        post["labels"] = labels
    else:
        post = {
            "type": "embedding",
            "output": output,
            "pooling": exported.meta.get("pooling"),
            "normalize": bool(exported.meta.get("normalize")),
            "in_graph": True,  # pooling and normalisation are nodes of model.onnx
        }
    return samples, preprocessing, post, labels
