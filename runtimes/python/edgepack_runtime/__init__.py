"""edgepack-runtime: load, verify and run `.edgepack` packages with numpy and onnxruntime only.

`load(path)` checks the manifest and every file's sha256 before the model reaches onnxruntime;
`load(path, pubkey=KEY)` checks the ed25519 signature first;
`Package.predict(raw)` preprocesses, runs and postprocesses;
`open_package(path)` reads a package's files verified, without onnxruntime (`extract_to` a
folder for the C++ runtime). See README.md.
"""

# generation: language models' decoding with the KV cache; image: type "image" preprocessing
# (numpy; Pillow only to decode files); npy: the one .npy reader (header checked first); text:
# the input policy for texts and prompts, tokenizers, chat templates, `printable`.
from . import generation, image, limits, npy, text
from ._source import check_regular, read_regular
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
from .generation import Decoder
from .limits import MAX_FILE_BYTES, MAX_JSON_DEPTH, MAX_KEPT_BYTES, MAX_MANIFEST_BYTES
from .manifest import SCHEMA_VERSION, SUPPORTED_MAJOR
from .package import Package, SampleCheck, load
from .postprocessing import Prediction
from .reader import PackageReader, open_package

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_KEPT_BYTES",
    "MAX_MANIFEST_BYTES",
    "SCHEMA_VERSION",
    "SUPPORTED_MAJOR",
    "Decoder",
    "EdgepackRuntimeError",
    "InputError",
    "IntegrityError",
    "InvalidPackageError",
    "Package",
    "PackageReader",
    "Prediction",
    "SampleCheck",
    "SampleMismatchError",
    "SchemaVersionError",
    "SignatureError",
    "UnsupportedPackageError",
    "__version__",
    "check_regular",
    "generation",
    "image",
    "limits",
    "load",
    "npy",
    "open_package",
    "read_regular",
    "text",
]
