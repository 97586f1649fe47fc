"""`edgepack verify` and `edgepack inspect`: what a package is and whether it holds."""

from __future__ import annotations

from pathlib import Path

import click

from packager.cli.options import dims_option
from packager.errors import InputFileError, PackageError
from packager.limits import MAX_BATCH


@click.command()
@click.argument("package", type=click.Path())
@click.option(
    "--pubkey",
    type=click.Path(dir_okay=False),
    help="Refuse the package unless manifest.sig is a valid signature by this public key.",
)
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(["python", "cpp", "js", "js-wasm", "all"]),
    help="Runtime(s) that replay the samples [default: python]; repeatable.",
)
@click.option(
    "--arch",
    type=click.Choice(["host", "arm64"]),
    default="host",
    help="arm64: also replay the samples on aarch64 Python + onnxruntime under qemu-user "
    "(a correctness check, never a latency; builds a cached sysroot on first use).",
)
def verify(package: str, pubkey: str | None, runtimes: tuple[str, ...], arch: str) -> None:
    """Check PACKAGE: signature, every file's sha256, and that each runtime reproduces samples/."""
    from packager.verify import verify_package

    results = verify_package(package, runtimes, pubkey=pubkey)
    if arch == "arm64":
        from packager.emulate import check_arm64

        results.append(check_arm64(package, log=lambda msg: click.echo(msg, err=True)))
    from packager.cli.render import plain

    for r in results:  # a runtime's message quotes the package's names: shown escaped
        click.echo(plain(r.line()))
    failed = [r for r in results if not r.ok]
    if failed:
        names = ", ".join(r.runtime for r in failed)
        raise PackageError(f"{package}: refused by {names} ({failed[0].message})")


@click.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--provenance",
    is_flag=True,
    help="The lineage tree (teacher -> student -> quantized), licenses and duties, data "
    "sources and what was accepted.",
)
@click.option(
    "--dim",
    "dims",
    multiple=True,
    callback=dims_option,
    help="Symbolic dim value for the cost table, e.g. height=320 (repeatable).",
)
@click.option("--batch", type=click.IntRange(1, MAX_BATCH), default=1, show_default=True)
def inspect(path: str, as_json: bool, provenance: bool, dims: dict[str, int], batch: int) -> None:
    """Show I/O, op counts, parameters, size, MACs and metrics of a package or an ONNX model.

    The cost table binds symbolic input dims with --dim (a package's own sample shapes
    otherwise); a dim nobody gave is guessed as 1, and the table says so.
    """
    from packager.cli.render import make_console
    from packager.cli.render_inspect import print_inspect, print_provenance
    from packager.inspection import inspect_target

    info = inspect_target(Path(path), dims=dims, batch=batch)
    if provenance and info["kind"] != "package":
        raise InputFileError(f"{path}: --provenance needs an .edgepack package")
    shown = {k: info[k] for k in ("path", "name", "provenance")} if provenance else info
    if as_json:
        import json

        click.echo(json.dumps(shown, indent=2, default=str))
    elif provenance:
        print_provenance(make_console(), info)
    else:
        print_inspect(make_console(), info)
