"""packager/bundle_lm.py's chat pieces: the chat template and stop strings a language-model
package carries (the runtimes' use of them: tests/runtimes/test_chat_runtimes.py)."""

from __future__ import annotations

import json

from packager.bundle_lm import CHAT_TEMPLATE, chat_template, generation_block, stop_strings

CACHE = {"layers": 1, "kv_heads": 1, "head_dim": 2, "dtype": "float32"}


def test_the_chat_template_comes_from_its_file_else_from_tokenizer_config(tmp_path):
    assert chat_template(tmp_path) is None
    config = {
        "chat_template": [
            {"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D"},
        ]
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert chat_template(tmp_path) == "D"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    assert chat_template(tmp_path) == "{{ x }}"
    (tmp_path / CHAT_TEMPLATE).write_text("{{ messages }}")  # transformers' own file wins
    assert chat_template(tmp_path) == "{{ messages }}"


def test_stop_strings_come_from_the_generation_config(tmp_path):
    assert stop_strings(tmp_path) == []
    (tmp_path / "generation_config.json").write_text(json.dumps({"stop_strings": "<end>"}))
    assert stop_strings(tmp_path) == ["<end>"]
    (tmp_path / "generation_config.json").write_text(json.dumps({"stop_strings": ["a", "", 3]}))
    assert stop_strings(tmp_path) == ["a"]


def test_the_generation_block_names_the_template_only_when_the_package_has_it(tmp_path):
    meta = {"eos_token_ids": [2], "bos_token_id": 1, "context_length": 32}
    block = generation_block(meta, CACHE, {}, tmp_path, ["<end>"])
    assert "chat_template" not in block and block["stop_strings"] == ["<end>"]
    (tmp_path / CHAT_TEMPLATE).write_text("{{ messages }}")
    assert generation_block(meta, CACHE, {}, tmp_path)["chat_template"] == CHAT_TEMPLATE
