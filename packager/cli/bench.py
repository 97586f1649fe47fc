"""`edgepack bench` and `edgepack targets`. Click only at import time: --help stays instant."""

from __future__ import annotations

from pathlib import Path

import click

from packager.cli.options import dims_option


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
    "--dim",
    "dims",
    multiple=True,
    callback=dims_option,
    help="Symbolic dim value, e.g. sequence=128.",
)
@click.option(
    "--feeds",
    type=click.Path(dir_okay=False),
    help="Real inputs for bare models: an .npz with one array per input name.",
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
@click.option("-q", "--quiet", is_flag=True, help="Only the table, warnings and errors.")
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
    feeds: str | None,
    memory_cap: float | None,
    targets_dir: str | None,
    json_out: str | None,
    html_out: str | None,
    cache_dir: str | None,
    quiet: bool,
) -> None:
    """Benchmark MODEL (.onnx or .edgepack) on the host and on target profiles.

    Every row is labelled measured (here or over ssh), host-emulated (here, under a target's
    thread count and memory cap) or estimated (a cost model against a target's published
    peaks). A package is benchmarked on its own samples (--dim cycles them to that length).
    """
    from packager import pipeline
    from packager.bench.suite import read_results
    from packager.cli.options import check_file
    from packager.cli.render import make_console
    from packager.config import BenchConfig
    from packager.errors import RecipeError
    from packager.files import refuse_overwrite, write_text
    from packager.plans import bench_plan
    from packager.progress import Reporter
    from packager.report.bench_table import print_bench

    if runs is not None and seconds is not None:
        raise click.UsageError("give --runs or --seconds, not both")
    kept = {p: p for p in (model, *others)}  # what no output may replace
    if feeds is not None:
        check_file("--feeds", feeds, (".npz",))
        kept["--feeds"] = feeds
    for flag, dest in (("--json", json_out), ("--html", html_out)):
        if dest:
            refuse_overwrite(dest, kept, flag)
            kept[f"{flag} output"] = dest  # --html never replaces --json
    try:
        cfg = BenchConfig(
            targets=targets or ("host",),
            threads=threads,
            batch=batch,
            warmup=warmup,
            runs=runs if runs is not None or seconds is not None else 100,
            seconds=seconds,
            dims=dims,
            feeds=str(Path(feeds).resolve()) if feeds else None,
            memory_cap_mb=memory_cap,
            targets_dir=targets_dir,
        )
    except ValueError as err:  # pydantic's ValidationError: one line, the first problem
        first = err.errors()[0] if hasattr(err, "errors") else {"msg": str(err), "loc": ()}
        where = ".".join(str(x) for x in first["loc"])
        raise RecipeError(f"bench {where}: {first['msg'].removeprefix('Value error, ')}") from None
    steps = bench_plan([model, *others], cfg)
    result = pipeline.run(steps, cache_dir=cache_dir, reporter=Reporter(verbose=not quiet))
    art = result.artifact("bench")
    records = read_results(art.file())
    console = make_console(160)
    print_bench(console, records, title=f"edgepack bench {Path(model).name}")
    if json_out:
        _write_json(json_out, records, art.meta["warnings"])
        console.print(f"json: {json_out}")
    if html_out:
        from packager.report.html import bench_report_html

        write_text(html_out, bench_report_html(records, title=f"edgepack bench {Path(model).name}"))
        console.print(f"html: {html_out}")


def _write_json(path: str, records: list, warnings: list) -> None:
    import json

    from packager.bench.schema import SCHEMA
    from packager.files import write_text

    doc = {"schema": SCHEMA, "results": records, "warnings": warnings}
    write_text(path, json.dumps(doc, indent=2))


@click.command()
@click.argument("name", required=False)
@click.option("--targets-dir", type=click.Path(file_okay=False), help="Extra target profiles.")
def targets(name: str | None, targets_dir: str | None) -> None:
    """List target profiles, or show one (with the source of every figure)."""
    from rich.table import Table

    from packager.bench.errors import BenchError
    from packager.bench.targets import ENV_VAR, load_targets
    from packager.cli.render import make_console

    profiles = load_targets(targets_dir)
    console = make_console(160)
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
    cols = ("name", "arch", "cpu", "cores", "memory MB", "ISA", "provider", "GFLOP/s")
    for col in (*cols, "int8 GOP/s", "GB/s"):
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
            f"{p.peak_int8_gops.value:g}" if p.peak_int8_gops else "-",
            f"{p.bandwidth_gbs.value:g}" if p.bandwidth_gbs else "-",
        )
    console.print(t)
    console.print(
        f"[dim]`edgepack targets NAME` shows each figure's source; add your own YAML with "
        f"--targets-dir DIR or {ENV_VAR}=DIR[:DIR...][/]"
    )
