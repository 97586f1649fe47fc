"""package: one self-describing `NAME.edgepack` zip: model, manifest, samples, report, model card,
ML-BOM. The provenance block, the card, the BOM and the model's metadata_props are built by
packager.provenance from the provenance stage's record and the inputs' metadata.

Array data: samples are raw and preprocessed tensors, preprocessing the recorded formula. Text
data: the tokenizer ships as `tokenizer.json` with truncation and padding baked in (the settings
the manifest records), samples are raw strings in `samples/raw.json` with their token ids. The
handler is chosen by the data input's modality; everything else is shared.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packager.artifact import Artifact, Output
from packager.config import PackageStepConfig
from packager.errors import StageError
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import images_of, splits_of


def _array(tree, model: Artifact, data: Artifact, cfg: PackageStepConfig, ctx: StageContext):
    """(samples, preprocessing, postprocessing, labels) of an array package."""
    from packager.package import array_samples

    splits = splits_of(data)
    raw = splits.x["test"][: cfg.samples]
    x = splits.model_input("test", limit=cfg.samples)
    samples = array_samples(tree, tree / "model.onnx", raw, x)
    post = {
        "type": "classification",
        "output": model.meta["outputs"][0]["name"],
        "activation": "softmax",
        "labels": splits.labels,
    }
    return samples, splits.preprocessing.to_manifest(), post, splits.labels


def _text(tree, model: Artifact, data: Artifact, cfg: PackageStepConfig, ctx: StageContext):
    """(samples, preprocessing, postprocessing, labels) of a text package."""
    from packager.data.text import load_tokenizer, pad_token, read_split
    from packager.package import copy_tokenizer, text_samples

    student = ctx.inputs["student"]  # the student folder: its tokenizer is the teacher's
    folder, max_length = student.file(), data.meta["max_length"]
    tok = load_tokenizer(folder, max_length)
    copy_tokenizer(folder, tree, tok)
    pad_name, pad_id = pad_token(folder, tok)
    texts, _ = read_split(data.path, "test", limit=cfg.samples)
    samples = text_samples(tree, tree / "model.onnx", tok, texts)
    preprocessing = {
        "type": "text",
        "tokenizer": "tokenizer.json",
        "tokenizer_config": "tokenizer_config.json",
        "max_length": max_length,
        "truncation": True,
        "padding": "longest",  # each batch pads to its longest text (dynamic sequence axis)
        "pad_id": pad_id,
        "pad_token": pad_name,
        "inputs": list(samples["inputs"]),
    }
    output = model.meta["outputs"][0]["name"]
    labels = list(data.meta["labels"]) if cfg.task == "text-classification" else []
    if labels:
        post = {"type": "classification", "output": output, "activation": "softmax"}
        post["labels"] = labels
    else:
        post = {
            "type": "embedding",
            "output": output,
            "pooling": student.meta.get("pooling"),
            "normalize": bool(student.meta.get("normalize")),
            "in_graph": True,  # pooling and normalisation are nodes of model.onnx
        }
    return samples, preprocessing, post, labels


# The stated JPEG tolerance, in 8-bit levels of one pixel after resize and crop: measured on
# 18 JPEG photos at 256/224, jpeg-js (Node) differs from libjpeg-turbo (Pillow) by at most 4
# levels and stb_image (C++) by at most 1 (docs/package-format.md, "Image packages").
JPEG_LEVELS = 8


def _image(tree, model: Artifact, data: Artifact, cfg: PackageStepConfig, ctx: StageContext):
    """(samples, preprocessing, postprocessing, labels) of an image package: the first test
    images as files (the originals when the source is a folder of PNG/JPEG files, else PNG),
    the tensors the runtimes must make of them and the outputs the model gives."""
    import numpy as np

    from packager.data.image import encode_png
    from packager.package import array_samples

    images = images_of(data)
    rows = images.originals("test")[: cfg.samples]
    (tree / "samples" / "images").mkdir(parents=True)
    names, xs = [], []
    for i, row in enumerate(rows):
        data_bytes, pixels = images.raw(row)
        suffix = Path(row.get("file", "x.png")).suffix.lower() if data_bytes else ".png"
        name = f"samples/images/{i}{'.jpg' if suffix == '.jpeg' else suffix}"
        (tree / name).write_bytes(data_bytes if data_bytes else encode_png(pixels))
        names.append(name)
        xs.append(images.tensor(pixels))
    pre = {**images.spec, "input": model.meta["inputs"][0]["name"]}
    samples = array_samples(tree, tree / "model.onnx", None, np.stack(xs), mkdir=False)
    samples["images"] = names
    scale = pre.get("scale", 1.0) / min(pre.get("std", [1.0]))
    samples["jpeg_atol"] = JPEG_LEVELS * (scale if pre["dtype"] == "float32" else 1.0)
    # The teacher's classes, in its output order (what the model answers in).
    labels = list(ctx.inputs["teacher"].meta.get("labels") or data.meta["labels"])
    post = {
        "type": "classification",
        "output": model.meta["outputs"][0]["name"],
        "activation": "softmax",
        "labels": labels,
    }
    return samples, pre, post, labels


def _lm(tree, model: Artifact, data: Artifact, cfg: PackageStepConfig, ctx: StageContext):
    """A language model: tokenizer.json, the recorded greedy generation and the prefill
    samples (packager.package.lm); the manifest's generation block rides along in samples."""
    from packager.data.lm import rows
    from packager.package.lm import generation, lm_samples, sample_prompts

    g = cfg.generation
    prompts = sample_prompts(list(rows(data.path, "test", g.sample_prompts)))
    student = ctx.inputs["student"]  # the shape and special ids of the distilled model
    eos = student.meta.get("eos_token_ids") or []
    block, _ = lm_samples(tree, tree / "model.onnx", student.file(), prompts, g.sample_tokens, eos)
    export = ctx.inputs["export"]
    block["generation"] = generation(
        student.meta, g.model_dump(), tree, student.file(), export.path
    )
    block["generation"]["exporter"] = export.meta.get("exporter")
    return block, {"type": "none"}, {"type": "none"}, []


