"""Static-embedding students (distill.student.arch static, packager.distill.static): a tiny
build of each text task end to end, the graph's inputs the ones every runtime feeds, the
package reproducing its samples through the Python runtime."""

from __future__ import annotations

import onnx
import pytest

pytest.importorskip("model2vec")


def _build(text_root, name, teacher, task, **sections):
    from tiny_models import tiny_text_recipe_dict

    from packager.pipeline import build
    from packager.progress import SilentReporter
    from packager.recipe import build_recipe

    base = tiny_text_recipe_dict(
        str(text_root / "topics.jsonl"),
        str(teacher),
        name=name,
        task=task,
        package={"out_dir": str(text_root / name)},
        distill={"student": {"arch": "static"}, "epochs": 3, "batch_size": 32, "lr": 0.01},
        **sections,
    )
    base["distill"].pop("losses")
    return build(build_recipe(base), cache_dir=text_root / "cache", reporter=SilentReporter())


@pytest.fixture(scope="module")
def static_encoder(text_root, tiny_texts_file):
    from tiny_models import tiny_bert_folder

    # 1,100 word pieces: a table tall enough for quantize.embeddings int4 (>= 1024 rows)
    teacher = tiny_bert_folder(
        text_root / "static-encoder", task="feature-extraction", seed=1, vocab_size=1100
    )
    return _build(
        text_root,
        "static-encoder",
        teacher,
        "feature-extraction",
        quantize={"metric": "cosine", "embeddings": "int4"},
        evaluate={"max_drop": 0.5, "min_cosine": 0.0},
    )


@pytest.mark.slow
def test_static_student_is_a_gather_graph_with_the_runtimes_inputs(static_encoder):
    import edgepack_runtime

    art = static_encoder.artifact
    fp32 = onnx.load(str(art("export").file()))
    assert [i.name for i in fp32.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in fp32.graph.output] == ["sentence_embedding"]
    ops = {n.op_type for n in fp32.graph.node}
    assert "Gather" in ops and not ops & {"MatMul", "Attention", "Softmax"}
    int4 = onnx.load(str(art("quantize").file()))
    assert "GatherBlockQuantized" in {n.op_type for n in int4.graph.node}
    distill = art("distill").meta
    assert distill["arch"] == "static" and distill["epochs_run"] >= 1
    assert distill["val_cosine"] >= distill["curve"][0]["val"]  # tuning kept the best table
    pkg = edgepack_runtime.load(static_encoder.package_path)
    pred = pkg.predict(["rain and snow", "the match"])
    assert pred.embeddings.shape == (2, 32)
    assert pkg.verify().ok  # the shipped outputs reproduce from raw strings


@pytest.mark.slow
def test_static_classifier_student_has_a_head(text_root, tiny_classifier, tiny_texts_file):
    import edgepack_runtime

    res = _build(
        text_root,
        "static-classifier",
        tiny_classifier,
        "text-classification",
        evaluate={"max_drop": 0.5},
    )
    graph = onnx.load(str(res.artifact("export").file())).graph
    assert [o.name for o in graph.output] == ["logits"]
    assert "Gemm" in {n.op_type for n in graph.node}
    assert 0.0 <= res.artifact("distill").meta["val_accuracy"] <= 1.0
    assert edgepack_runtime.load(res.package_path).verify().ok
