"""`edgepack export` of what a user brings from Hugging Face (issue 29): a sentence-transformers
folder gives `sentence_embedding` (its own pooling and normalisation in the graph) and
`token_embeddings` with the tokenizer and config files beside it, as `optimum-cli export onnx`
does; `hf:pkg:` and Hub ids already in the local Hugging Face cache work offline; `--package`
writes an `.edgepack` the runtime loads. main gave `last_hidden_state` only and refused both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import edgepack, one_error_line
from click.testing import CliRunner

from packager.cli import cli
from packager.onnx_utils import session

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]
TEXTS = ["alpha beta gamma", "the quick brown fox", "delta"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _export(cache: Path, *args):
    argv = ["export", *map(str, args), "--cache-dir", str(cache)]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def _st_embeddings(folder: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(TEXTS)


def _onnx_embeddings(model: Path) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model.with_name("tokenizer.json")))  # the file beside it
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(TEXTS)
    feeds = {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
    }
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def exported(tiny_encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("st")
    out = root / "out" / "encoder.onnx"
    res = _export(root / "cache", tiny_encoder, "-o", out)
    assert res.exit_code == 0, res.output
    return root, out, res.output


def test_a_sentence_transformers_folder_gives_pooled_normalised_embeddings(exported, tiny_encoder):
    _, out, output = exported
    got = _onnx_embeddings(out)
    assert list(got) == ["token_embeddings", "sentence_embedding"]
    ref = _st_embeddings(tiny_encoder)  # sentence-transformers' own encode, pooling and Normalize
    assert _cosines(got["sentence_embedding"], ref).min() >= 0.9999
    assert np.allclose(np.linalg.norm(got["sentence_embedding"], axis=1), 1.0, atol=1e-5)
    assert "task feature-extraction (sentence-transformers" in output


def test_the_tokenizer_and_config_files_are_written_beside_the_model(exported):
    _, out, output = exported
    beside = {p.name for p in out.parent.iterdir()}
    assert {"encoder.onnx", "encoder.export.json", "tokenizer.json", "config.json"} <= beside
    record = json.loads(out.with_name("encoder.export.json").read_text())
    assert record["library"] == "sentence_transformers" and "tokenizer.json" in record["files"]
    assert str(out.with_name("tokenizer.json")) in output


def test_hf_pkg_sources_export_as_recipes_accept_them(exported, tiny_encoder, monkeypatch):
    root, _, _ = exported
    pkg = root / "site" / "shipped_encoder_pkg"
    shutil.copytree(tiny_encoder, pkg / "model")
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(root / "site"))
    out = root / "pkg-out" / "m.onnx"
    res = _export(root / "cache", "hf:pkg:shipped_encoder_pkg/model", "-o", out)
    assert res.exit_code == 0, res.output
    assert [o.name for o in session(out).get_outputs()][-1] == "sentence_embedding"


def test_an_output_inside_the_source_folder_is_refused(tiny_encoder, tmp_path):
    proc = edgepack("export", tiny_encoder, "-o", tiny_encoder / "x.onnx", "--cache-dir", tmp_path)
    assert "inside the source folder" in one_error_line(proc)
    assert not (tiny_encoder / "x.onnx").exists()


def _fake_hub_cache(root: Path, folder: Path) -> Path:
    """The layout `hf download` writes: models--OWNER--NAME/{refs/main, snapshots/COMMIT/}."""
    repo = root / "hub" / "models--acme--tiny-encoder"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return root / "hub"


def test_a_hub_id_in_the_local_cache_exports_offline_and_records_its_revision(
    exported, tiny_encoder, monkeypatch
):
    root, _, _ = exported
    monkeypatch.setenv("HF_HUB_CACHE", str(_fake_hub_cache(root, tiny_encoder)))
    out = root / "hub-out" / "m.onnx"
    monkeypatch.chdir(root)  # no folder named acme/tiny-encoder here
    res = _export(root / "cache", "acme/tiny-encoder", "-o", out)
    assert res.exit_code == 0, res.output
    assert f"revision {COMMIT[:12]}" in res.output
    record = json.loads(out.with_name("m.export.json").read_text())
    assert record["revision"] == {
        "kind": "hub-cache",
        "commit": COMMIT,
        "repo": "acme/tiny-encoder",
    }


def test_a_hub_id_not_in_the_cache_says_the_download_command(tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty")}
    proc = edgepack("export", "acme/absent-model", "-o", tmp_path / "m.onnx", cwd=tmp_path, env=env)
    line = one_error_line(proc)
    assert "not in the local Hugging Face cache" in line
    assert f"`hf download acme/absent-model --cache-dir {tmp_path / 'empty'}`" in line
    assert "--allow-download" in line and not (tmp_path / "m.onnx").exists()


def test_allow_download_with_the_hub_unreachable_is_one_line(tmp_path):
    # A closed port on this machine: the Hub is unreachable, and the command says so in a line.
    env = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    proc = edgepack(
        "export", "acme/absent-model", "-o", tmp_path / "m.onnx", "--allow-download",
        cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert "--allow-download: could not download acme/absent-model" in one_error_line(proc)


def test_package_writes_an_edgepack_the_python_runtime_loads(
    exported, tiny_encoder, tiny_texts_file
):
    import edgepack_runtime

    root, _, _ = exported
    pkg = root / "dist" / "encoder.edgepack"
    res = _export(
        root / "cache", tiny_encoder, "--package", "--data", tiny_texts_file, "--max-length", "32",
        "-o", pkg, "-q",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    loaded = edgepack_runtime.load(pkg)
    assert loaded.check_samples().ok
    got = np.asarray(loaded.predict(TEXTS).embeddings)
    assert _cosines(got, _st_embeddings(tiny_encoder)).min() >= 0.9999


def test_package_without_data_is_one_line(tiny_encoder, tmp_path):
    proc = edgepack("export", tiny_encoder, "--package", "-o", tmp_path / "e.edgepack")
    assert "--package needs --data" in one_error_line(proc)
