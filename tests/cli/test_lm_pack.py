"""models/lm-pack.yaml as a user types it (issue 28): `edgepack build models/lm-pack.yaml --set
teacher.source=hf:PATH` packages a pretrained causal LM without distilling (it was refused:
"distill: none does not apply to task text-generation"): onnxruntime-genai's builder graph, int4
with the tied word table once, evaluated against its fp32 self, benched; `edgepack run --prompt`
streams from it, `edgepack verify --runtime all` replays its recorded generation in Python, Node
and C++, and onnxruntime-genai loads the package folder as it is and decodes the same tokens."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from cli_helpers import edgepack, one_error_line
from tiny_models import tiny_causal_lm_folder, write_tiny_lm_texts

from packager.export import genai_builder

RECIPE = Path(__file__).resolve().parents[2] / "models" / "lm-pack.yaml"
CHAT = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
pytestmark = pytest.mark.skipif(
    not genai_builder.installed(),
    reason=f"onnxruntime-genai's builder is not installed at {genai_builder.home()} "
    "(make genai-builder)",
)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tied tiny Llama with a chat template, packaged by the recipe through the command."""
    root = tmp_path_factory.mktemp("lm-pack")
    folder = tiny_causal_lm_folder(root / "llama", "llama", layers=2, hidden=64)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "tie_word_embeddings": True}))
    (folder / "chat_template.jinja").write_text(CHAT)
    texts = write_tiny_lm_texts(root / "texts.jsonl", 300)
    proc = edgepack(
        "build", RECIPE, "--set", f"teacher.source=hf:{folder}", "--set", f"data.source={texts}",
        "--set", "data.max_length=32", "--set", "bench.prefill=[16]", "--set", "bench.decode=8",
        "--set", "bench.threads=[1]", "--set", "evaluate.lm_sequences=4",
        "--set", f"package.out_dir={root / 'dist'}", "--cache-dir", root / "cache",
        "--accept-terms", "unknown", timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


def test_lm_pack_builds_a_package_of_the_pretrained_model_without_distilling(packed):
    root, proc = packed
    assert "distill" not in proc.stdout.split("package:")[0].split("✓ export_teacher")[0]
    assert "student_int4" in proc.stdout and "package:" in proc.stdout
    pkg = root / "dist" / "lm-pack.edgepack"
    with zipfile.ZipFile(pkg) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        genai = json.loads(zf.read("genai_config.json"))
    assert {"model.onnx", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= names
    gen = manifest["generation"]
    assert gen["exporter"] == "onnxruntime-genai model builder 0.18.0 (transformers 5.23.0)"
    assert gen["genai_config"] == "genai_config.json"
    assert genai["model"]["decoder"]["filename"] == "model.onnx"
    assert genai["search"]["past_present_share_buffer"] is True
    assert manifest["provenance"]["method"]["type"] == "none"
    q = manifest["quantization"]
    assert q["precision"] == "int4" and "tied_table" in q
    metrics = manifest["metrics"]
    assert metrics["teacher_fp32"]["perplexity"] == metrics["student_fp32"]["perplexity"]
    assert 0 < metrics["student_int4"]["top1_agreement"] <= 1
    stages = {s["step"]: s for s in manifest["lineage"]["stages"]}
    assert "distill" not in stages and "export_teacher" in stages


def test_run_prompt_streams_and_verify_replays_in_every_runtime(packed, cpp_bin):
    root, _ = packed
    pkg = root / "dist" / "lm-pack.edgepack"
    run = edgepack("run", pkg, "--prompt", "the cat", "--max-new-tokens", "6", "--seed", "2")
    assert run.returncode == 0 and run.stdout.startswith("the cat"), run.stderr
    verify = edgepack("verify", pkg, "--runtime", "all", timeout=600)
    assert verify.returncode == 0, verify.stderr
    for runtime in ("python", "cpp", "js"):
        line = next(ln for ln in verify.stdout.splitlines() if ln.startswith(f"{runtime}: "))
        assert line.startswith(f"{runtime}: ok") and "greedy tokens reproduced" in line, line


def test_onnxruntime_genai_loads_the_package_folder_and_decodes_the_recorded_tokens(
    packed, tmp_path
):
    og = pytest.importorskip("onnxruntime_genai", reason="pip install onnxruntime-genai")
    root, _ = packed
    folder = tmp_path / "pkg"
    with zipfile.ZipFile(root / "dist" / "lm-pack.edgepack") as zf:
        zf.extractall(folder)
    sample = json.loads((folder / "samples" / "generation.json").read_text())
    model = og.Model(str(folder))
    assert list(og.Tokenizer(model).encode(sample["prompts"][1])) == sample["prompt_ids"][1]
    for prompt, want in zip(sample["prompt_ids"], sample["generated_ids"], strict=True):
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=len(prompt) + len(want))
        gen = og.Generator(model, params)
        gen.append_tokens(prompt)
        got = []
        while not gen.is_done():
            gen.generate_next_token()
            got.append(int(gen.get_next_tokens()[0]))
        assert got and got == want[: len(got)]  # genai stops at EOS; the recording runs on


def test_distill_none_with_generate_is_one_error_line(tmp_path):
    folder = tiny_causal_lm_folder(tmp_path / "llama", "llama", layers=1)
    proc = edgepack(
        "build", RECIPE, "--dry-run", "--set", f"teacher.source=hf:{folder}",
        "--set", "generate.enabled=true",
    )  # fmt: skip
    assert "set generate.enabled = false" in one_error_line(proc)
    shutil.rmtree(folder)


def test_the_genai_benchmarks_children_measure_both_runtimes_on_the_package(packed, tmp_path):
    """scripts/bench_lm_genai.py's fast version: its child measures prefill, decode and peak RSS
    through edgepack's runtime and through onnxruntime-genai (the package folder is a genai
    model folder), and both agree with the recorded greedy tokens teacher-forced."""
    import subprocess
    import sys

    pytest.importorskip("onnxruntime_genai", reason="pip install onnxruntime-genai")
    root, _ = packed
    folder = tmp_path / "pkg"
    with zipfile.ZipFile(root / "dist" / "lm-pack.edgepack") as zf:
        zf.extractall(folder)
    sample = json.loads((folder / "samples" / "generation.json").read_text())
    seq = sample["prompt_ids"][0] + sample["generated_ids"][0]
    ref = [*[-1] * (len(sample["prompt_ids"][0]) - 1), *sample["generated_ids"][0]]
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_lm_genai.py"
    for variant in ("edgepack", "genai"):
        out = {}
        for what in ("speed", "agreement"):
            spec = {"variant": variant, "path": str(folder), "threads": 1, "what": what,
                    "prompt": seq[:8], "decode": 4, "max_length": len(seq) + 1,
                    "seqs": [seq], "ref": [ref]}  # fmt: skip
            (tmp_path / "spec.json").write_text(json.dumps(spec))
            proc = subprocess.run([sys.executable, script, "--child", tmp_path / "spec.json"],
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
            assert proc.returncode == 0, proc.stderr[-2000:]
            out |= json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["prefill_ms"] > 0 and out["decode_tps"] > 0 and out["peak_rss_mb"] > 10
        assert out["positions"] == len(seq) - 1
        assert round(out["agreement"] * out["positions"]) == len(sample["generated_ids"][0])


def test_the_genai_benchmark_refuses_an_unknown_shape_in_one_line():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_lm_genai.py"
    proc = subprocess.run(
        [sys.executable, script, "--shapes", "gpt-5"], capture_output=True, text=True, timeout=120
    )
    assert "--shapes: unknown ['gpt-5']" in one_error_line(proc)
