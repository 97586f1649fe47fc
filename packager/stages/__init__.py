"""One file per stage; importing this package registers them all (packager.pipeline does)."""

from packager.stages import (
    bench,
    data,
    distill,
    evaluate,
    export,
    export_model,
    model_file,
    optimize,
    package,
    package_file,
    probe,
    provenance,
    quantize,
    teacher,
    teacher_outputs,
    trim_vocab,
)

__all__ = [
    "bench",
    "data",
    "distill",
    "evaluate",
    "export",
    "export_model",
    "model_file",
    "optimize",
    "package",
    "package_file",
    "probe",
    "provenance",
    "quantize",
    "teacher",
    "teacher_outputs",
    "trim_vocab",
]
