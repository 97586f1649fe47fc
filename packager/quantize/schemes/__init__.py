"""The quantization schemes, one file each; importing this package registers them all
(packager.quantize.registry). A new scheme is one more file here and its import below."""

from packager.quantize.registry import (
    SCHEMES,
    QuantizeSection,
    Scheme,
    fields_for,
    modes,
    quantize_config,
    register,
    registered,
    scheme_of,
    searched_modes,
    tracks,
    unregister,
)
from packager.quantize.schemes import dynamic, fp16, int4, none, static

__all__ = [
    "SCHEMES",
    "QuantizeSection",
    "Scheme",
    "dynamic",
    "fields_for",
    "fp16",
    "int4",
    "modes",
    "none",
    "quantize_config",
    "register",
    "registered",
    "scheme_of",
    "searched_modes",
    "static",
    "tracks",
    "unregister",
]
