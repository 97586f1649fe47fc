"""Every error the runtime raises: one base class, so an app can catch them all in one place."""


class EdgepackRuntimeError(Exception):
    """Base class of every error raised by edgepack-runtime."""


class InvalidPackageError(EdgepackRuntimeError):
    """Not a package, or its manifest is missing, malformed or lacks a required field."""


class IntegrityError(EdgepackRuntimeError):
    """A file is missing, unlisted, or its size or sha256 differs from the manifest."""


class SchemaVersionError(EdgepackRuntimeError):
    """The manifest's schema_version has a major this runtime does not know."""


class UnsupportedPackageError(EdgepackRuntimeError):
    """A valid package that needs something this runtime or install does not provide."""


class InputError(EdgepackRuntimeError):
    """The input passed to preprocess, run or predict does not fit the model."""


class SampleMismatchError(EdgepackRuntimeError):
    """The model does not reproduce the outputs recorded in the package's samples."""


class SignatureError(EdgepackRuntimeError):
    """A public key was given and manifest.sig is missing or does not match it."""
