"""`edgepack export SOURCE -o OUT.onnx`: any model a user brings, through the one runner.

The options compile to a one-step plan (packager.plans.export_plan) that pipeline.run executes
and caches like a build; the model (and its .data file past 2 GiB) and OUT.export.json
(exporter, opset, parity at every shape) are then published to -o all or none, through
temporary names.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from packager.cli.options import dims_option


def _source(value: str, allow_download: bool) -> str:
    """hf:FOLDER, hf:pkg:MODULE/DIR, python:MODULE:FACTORY, FILE.pt2, a bare folder (a
    transformers folder), or a Hub id OWNER/NAME[@REV] (from the local Hugging Face cache;
    downloaded into it first only with --allow-download)."""
    from packager import hub
    from packager.errors import InputFileError

    if value.startswith("python:"):
        return value
    if value.endswith(".onnx"):
        raise InputFileError(f"{value}: already ONNX (edgepack quantize / bench take it as it is)")
    if value.endswith(".pt2"):
        return str(Path(value).resolve())
    spec = value.removeprefix("hf:")
    if spec.startswith("pkg:"):
        return value
    if hub.split_id(spec) and not Path(spec).expanduser().exists():
        hub.ensure(spec, allow_download)  # none cached and not allowed: the stage says how
        return "hf:" + spec
    return "hf:" + str(Path(spec).expanduser().resolve())


def _kwargs(items: tuple[str, ...]) -> dict:
    from packager.errors import RecipeError
    from packager.recipe import parse_override

    out = {}
    for item in items:
        if "=" not in item:
            raise RecipeError(f"--kwarg {item!r}: expected NAME=VALUE (a YAML value)")
        parts, value = parse_override(item)
        out[".".join(parts)] = value
    return out


def _config(source: str, opts: dict):
    """The ExportModelConfig the options stand for; one line naming the first problem."""
    from pydantic import ValidationError

    from packager.config import ExportModelConfig, ModelInput
    from packager.errors import RecipeError

    try:
        inputs = [ModelInput.parse(text) for text in opts["inputs"]]
        dynamo = opts["dynamo"] if opts["dynamo"] is not None else source.endswith(".pt2")
        return ExportModelConfig(
            source=source,
            task=opts["task"],
            weights=_abs(opts["weights"]),
            kwargs=_kwargs(opts["kwargs"]),
            import_path=str(Path.cwd()) if source.startswith("python:") else None,
            inputs=inputs,
            outputs=opts["outputs"],
            dims=opts["dims"],
            opset=opts["opset"],
            dynamo=dynamo,
            atol=opts["atol"],
            feeds=_abs(opts["feeds"]),
            exporter=opts["exporter"],
        )
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        raise RecipeError(f"edgepack export: {where + ': ' if where else ''}{msg}") from None
    except ValueError as err:
        raise RecipeError(str(err)) from None


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


@click.command()
@click.argument("source")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="OUT.onnx")
@click.option("--task", default="auto", show_default=True, help="Transformers folders: the task.")
@click.option(
    "--input", "inputs", multiple=True, metavar="NAME:SHAPE[:DTYPE]",
    help="python: factories, in forward order: e.g. x:batch,3,height,width (names = dynamic axes).",
)  # fmt: skip
@click.option("--output-name", "outputs", multiple=True, help="python: output names, in order.")
@click.option("--weights", type=click.Path(dir_okay=False), help="python: .safetensors or .pt.")
@click.option("--kwarg", "kwargs", multiple=True, metavar="NAME=VALUE", help="Factory kwarg.")
@click.option(
    "--dim", "dims", multiple=True, callback=dims_option,
    help="Example value of a symbolic dim (trace and first parity shape), e.g. height=224.",
)  # fmt: skip
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset, explicitly.")
@click.option(
    "--dynamo/--no-dynamo", default=None,
    help="torch.onnx.export(dynamo=...) [default: off; on for .pt2].",
)  # fmt: skip
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Parity tolerance.")
@click.option("--feeds", type=click.Path(dir_okay=False), help="Real inputs (.npz) to check on.")
@click.option(
    "--package", "as_package", is_flag=True,
    help="Write -o NAME.edgepack (model, tokenizer, samples, manifest, report) instead of .onnx.",
)  # fmt: skip
@click.option(
    "--data", type=click.Path(dir_okay=False),
    help="--package: texts (.txt/.jsonl/.csv/.parquet) for its samples and check.",
)  # fmt: skip
@click.option(
    "--max-length", type=click.IntRange(min=2), default=128, show_default=True,
    help="--package: tokens per text.",
)  # fmt: skip
@click.option(
    "--allow-download",
    is_flag=True,
    help="A Hub id not in the local Hugging Face cache: download it (else: offline).",
)
@click.option(
    "--exporter", type=click.Choice(["auto", "genai", "optimum", "torch"]), default="auto",
    show_default=True,
    help="--task text-generation-with-past: onnxruntime-genai's model builder, optimum or torch "
    "(auto: the builder where it knows the model, then optimum, then torch).",
)  # fmt: skip
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Stage cache.")
@click.option("-q", "--quiet", is_flag=True, help="Only the summary and errors.")
def export(source: str, output: str, **opts) -> None:
    """Export SOURCE to -o OUT.onnx and check it against torch at several shapes.

    SOURCE: a transformers or sentence-transformers folder (or hf:FOLDER, hf:pkg:MODULE/DIR,
    a Hub id OWNER/NAME[@REV] in the local Hugging Face cache; --task, auto by default, via
    optimum-onnx; the tokenizer and config files are written beside OUT.onnx),
    python:MODULE:FACTORY (an nn.Module factory imported from the working directory, with
    --input per forward argument and --weights), or a torch.export ExportedProgram (.pt2).
    Exits 4 when the parity check misses --atol.
    """
    from packager import pipeline
    from packager.cli.options import check_file
    from packager.errors import RecipeError
    from packager.files import publish_files, refuse_overwrite, staging_folder
    from packager.onnx_utils import onnx_files
    from packager.plans import export_plan
    from packager.progress import Reporter

    out = Path(output)
    src = _source(source, opts["allow_download"])
    if opts["as_package"]:
        from packager.cli.export_package import export_package

        return export_package(src, out, opts)
    if out.suffix != ".onnx":
        raise RecipeError(f"-o {output}: expected a path ending in .onnx (or give --package)")
    check_file("--weights", opts["weights"], (".safetensors", ".pt", ".pth", ".bin"))
    check_file("--feeds", opts["feeds"], (".npz",))
    cfg = _config(src, opts)
    reads = {k: v for k, v in cfg.input_paths().items()}
    sidecar = out.with_name(out.name.removesuffix(".onnx") + ".export.json")
    for dest in (out, out.with_name(out.name + ".data"), sidecar):
        refuse_overwrite(dest, reads, "-o")
    result = pipeline.run(
        export_plan(cfg), cache_dir=opts["cache_dir"], reporter=Reporter(verbose=not opts["quiet"])
    )
    art = result.artifact("export")
    beside = [(art.file(name), out.with_name(name)) for name in art.meta.get("files", [])]
    source_dir = reads.get("source")
    if beside and source_dir and out.parent.resolve() == Path(source_dir).resolve():
        raise RecipeError(
            f"-o {output}: inside the source folder, where its tokenizer and config files would "
            "replace the source's own: choose another folder"
        )
    with staging_folder(out) as folder:
        files = onnx_files(art.file(), out, folder)
        record = folder / sidecar.name
        record.write_text(json.dumps({k: v for k, v in art.meta.items() if k != "file"}, indent=2))
        publish_files([*files, (record, sidecar), *beside])  # all or none
    _summary(art.meta, [dest for _, dest in [*files, *beside]])


def _summary(meta: dict, written: list[Path]) -> None:
    task = f", task {meta['task']}" if meta.get("task") else ""
    if meta.get("library") == "sentence_transformers":
        task += " (sentence-transformers: its pooling and normalisation in the graph)"
    if (meta.get("revision") or {}).get("commit"):
        task += f", revision {meta['revision']['commit'][:12]}"
    click.echo(f"{meta['exporter']}{task}, opset {meta['opset']}")
    for io in ("inputs", "outputs"):
        for v in meta[io]:
            click.echo(f"  {io[:-1]:<6} {v['name']}: {v['dtype']} {v['shape']}")
    click.echo(f"parity vs torch at {len(meta['parity'])} shapes (atol {meta['atol']:g}):")
    for row in meta["parity"]:
        shapes = ", ".join(f"{k} {v}" for k, v in row["inputs"].items())
        click.echo(f"  {shapes}: max |diff| {row['max_abs_diff']:.2e}")
    click.echo("wrote " + " + ".join(str(p) for p in written))
