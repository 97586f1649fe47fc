"""The one way the tool reaches its device runtime (edgepack_runtime: verify, run, the arm64
check, signatures): imported on demand, with one message when it is not installed."""

from __future__ import annotations

from packager.errors import EdgepackError, InputFileError


def load_runtime(error: type[EdgepackError] = InputFileError):
    """The edgepack_runtime module; `error` (one line, how to install it) when it is missing."""
    try:
        import edgepack_runtime
    except ImportError:
        raise error(
            "edgepack_runtime is not installed: pip install ./runtimes/python (make demo does this)"
        ) from None
    return edgepack_runtime
