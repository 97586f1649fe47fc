"""Text in every runtime: the same strings give the same token ids and the same vectors in Python,
Node and C++, on a BERT-shaped WordPiece tokenizer built here and on all-MiniLM-L6-v2's own
tokenizer.json, hostile strings included; bytes that are not text are refused alike; the
examples and `edgepack run` embed text from strings; `edgepack verify` replays a text package in
all three runtimes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_drivers import CHECK_JS, REPO, need_js, one_error_line
from text_packages import HOSTILE_BYTES, HOSTILE_TEXTS

EMBED_JS = REPO / "runtimes" / "js" / "examples" / "embed.js"
EMBED_PY = REPO / "runtimes" / "python" / "examples" / "embed.py"


@pytest.fixture(params=["wordpiece", "minilm", "pooling"])
def text_folder(request: pytest.FixtureRequest) -> Path:
    """A package folder: the WordPiece embedder, the same over MiniLM's tokenizer.json, or the
    WordPiece one whose vectors the runtime pools (mean over the mask, L2)."""
    name = {"wordpiece": "embedder", "minilm": "minilm", "pooling": "pooling"}[request.param]
    return request.getfixturevalue(f"{name}_folder")


def _files(tmp_path: Path, texts: list[bytes]) -> list[str]:
    """`--text-file F` for each text: the exact bytes reach every runtime (argv cannot carry
    NUL, and Node would replace invalid UTF-8 in argv before the runtime saw it)."""
    args = []
    for i, data in enumerate(texts):
        (tmp_path / f"text{i}.txt").write_bytes(data)
        args += ["--text-file", str(tmp_path / f"text{i}.txt")]
    return args


def _json(argv: list[str]) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(params=["js", pytest.param("cpp", marks=pytest.mark.slow)])
def other(request: pytest.FixtureRequest) -> list[str]:
    """[name, argv...] of the Node or the C++ runtime's check tool, to compare with Python."""
    if request.param == "js":
        return ["js", need_js(), str(CHECK_JS)]
    return ["cpp", str(request.getfixturevalue("cpp_bin") / "edgepack_check")]


def test_the_same_texts_give_the_same_ids_in_every_runtime(text_folder, other, tmp_path):
    import edgepack_runtime as rt

    pkg = rt.load(text_folder)
    want = {k: v.tolist() for k, v in pkg.preprocess(HOSTILE_TEXTS).items()}
    files = _files(tmp_path, [t.encode() for t in HOSTILE_TEXTS])
    got = _json([*other[1:], str(text_folder), *files, "--tokens"])
    assert got == want, other[0]
    # The rule, on the reference: the long text is cut to max_length with [SEP] kept, the batch
    # pads to it, and the over-long word is one [UNK] between [CLS] and [SEP].
    ids, mask = np.array(want["input_ids"]), np.array(want["attention_mask"])
    limit = pkg.manifest["preprocessing"]["max_length"]
    sep = pkg._preprocess.tokenizer.token_to_id("[SEP]")
    assert ids.shape[1] == limit and mask[10].sum() == limit and ids[10, limit - 1] == sep
    unk = pkg._preprocess.tokenizer.token_to_id("[UNK]")
    assert mask[9].sum() == 3 and ids[9, 1] == unk


def test_the_same_texts_give_the_same_vectors_in_every_runtime(text_folder, other, tmp_path):
    import edgepack_runtime as rt

    want = rt.load(text_folder).predict(HOSTILE_TEXTS).embeddings
    files = _files(tmp_path, [t.encode() for t in HOSTILE_TEXTS])
    got = np.array(_json([*other[1:], str(text_folder), *files])["embeddings"])
    np.testing.assert_allclose(got, want, atol=1e-6, err_msg=other[0])


def test_bytes_that_are_not_text_are_refused_alike(embedder_folder, other, tmp_path):
    python = [sys.executable, "-m", "edgepack_runtime", str(embedder_folder)]
    for i, data in enumerate(HOSTILE_BYTES):
        files = _files(tmp_path, [b"fine", data])
        want = one_error_line([*python, *files])
        nul = data.find(bytes(1))
        reason = f"contains NUL (U+0000) at byte {nul}" if nul >= 0 else "not valid UTF-8 at byte"
        assert want.startswith(f"text 1: {reason}"), want
        assert one_error_line([*other[1:], str(embedder_folder), *files]) == want, (other[0], i)


@pytest.mark.slow
def test_the_embed_examples_print_what_edgepack_run_prints(text_folder, cpp_bin):
    from click.testing import CliRunner

    from packager.cli import cli

    texts = ["A cat sat on the mat.", "Ein Café in Zürich ☕"]
    args = [a for t in texts for a in ("--text", t)]
    res = CliRunner().invoke(cli, ["run", str(text_folder), *args])
    assert res.exit_code == 0 and res.output.startswith("0: dim 8, norm "), res.output
    node = subprocess.run(
        [need_js(), str(EMBED_JS), str(text_folder), *texts],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    cpp = subprocess.run(
        [str(cpp_bin / "embed"), str(text_folder), *texts],
        capture_output=True,
        text=True,
        timeout=120,
    )
    python = subprocess.run(
        [sys.executable, str(EMBED_PY), str(text_folder), *texts],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert node.stdout == res.output and cpp.stdout == res.output, (node.stderr, cpp.stderr)
    assert python.stdout == res.output, python.stderr


def test_the_docs_snippets_are_copied_from_the_tested_examples():
    """docs/runtimes.md's "Text and chat" blocks: the first line names the example file, the
    rest is in it verbatim."""
    import re

    section = (REPO / "docs" / "runtimes.md").read_text().split("## Text and chat", 1)[1]
    blocks = re.findall(r"```(?:python|js|cpp)\n(.*?)```", section, re.S)
    assert len(blocks) == 6
    for block in blocks:
        first, body = block.split("\n", 1)
        example = (REPO / first.lstrip("#/ ").strip()).read_text()
        assert body.strip() and body.rstrip("\n") in example, first


@pytest.mark.slow
def test_verify_replays_a_text_package_in_every_runtime(text_folder, cpp_bin):
    from packager.verify import verify_package

    checks = verify_package(text_folder, ["all"])
    assert [c.runtime for c in checks] == ["python", "cpp", "js"]
    assert all(c.ok for c in checks), [c.line() for c in checks]


@pytest.mark.slow
def test_verify_replays_a_built_text_classifier_in_every_runtime(
    text_root, tiny_classifier, tiny_texts_file, cpp_bin
):
    """The packager's own text package (tests/stages/test_text_build.py's recipe and cache, so
    a session that runs both builds it once): its raw strings give the recorded ids everywhere."""
    from tiny_models import tiny_text_recipe_dict

    from packager.pipeline import build
    from packager.progress import SilentReporter
    from packager.recipe import build_recipe
    from packager.verify import verify_package

    recipe = tiny_text_recipe_dict(
        str(tiny_texts_file),
        str(tiny_classifier),
        name="topics",
        task="text-classification",
        package={"out_dir": str(text_root / "topics")},
    )
    built = build(build_recipe(recipe), cache_dir=text_root / "cache", reporter=SilentReporter())
    checks = verify_package(built.package_path, ["all"])
    assert [c.runtime for c in checks] == ["python", "cpp", "js"]
    assert all(c.ok for c in checks), [c.line() for c in checks]
