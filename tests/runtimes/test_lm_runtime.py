"""Language-model packages in the three runtimes: Python generates text with the KV cache
(streamed, sampled or greedy, with stops) and replays the recorded generation token for token;
Node and C++ greedy-decode the recorded prompts to the same tokens, their examples generate the
same text from a prompt string, and all three refuse a recording the model does not reproduce."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

JS = Path(__file__).resolve().parents[2] / "runtimes" / "js"


def _folder(build, dest: Path) -> Path:
    with zipfile.ZipFile(build.package_path) as zf:
        zf.extractall(dest)
    return dest


def _tamper(folder: Path) -> Path:
    """The recorded generation with its first token changed, the manifest resealed."""
    sample = json.loads((folder / "samples/generation.json").read_text())
    sample["generated_ids"][0][0] = (sample["generated_ids"][0][0] + 1) % 100
    (folder / "samples/generation.json").write_text(json.dumps(sample))
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _greedy(package: Path, prompt: str) -> str:
    """The Python runtime's greedy continuation: what the Node and C++ examples must print."""
    import edgepack_runtime as rt

    return "".join(rt.load(package).generate(prompt, temperature=0))


def test_python_generate_streams_greedy_text_that_matches_the_recording(tiny_lm_build):
    import edgepack_runtime as rt

    pkg = rt.load(tiny_lm_build.package_path)
    m = pkg.manifest
    assert m["schema_version"] == "1.3" and m["task"] == "text-generation"
    assert m["generation"]["kv_cache"]["bytes_per_token"] == 2 * 2 * 2 * 8 * 4
    sample = json.loads(pkg._files[m["generation"]["sample"]])
    prompt = sample["prompts"][0]
    pieces = list(pkg.generate(prompt, max_new_tokens=8, temperature=0))
    tok = pkg.lm.tokenizer
    assert "".join(pieces) == tok.decode(sample["generated_ids"][0])
    check = pkg.check_samples()
    assert check.ok and "generation: 2 prompts" in check.message


def test_sampling_is_seeded_and_stops_before_a_stop_string(tiny_lm_build):
    import edgepack_runtime as rt

    pkg = rt.load(tiny_lm_build.package_path)
    a = "".join(pkg.generate("the cat", max_new_tokens=12, temperature=1.0, top_k=20, seed=4))
    b = "".join(pkg.generate("the cat", max_new_tokens=12, temperature=1.0, top_k=20, seed=4))
    assert a == b
    greedy = "".join(pkg.generate("the cat", max_new_tokens=12, temperature=0))
    if " " in greedy.strip():
        stop = greedy.strip().split(" ")[1]
        cut = "".join(pkg.generate("the cat", max_new_tokens=12, temperature=0, stop=[stop]))
        assert stop not in cut and greedy.startswith(cut)


def test_python_refuses_a_recording_the_model_does_not_reproduce(tiny_lm_build, tmp_path):
    import edgepack_runtime as rt

    folder = _tamper(_folder(tiny_lm_build, tmp_path / "pkg"))
    check = rt.load(folder).check_samples()
    assert (
        not check.ok
        and "greedy decoding differs from the recorded tokens at position 0" in check.message
    )


def test_edgepack_run_prompt_streams_text(tiny_lm_build):
    from packager.cli import cli

    res = CliRunner().invoke(
        cli,
        [
            "run",
            str(tiny_lm_build.package_path),
            "--prompt",
            "the dog",
            "--max-new-tokens",
            "5",
            "--seed",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("the dog")
    res = CliRunner().invoke(cli, ["run", str(tiny_lm_build.package_path)])
    assert res.exit_code == 2 and "--prompt" in res.output


def test_a_prompt_longer_than_the_context_is_one_line_before_onnxruntime(tiny_lm_build):
    import edgepack_runtime as rt

    from packager.cli import cli

    pkg = rt.load(tiny_lm_build.package_path)
    n = pkg.lm.context_length
    prompt = "the cat sat " * n
    assert n and len(pkg.lm.encode(prompt)) >= n
    with pytest.raises(rt.InputError, match=rf"model's context is {n:,} positions"):
        list(pkg.generate(prompt, max_new_tokens=2))
    res = CliRunner().invoke(cli, ["run", str(tiny_lm_build.package_path), "--prompt", prompt])
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 2 and len(lines) == 1 and "shorten the prompt" in lines[0]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_greedy_decoding_reproduces_the_recording(tiny_lm_build, tmp_path):
    check = subprocess.run(
        ["node", str(JS / "bin/check.js"), str(tiny_lm_build.package_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert "generation 2 prompts, " in check.stdout and "greedy tokens reproduced" in check.stdout
    example = subprocess.run(
        ["node", str(JS / "examples/generate.js"), str(tiny_lm_build.package_path), "the dog"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert example.returncode == 0, example.stderr
    assert example.stdout == _greedy(tiny_lm_build.package_path, "the dog") + "\n"
    bad = _tamper(_folder(tiny_lm_build, tmp_path / "pkg"))
    refused = subprocess.run(
        ["node", str(JS / "bin/check.js"), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1 and "greedy decoding differs" in refused.stderr


@pytest.mark.slow
def test_cpp_greedy_decoding_reproduces_the_recording(tiny_lm_build, cpp_bin, tmp_path):
    folder = _folder(tiny_lm_build, tmp_path / "pkg")
    check = subprocess.run(
        [str(cpp_bin / "edgepack_check"), str(folder)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stderr
    assert "generation" in check.stdout and "greedy tokens reproduced" in check.stdout
    example = subprocess.run(
        [str(cpp_bin / "generate"), str(folder), "the dog"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert example.returncode == 0, example.stderr
    assert example.stdout == _greedy(folder, "the dog") + "\n"
    refused = subprocess.run(
        [str(cpp_bin / "edgepack_check"), str(_tamper(folder))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "greedy decoding differs" in refused.stderr


def test_verify_replays_the_generation_in_every_runtime_it_has(tiny_lm_build):
    from packager.verify import verify_package

    checks = verify_package(tiny_lm_build.package_path, ["python", "js"])
    assert all(c.ok for c in checks), [c.line() for c in checks]
    assert all("greedy tokens reproduced" in c.line() for c in checks)
