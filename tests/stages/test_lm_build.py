"""A whole tiny text-generation build: the LM plan, each stage's LM handler (data, teacher,
generate, distill, export with a KV cache, int4, evaluate, bench in tokens, package), its
gates and what the package records."""

from __future__ import annotations

import json
import zipfile

import pytest

from packager.errors import CheckFailed
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def test_the_lm_plan_runs_generate_before_distill_and_ships_the_int4_student(
    tiny_lm_teacher, tiny_lm_texts_file
):
    from tiny_models import tiny_lm_recipe_dict

    from packager.recipe import build_recipe

    recipe = build_recipe(
        tiny_lm_recipe_dict(
            str(tiny_lm_texts_file), str(tiny_lm_teacher), generate={"enabled": True}
        )
    )
    steps = {s.name: s for s in build_plan(recipe)}
    order = list(steps)
    assert order.index("generate") < order.index("distill") < order.index("export")
    assert steps["distill"].roles["generated"] == "generate"
    assert steps["package"].roles["model"] == "quantize"
    assert steps["data"].config.modality == "lm"


def test_each_stage_records_what_a_language_model_needs(tiny_lm_build):
    b = tiny_lm_build
    assert b.artifact("data").modality == "lm" and b.artifact("teacher").meta["val_perplexity"] > 1
    parity = b.artifact("export").meta["parity"]
    assert parity["greedy_identical"] and parity["prefill_max_abs_diff"] < 1e-4
    q = b.artifact("quantize").meta["quantization"]
    assert q["mode"] == "int4" and q["accuracy_level"] == 4
    assert "MatMulNBits" in b.artifact("quantize").meta["ops"]
    metrics = b.artifact("evaluate").meta["metrics"]
    assert set(metrics) == {"teacher_fp32", "student_fp32", "student_int4"}
    assert (
        metrics["teacher_fp32"]["top1_agreement"] == 1.0
        and metrics["teacher_fp32"]["mean_kl"] < 1e-9
    )
    assert all(m["perplexity"] > 1 and 0 <= m["top1_agreement"] <= 1 for m in metrics.values())
    bench = b.artifact("bench").meta["results"]
    assert {r["variant"] for r in bench} == {"teacher_fp32", "student_fp32", "student_int4"}
    for r in bench:
        lm = r["lm"]
        assert (
            r["kind"] == "measured" and lm["decode_tokens"] == 8 and lm["decode_tokens_per_s"] > 0
        )
        assert set(lm["prefill_tokens_per_s"]) == {"16"} and lm["kv_cache_bytes_per_token"] > 0
        assert r["peak_rss_mb"] > 0 and r["latency_ms"]["n"] == 8  # one latency per decode step


def test_the_package_carries_the_generation_block_and_who_wrote_its_data(tiny_lm_build):
    path = tiny_lm_build.package_path
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert {"tokenizer.json", "samples/generation.json", "samples/logits.npy"} <= set(
            zf.namelist()
        )
    gen = manifest["generation"]
    assert gen["sample"] == "samples/generation.json" and gen["eos_token_ids"]
    assert gen["defaults"]["max_new_tokens"] == 64 and gen["kv_cache"]["layers"] == 2
    data = manifest["provenance"]["data"]
    assert data[-1]["kind"] == "generated" and data[-1]["generated_by"].startswith("hf:")
    assert manifest["provenance"]["student_init"]["init"] == "pruned-ffn"
    report = tiny_lm_build.artifact("package").meta["report"]
    assert report["shipped"] == "student_int4" and report["metric"] == "perplexity"


def test_evaluate_gates_fail_the_build_with_the_number_and_the_tolerance(
    lm_root, tiny_lm_teacher, tiny_lm_texts_file, tiny_lm_build
):
    from tiny_models import tiny_lm_recipe_dict

    from packager.recipe import build_recipe

    recipe = build_recipe(
        tiny_lm_recipe_dict(
            str(tiny_lm_texts_file),
            str(tiny_lm_teacher),
            generate={"enabled": True, "prompts": 16, "max_new_tokens": 8, "batch": 8},
            evaluate={"min_agreement": 1.0, "max_ppl_ratio": 1.0000001},
        )
    )
    steps = [s for s in build_plan(recipe) if s.name not in ("bench", "package")]
    with pytest.raises(CheckFailed, match=r"evaluate\.min_agreement = 1|evaluate\.max_ppl_ratio"):
        run(steps, cache_dir=lm_root / "cache", reporter=SilentReporter())


def test_a_student_folder_with_another_vocabulary_is_refused(tmp_path, tiny_lm_build):
    from tiny_models import tiny_causal_lm_folder

    from packager.distill.lm import distill as lm_distill
    from packager.errors import RecipeError

    other = tiny_causal_lm_folder(tmp_path / "other", "gpt2")
    import transformers

    cfg = transformers.AutoConfig.from_pretrained(str(other))
    cfg.vocab_size += 5
    cfg.save_pretrained(str(other))
    (other / "model.safetensors").unlink()
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(str(other))
    job = {
        "teacher": str(tiny_lm_build.artifact("teacher").file()),
        "tokens": str(tiny_lm_build.artifact("tokenize").path),
        "out": str(tmp_path / "s"),
        "spec": {"arch": "causal-lm", "source": f"hf:{other}"},
        "settings": {"weights": {"logits_kd": 1.0}, "batch_size": 4, "max_steps": 1},
    }
    with pytest.raises(RecipeError, match="must share the teacher's tokenizer"):
        lm_distill.run(job)


def test_a_smaller_causal_lm_folder_sharing_the_tokenizer_is_a_student(tmp_path, tiny_lm_build):
    from tiny_models import tiny_causal_lm_folder

    from packager.distill.lm import distill as lm_distill

    small = tiny_causal_lm_folder(tmp_path / "small", "qwen2", seed=3, layers=1)
    job = {
        "teacher": str(tiny_lm_build.artifact("teacher").file()),
        "tokens": str(tiny_lm_build.artifact("tokenize").path),
        "out": str(tmp_path / "s"),
        "spec": {"arch": "causal-lm", "source": f"hf:{small}"},
        "settings": {"weights": {"logits_kd": 1.0}, "batch_size": 4, "max_steps": 2},
    }
    res = lm_distill.run(job)
    assert res["init"] == "given" and res["layers_kept"] == [] and res["steps"] == 2
    assert (tmp_path / "s" / "model.safetensors").is_file() and (
        tmp_path / "s" / "tokenizer.json"
    ).is_file()
