"""API teachers end to end, as a user types them: models/api-embed.yaml and models/api-lm.yaml
built against tests/api_server.py on 127.0.0.1 (tiny models), a text classifier taught by a
chat endpoint's labels, the rebuild that makes no call, the provenance the package carries.
"""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path

import pytest
from api_server import Backend, serve
from click.testing import CliRunner

from packager.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build(recipe: str, cache: Path, out: Path, *sets: str, flags=()) -> tuple[int, str]:
    args = ["build", str(REPO / "models" / recipe), "--cache-dir", str(cache), *flags]
    for s in (*sets, f"package.out_dir={out}", "bench.enabled=false"):
        args += ["--set", s]
    r = CliRunner().invoke(cli, args)
    return r.exit_code, " ".join(r.output.split())  # rich wraps long lines


def _manifest(package: Path) -> dict:
    with zipfile.ZipFile(package) as z:
        return json.loads(z.read("manifest.json"))


def _member(package: Path, name: str) -> str:
    with zipfile.ZipFile(package) as z:
        return z.read(name).decode()


def _component(doc, ref: str) -> dict:
    """The component `ref` anywhere in a CycloneDX document (pedigree ancestors included)."""
    if isinstance(doc, dict):
        if doc.get("bom-ref") == ref:
            return doc
        doc = list(doc.values())
    for item in doc if isinstance(doc, list) else []:
        found = _component(item, ref)
        if found:
            return found
    return {}


@pytest.fixture(scope="module")
def embed_world(tmp_path_factory, tiny_encoder, tiny_texts_file):
    """A 32-d embeddings endpoint (the tiny encoder) and a 16-d student folder."""
    from tiny_models import tiny_bert_folder, write_tiny_texts

    root = tmp_path_factory.mktemp("api-embed")
    student = tiny_bert_folder(root / "student", "feature-extraction", seed=2, hidden_size=16)
    probe = write_tiny_texts(root / "probe.jsonl", n=40, seed=7)
    sets = [
        f"data.source={tiny_texts_file}",
        "data.limit=null",
        "data.max_length=32",
        "data.stream_batch=64",
        "data.val_fraction=0.15",
        "data.test_fraction=0.2",
        f"distill.student.source=hf:{student}",
        "distill.student.layers=[0,2]",
        "distill.epochs=2",
        "distill.batch_size=16",
        f"evaluate.probe={probe}",
        "evaluate.max_drop=0.5",
        "teacher.api.eval_limit=40",
    ]
    return root, sets


def test_api_embed_recipe_builds_offline_and_rebuilds_with_no_call(embed_world, api_models):
    root, sets = embed_world
    backend = Backend(embedder=api_models["embedder"], model_id="all-MiniLM-L6-v2")
    with serve(backend, _free_port()) as (url, b):
        sets = [*sets, f"teacher.api.base_url={url}"]
        code, out = _build("api-embed.yaml", root / "cache", root / "dist", *sets)
        assert code == 0, out
        made = b.counts["/v1/embeddings"]
        assert made > 0 and "teacher calls:" in out and f"{made} made this run" in out
        assert "teacher (api answers)" in out and "student_int8" in out
        assert "a Dense projection learns the map" in out  # 16-d student, 32-d vectors
        manifest = _manifest(root / "dist" / "api-embed.edgepack")
        assert manifest["outputs"][0]["shape"][-1] == 32  # the endpoint's width, in the graph
        t = manifest["provenance"]["teacher"]
        assert t["kind"] == "api" and t["endpoint"]["served_models"] == ["all-MiniLM-L6-v2"]
        assert t["calls"]["calls"] == made and t["learned_from"] == "outputs"
        # The rebuild: every step cached, no request sent.
        code, again = _build("api-embed.yaml", root / "cache", root / "dist", *sets)
        assert code == 0 and "teacher calls: 0 this run" in again, again
        assert b.counts["/v1/embeddings"] == made
        # The teacher step's folder gone (another student, say): its answers come from the
        # call cache, still no request.
        for folder in (root / "cache" / "teacher").iterdir():
            if folder.is_dir():
                import shutil

                shutil.rmtree(folder)
        code, third = _build("api-embed.yaml", root / "cache", root / "dist", *sets)
        assert code == 0 and "teacher calls: 0 made this run" in third, third
        assert b.counts["/v1/embeddings"] == made


