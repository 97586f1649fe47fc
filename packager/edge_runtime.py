"""The one way the tool reaches its device runtime (edgepack_runtime: verify, run, the arm64
check, signatures): imported on demand, with one message when it is not installed."""

from __future__ import annotations

from pathlib import Path

from packager.errors import EdgepackError, InputFileError, PackageError


def load_runtime(error: type[EdgepackError] = InputFileError):
    """The edgepack_runtime module; `error` (one line, how to install it) when it is missing."""
    try:
        import edgepack_runtime
    except ImportError:
        raise error(
            "edgepack_runtime is not installed (pip install edgepack brings it; alone: "
            "pip install ./runtimes/python)"
        ) from None
    return edgepack_runtime


def open_package(path: str | Path):
    """The runtime's verified package reader (edgepack_runtime.open_package): every check a
    device makes (names, symlinks, sizes, caps, schema) before anything is read, each file's
    sha256 as it is read. Its refusal becomes one PackageError line naming the package (exit 5,
    as `verify` and `run` refuse it)."""
    rt = load_runtime()
    try:
        return rt.open_package(path)
    except rt.EdgepackRuntimeError as err:
        raise PackageError(package_error(path, err)) from None


def package_error(path: str | Path, err: BaseException) -> str:
    message = " ".join(str(err).split())
    return message if str(path) in message else f"{path}: {message}"
