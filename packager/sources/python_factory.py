"""`python:MODULE:FACTORY` teachers: a user's nn.Module factory (imported from the recipe's
folder, or teacher.import_path), its weights from safetensors or a weights-only .pt, for array
and image data."""

from __future__ import annotations

from packager.sources.teacher import (
    LOGITS,
    WEIGHTS,
    Teacher,
    described_with_weights,
    register_source,
)


@register_source
class PythonTeacher(Teacher):
    scheme = "python"
    gives = frozenset({LOGITS, WEIGHTS})

    def describe(self, declared=None, hub_id=None):
        return described_with_weights(self, declared, hub_id)

    def array_model(self, splits, reporter, compute=None):
        from packager.sources.teachers import check_output, python_model

        teacher = python_model(self.spec, self.cfg)
        check_output(teacher.model, splits, self.source)
        return teacher

    def image_model(self, in_shape: list[int]):
        from packager.sources.teachers import python_model

        return python_model(self.spec, self.cfg)
