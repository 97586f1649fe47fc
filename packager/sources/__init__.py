"""Where teachers come from: `builtin:NAME` (trained here, seeded) or `python:MODULE:FACTORY`
(a user's nn.Module factory with weights from safetensors or a weights-only .pt)."""

from packager.sources.teachers import TeacherModel, make_teacher

__all__ = ["TeacherModel", "make_teacher"]
