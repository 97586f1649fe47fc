"""Tiny Hugging Face folders and text data, built once per session (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest


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
