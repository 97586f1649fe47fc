"""Shared fixtures: one tiny digits build per session, reused by the stage and CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("CI", "true")  # no progress bars in test output


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_build(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The whole chain on the tiny digits recipe, built once."""
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    out = tmp_path_factory.mktemp("dist")
    recipe = tiny_recipe(package={"out_dir": str(out)})
    return build(recipe, cache_dir=cache_dir, reporter=SilentReporter())


@pytest.fixture(scope="session")
def tiny_mobile_build(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """tiny_build's recipe with package.mobile on and a batch-1 .ort: only `package` reruns."""
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    out = tmp_path_factory.mktemp("dist-mobile")
    package = {"out_dir": str(out), "mobile": True, "fix_shapes": {"input": [1, 1, 8, 8]}}
    return build(tiny_recipe(package=package), cache_dir=cache_dir, reporter=SilentReporter())


_CPP_SETUP = Path(__file__).resolve().parent.parent / "runtimes" / "cpp" / "setup.sh"


@pytest.fixture(scope="session")
def cpp_bin() -> Path:
    """The C++ runtime's build folder (edgepack_check, predict), built or found up to date once
    per session; skips with the missing tools named when the toolchain is absent."""
    import shutil
    import subprocess

    missing = [tool for tool in ("cmake", "c++", "dpkg-deb") if shutil.which(tool) is None]
    if not Path("/usr/include/nlohmann/json.hpp").exists():
        missing.append("nlohmann-json3-dev")
    if missing:
        pytest.skip(f"C++ runtime needs {', '.join(missing)}: run scripts/setup_system.sh")
    proc = subprocess.run(["bash", str(_CPP_SETUP)], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(f"runtimes/cpp/setup.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1]).parent


# Tiny Hugging Face folders and text data, built once per session (no downloads).


@pytest.fixture(scope="session")
def text_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text")


@pytest.fixture(scope="session")
def tiny_classifier(text_root: Path) -> Path:
    """A tiny BERT sequence classifier, briefly trained on the synthetic topics."""
    from tiny_models import tiny_bert_folder

    return tiny_bert_folder(text_root / "classifier", train_steps=40)


@pytest.fixture(scope="session")
def tiny_encoder(text_root: Path) -> Path:
    """A tiny random-init BERT encoder with a sentence-transformers modules.json."""
    from tiny_models import tiny_bert_folder

    return tiny_bert_folder(text_root / "encoder", task="feature-extraction", seed=1)


@pytest.fixture(scope="session")
def tiny_texts_file(text_root: Path) -> Path:
    from tiny_models import write_tiny_texts

    return write_tiny_texts(text_root / "topics.jsonl", n=300)


@pytest.fixture(scope="session")
def user_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Third-party-shaped models nobody on the team wrote (tests/tiny_models.py), with data:
    an opset-11 detector (dynamic H/W, Resize), a recognizer (per-timestep output) and a
    two-input encoder with int64 `lengths`."""
    import numpy as np
    from tiny_models import lengths_encoder_onnx, tiny_detector_onnx, tiny_recognizer_onnx

    root = tmp_path_factory.mktemp("user-models")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (24, 3, 64, 64)).astype(np.float32)
    np.savez(root / "det.npz", x=images)
    lines = rng.uniform(0, 1, (24, 3, 32, 96)).astype(np.float32)
    np.savez(root / "rec.npz", image=lines)
    features = rng.standard_normal((6, 10, 8)).astype(np.float32)
    np.savez(root / "lengths.npz", features=features, lengths=np.array([10, 3, 7, 10, 1, 5]))
    return {
        "detector": tiny_detector_onnx(root / "det11.onnx", opset=11),
        "det_data": root / "det.npz",
        "recognizer": tiny_recognizer_onnx(root / "rec.onnx"),
        "rec_data": root / "rec.npz",
        "lengths": lengths_encoder_onnx(root / "lengths.onnx"),
        "lengths_feeds": root / "lengths.npz",
    }


# Tiny causal language models (task text-generation), built once per session.


@pytest.fixture(scope="session")
def lm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lm")


@pytest.fixture(scope="session")
def tiny_lm_teacher(lm_root: Path) -> Path:
    """A random-init 4-layer tiny Llama with its byte-level BPE."""
    from tiny_models import tiny_causal_lm_folder

    return tiny_causal_lm_folder(lm_root / "llama", "llama")


@pytest.fixture(scope="session")
def tiny_lm_texts_file(lm_root: Path) -> Path:
    from tiny_models import write_tiny_lm_texts

    return write_tiny_lm_texts(lm_root / "sentences.jsonl", n=400)


@pytest.fixture(scope="session")
def tiny_lm_build(lm_root: Path, tiny_lm_teacher: Path, tiny_lm_texts_file: Path):
    """A whole tiny text-generation build (sequence-level KD on), published to lm_root/dist."""
    from tiny_models import tiny_lm_recipe_dict

    from packager.pipeline import build
    from packager.progress import SilentReporter
    from packager.recipe import build_recipe

    recipe = build_recipe(
        tiny_lm_recipe_dict(
            str(tiny_lm_texts_file),
            str(tiny_lm_teacher),
            generate={"enabled": True, "prompts": 16, "max_new_tokens": 8, "batch": 8},
            package={"out_dir": str(lm_root / "dist")},
        )
    )
    return build(recipe, cache_dir=lm_root / "cache", reporter=SilentReporter())


# API teachers: an OpenAI-compatible server (tests/api_server.py) over tiny models.


@pytest.fixture(scope="session")
def api_models(tiny_lm_teacher: Path, tiny_encoder: Path, tiny_classifier: Path) -> dict[str, Path]:
    """The models the test server serves: a causal LM (completions, chat), an embedder and a
    labeler (the tiny BERT classifier, trained a little on the topics)."""
    return {"lm": tiny_lm_teacher, "embedder": tiny_encoder, "labeler": tiny_classifier}
