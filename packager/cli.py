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
                _fail(str(err), PackageError.exit_code)
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
def build(
    recipe: str | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    cache_dir: str | None,
    quiet: bool,
) -> None:
    """Distill, export, quantize, evaluate, bench and package RECIPE [default: models/digits.yaml]."""
    from packager import pipeline
    from packager.progress import Reporter
    from packager.recipe import load_recipe
    from packager.render import print_build, print_plan

    r = load_recipe(recipe, overrides)
    result = pipeline.run(
        r, cache_dir=cache_dir, dry_run=dry_run, reporter=Reporter(verbose=not quiet)
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
    required=True,
    type=click.Path(),
    help=".npy (or .json list) of raw inputs.",
)
@click.option("--top", default=1, show_default=True, help="Labels to print per example.")
def run(package: str, input_file: str, top: int) -> None:
    """Predict with PACKAGE on raw inputs, through the Python runtime only."""
    import numpy as np

    from packager.render import load_runtime

    rt = load_runtime()
    pkg = rt.load(package)
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
def verify(package: str) -> None:
    """Check PACKAGE: every file's sha256, that it loads, and that it reproduces samples/."""
    from packager.render import load_runtime

    rt = load_runtime()
    pkg = rt.load(package)  # raises on a hash, size, schema or manifest problem
    check = pkg.check_samples()
    if not check.ok:
        raise PackageError(f"{package}: {check.message}")
    worst = max(check.max_abs_diff.values(), default=0.0)
    click.echo(
        f"ok: {package}: {len(pkg.manifest['files'])} files verified, "
        f"{check.count} samples reproduced (max abs diff {worst:.2e})"
    )


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


def main() -> None:
    cli(prog_name="edgepack")


if __name__ == "__main__":
    main()
