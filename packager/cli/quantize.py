"""`edgepack quantize MODEL.onnx -o OUT.onnx`: any ONNX file, through the one runner.

The options compile to a single-stage plan (model file -> [optimize] -> quantize, see
packager.plans.quantize_plan) that pipeline.run executes and caches like a build; the result is
then copied to -o through a temporary file and a rename.
"""

from __future__ import annotations

from pathlib import Path

import click


def _sidecar(out: Path, suffix: str) -> Path:
    return out.with_name(out.name.removesuffix(".onnx") + suffix)


def _mode_for(model: str, opts: dict) -> str:
    """--mode auto decides by compute: static QDQ for a model whose convolutions do most of the
    multiply-accumulates (counted on the graph), dynamic for the rest; a conv-heavy model asked
    for dynamic hears why that is a poor choice."""
    from packager.errors import RecipeError
    from packager.quantize import kinds

    if not Path(model).is_file() or Path(model).suffix != ".onnx":
        return "dynamic" if opts["mode"] == "auto" else opts["mode"]  # the plan says what is wrong
    try:
        count, share = kinds.conv_share(Path(model), dims=dict(opts.get("dims") or {}))
    except Exception:  # not a readable ONNX model: the plan's model step says so, in one line
        return "dynamic" if opts["mode"] == "auto" else opts["mode"]
    conv = count >= 2 and share >= kinds.CONV_HEAVY
    why = (
        f"{model} is conv-heavy ({count} Conv doing {share:.0%} of the multiply-accumulates): "
        "dynamic int8 makes its convolutions ConvInteger, which onnxruntime runs far slower "
        "than fp32 on CPUs and which loses more accuracy than static QDQ with per-channel weights"
    )
    if opts["mode"] == "auto":
        if not conv:
            return "dynamic"
        if not opts.get("calib"):
            raise RecipeError(
                f"--mode auto: {why}; give --calib DATA (a few hundred real inputs) for static, "
                "or --mode dynamic to insist"
            )
        click.echo(f"mode: static ({model} is conv-heavy: {count} Conv, {share:.0%} of the MACs)")
        return "static"
    if opts["mode"] == "dynamic" and conv and opts.get("speed_check") is False:
        # (with the speed check on, its measurement says this, and the exit code follows it)
        click.echo(f"warning: {why}; prefer --mode static --calib DATA", err=True)
    return opts["mode"]


