"""`edgepack quantize MODEL.onnx -o OUT.onnx`: any ONNX file, through the one runner.

The options compile to a single-stage plan (model file -> [optimize] -> quantize, see
packager.plans.quantize_plan) that pipeline.run executes and caches like a build; the result is
then copied to -o through a temporary file and a rename.
"""

from __future__ import annotations

from pathlib import Path

import click

from packager.cli.options import Finite, Threads, dims_option
from packager.limits import MAX_BATCH, MAX_LENGTH, MAX_SAMPLES, MAX_TRIALS


def _sidecar(out: Path, suffix: str) -> Path:
    return out.with_name(out.name.removesuffix(".onnx") + suffix)


def _mode_for(model: str, opts: dict) -> str:
    """--mode auto: static QDQ for a conv-heavy model, dynamic for the rest; a conv-heavy model
    asked for dynamic hears why that is a poor choice."""
    from packager.errors import RecipeError
    from packager.quantize.kinds import conv_share, is_conv_heavy

    if not Path(model).is_file() or Path(model).suffix != ".onnx":
        return "dynamic" if opts["mode"] == "auto" else opts["mode"]  # the plan says what is wrong
    try:
        conv, (count, share) = is_conv_heavy(Path(model)), conv_share(Path(model))
    except Exception:  # not a readable ONNX model: the plan's model step says so, in one line
        return "dynamic" if opts["mode"] == "auto" else opts["mode"]
    why = (
        f"{model} is conv-heavy ({count} Conv holding {share:.0%} of the weights): dynamic int8 "
        "makes its convolutions ConvInteger, which onnxruntime runs far slower than fp32 on "
        "CPUs and which loses more accuracy than static QDQ with per-channel weights"
    )
    if opts["mode"] == "auto":
        if not conv:
            return "dynamic"
        if not opts["calib"]:
            raise RecipeError(
                f"--mode auto: {why}; give --calib DATA (a few hundred real inputs) for static, "
                "or --mode dynamic to insist"
            )
        click.echo(f"mode: static ({model} is conv-heavy: {count} Conv, {share:.0%} of weights)")
        return "static"
    if opts["mode"] == "dynamic" and conv:
        click.echo(f"warning: {why}; prefer --mode static --calib DATA", err=True)
    return opts["mode"]