_HANDLERS = Handlers("package", array=_array, text=_text, image=_image, lm=_lm)


def _quantization_block(meta: dict[str, Any]) -> dict[str, Any]:
    """Which mode and settings produced the shipped model, and the CPU it was checked on."""
    from packager.quantize.speed import cpu_features

    block = dict(meta.get("quantization") or {"mode": "none", "precision": "fp32"})
    block["host_cpu"] = cpu_features()
    return block


def _quantization_text(meta: dict[str, Any]) -> str | None:
    q = meta.get("quantization")
    if not q or q["mode"] == "none":
        return None
    text = f"{q['mode']} {q['precision'].upper()}, {q['format']}"
    if q.get("calibration"):
        text += f", calibration {q['calibration']}"
    if q.get("excluded_nodes"):
        text += f", {len(q['excluded_nodes'])} node(s) kept in float"
    return text


def _quantize_warnings(meta: dict[str, Any], bench: Artifact | None) -> tuple[list, list]:
    """(warnings, superseded): the quantize step's speed verdict is its own timing; when the
    bench measured int8 beside fp32 here, the verdict is the bench's (the table the user reads),
    and the quantize step's is superseded rather than said beside a table that contradicts it."""
    from packager.stages.bench import quantized_speed

    q = meta.get("quantization") or {}
    speed = (q.get("speed") or {}).get("warning")
    measured = bench is not None and quantized_speed(bench.meta["results"]) is not None
    out = [speed] if speed and not measured else []
    if q.get("budget_met") is False:
        m = q["metric"]
        out.append(
            f"quantize: accuracy budget not met: {m['name']} drop {m['drop']:.4f} > "
            f"max_drop {q['max_drop']:g}"
        )
    return out, [speed] if speed and measured else []


_DISTILL_KEYS = (
    "arch",
    "params",
    "teacher_params",
    "compression",
    "best_epoch",
    "epochs_run",
    "val_accuracy",
    "curve",
    "compute",  # where and how fast it trained (device, precision, processes, rate)
)


