"""Dynamic int8: int8 weights, activations quantized at run time from their own range
(onnxruntime's quantize_dynamic). No calibration data; the scheme for transformers on CPUs.
Its convolutions become ConvInteger, which onnxruntime runs slowly: CNNs want static."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from packager.config import QuantizeConfig
from packager.quantize.registry import Scheme, register
from packager.quantize.schemes.static import INT8_OPSET, PER_CHANNEL_OPSET


class DynamicConfig(QuantizeConfig):
    """mode: dynamic: int8 weights; activations quantized at run time (no calibration)."""

    auto_tables: ClassVar[str] = "int8"  # embeddings auto: int8 rows, as Optimum's dynamic INT8

    mode: Literal["dynamic"] = "dynamic"
    per_channel: bool = Field(
        True,
        description="one int8 scale per output channel of each weight (per tensor: one)",
        json_schema_extra={"cli": "--per-channel/--per-tensor"},
    )
    weight_type: Literal["int8", "uint8"] = Field("int8", description="weight type")
    reduce_range: bool | Literal["auto"] = Field(
        "auto",
        description="7-bit weights (true: exact on x86 without VNNI, arm64 and wasm), 8-bit "
        "(false), or auto: 8-bit where the CPU has int8 dot-product instructions, else 7-bit",
        json_schema_extra={"cli": "--reduce-range/--full-range"},
    )


def _ops(cfg: DynamicConfig) -> set[str]:
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    return set(IntegerOpsRegistry)


def _quantize(q, dst: Path, exclude: list[str]) -> None:
    from onnxruntime.quantization import quantize_dynamic

    from packager.quantize.schemes.static import _qtype

    cfg: DynamicConfig = q.cfg
    quantize_dynamic(
        str(q.graph),
        str(dst),
        weight_type=_qtype(cfg.weight_type),
        per_channel=cfg.per_channel,
        reduce_range=q.reduce_range,
        nodes_to_exclude=exclude,
    )


def _causes(cfg: DynamicConfig, ran_ops: Counter, cpu: dict[str, Any]) -> list[str]:
    if not ran_ops.get("ConvInteger", 0):
        return []
    return [
        f"dynamic quantization of convolutions: {ran_ops['ConvInteger']} ConvInteger node(s) "
        "have no fast onnxruntime CPU kernel; use mode=static, or exclude_op_types=[Conv]"
    ]


SCHEME = register(
    Scheme(
        config=DynamicConfig,
        precision="int8",
        summary="int8 weights, activations quantized at run time (no data needed)",
        quantize=_quantize,
        format="QOperator",
        ops=_ops,
        opset=lambda cfg: PER_CHANNEL_OPSET if cfg.per_channel else INT8_OPSET,
        causes=_causes,
        instead=lambda cfg, ran_ops: "static" if ran_ops.get("ConvInteger", 0) else None,
        op_classes={
            "DynamicQuantizeMatMul": "gemm_dynamic",
            "MatMulInteger": "gemm_int8",
            "MatMulIntegerToFloat": "gemm_int8",
            "ConvInteger": "conv_int8",
        },
        preprocess=True,
        int8_weights=True,
        searched={"array": 1, "text": 0},
    )
)
