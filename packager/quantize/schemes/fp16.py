"""fp16: every float tensor in half precision (onnxruntime's float16 converter). Halves the
size; speed needs a GPU/NPU provider (the CPU provider casts most ops back to fp32)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from packager.config import QuantizeConfig
from packager.quantize.registry import Scheme, register


class Fp16Config(QuantizeConfig):
    """mode: fp16: half-precision floats."""

    # An int8 table's dequantizing Mul would meet fp16 neighbours; int4 blocks stay float32.
    embedding_choices: ClassVar[tuple[str, ...]] = ("auto", "fp32", "int4")

    mode: Literal["fp16"] = "fp16"
    keep_io_types: bool = Field(
        True,
        description="keep float32 model inputs and outputs",
        json_schema_extra={"cli": "--keep-io-types/--fp16-io"},
    )


def _quantize(q, dst: Path, exclude: list[str]) -> None:
    import onnx

    # onnxruntime's fork of onnxconverter-common's converter: the original leaves
    # Cast(to=float) nodes typed float16, which onnxruntime refuses to load.
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(
        onnx.load(str(q.graph)),
        keep_io_types=q.cfg.keep_io_types,
        node_block_list=exclude or None,
    )
    # The converter appends the Casts it inserts for graph inputs after their consumers:
    # onnxruntime runs that, onnx.checker (and every tool that checks) refuses it.
    sorted_model = OnnxModel(model)
    sorted_model.topological_sort()
    onnx.checker.check_model(sorted_model.model)
    onnx.save(sorted_model.model, str(dst))


def _causes(cfg: Fp16Config, ran_ops: Counter, cpu: dict[str, Any]) -> list[str]:
    return [
        "fp16 on onnxruntime's CPU provider: most ops have no fp16 kernel and run through "
        "Casts to fp32; fp16 halves the size, speed needs a GPU/NPU provider"
    ]


SCHEME = register(
    Scheme(
        config=Fp16Config,
        precision="fp16",
        summary="half-precision floats: half the size, same speed on CPUs",
        quantize=_quantize,
        format="float16",
        causes=_causes,
        settings=lambda cfg, q: {"keep_io_types": cfg.keep_io_types},
        searched={"array": 2, "text": 3},
    )
)