def test_inspect_provenance_shows_teacher_endpoint_calls_and_terms(embed_world):
    root, _ = embed_world
    package = root / "dist" / "api-embed.edgepack"
    if not package.exists():
        pytest.skip("needs the api-embed build of the test above")
    r = CliRunner().invoke(cli, ["inspect", str(package), "--provenance"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "teacher api:all-MiniLM-L6-v2" in text and "student" in text
    assert "endpoint http://127.0.0.1:" in text and "model all-MiniLM-L6-v2" in text
    assert "calls" in text and "the student learned from its outputs" in text
    assert "license apache-2.0" in text
    card = _member(package, "README.md")
    assert "Learned from another model's outputs" in card and "http://127.0.0.1:" in card
    bom = json.loads(_member(package, "bom.cdx.json"))
    props = {p["name"]: p["value"] for p in _component(bom, "teacher").get("properties", [])}
    assert props["edgepack:learned_from"] == "outputs"
    assert props["edgepack:endpoint"].startswith("http://127.0.0.1:")


def test_api_lm_recipe_token_level_where_tokens_are_the_students(tmp_path, lm_root, api_models):
    from tiny_models import tiny_causal_lm_folder, write_tiny_lm_texts

    student = tiny_causal_lm_folder(tmp_path / "student", "llama", seed=1, layers=2)
    data = write_tiny_lm_texts(tmp_path / "sentences.jsonl", n=300)
    backend = Backend(lm=api_models["lm"], model_id="SmolLM2-360M-Instruct", token_ids=True)
    with serve(backend, _free_port()) as (url, b):
        sets = [
            f"teacher.api.base_url={url}",
            f"data.source={data}",
            "data.limit=null",
            "data.max_length=32",
            "data.val_fraction=0.1",
            "data.test_fraction=0.1",
            "teacher.api.limit=24",
            "teacher.api.eval_limit=4",
            "teacher.api.max_tokens=6",
            f"distill.student.source=hf:{student}",
            "distill.max_steps=4",
            "distill.threads=1",
            "quantize.block_size=16",
            "quantize.lm_head=auto",
            "evaluate.lm_sequences=4",
            "evaluate.max_ppl_ratio=null",
            "evaluate.min_agreement=null",
            "package.generation.sample_tokens=4",
        ]
        code, out = _build("api-lm.yaml", tmp_path / "cache", tmp_path / "dist", *sets)
        assert code == 0, out
        assert "token-level: top-5 KL on" in out and "24 of 24 completions" in out
        assert "teacher (api answers)" in out and "student_int4" in out
        assert b.counts["/v1/completions"] == 28  # 24 training + 4 held-out prompts
        code, again = _build("api-lm.yaml", tmp_path / "cache", tmp_path / "dist", *sets)
        assert code == 0 and "teacher calls: 0 this run" in again
        assert b.counts["/v1/completions"] == 28
    m = _manifest(tmp_path / "dist" / "api-lm.edgepack")
    gen = [d for d in m["provenance"]["data"] if d["kind"] == "generated"]
    assert gen and gen[0]["generated_by"].startswith("api:SmolLM2-360M-Instruct at 127.0.0.1:")
    assert set(m["metrics"]["teacher_fp32"]) >= {"perplexity", "top1_agreement"}


def test_api_lm_sequence_level_only_when_the_tokens_are_not_the_students(tmp_path, api_models):
    """Decoded byte pieces the student's vocabulary cannot name: sequence-level only, said."""
    from tiny_models import tiny_causal_lm_folder, write_tiny_lm_texts

    student = tiny_causal_lm_folder(tmp_path / "student", "llama", seed=1, layers=2)
    data = write_tiny_lm_texts(tmp_path / "sentences.jsonl", n=200)
    with serve(Backend(lm=api_models["lm"], model_id="tiny-teacher"), _free_port()) as (url, _):
        sets = [
            "teacher.source=api:tiny-teacher",
            f"teacher.api.base_url={url}",
            f"data.source={data}",
            "data.limit=null",
            "data.max_length=32",
            "data.val_fraction=0.1",
            "data.test_fraction=0.1",
            "teacher.api.limit=12",
            "teacher.api.eval_limit=2",
            "teacher.api.max_tokens=6",
            f"distill.student.source=hf:{student}",
            "distill.max_steps=2",
            "distill.threads=1",
            "quantize.block_size=16",
            "quantize.lm_head=auto",
            "evaluate.lm_sequences=2",
            "evaluate.max_ppl_ratio=null",
            "evaluate.min_agreement=null",
            "package.generation.sample_tokens=4",
        ]
        code, out = _build("api-lm.yaml", tmp_path / "cache", tmp_path / "dist", *sets)
    assert code == 0, out
    assert "sequence-level only (no completion's tokens are the student's)" in out


def test_chat_labels_teach_a_classifier_and_unparseable_answers_are_left_out(
    tmp_path, api_models, tiny_texts_file
):
    from tiny_models import tiny_bert_folder, tiny_text_recipe_dict

    from packager.pipeline import build
    from packager.progress import SilentReporter
    from packager.recipe import build_recipe

    student = tiny_bert_folder(tmp_path / "student", seed=5)
    backend = Backend(labeler=api_models["labeler"], model_id="labeler", garbage_every=7)
    with serve(backend, _free_port()) as (url, _):
        recipe = tiny_text_recipe_dict(
            str(tiny_texts_file),
            "unused",
            teacher={
                "source": "api:labeler",
                "api": {
                    "base_url": url,
                    "prompt": "Label the text as one of: {labels}. Answer with the label only.\nText: {text}",
                    "eval_limit": 40,
                },
            },
            distill={
                "student": {"arch": "transformer", "source": f"hf:{student}", "layers": [0, 2]},
                "losses": None,
                "epochs": 3,
            },
            evaluate={"max_drop": 0.5},
            provenance={"teacher": {"license": "apache-2.0"}},
            package={"out_dir": str(tmp_path / "dist")},
            bench={"enabled": False},
        )
        result = build(
            build_recipe(recipe), cache_dir=tmp_path / "cache", reporter=SilentReporter()
        )
    teacher = result.artifact("teacher").meta
    assert teacher["answers"] == "labels" and set(teacher["label_distribution"]) == {
        "sports",
        "tech",
        "weather",
    }
    assert teacher["unparseable"]["train"] > 0  # every 7th answer was prose
    kept = teacher["train_labeled"]
    assert kept + teacher["unparseable"]["train"] == teacher["sizes"]["train"]
    assert sum(teacher["label_distribution"].values()) == kept
    metrics = result.artifact("evaluate").meta["metrics"]
    assert metrics["student_fp32"]["agreement"] > 0.5  # the student gives the teacher's labels
