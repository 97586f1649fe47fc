"""Static-embedding students (distill.student.arch static, packager.distill.text.static): a tiny
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


def _recipe_build(recipe: str, text_root, teacher, data, *sets: str):
    """`edgepack build models/RECIPE` as a user types it, with a tiny teacher and data --set."""
    from pathlib import Path

    from click.testing import CliRunner

    from packager.cli import cli

    models = Path(__file__).resolve().parents[2] / "models"
    name = recipe.removesuffix(".yaml")
    args = ["build", str(models / recipe), "--cache-dir", str(text_root / "cache")]
    for s in (
        f"teacher.source=hf:{teacher}",
        f"data.source={data}",
        f"package.out_dir={text_root / ('recipe-' + name)}",
        "data.max_length=32",
        "data.eval_limit=40",
        "distill.epochs=2",
        "bench.runs=3",
        "bench.warmup=1",
        "bench.dims.sequence=16",  # the tiny teacher has 64 positions
        "evaluate.probe=" + str(Path(data).with_name("tiny-probe.jsonl")),
        *sets,
    ):
        args += ["--set", s]
    return CliRunner().invoke(cli, args)


@pytest.mark.slow
def test_minilm_static_recipe_builds_as_a_user_types_it(text_root, tiny_texts_file):
    from tiny_models import tiny_bert_folder, write_tiny_texts

    teacher = tiny_bert_folder(
        text_root / "recipe-encoder", task="feature-extraction", seed=2, vocab_size=1100
    )
    write_tiny_texts(tiny_texts_file.with_name("tiny-probe.jsonl"), n=60, seed=7)
    res = _recipe_build(
        "minilm-l6-static.yaml", text_root, teacher, tiny_texts_file, "evaluate.min_cosine=0"
    )
    assert res.exit_code == 0, res.output
    assert (text_root / "recipe-minilm-l6-static" / "minilm-l6-static.edgepack").is_file()
    assert "static student" in res.output, res.output


@pytest.mark.slow
def test_debian_sections_recipe_fine_tunes_its_teacher(text_root, tiny_texts_file):
    """The classification recipe: its teacher (an encoder with no head) is fine-tuned on the
    data's labels first, then distilled into a static student with a head."""
    from tiny_models import tiny_bert_folder, write_tiny_texts

    encoder = tiny_bert_folder(text_root / "recipe-plain", task="feature-extraction", seed=3)
    write_tiny_texts(tiny_texts_file.with_name("tiny-probe.jsonl"), n=60, seed=7)
    res = _recipe_build(
        "debian-sections.yaml",
        text_root,
        encoder,
        tiny_texts_file,
        "teacher.train.epochs=2",
        "teacher.train.lr=0.003",
        "evaluate.min_accuracy=0",
        "evaluate.max_drop=1",
    )
    assert res.exit_code == 0, res.output
    assert "fine-tuned 2 epochs on the training split: val accuracy" in res.output
    assert (text_root / "recipe-debian-sections" / "debian-sections.edgepack").is_file()


NODE_RUN = """
const ort = require("onnxruntime-node");
const [model, feedsFile] = process.argv.slice(2);
const given = JSON.parse(require("fs").readFileSync(feedsFile, "utf8"));
(async () => {
  const session = await ort.InferenceSession.create(model);
  const feeds = {};
  for (const [name, t] of Object.entries(given))
    feeds[name] = new ort.Tensor("int64", BigInt64Array.from(t.data.map(BigInt)), t.shape);
  const out = await session.run(feeds);
  console.log(JSON.stringify(Array.from(out[session.outputNames[0]].data)));
})();
"""


@pytest.mark.slow
def test_static_graph_runs_on_onnxruntime_node_from_token_ids(static_encoder, tmp_path):
    """The int4-table graph (GatherBlockQuantized) on Node's onnxruntime, fed the package's
    recorded token ids, gives its recorded embeddings: what the JS runtime feeds a text
    package once it tokenises (runtime-text)."""
    import json
    import subprocess
    import zipfile

    import numpy as np
    from runtime_drivers import REPO, need_js

    node = need_js()
    folder = tmp_path / "pkg"
    zipfile.ZipFile(static_encoder.package_path).extractall(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    samples = manifest["samples"]
    feeds = {n: np.load(folder / f) for n, f in samples["inputs"].items()}
    (tmp_path / "feeds.json").write_text(
        json.dumps(
            {n: {"data": a.ravel().tolist(), "shape": list(a.shape)} for n, a in feeds.items()}
        )
    )
    (tmp_path / "run.js").write_text(NODE_RUN)
    proc = subprocess.run(
        [
            node,
            str(tmp_path / "run.js"),
            str(folder / manifest["model"]),
            str(tmp_path / "feeds.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO / "runtimes" / "js",
        env={"NODE_PATH": str(REPO / "runtimes" / "js" / "node_modules")},
    )
    assert proc.returncode == 0, proc.stderr
    want = np.load(folder / next(iter(samples["outputs"].values())))
    got = np.asarray(json.loads(proc.stdout), np.float32).reshape(want.shape)
    assert np.abs(got - want).max() <= samples["atol"] + 1e-5