@click.command()
@click.argument("model", type=click.Path())
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Quantized model."
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "dynamic", "static", "fp16", "int4"]),
    default="auto",
    show_default=True,
    help="auto: static for conv-heavy models (needs --calib), dynamic otherwise; dynamic needs "
    "no data; static needs --calib.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["qdq", "qoperator"]),
    default="qdq",
    show_default=True,
    help="static only.",
)
@click.option(
    "--per-channel/--per-tensor", default=True, show_default=True, help="int8 weight scales."
)
@click.option(
    "--reduce-range/--full-range",
    default=None,
    help="7-bit int8 weights (identical results on x86 without VNNI, arm64 and wasm) or 8-bit "
    "[default: 8-bit where the CPU has int8 dot-product instructions, else 7-bit]",
)
@click.option(
    "--weight-type", type=click.Choice(["int8", "uint8"]), default="int8", show_default=True
)
@click.option(
    "--activation-type", type=click.Choice(["uint8", "int8"]), default="uint8", show_default=True
)
@click.option(
    "--calibration",
    type=click.Choice(["minmax", "entropy", "percentile"]),
    default="minmax",
    show_default=True,
)
@click.option("--calib", type=click.Path(), help="Calibration data: .npz/.npy/.jsonl/.txt.")
@click.option(
    "--calib-samples",
    type=click.IntRange(1, MAX_SAMPLES),
    default=256,
    show_default=True,
    help="Cap on calibration examples.",
)
@click.option(
    "--calib-batch",
    type=click.IntRange(1, MAX_BATCH),
    default=32,
    show_default=True,
    help="Examples per calibration batch.",
)
@click.option(
    "--tokenizer", type=click.Path(), help="tokenizer.json (or its folder) for text data."
)
@click.option(
    "--max-length",
    type=click.IntRange(1, MAX_LENGTH),
    default=128,
    show_default=True,
    help="Token cap per text.",
)
@click.option(
    "--exclude", multiple=True, metavar="NAME|GLOB", help="Keep nodes in float (repeatable)."
)
@click.option(
    "--exclude-op", multiple=True, metavar="OP", help="Keep an op type in float (repeatable)."
)
@click.option(
    "--block-size",
    type=click.IntRange(16, 1 << 16),
    default=32,
    show_default=True,
    help="int4 block size.",
)
@click.option(
    "--keep-io-types/--fp16-io", default=True, show_default=True, help="fp16: float32 I/O."
)
@click.option("--eval", "eval_data", type=click.Path(), help="Evaluation data (same formats).")
@click.option(
    "--eval-samples", type=click.IntRange(1, MAX_SAMPLES), default=1000, show_default=True
)
@click.option(
    "--metric",
    type=click.Choice(["accuracy", "top5", "agreement", "sequence", "cosine", "mse", "iou"]),
    default="accuracy",
    show_default=True,
    help="accuracy/top5 need labels; agreement (classes), sequence (per-timestep), "
    "cosine/mse (embeddings, maps) and iou (maps) compare with fp32.",
)
@click.option(
    "--class-axis",
    type=click.IntRange(-32, 31),
    help="Class axis of the output [default: 1 for 4-D maps, else -1].",
)
@click.option(
    "--iou-threshold",
    type=Finite(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="iou: foreground above.",
)
@click.option(
    "--dim",
    "dims",
    multiple=True,
    callback=dims_option,
    help="Symbolic dim value for generated inputs, e.g. height=320 (repeatable).",
)
@click.option(
    "--feeds",
    type=click.Path(dir_okay=False),
    help="Real inputs (.npz, one array per input) for the speed check without eval/calib data.",
)
@click.option(
    "--max-drop", type=Finite(0, 1), help="Accuracy budget; over it, keep sensitive nodes in float."
)
@click.option(
    "--max-trials",
    type=click.IntRange(1, MAX_TRIALS),
    default=16,
    show_default=True,
    help="Cap on search trials.",
)
@click.option(
    "--optimize",
    "opt_level",
    type=click.Choice(["none", "basic", "extended", "all"]),
    default="none",
    show_default=True,
    help="onnxruntime offline optimization first.",
)
@click.option("--slim", is_flag=True, help="Run onnxslim first.")
@click.option(
    "--speed-check/--no-speed-check",
    default=True,
    show_default=True,
    help="Benchmark fp32 vs quantized.",
)
@click.option(
    "--threads", type=Threads(), default=1, show_default=True, help="Threads of the speed check."
)
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), help="Stage cache [default: .edgepack/cache]."
)
@click.option("-q", "--quiet", is_flag=True, help="Only the summary and errors.")
def quantize(model: str, output: str, **opts) -> None:
    """Quantize MODEL (an .onnx file) to -o OUT.onnx, check accuracy and speed against fp32.

    Writes OUT.onnx, OUT.quantize.json (settings, metric, latency) and, with --max-drop,
    OUT.search.md (every candidate tried, ranked). Exits 4 when --max-drop could not be met,
    after writing the best model found.
    """
    from packager import pipeline
    from packager.cli.options import check_file
    from packager.errors import CheckFailed, RecipeError
    from packager.files import publish_files, refuse_overwrite
    from packager.plans import quantize_plan
    from packager.progress import Reporter
    from packager.quantize.data import SUFFIXES
    from packager.recipe import build_recipe

    out = Path(output)
    if out.suffix != ".onnx":
        raise RecipeError(f"-o {output}: expected a path ending in .onnx")
    opts["mode"] = _mode_for(model, opts)
    if opts["mode"] == "static" and not opts["calib"]:
        raise RecipeError(
            "--calib is required for --mode static: point it at a .npz/.npy/.jsonl/.txt file, "
            "or use --mode dynamic"
        )
    if opts["max_drop"] is not None and not opts["eval_data"]:
        raise RecipeError("--max-drop needs --eval DATA to measure the drop on")
    for flag, value in (("--calib", opts["calib"]), ("--eval", opts["eval_data"])):
        check_file(flag, value, SUFFIXES, "data file")
    check_file("--feeds", opts["feeds"], (".npz",))
    inputs = {"MODEL": model, "--calib": opts["calib"], "--eval": opts["eval_data"]}
    inputs["--tokenizer"] = opts["tokenizer"]
    inputs["--feeds"] = opts["feeds"]
    for dest in (out, _sidecar(out, ".quantize.json"), _sidecar(out, ".search.md")):
        refuse_overwrite(dest, inputs, "-o")
    qcfg = _quantize_fields(opts)
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in Path(model).stem) or "model"
    recipe = build_recipe(
        {
            "name": stem.lstrip("._-") or "model",
            "quantize": qcfg,
            "optimize": {"level": opts["opt_level"], "slim": opts["slim"]},
        },
        "edgepack quantize",
    )
    steps = quantize_plan(model, recipe.quantize, recipe.optimize)
    result = pipeline.run(
        steps, cache_dir=opts["cache_dir"], reporter=Reporter(verbose=not opts["quiet"])
    )
    art = result.artifact("quantize")
    files = [(art.file(), out), (art.file("quantize.json"), _sidecar(out, ".quantize.json"))]
    if art.meta.get("search"):
        files.append((art.file("search.md"), _sidecar(out, ".search.md")))
    publish_files(files)  # all or none
    _summary(art.meta, out, result)
    q = art.meta["quantization"]
    if q["budget_met"] is False:
        m = q["metric"]
        raise CheckFailed(
            "quantize",
            f"accuracy budget not met: best {m['name']} drop {m['drop']:.4f} > --max-drop "
            f"{q['max_drop']:g} after {q['trials']} trial(s); the best model is in {out} and "
            f"every trial in {_sidecar(out, '.search.md')}",
        )


