"""One file per stage; importing this package registers them all."""

from packager.stages import (
    bench,
    data,
    distill,
    evaluate,
    export,
    optimize,
    package,
    package_file,
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
    "optimize",
    "package",
    "package_file",
    "quantize",
    "source",
    "teacher",
]