def _report(model: Artifact, cfg: PackageStepConfig, ctx: StageContext) -> dict[str, Any]:
    """report.json: what the build table, report.md and the model card show."""
    evaluation, bench = ctx.inputs["evaluate"], ctx.inputs.get("bench")
    sources = ctx.inputs["provenance"].meta
    quantized, superseded = _quantize_warnings(model.meta, bench)
    warnings = sources["gate"]["warnings"] + evaluation.meta.get("warnings", [])
    warnings += (bench.meta["warnings"] if bench else []) + quantized
    return {
        "name": sources["package_name"],  # the recipe's name, or with a naming duty applied
        "shipped": evaluation.meta["shipped"] if cfg.model == "quantized" else "student_fp32",
        "dataset": evaluation.meta["dataset"],
        "metric": evaluation.meta.get("metric", "accuracy"),
        "probe_metric": evaluation.meta.get("probe_metric"),
        "metrics": evaluation.meta["metrics"],
        "variants": evaluation.meta["variants"],
        "benchmarks": bench.meta["results"] if bench else [],
        "warnings": list(dict.fromkeys(warnings)),  # one line per fact
        "superseded_warnings": superseded,
        "quantization": _quantization_text(model.meta),
        "distill": {k: ctx.inputs["student"].meta.get(k) for k in _DISTILL_KEYS},
    }


def _provenance(model: Artifact, cfg: PackageStepConfig, ctx: StageContext) -> dict[str, Any]:
    """The manifest's provenance: the sources and the gate (provenance stage), both parents,
    the data's rows, the method, the shipped model's quantization."""
    from packager.hashing import sha256_file
    from packager.provenance.lineage import provenance_block

    teacher, student, data = ctx.inputs["teacher"], ctx.inputs["student"], ctx.inputs["data"]
    weights = None
    if teacher.meta.get("trained"):  # trained in this build: its weights are the cached file
        f = teacher.file()
        files = sorted(f.glob("*.safetensors")) if f.is_dir() else [f]  # an LM's folder
        weights = [
            {"file": w.name, "sha256": sha256_file(w), "size": w.stat().st_size} for w in files
        ]
    return provenance_block(
        ctx.inputs["provenance"].meta,
        teacher.id,
        weights,
        {**student.meta, "teacher_itself": cfg.method.get("type") == "none"},
        teacher.meta.get("layers"),
        data.meta["sizes"],
        cfg.method,
        model.meta.get("quantization") or {"mode": "none", "precision": "fp32"},
    )


def _manifest(model, cfg, ctx, report, samples, pre, post, labels) -> dict[str, Any]:
    from packager.package import library_versions, schema_version

    shipped = report["shipped"]
    return {
        "schema_version": schema_version(),
        "name": report["name"],
        "version": cfg.version,
        "task": cfg.task,
        "description": cfg.description,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": "model.onnx",
        "inputs": model.meta["inputs"],
        "outputs": model.meta["outputs"],
        "preprocessing": pre,
        "postprocessing": post,
        "labels": labels,
        "samples": samples,
        "lineage": {
            "recipe": cfg.recipe,
            "stages": ctx.records,
            "libraries": library_versions(),
            "teacher_id": ctx.inputs["teacher"].id,
            "model_id": model.id,
        },
        "metrics": {**report["metrics"], "shipped": shipped, "dataset": report["dataset"]},
        "benchmarks": report["benchmarks"],
        "quantization": _quantization_block(model.meta),
        "provenance": _provenance(model, cfg, ctx),
    }


def _generated_data(provenance: dict[str, Any], data: Artifact, generated: Artifact | None) -> None:
    """Who wrote the text a language model learned from: completions the user brought (the
    recipe names their producer), and the teacher's own (the generate step)."""
    from packager.hashing import sha256_file

    if data.meta.get("generated_by"):
        for entry in provenance["data"]:
            entry["generated_by"] = data.meta["generated_by"]
    if generated is not None:
        provenance["data"].append(
            {
                "source": "generate step (sequence-level KD)",
                "kind": "generated",
                "sha256": sha256_file(generated.file()),
                "rows": {"train": generated.meta["completions"]},
                "license": None,
                "generated_by": generated.meta["generated_by"],
                "settings": generated.meta["settings"],
            }
        )


