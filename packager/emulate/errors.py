"""The emulation check's own error, reported by the CLI as one line."""

from __future__ import annotations

from packager.errors import EdgepackError


class EmulationError(EdgepackError):
    """The emulated environment cannot be built or run here; the message says what is missing."""