class _SchemeCommand(click.Command):
    """`edgepack quantize`, whose options are the registered schemes' config fields
    (packager.quantize.schemes), made when the command is used, never a second list."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from packager.cli.config_options import options_of
        from packager.quantize.schemes import SCHEMES

        mode = next(p for p in self.params if p.name == "mode")
        mode.type = click.Choice(["auto", *SCHEMES])
        mode.help = "auto: static for conv-heavy models (needs --calib), dynamic otherwise; " + (
            "; ".join(f"{m}: {s.summary}" for m, s in SCHEMES.items())
        )
        classes = {m: s.config for m, s in SCHEMES.items()}
        return [
            *super().get_params(ctx)[:-1],
            *options_of(classes, skip=("mode",)),
            *super().get_params(ctx)[-1:],
        ]


@click.command(cls=_SchemeCommand)
@click.argument("model", type=click.Path())
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Quantized model."
)
@click.option("--mode", default="auto", show_default=True, help="The quantization scheme.")
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
    "--cache-dir", type=click.Path(file_okay=False), help="Stage cache [default: .edgepack/cache]."
)
@click.option("-q", "--quiet", is_flag=True, help="Only the summary and errors.")
def quantize(model: str, output: str, **opts) -> None:
    """Quantize MODEL (an .onnx file) to -o OUT.onnx, check accuracy and speed against fp32.

    Writes OUT.onnx, OUT.quantize.json (settings, metric, latency) and, with --max-drop,
    OUT.search.md (every candidate tried, ranked). Exits 4 when --max-drop could not be met,
    after writing the best model found. Every option below --quiet is a field of the
    recipe's quantize: section (docs: the recipe reference); a mode's own options say so.
    """
    from packager.cli.options import check_file
    from packager.errors import CheckFailed, RecipeError
    from packager.files import publish_files, refuse_overwrite
    from packager.quantize.data import SUFFIXES
    from packager.quantize.schemes import SCHEMES

    out = Path(output)
    if out.suffix != ".onnx":
        raise RecipeError(f"-o {output}: expected a path ending in .onnx")
    chosen = opts["mode"] == "auto"
    opts["mode"] = _mode_for(model, opts)
    for flag, value in (("--calib", opts.get("calib")), ("--eval", opts.get("eval"))):
        check_file(flag, value, SUFFIXES, "data file")
    check_file("--feeds", opts.get("feeds"), (".npz",))
    inputs = {"MODEL": model, "--calib": opts.get("calib"), "--eval": opts.get("eval")}
    inputs["--tokenizer"] = opts.get("tokenizer")
    inputs["--feeds"] = opts.get("feeds")
    for dest in (out, _sidecar(out, ".quantize.json"), _sidecar(out, ".search.md")):
        refuse_overwrite(dest, inputs, "-o")
    art, result = _quantize(model, opts, chosen)
    faster = (art.meta["quantization"]["speed"] or {}).get("faster_mode")
    if faster and chosen and (opts.get("calib") or not SCHEMES[faster].calibrates):
        slower = art.meta["quantization"]["speed"]
        click.echo(
            f"mode: {faster} ({opts['mode']} ran {1 / slower['speedup']:.2f}x slower than fp32 "
            f"here: {slower['causes'][0]})"
        )
        opts["mode"] = faster
        art, result = _quantize(model, opts, chosen)
        faster = (art.meta["quantization"]["speed"] or {}).get("faster_mode")
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
    if faster:
        raise CheckFailed("quantize", _slower_than_fp32(model, out, q, faster, opts))


def _quantize(model: str, opts: dict, chosen: bool):
    """(the quantize artifact, the run) of `model` with the options as a recipe's sections;
    when --mode auto `chosen` the scheme, the options it does not take (--calib for dynamic)
    are left out rather than refused."""
    from packager import pipeline
    from packager.cli.config_options import given
    from packager.plans import quantize_plan
    from packager.progress import Reporter
    from packager.quantize.schemes import SCHEMES, fields_for
    from packager.recipe import build_recipe

    section = given(opts, {m: s.config for m, s in SCHEMES.items()}) | {"mode": opts["mode"]}
    if chosen:
        section = fields_for(opts["mode"], section)
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in Path(model).stem) or "model"
    recipe = build_recipe(
        {
            "name": stem.lstrip("._-") or "model",
            "quantize": section,
            "optimize": {"level": opts["opt_level"], "slim": opts["slim"]},
        },
        "edgepack quantize",
    )
    steps = quantize_plan(model, recipe.quantize, recipe.optimize)
    result = pipeline.run(
        steps, cache_dir=opts["cache_dir"], reporter=Reporter(verbose=not opts["quiet"])
    )
    return result.artifact("quantize"), result


def _slower_than_fp32(model: str, out: Path, q: dict, faster: str, opts: dict) -> str:
    """The one line for a model its own speed check measured slower than fp32 when a scheme
    known to be faster exists: what was measured, why, and the command that works."""
    from packager.quantize.schemes import SCHEMES

    s = q["speed"]
    data = f" --calib {opts['calib']}" if opts.get("calib") else " --calib DATA"
    command = f"edgepack quantize {model} -o {out} --mode {faster}"
    command += data if SCHEMES[faster].calibrates else ""
    return (
        f"the {q['mode']} model is {1 / s['speedup']:.2f}x slower than fp32 on this host "
        f"({s['p50_ms']:.3f} ms vs {s['fp32_p50_ms']:.3f} ms: {s['causes'][0]}); it was written "
        f"to {out}, but {faster} runs faster: {command}"
    )


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
    for line in lines:
        click.echo(line)
