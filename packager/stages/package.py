"""package: one self-describing `NAME.edgepack` zip: model, manifest, samples, report, model card."""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from packager.cache import sha256_file
from packager.recipe import PackageConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.data import is_text, splits_of

SCHEMA_VERSION = "1.0"
LIBRARIES = ("edgepack", "torch", "onnx", "onnxruntime", "onnxscript", "numpy", "scikit-learn")
# Zip entries get a fixed timestamp so equal content gives an equal archive.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def write_samples(
    folder: Path, model: Path, splits, n: int, output_names: list[str]
) -> dict[str, Any]:
    from packager.onnx_utils import session

    (folder / "samples").mkdir()
    raw = splits.x["test"][:n].astype(np.float32)
    x = splits.model_input("test", limit=n)
    sess = session(model)
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    np.save(folder / "samples/raw.npy", raw)
    np.save(folder / "samples/input.npy", x)
    files = {}
    for name, value in zip(output_names, outs, strict=True):
        np.save(folder / f"samples/{name}.npy", value)
        files[name] = f"samples/{name}.npy"
    return {
        "count": len(raw),
        "raw": "samples/raw.npy",
        "inputs": {sess.get_inputs()[0].name: "samples/input.npy"},
        "outputs": files,
    }


def zip_tree(tree: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(tree).as_posix(), _ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())


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


def _quantize_warnings(meta: dict[str, Any]) -> list[str]:
    q = meta.get("quantization") or {}
    out = [q["speed"]["warning"]] if (q.get("speed") or {}).get("warning") else []
    if q.get("budget_met") is False:
        m = q["metric"]
        out.append(
            f"quantize: accuracy budget not met: {m['name']} drop {m['drop']:.4f} > "
            f"max_drop {q['max_drop']:g}"
        )
    return out


@register_stage(PackageConfig)
def package(model: Artifact, cfg: PackageConfig, ctx: StageContext) -> Output:
    from packager.report import markdown_report, model_card

    recipe = ctx.recipe
    data, evaluation, distilled = ctx.inputs["data"], ctx.inputs["evaluate"], ctx.inputs["distill"]
    bench = ctx.inputs.get("bench")
    tree = ctx.workdir / "tree"
    tree.mkdir()
    (tree / "model.onnx").write_bytes(model.file().read_bytes())
    if is_text(data):  # tokenizer files and raw-string samples: packager/stages/text_package.py
        from packager.stages.text_package import text_blocks

        samples, preprocessing, postprocessing, labels = text_blocks(tree, model, data, cfg, ctx)
    else:
        splits = splits_of(data)
        samples = write_samples(
            tree,
            tree / "model.onnx",
            splits,
            cfg.samples,
            [o["name"] for o in model.meta["outputs"]],
        )
        labels = splits.labels
        preprocessing = splits.preprocessing.to_manifest()
        postprocessing = {
            "type": "classification",
            "output": model.meta["outputs"][0]["name"],
            "activation": "softmax",
            "labels": labels,
        }
    samples |= {"atol": cfg.sample_atol, "rtol": cfg.sample_rtol}

    shipped = "student_int8" if cfg.model == "int8" else "student_fp32"
    metrics = evaluation.meta["metrics"]
    report = {
        "name": recipe.name,
        "shipped": shipped,
        "dataset": evaluation.meta["dataset"],
        "metric": evaluation.meta.get("metric", "accuracy"),
        "metrics": metrics,
        "variants": evaluation.meta["variants"],
        "benchmarks": bench.meta["results"] if bench else [],
        "warnings": (bench.meta["warnings"] if bench else []) + _quantize_warnings(model.meta),
        "quantization": _quantization_text(model.meta),
        "distill": {
            k: distilled.meta.get(k)
            for k in (
                "arch",
                "params",
                "teacher_params",
                "compression",
                "best_epoch",
                "epochs_run",
                "val_accuracy",
                "curve",
            )
        },
    }
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": recipe.name,
        "version": cfg.version,
        "task": recipe.task,
        "description": recipe.description,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": "model.onnx",
        "inputs": model.meta["inputs"],
        "outputs": model.meta["outputs"],
        "preprocessing": preprocessing,
        "postprocessing": postprocessing,
        "labels": labels,
        "samples": samples,
        "lineage": {
            "recipe": recipe.to_json(),
            "stages": ctx.records,
            "libraries": library_versions(),
            "teacher_id": ctx.inputs["teacher"].id,
            "model_id": model.id,
        },
        "metrics": {**metrics, "shipped": shipped, "dataset": evaluation.meta["dataset"]},
        "benchmarks": report["benchmarks"],
        "quantization": _quantization_block(model.meta),
    }
    if cfg.mobile:
        from packager.mobile import write_mobile_artifacts

        manifest["mobile"] = write_mobile_artifacts(
            tree / "model.onnx", tree, samples, cfg.fix_shapes
        )
    (tree / "report.json").write_text(json.dumps(report, indent=2))
    (tree / "report.md").write_text(markdown_report(report))
    if bench:  # plots from the bench stage's raw latencies, accuracy from evaluate
        from packager.report.html import bench_report_html
        from packager.stages.bench import raw_results

        html = bench_report_html(raw_results(bench), title=f"{recipe.name}", metrics=metrics)
        (tree / "report.html").write_text(html, encoding="utf-8")
    (tree / "README.md").write_text(model_card(manifest, report))
    manifest["files"] = {
        p.relative_to(tree).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(tree.rglob("*"))
        if p.is_file()
    }
    (tree / "manifest.json").write_text(json.dumps(manifest, indent=2))
    name = f"{recipe.name}.edgepack"
    zip_tree(tree, ctx.workdir / name)
    shutil.rmtree(tree)
    return Output("package", {"file": name, "report": report, "shipped": shipped})
