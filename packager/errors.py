"""The EdgepackError tree: every expected failure maps to a one-line message and an exit code."""

from __future__ import annotations


class EdgepackError(Exception):
    """Base of every error the CLI reports as one line instead of a traceback."""

    exit_code = 1


class RecipeError(EdgepackError):
    """The recipe (or a --set override) is invalid; exit 2 like click's usage errors."""

    exit_code = 2


class InputFileError(EdgepackError):
    """A file given by the user is missing, unreadable or of the wrong kind."""

    exit_code = 2


class StageError(EdgepackError):
    """A stage failed: its message names the stage, the number and the tolerance."""

    exit_code = 3

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage


class CheckFailed(StageError):
    """A numerical check at a stage boundary (parity, accuracy drop) missed its tolerance."""

    exit_code = 4


class OutputError(EdgepackError):
    """An output could not be written (a full or read-only disk, no permission): nothing
    half-written is left under its name."""

    exit_code = 1


class PackageError(EdgepackError):
    """A package failed verification (hash, signature, samples)."""

    exit_code = 5


def one_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): how a
    library failure is quoted in an `error:` line."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class OldSpelling(UserWarning):
    """A recipe or manifest value in a spelling edgepack still reads but no longer writes; the
    command line shows it as one `warning:` line."""


def old_spelling(message: str) -> None:
    import warnings

    warnings.warn(message, OldSpelling, stacklevel=3)


class EndpointError(EdgepackError):
    """A teacher's API endpoint failed in a way retries cannot mend (a refused key, an unknown
    model, an unreachable host, a TLS failure) or past the retry budget: one line naming the
    endpoint and the cause, never the key."""

    exit_code = 3