def _teacher_licenses(sources: Artifact, tree) -> None:
    """The teacher's LICENSE / USE_POLICY files, under licenses/teacher/ (a duty many terms set)."""
    for rel in sources.meta.get("license_files", []):
        dest = tree / "licenses" / "teacher" / rel.rsplit("/", 1)[-1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources.file(rel), dest)


def _report_html(tree, bench: Artifact | None, search, report, portable) -> str:
    from packager.bench.suite import read_results
    from packager.report.html import bench_report_html

    extra = ""
    if search:
        from packager.report.front import front_html

        extra = front_html(search)
    results = portable(read_results(bench.file())) if bench else []
    html = bench_report_html(results, title=report["name"], extra=extra, report=report)
    (tree / "report.html").write_text(html, encoding="utf-8")
    return html


@register_stage(PackageStepConfig, name="package", version=10)
def package(model: Artifact, cfg: PackageStepConfig, ctx: StageContext) -> Output:
    from packager._version import __version__
    from packager.package import Portable, file_list, zip_tree
    from packager.provenance.lineage import api_teacher
    from packager.provenance.write import stamp_model, write_card_and_bom
    from packager.report import markdown_report

    data, bench = ctx.inputs["data"], ctx.inputs.get("bench")
    tree = ctx.workdir / "tree"
    tree.mkdir()
    (tree / "model.onnx").write_bytes(model.file().read_bytes())
    _teacher_licenses(ctx.inputs["provenance"], tree)
    samples, pre, post, labels = _HANDLERS(data.modality)(tree, model, data, cfg, ctx)
    generation = samples.pop("generation", None)
    samples |= {"atol": cfg.sample_atol, "rtol": cfg.sample_rtol}
    report = _report(model, cfg, ctx)
    manifest = _manifest(model, cfg, ctx, report, samples, pre, post, labels)
    if generation is not None:  # schema 1.2: a language model's decoding contract
        manifest["generation"] = generation
        _generated_data(manifest["provenance"], data, ctx.inputs.get("generated"))
    if ctx.inputs["teacher"].kind == "api":  # only called: its calls and answers, on record
        api_teacher(manifest["provenance"], ctx.inputs["teacher"].meta, ctx.inputs["teacher"].id)
    # No absolute path of this machine is published: relative to the recipe, under the cache
    # (every input is a cache folder: ROOT/STAGE/KEY), or a file name beside its sha256.
    portable = Portable(cfg.recipe_dir, ctx.inputs["evaluate"].path.parent.parent)
    both = portable({"manifest": manifest, "report": report})
    manifest, report = both["manifest"], both["report"]
    search = portable(cfg.search) if cfg.search else None
    stamp_model(tree / "model.onnx", manifest, __version__)  # before model.ort is made from it
    if cfg.mobile:
        from packager.mobile import write_mobile_artifacts

        manifest["mobile"] = write_mobile_artifacts(
            tree / "model.onnx", tree, samples, cfg.fix_shapes
        )
    if search:  # edgepack auto: the space, the trials, the front, the pick and why
        manifest["search"] = search
    (tree / "report.json").write_text(_json(report, "report.json"))
    (tree / "report.md").write_text(markdown_report(report))
    html = _report_html(tree, bench, search, report, portable)  # inside the package, and beside
    (ctx.workdir / f"{manifest['name']}.report.html").write_text(html, encoding="utf-8")
    write_card_and_bom(tree, manifest, report, __version__)
    manifest["files"] = file_list(tree)
    (tree / "manifest.json").write_text(_json(manifest, "manifest.json"))
    name = f"{manifest['name']}.edgepack"
    zip_tree(tree, ctx.workdir / name)
    shutil.rmtree(tree)
    return Output(
        "package",
        {"file": name, "report": report, "shipped": report["shipped"],
         "report_html": f"{manifest['name']}.report.html"},
    )  # fmt: skip


def _json(value: Any, name: str) -> str:
    """Strict JSON: every runtime refuses NaN and Infinity, so the build says where one is."""
    from packager.package import strict_json

    try:
        return strict_json(value, name)
    except ValueError as err:
        raise StageError("package", str(err)) from None