def _quantize_fields(opts: dict) -> dict:
    """The quantize: section the options stand for (validated like a recipe's)."""
    excludes = opts["exclude"]
    return {
        "mode": opts["mode"],
        "format": opts["fmt"],
        "per_channel": opts["per_channel"],
        "reduce_range": "auto" if opts["reduce_range"] is None else opts["reduce_range"],
        "weight_type": opts["weight_type"],
        "activation_type": opts["activation_type"],
        "calibration": opts["calibration"],
        "calib": _abs(opts["calib"]),
        "calib_samples": opts["calib_samples"],
        "calib_batch": opts["calib_batch"],
        "tokenizer": _abs(opts["tokenizer"]),
        "max_length": opts["max_length"],
        "exclude_nodes": [e for e in excludes if not any(c in e for c in "*?[")],
        "exclude_patterns": [e for e in excludes if any(c in e for c in "*?[")],
        "exclude_op_types": list(opts["exclude_op"]),
        "block_size": opts["block_size"],
        "keep_io_types": opts["keep_io_types"],
        "eval": _abs(opts["eval_data"]),
        "eval_samples": opts["eval_samples"],
        "metric": opts["metric"],
        "class_axis": opts["class_axis"],
        "iou_threshold": opts["iou_threshold"],
        "dims": opts["dims"],
        "feeds": _abs(opts["feeds"]),
        "max_drop": opts["max_drop"],
        "max_trials": opts["max_trials"],
        "speed_check": opts["speed_check"],
        "speed_threads": opts["threads"],
    }


def _abs(path: str | None) -> str | None:
    # Absolute, so the cached config does not depend on the working directory.
    return str(Path(path).resolve()) if path else None


def _summary(meta: dict, out: Path, result) -> None:
    q = meta["quantization"]
    ratio = q["size_bytes"] / q["fp32_size_bytes"]
    lines = [
        f"{q['mode']} ({q['format']}): {q['fp32_size_bytes'] / 1024:.1f} KiB (the input) -> "
        f"{q['size_bytes'] / 1024:.1f} KiB ({ratio:.0%} of the input)"
    ]
    if q.get("optimized_size_bytes"):
        lines.append(f"after optimize/slim: {q['optimized_size_bytes'] / 1024:.1f} KiB")
    if q.get("opset_upgrade"):
        u = q["opset_upgrade"]
        checked = (
            f"max |diff| vs the original {u['max_abs_diff']:.2e}" if u["checked"] else "unchecked"
        )
        lines.append(f"opset {u['from']} -> {u['to']} (onnx version converter, {checked})")
    if q["metric"]:
        m = q["metric"]
        lines.append(
            f"{m['name']}: fp32 {m['fp32']:.4f} -> {m['quantized']:.4f} (drop {m['drop']:.4f}, "
            f"{m['examples']} examples)"
        )
    if q["speed"]:
        s = q["speed"]
        shapes = ", ".join(f"{k} {v}" for k, v in s.get("inputs", {}).items())
        lines.append(
            f"p50 latency, {s['threads']} thread(s): fp32 {s['fp32_p50_ms']:.3f} ms -> "
            f"{s['p50_ms']:.3f} ms ({s['speedup']:.2f}x) on {s.get('input_source')} {shapes}"
        )
    if q["excluded_nodes"]:
        names = q["excluded_nodes"]
        more = f" and {len(names) - 8} more (see the .quantize.json)" if len(names) > 8 else ""
        lines.append(f"kept in float: {', '.join(names[:8])}{more}")
    if meta.get("search"):
        lines.append(f"search: {_sidecar(out, '.search.md')}")
    lines.append(f"wrote {out}")
    from packager.cli.render import plain

    for line in lines:  # node names are the model's: shown escaped
        click.echo(plain(line))
