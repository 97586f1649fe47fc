"""`builtin:NAME` teachers, the ones edgepack knows by name: array classifiers trained here on
the recipe's data (builtin:digits-cnn), pretrained image architectures whose weights the recipe
names (builtin:efficientnet-lite0), and small causal LMs trained here on the recipe's text
(builtin:tiny-llama)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager.config.lm import BUILTIN_LMS
from packager.sources.teacher import (
    COMPLETIONS,
    LOGITS,
    TOKENIZER,
    TOPK,
    WEIGHTS,
    Teacher,
    described_with_weights,
    register_source,
)


@register_source
class BuiltinTeacher(Teacher):
    scheme = "builtin"
    gives = frozenset({LOGITS, WEIGHTS})

    def offers(self) -> frozenset[str]:
        if self.spec in BUILTIN_LMS:  # a language model: its generations and tokenizer too
            return self.gives | {COMPLETIONS, TOPK, TOKENIZER}
        return self.gives

    def describe(self, declared=None, hub_id=None):
        return described_with_weights(self, declared, hub_id)

    def array_model(self, splits, reporter, compute=None):
        from packager.sources.teachers import check_output, train_builtin

        teacher = train_builtin(self.spec, self.cfg, splits, reporter, compute)
        check_output(teacher.model, splits, self.source)
        return teacher

    def image_model(self, in_shape: list[int]):
        from packager.sources.teachers import pretrained_image

        return pretrained_image(self.spec, self.cfg, in_shape)

    def causal_lm(self, data: Path, seq: int, dest: Path, reporter, compute=None) -> dict[str, Any]:
        from packager.sources.builtin_lm import build_tiny_llama

        if self.spec not in BUILTIN_LMS:
            raise self.cannot("a causal language model")
        training = build_tiny_llama(
            data, self.cfg.kwargs, self.cfg.train, seq, dest, reporter, compute
        )
        return {"training": training, "trained": True}

    def class_names(self, classes: int) -> list[str] | None:
        if self.spec == "efficientnet-lite0" and classes == 1000:
            from packager.nets.efficientnet_lite import IMAGENET_CLASSES

            return IMAGENET_CLASSES.read_text(encoding="utf-8").splitlines()
        return None
