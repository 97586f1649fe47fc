"""The edgepack command line: thin and lazy. Parse, build a Recipe, call pipeline.run, render.

Heavy libraries (torch, onnx, onnxruntime) are imported inside command bodies so that
`edgepack --help` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from packager import __version__
from packager.errors import EdgepackError, InputFileError, PackageError


class _Group(click.Group):
    """Maps every expected failure to `error: <one line>` and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgepackError as err:
            _fail(str(err), err.exit_code)
        except KeyboardInterrupt:
            _fail(
                "interrupted; finished stages are cached and the next build resumes from them", 130
            )
        except Exception as err:
            if type(err).__module__.startswith("edgepack_runtime"):
                # A bad input to `run` is the caller's mistake (2); anything else is the package's.
                bad_input = type(err).__name__ == "InputError"
                _fail(str(err), InputFileError.exit_code if bad_input else PackageError.exit_code)
            raise


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _console():
    from rich.console import Console

    # Piped output (CI logs, files) gets a wide fixed width so tables are not truncated.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgepack")
def cli() -> None:
    """Turn a trained model into a small, fast, verified package for edge devices."""


@cli.command()
@click.argument("recipe", required=False)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.FIELD=VALUE",
    help="Override a recipe field.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate, print the stage plan and what is cached, run nothing.",
)
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), help="Stage cache [default: .edgepack/cache]."
)
@click.option("-q", "--quiet", is_flag=True, help="Only the final table and errors.")
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(dir_okay=False),
    help="Sign the published package with this ed25519 private key (edgepack keygen).",
)
def build(
    recipe: str | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    cache_dir: str | None,
    quiet: bool,
    sign_key: str | None,
) -> None:
    """Distill, export, quantize, evaluate, bench and package RECIPE [default: models/digits.yaml]."""
    from packager import pipeline
    from packager.progress import Reporter
    from packager.recipe import load_recipe
    from packager.render import print_build, print_plan

    r = load_recipe(recipe, overrides)
    result = pipeline.run(
        r,
        cache_dir=cache_dir,
        dry_run=dry_run,
        reporter=Reporter(verbose=not quiet),
        sign_key=sign_key,
    )
    console = _console()
    if dry_run:
        print_plan(console, result)
    else:
        print_build(console, result)


@cli.command()
@click.argument("package", type=click.Path())
@click.option(
    "--input",
    "input_file",
    type=click.Path(),
    help=".npy (or .json list) of raw inputs.",
)
@click.option("--text", "texts", multiple=True, help="Raw text for a text package; repeatable.")
@click.option("--top", default=1, show_default=True, help="Labels to print per example.")
def run(package: str, input_file: str | None, texts: tuple[str, ...], top: int) -> None:
    """Predict with PACKAGE on raw inputs, through the Python runtime only."""
    import numpy as np

    from packager.render import load_runtime

    if (input_file is None) == (not texts):
        raise InputFileError("run: give either --input FILE or --text TEXT (repeatable)")
    rt = load_runtime()
    pkg = rt.load(package)
    if texts:
        raw = list(texts)
    else:
        path = Path(input_file)
        if not path.is_file():
            raise InputFileError(f"--input {input_file}: file not found")
        try:
            raw = (
                np.load(path, allow_pickle=False)
                if path.suffix == ".npy"
                else np.asarray(_read_json(path))
            )
        except ValueError as err:
            raise InputFileError(f"--input {input_file}: cannot read ({err})") from None
    pred = pkg.predict(raw)
    if pred.embeddings is not None:  # feature-extraction: the vector's norm and first values
        for i, e in enumerate(pred.embeddings):
            head = ", ".join(f"{v:+.4f}" for v in e[:8])
            click.echo(f"{i}: dim {len(e)}, norm {np.linalg.norm(e):.4f}, [{head}, ...]")
        return
    if pred.labels is None:
        raise InputFileError(f"{package}: its postprocessing gives neither labels nor embeddings")
    for i in range(len(pred.labels)):
        order = np.argsort(-pred.probabilities[i])[:top]
        best = ", ".join(f"{pkg.labels[j]} ({pred.probabilities[i][j]:.3f})" for j in order)
        click.echo(f"{i}: {best}")


def _read_json(path: Path):
    import json

    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"--input {path}: not valid JSON ({err.msg} at line {err.lineno})"
        ) from None


@cli.command()
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
    for r in results:
        click.echo(r.line())
    failed = [r for r in results if not r.ok]
    if failed:
        names = ", ".join(r.runtime for r in failed)
        raise PackageError(f"{package}: refused by {names} ({failed[0].message})")


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(path: str, as_json: bool) -> None:
    """Show I/O, op counts, parameters, size and metrics of a package or an ONNX model."""
    from packager.render import inspect_target, print_inspect

    info = inspect_target(Path(path))
    if as_json:
        import json

        click.echo(json.dumps(info, indent=2, default=str))
    else:
        print_inspect(_console(), info)


@cli.command()
def recipes() -> None:
    """List the recipes in models/."""
    from packager.recipe import list_recipes

    for path, purpose in list_recipes():
        click.echo(f"{path}\n    {purpose}")


from packager.cli_sign import keygen  # noqa: E402  (click only: --help stays fast)

cli.add_command(keygen)
cli.add_command(__import__("packager.cli_quantize", fromlist=["quantize"]).quantize)
cli.add_command(__import__("packager.cli_bench", fromlist=["bench"]).bench)
cli.add_command(__import__("packager.cli_bench", fromlist=["targets"]).targets)


def main() -> None:
    cli(prog_name="edgepack")


if __name__ == "__main__":
    main()
