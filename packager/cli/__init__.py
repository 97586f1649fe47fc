"""The edgepack command line: thin and lazy. Parse, build a plan, call pipeline.run, render.

Heavy libraries (torch, onnx, onnxruntime) are imported inside command bodies so that
`edgepack --help` is instant; every command module imports only click at the top.
"""

from __future__ import annotations

import sys
import warnings

import click

from packager._version import __version__
from packager.errors import EdgepackError, InputFileError, OldSpelling, PackageError, one_line

_default_show = warnings.showwarning


class _Group(click.Group):
    """Maps every expected failure to `error: <one line>` and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:  # an unknown option or command, a bad or missing value
            where = f" (see `{err.ctx.command_path} --help`)" if err.ctx else ""
            fail(f"{err.format_message()}{where}", err.exit_code)
        except EdgepackError as err:
            fail(str(err), err.exit_code)
        except KeyboardInterrupt:
            fail(
                "interrupted; finished stages are cached and the next build resumes from them", 130
            )
        except OSError as err:  # a full disk, a read-only folder, a file that vanished: one line
            where = f"{err.filename}: " if err.filename else ""
            fail(f"{where}{err.strerror or one_line(err)}", 1)
        except Exception as err:
            if type(err).__module__.startswith("edgepack_runtime"):
                # A bad input to `run` is the caller's mistake (2); anything else is the package's.
                bad_input = type(err).__name__ == "InputError"
                fail(str(err), InputFileError.exit_code if bad_input else PackageError.exit_code)
            raise


def fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgepack")
def cli() -> None:
    """Turn a trained model into a small, fast, verified package for edge devices."""


def _register() -> None:
    from packager.cli import auto, bench, build, check, export, keys, quantize, run

    for command in (
        build.build,
        auto.auto,
        run.run,
        check.verify,
        check.inspect,
        build.recipes,
        keys.keygen,
        export.export,
        quantize.quantize,
        bench.bench,
        bench.targets,
    ):
        cli.add_command(command)


_register()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Old spellings (packager.errors.OldSpelling) are one `warning:` line, shown once each."""
    if issubclass(category, OldSpelling):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_show(message, category, filename, lineno, file, line)


def main() -> None:
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", OldSpelling)  # once per place, not once per validation
    cli(prog_name="edgepack")


if __name__ == "__main__":
    main()
