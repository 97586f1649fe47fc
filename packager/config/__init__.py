"""Every stage config, grouped by area; each is frozen pydantic, so it hashes into cache keys.

    base     Config (the base class), Task
    compute  where training and teacher passes run (device, precision), resolved by the plans
    sources  teacher: and data: sections
    distill  distill: (students, losses, training)
    onnx     export:, optimize:, quantize:, and `edgepack export` (ExportModelConfig)
    ship     evaluate:, bench:, package:
    provenance  provenance: (the gate on what may be distilled, facts about the sources)
    files    the model / package files of single-stage commands
    auto     auto: (edgepack auto's search space), the calibrate and sketch steps
    modalities  the modalities (array, image, text, lm), declared once, and the one rule

The `quantize:` section is a union of schemes whose classes live with their mechanisms in
packager/quantize/schemes/ (one file each); QuantizeConfig here is their shared base.

The `...StepConfig` classes are what a stage reads when it needs more than its section: the
section plus the recipe-level fields it depends on (the task, the package's name), so those are
in the stage's key too. Plans build them (packager.plans); a recipe never names them.
"""

from packager.config.augment_text import TextAugmentConfig
from packager.config.auto import AutoConfig, CalibrateConfig, SketchConfig
from packager.config.base import LM_TASK, TEXT_TASKS, Config, Task
from packager.config.compute import ComputeConfig
from packager.config.distill import (
    DistillConfig,
    DistillStepConfig,
    LossWeights,
    StaticStudentConfig,
    StudentConfig,
    TeacherOutputsConfig,
    TokenizeConfig,
    TransformerStudentConfig,
    TrimVocabConfig,
)
from packager.config.files import ModelFileConfig, PackageFileConfig
from packager.config.lm import (
    CausalStudentConfig,
    GenerateConfig,
    GenerateStepConfig,
    GenerationDefaults,
    TeacherLogitsConfig,
)
from packager.config.onnx import (
    ExportConfig,
    ExportModelConfig,
    ModelInput,
    OptimizeConfig,
    QuantizeConfig,
)
from packager.config.provenance import ProvenanceConfig, ProvenanceStepConfig, SourceFacts
from packager.config.ship import (
    BenchConfig,
    EvaluateConfig,
    EvaluateStepConfig,
    PackageConfig,
    PackageStepConfig,
)
from packager.config.sources import (
    DataConfig,
    DataStepConfig,
    ProbeConfig,
    TeacherConfig,
    TeacherStepConfig,
    TeacherTrainConfig,
)

__all__ = [
    "LM_TASK",
    "TEXT_TASKS",
    "AutoConfig",
    "BenchConfig",
    "CalibrateConfig",
    "CausalStudentConfig",
    "ComputeConfig",
    "Config",
    "DataConfig",
    "DataStepConfig",
    "DistillConfig",
    "DistillStepConfig",
    "EvaluateConfig",
    "EvaluateStepConfig",
    "ExportConfig",
    "ExportModelConfig",
    "GenerateConfig",
    "GenerateStepConfig",
    "GenerationDefaults",
    "LossWeights",
    "ModelFileConfig",
    "ModelInput",
    "OptimizeConfig",
    "PackageConfig",
    "PackageFileConfig",
    "PackageStepConfig",
    "ProbeConfig",
    "ProvenanceConfig",
    "ProvenanceStepConfig",
    "QuantizeConfig",
    "SketchConfig",
    "SourceFacts",
    "StaticStudentConfig",
    "StudentConfig",
    "Task",
    "TeacherConfig",
    "TeacherLogitsConfig",
    "TeacherOutputsConfig",
    "TeacherStepConfig",
    "TeacherTrainConfig",
    "TextAugmentConfig",
    "TokenizeConfig",
    "TransformerStudentConfig",
    "TrimVocabConfig",
]
