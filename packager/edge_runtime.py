"""The one way the tool reaches its device runtime (edgepack_runtime: verify, run, the arm64
check, signatures, the check of every file a user names): imported on demand, with one message
when it is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packager.errors import EdgepackError, InputFileError, PackageError

# Size caps on the files a user names (docs/guarantees.md), beside the runtime's for inputs,
# images and keys (edgepack_runtime.limits): a recipe is a few KB; an ONNX model is one protobuf
# (2 GiB at most; external data is its own file); a data file is a corpus or a calibration set.
MAX_RECIPE_BYTES = 1 << 20
MAX_MODEL_BYTES = 2 << 30
MAX_DATA_BYTES = 64 << 30


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


def user_file(path: str | Path, max_bytes: int, label: str | None = None) -> Path:
    """A file the user names (a model, a recipe, a key, a data or input file), checked with the
    runtime's own helper (edgepack_runtime.check_regular) before anything reads it: a regular
    file (or a link to one) within `max_bytes`. Otherwise one InputFileError line naming it:
    "file not found", "not a regular file (a FIFO)" (a FIFO would block the read forever, a
    device stream without end), "too large (N bytes, over M)". The line starts with `label`
    (the path by default; e.g. "--pubkey KEY", "data.source FILE")."""
    p = Path(path).expanduser()
    with _one_line(path, label):
        load_runtime().check_regular(p, max_bytes)
    return p


def read_user_file(path: str | Path, max_bytes: int, label: str | None = None) -> bytes:
    """The bytes of a file the user names, read by the runtime's own helper (checked as
    user_file checks it, then read no further than its size)."""
    with _one_line(path, label):
        data = load_runtime().read_regular(Path(path).expanduser(), max_bytes)
    return data


@contextmanager
def _one_line(path: str | Path, label: str | None) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise InputFileError(f"{label or path}: file not found") from None
    except OSError as err:
        why = err.strerror or str(err)
        kind, sep, _ = why.partition(", not a regular file")  # "a FIFO, not a regular file"
        why = f"not a regular file ({kind})" if sep else why
        raise InputFileError(f"{label or path}: {why}") from None
