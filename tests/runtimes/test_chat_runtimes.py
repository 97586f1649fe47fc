"""Language models from strings in every runtime: the same prompt (or chat, through the package's
Qwen-style chat template) gives the same prompt ids, generated ids and text in Python, Node and
C++, on the tiny-lm byte-level BPE; generation ends at an EOS id and before the package's stop
string; hostile prompts are tokenized or refused alike; the examples and `edgepack run --chat`
generate from strings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_drivers import CHECK_JS, REPO, need_js, one_error_line
from text_packages import HOSTILE_BYTES, HOSTILE_TEXTS, QWEN_STYLE_TEMPLATE, REPLY, STOP_STRING

GENERATE_JS = REPO / "runtimes" / "js" / "examples" / "generate.js"
GENERATE_PY = REPO / "runtimes" / "python" / "examples" / "generate.py"
CHAT = [
    {"role": "system", "content": "Answer in one line. Ünïcödé 😀"},
    {"role": "user", "content": "Where is the cat?"},
    {"role": "assistant", "content": "On the mat."},
    {"role": "user", "content": "And now?"},
]


@pytest.fixture(params=["js", pytest.param("cpp", marks=pytest.mark.slow)])
def other(request: pytest.FixtureRequest) -> list[str]:
    """[name, argv...] of the Node or the C++ runtime's check tool, to compare with Python."""
    if request.param == "js":
        return ["js", need_js(), str(CHECK_JS)]
    return ["cpp", str(request.getfixturevalue("cpp_bin") / "edgepack_check")]


def _answer(argv: list[str]) -> dict | str:
    """A runtime's JSON answer, or its one error line."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return json.loads(proc.stdout)
    return one_error_line(argv)


def test_python_renders_the_chat_template_as_transformers_does(chat_lm_folder):
    import edgepack_runtime as rt
    from transformers import PreTrainedTokenizerFast

    ours = rt.load(chat_lm_folder).lm.chat_template.render(CHAT)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(chat_lm_folder / "tokenizer.json"))
    theirs = tok.apply_chat_template(
        CHAT, chat_template=QWEN_STYLE_TEMPLATE, tokenize=False, add_generation_prompt=True
    )
    assert ours == theirs and ours.endswith("<|im_start|>assistant\n")


def test_a_chat_reply_ends_before_the_stop_string_and_a_prompt_at_eos(chat_lm_folder):
    import edgepack_runtime as rt

    pkg = rt.load(chat_lm_folder)
    assert "".join(pkg.generate("hi", chat=True)) == REPLY[: REPLY.index(STOP_STRING)]
    assert "".join(pkg.generate(CHAT)) == REPLY[: REPLY.index(STOP_STRING)]
    # "." is followed by <|im_end|>, an EOS id: nothing is generated.
    assert "".join(pkg.generate("the cat sat today.")) == ""
    plain = rt.load(chat_lm_folder).lm
    plain.stop_strings = []
    assert "".join(plain.stream("the cat", max_new_tokens=16)) == " sat today."


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "plain"])
def test_every_runtime_gives_the_same_ids_and_text_for_a_prompt(chat_lm_folder, other, chat):
    python = [sys.executable, "-m", "edgepack_runtime", str(chat_lm_folder)]
    args = ["--prompt", "Where is the cat?", *(["--chat"] if chat else [])]
    want = _answer([*python, *args])
    assert isinstance(want, dict) and want["generated_ids"], want
    assert _answer([*other[1:], str(chat_lm_folder), *args]) == want, other[0]


def test_hostile_prompts_are_tokenized_or_refused_alike(chat_lm_folder, other, tmp_path):
    python = [sys.executable, "-m", "edgepack_runtime", str(chat_lm_folder)]
    prompts = [t.encode() for t in HOSTILE_TEXTS] + HOSTILE_BYTES
    refused = 0
    for i, data in enumerate(prompts):
        (tmp_path / f"p{i}").write_bytes(data)
        args = ["--prompt-file", str(tmp_path / f"p{i}"), "--max-new-tokens", "3"]
        want = _answer([*python, *args])
        refused += isinstance(want, str)
        assert _answer([*other[1:], str(chat_lm_folder), *args]) == want, (other[0], data[:40])
    # The empty prompt, the two longer than the context, and the five byte strings.
    assert refused == 3 + len(HOSTILE_BYTES)


@pytest.mark.slow
def test_the_generate_examples_print_what_edgepack_run_chat_prints(chat_lm_folder, cpp_bin):
    from click.testing import CliRunner

    from packager.cli import cli

    res = CliRunner().invoke(cli, ["run", str(chat_lm_folder), "--prompt", "Hi!", "--chat"])
    assert res.exit_code == 0 and res.output == REPLY[: REPLY.index(STOP_STRING)] + "\n"
    node = subprocess.run(
        [need_js(), str(GENERATE_JS), str(chat_lm_folder), "Hi!", "--chat"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    cpp = subprocess.run(
        [str(cpp_bin / "generate"), str(chat_lm_folder), "Hi!", "--chat"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    python = subprocess.run(
        [sys.executable, str(GENERATE_PY), str(chat_lm_folder), "Hi!", "--chat"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert node.stdout == res.output and cpp.stdout == res.output, (node.stderr, cpp.stderr)
    assert python.stdout == res.output, python.stderr


def test_chat_on_a_package_without_a_template_is_one_error_line(tiny_lm_build):
    from click.testing import CliRunner

    from packager.cli import cli

    res = CliRunner().invoke(
        cli, ["run", str(tiny_lm_build.package_path), "--prompt", "x", "--chat"]
    )
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code != 0 and len(lines) == 1 and "has no chat template" in lines[0]


@pytest.mark.slow
def test_verify_replays_the_chat_package_in_every_runtime(chat_lm_folder, cpp_bin):
    from packager.verify import verify_package

    checks = verify_package(Path(chat_lm_folder), ["all"])
    assert all(c.ok for c in checks) and len(checks) == 3, [c.line() for c in checks]
