"""One file per stage; importing this package registers them all."""

from packager.stages import (
    bench,
    data,
    distill,
    evaluate,
    export,
    package,
    quantize,
    source,
    teacher,
)

__all__ = [
    "bench",
    "data",
    "distill",
    "evaluate",
    "export",
    "package",
    "quantize",
    "source",
    "teacher",
]
