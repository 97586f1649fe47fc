"""edgepack-runtime: load, verify and run `.edgepack` packages with numpy and onnxruntime only.

`load(path)` checks the manifest and every file's sha256 before the model reaches onnxruntime;
`load(path, pubkey=KEY)` checks the ed25519 signature first;
`Package.predict(raw)` preprocesses, runs and postprocesses. See README.md.
"""

from ._version import __version__
from .errors import (
    EdgepackRuntimeError,
    InputError,
    IntegrityError,
    InvalidPackageError,
    SampleMismatchError,
    SchemaVersionError,
    SignatureError,
    UnsupportedPackageError,
)
from .manifest import SCHEMA_VERSION, SUPPORTED_MAJOR
from .package import Package, SampleCheck, load
from .postprocessing import Prediction

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_MAJOR",
    "EdgepackRuntimeError",
    "InputError",
    "IntegrityError",
    "InvalidPackageError",
    "Package",
    "Prediction",
    "SampleCheck",
    "SampleMismatchError",
    "SchemaVersionError",
    "SignatureError",
    "UnsupportedPackageError",
    "__version__",
    "load",
]
