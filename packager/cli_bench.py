"""`edgepack bench` and `edgepack targets`. Click only at import time: --help stays instant."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from packager.errors import InputFileError


def _int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out or any(v < 1 for v in out):
        raise click.BadParameter(f"expected integers >= 1, got {value!r}")
    return out


def _dims(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for item in value:
        name, _, v = item.partition("=")
        if not name or not v.strip().isdigit() or int(v) < 1:
            raise click.BadParameter(f"expected NAME=INT (e.g. sequence=128), got {item!r}")
        out[name.strip()] = int(v)
    return out


def _model_step(name: str, path: str):
    from packager.pipeline import Step
    from packager.stages.package_file import PackageFileConfig
    from packager.stages.source import ModelFileConfig

    p = Path(path)
    if p.suffix == ".onnx":
        return Step(name, ModelFileConfig.for_file(p))
    if p.suffix == ".edgepack" or (p.is_dir() and (p / "manifest.json").is_file()):
        return Step(name, PackageFileConfig.for_file(p))
    if not p.exists():
        raise InputFileError(f"{path}: file not found")
    raise InputFileError(f"{path}: expected an .onnx model or an .edgepack package")


def _write(dest: str, text: str) -> None:
    """Write through a temporary name so `dest` is never half-written."""
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@click.command()
@click.argument("model", type=click.Path())
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME|ssh://user@host",
    help="host, a profile (edgepack targets) or a device over ssh; repeatable [default: host].",
)
@click.option("--threads", callback=_int_list, default="1", help="Thread counts, e.g. 1,2,4.")
@click.option("--batch", callback=_int_list, default="1", help="Batch sizes, e.g. 1,8.")
@click.option("--runs", type=click.IntRange(min=1), help="Timed runs per config [default: 100].")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), help="Time per config.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option(
    "--compare",
    "others",
    multiple=True,
    type=click.Path(),
    help="Other models/packages to put side by side; repeatable.",
)
@click.option(
    "--dim", "dims", multiple=True, callback=_dims, help="Symbolic dim value, e.g. sequence=128."
)
@click.option(
    "--memory-cap",
    type=click.FloatRange(min=1),
    help="host-emulated cap in MB [default: each target's memory].",
)
@click.option("--targets-dir", type=click.Path(file_okay=False), help="Extra target profiles.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write records here.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Write a report here.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Stage cache.")
def bench(
    model: str,
    targets: tuple[str, ...],
    threads: tuple[int, ...],
    batch: tuple[int, ...],
    runs: int | None,
    seconds: float | None,
    warmup: int,
    others: tuple[str, ...],
    dims: dict[str, int],
    memory_cap: float | None,
    targets_dir: str | None,
    json_out: str | None,
    html_out: str | None,
    cache_dir: str | None,
) -> None:
    """Benchmark MODEL (.onnx or .edgepack) on the host and on target profiles.

    Every row is labelled measured (here or over ssh), host-emulated (here, under a target's
    thread count and memory cap) or estimated (a cost model against a target's published
    peaks). A package is benchmarked on its own samples.
    """
    import json

    from packager import pipeline
    from packager.errors import RecipeError
    from packager.progress import Reporter
    from packager.recipe import BenchConfig, Recipe
    from packager.report.bench_table import print_bench

    if runs is not None and seconds is not None:
        raise click.UsageError("give --runs or --seconds, not both")
    steps = [_model_step(f"model{i}", p) for i, p in enumerate((model, *others))]
    try:
        cfg = BenchConfig(
            targets=targets or ("host",),
            threads=threads,
            batch=batch,
            warmup=warmup,
            runs=runs if runs is not None or seconds is not None else 100,
            seconds=seconds,
            dims=dims,
            memory_cap_mb=memory_cap,
            targets_dir=targets_dir,
        )
    except ValueError as err:  # pydantic's ValidationError: one line, the first problem
        first = err.errors()[0] if hasattr(err, "errors") else {"msg": str(err), "loc": ()}
        where = ".".join(str(x) for x in first["loc"])
        raise RecipeError(f"bench {where}: {first['msg'].removeprefix('Value error, ')}") from None
    # A benchmark is an observation: rerunning the command measures again (a fresh key).
    steps.append(
        pipeline.Step("bench", cfg, tuple(s.name for s in steps), extra=str(time.time_ns()))
    )
    result = pipeline.run(
        Recipe(), steps=steps, cache_dir=cache_dir, reporter=Reporter(), publish=False
    )
    art = result.artifact("bench")
    from packager.stages.bench import raw_results

    records = raw_results(art)
    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    print_bench(console, records, title=f"edgepack bench {Path(model).name}")
    if json_out:
        from packager.bench.schema import SCHEMA

        doc = {"schema": SCHEMA, "results": records, "warnings": art.meta["warnings"]}
        _write(json_out, json.dumps(doc, indent=2))
        console.print(f"json: {json_out}")
    if html_out:
        from packager.report.html import bench_report_html

        _write(html_out, bench_report_html(records, title=f"edgepack bench {Path(model).name}"))
        console.print(f"html: {html_out}")


@click.command()
@click.argument("name", required=False)
@click.option("--targets-dir", type=click.Path(file_okay=False), help="Extra target profiles.")
def targets(name: str | None, targets_dir: str | None) -> None:
    """List target profiles, or show one (with the source of every figure)."""
    from rich.console import Console
    from rich.table import Table

    from packager.bench.errors import BenchError
    from packager.bench.targets import ENV_VAR, load_targets

    profiles = load_targets(targets_dir)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if name:
        if name not in profiles:
            raise BenchError(f"unknown target {name!r}: known are {', '.join(sorted(profiles))}")
        p = profiles[name]
        for key, value in p.model_dump(exclude_none=True).items():
            if key == "host" and not value:
                continue
            if isinstance(value, (list, tuple)):
                console.print(f"{key}: {' '.join(value) or '-'}")
            elif isinstance(value, dict):
                console.print(
                    f"{key}: {value['value']:g} ({'derived' if value['derived'] else 'published'})"
                )
                console.print(f"    source: {value['source']}")
            else:
                console.print(f"{key}: {value}")
        return
    t = Table(title="target profiles", title_justify="left")
    for col in ("name", "arch", "cpu", "cores", "memory MB", "ISA", "provider", "GFLOP/s", "GB/s"):
        t.add_column(col)
    for p in sorted(profiles.values(), key=lambda p: (not p.host, p.name)):
        t.add_row(
            p.name,
            p.arch or "(this machine)",
            p.cpu or "-",
            str(p.cores or "-"),
            str(p.memory_mb or "-"),
            " ".join(p.isa) or "-",
            p.execution_provider,
            f"{p.peak_gflops.value:g}" if p.peak_gflops else "-",
            f"{p.bandwidth_gbs.value:g}" if p.bandwidth_gbs else "-",
        )
    console.print(t)
    console.print(
        f"[dim]`edgepack targets NAME` shows each figure's source; add your own YAML with "
        f"--targets-dir DIR or {ENV_VAR}=DIR[:DIR...][/]"
    )
