"""The benchmark's own error, part of the EdgepackError tree so the CLI reports it in one line."""

from __future__ import annotations

from packager.errors import EdgepackError


class BenchError(EdgepackError):
    """A benchmark child crashed, timed out, or reported a failure; the message is one line."""
