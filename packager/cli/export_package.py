"""`edgepack export SOURCE --package --data TEXTS -o NAME.edgepack`: a transformers or
sentence-transformers folder straight into a package, through the build's own machinery.

The options compile to a recipe whose teacher is the source and whose student is the teacher
itself (`distill: none`, no quantization, fp32 shipped): export with the pooling in the graph,
the evaluate step, samples from --data that every runtime replays, the manifest, report and
card. One way through the house: pipeline.build, as `edgepack build` does.
"""

from __future__ import annotations

from pathlib import Path

# What a package's runtimes preprocess and postprocess today (a text build's tasks).
PACKAGED_TASKS = ("feature-extraction", "text-classification")


def _task(src: str, asked: str) -> str:
    from packager.errors import RecipeError
    from packager.export.hf_tasks import infer_task, library_of
    from packager.sources.hf import resolve

    folder = resolve(src, "SOURCE")
    task = infer_task(folder, library_of(folder)) if asked == "auto" else asked
    if task not in PACKAGED_TASKS:
        raise RecipeError(
            f"--package: task {task} cannot be packaged yet (packaged tasks: "
            f"{', '.join(PACKAGED_TASKS)}); export it to .onnx without --package"
        )
    return task


def package_recipe(src: str, out: Path, task: str, data: str, max_length: int) -> dict:
    """The recipe `export --package` stands for."""
    return {
        "name": out.name.removesuffix(".edgepack"),
        "description": f"{task} model exported from {src} by edgepack export --package",
        "task": task,
        "teacher": {"source": src},
        "data": {
            "source": str(Path(data).resolve()),
            "max_length": max_length,
            **({"label_column": None} if task == "feature-extraction" else {}),
        },
        "distill": {"enabled": False, "student": {"arch": "transformer"}},
        "quantize": {"mode": "none"},
        "bench": {"enabled": False},  # edgepack bench NAME.edgepack measures it when asked
        "package": {"model": "fp32", "out_dir": str(out.parent.resolve())},
    }


def export_package(src: str, out: Path, opts: dict) -> None:
    from packager import pipeline
    from packager.cli.options import check_file
    from packager.cli.render import make_console, print_build
    from packager.errors import RecipeError
    from packager.progress import Reporter
    from packager.quantize.data import TEXT_SUFFIXES
    from packager.recipe import build_recipe

    if out.suffix != ".edgepack":
        raise RecipeError(f"-o {out}: with --package, expected a path ending in .edgepack")
    if not src.startswith("hf:"):
        raise RecipeError(
            "--package: SOURCE must be a transformers or sentence-transformers folder; a python: "
            "factory packages through a recipe (see models/python-teacher.yaml)"
        )
    if not opts["data"]:
        raise RecipeError(
            "--package needs --data TEXTS (.txt/.jsonl/.csv/.parquet): the package's samples and "
            "its check come from real inputs"
        )
    check_file("--data", opts["data"], TEXT_SUFFIXES, "data file")
    task = _task(src, opts["task"])
    recipe = build_recipe(
        package_recipe(src, out, task, opts["data"], opts["max_length"]), "edgepack export"
    )
    reporter = Reporter(verbose=not opts["quiet"], hold_warnings=True)
    try:
        result = pipeline.build(recipe, cache_dir=opts["cache_dir"], reporter=reporter)
    except BaseException:
        reporter.flush_warnings()
        raise
    print_build(make_console(), result, reporter)
