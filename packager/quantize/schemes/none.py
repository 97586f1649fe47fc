"""none: the model as it is (fp32); a build then ships the fp32 student."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar, Literal

from packager.config import QuantizeConfig
from packager.quantize.registry import Scheme, register


class NoneConfig(QuantizeConfig):
    """mode: none: no quantization (the fp32 model ships)."""

    embedding_choices: ClassVar[tuple[str, ...]] = ("auto", "fp32")

    mode: Literal["none"] = "none"


def _copy(q, dst: Path, exclude: list[str]) -> None:
    shutil.copyfile(q.graph, dst)


SCHEME = register(
    Scheme(
        config=NoneConfig,
        precision="fp32",
        summary="no quantization: the fp32 model ships",
        quantize=_copy,
        format="fp32",
        searched={"array": 3},
    )
)
