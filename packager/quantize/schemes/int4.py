"""int4: 4-bit weight-only MatMuls in blocks (onnxruntime's MatMulNBits), activations float.
For MatMul-heavy models (transformers, language models) where memory bandwidth rules; the LM
head may keep its own width (lm_head)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from packager.config import QuantizeConfig
from packager.errors import RecipeError
from packager.quantize.registry import Scheme, register


class Int4Config(QuantizeConfig):
    """mode: int4: 4-bit weight-only MatMuls (MatMulNBits)."""

    int4_blocks: ClassVar[bool] = True

    mode: Literal["int4"] = "int4"
    block_size: int = Field(32, ge=16, le=1024, description="weights per scale block")
    int4_accuracy_level: Literal["auto", 0, 1, 2, 3, 4] = Field(
        "auto",
        description="MatMulNBits compute type: auto (the fastest on this CPU: 4 where it has "
        "AVX2 or Arm dot-product instructions, else 0), 0 (onnxruntime's default: fp32), 4 "
        "(int8 activations, the fast CPU kernels), 1-3 (fp32/fp16/bf16)",
    )
    lm_head: Literal["auto", "fp32", "int8", "int4"] = Field(
        "auto",
        description="the language-model head (the MatMul to the vocabulary): as the other "
        "MatMuls (auto), kept fp32, or 8-bit MatMulNBits",
    )

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("block_size must be a power of two (16, 32, 64, 128, ...)")
        return v


def _quantize(q, dst: Path, exclude: list[str]) -> None:
    import onnx

    from packager.quantize.nbits import lm_head_nodes, nbits

    cfg: Int4Config = q.cfg
    blocks = {
        "block_size": cfg.block_size,
        "symmetric": cfg.int4_symmetric,
        "accuracy_level": accuracy_level(cfg)[0],
    }
    head = lm_head_nodes(q.model) if cfg.lm_head != "auto" else []
    model = nbits(onnx.load(str(q.graph)), 4, nodes_to_exclude=[*exclude, *head], **blocks)
    if head and cfg.lm_head in ("int8", "int4"):  # the head alone, at its own width
        bits = 8 if cfg.lm_head == "int8" else 4
        model = nbits(model, bits, nodes_to_include=head, **blocks)
    onnx.save(model, str(dst))
    ops = {n.op_type for n in onnx.load(str(dst), load_external_data=False).graph.node}
    if "MatMulNBits" not in ops and not exclude:
        raise RecipeError(
            "quantize.mode=int4 found no MatMul with constant 2-D weights to quantize "
            "(int4 is weight-only for MatMul-heavy models); use mode=dynamic or static"
        )


def accuracy_level(cfg: Int4Config, cpu: dict[str, Any] | None = None) -> tuple[int, str]:
    """(MatMulNBits accuracy_level, why): int4_accuracy_level, `auto` resolved on this CPU."""
    if cfg.int4_accuracy_level != "auto":
        return int(cfg.int4_accuracy_level), "as configured (quantize.int4_accuracy_level)"
    if cpu is None:
        from packager.quantize.speed import cpu_features

        cpu = cpu_features()
    if cpu["avx2"] or cpu["dotprod"]:
        return 4, "4: this CPU runs MatMulNBits' int8-compute kernels (AVX2 / Arm dot-product)"
    return 0, "0: this CPU has neither AVX2 nor Arm dot-product instructions for int8 compute"


def _causes(cfg: Int4Config, ran_ops: Counter, cpu: dict[str, Any]) -> list[str]:
    out = []
    level = accuracy_level(cfg, cpu)[0]
    if level != 4:
        out.append(
            f"int4 with quantize.int4_accuracy_level = {level}: MatMulNBits "
            "unpacks the 4-bit weights to fp32 and runs fp32 math; accuracy_level 4 (int8 "
            "compute) is its fast CPU kernel (without it decode ran 2.3x slower in onnxruntime's "
            "own measurements): set quantize.int4_accuracy_level = 4"
        )
    out.append(
        "int4 MatMulNBits unpacks 4-bit blocks at run time; it pays off on large, "
        "memory-bound MatMuls, not on small matrices"
    )
    return out


def _op_class(node) -> str:
    level = next((a.i for a in node.attribute if a.name == "accuracy_level"), 0)
    return "gemm_dynamic" if level == 4 else "gemm_int4"


def _tied(cfg: Int4Config, q, dst: Path) -> None:
    """A word table tied to the head, int4: the lookup reads the head's blocks, one copy
    (packager.quantize.tied, as onnxruntime-genai's builder's shared_embeddings)."""
    from packager.quantize.tied import share_tied_table

    q.tied_table = cfg.tables == "int4" and share_tied_table(dst)


def _settings(cfg: Int4Config, q) -> dict[str, Any]:
    tied = {"tied_table": "int4, read from the LM head's blocks (GatherBlockQuantized)"}
    return (tied if getattr(q, "tied_table", False) else {}) | {
        "block_size": cfg.block_size,
        "symmetric": cfg.int4_symmetric,
        "accuracy_level": accuracy_level(cfg)[0],
        "accuracy_level_reason": accuracy_level(cfg)[1],
        "lm_head": cfg.lm_head,
        "gemm_rewritten": q.rewritten,
    }


SCHEME = register(
    Scheme(
        config=Int4Config,
        precision="int4",
        summary="4-bit weight-only MatMuls in blocks (MatMulNBits): language models",
        quantize=_quantize,
        format="MatMulNBits",
        ops=lambda cfg: {"MatMul"},
        causes=_causes,
        op_classes={"MatMulNBits": _op_class},
        settings=_settings,
        finish=_tied,
        gemm_to_matmul=True,
        searched={"text": 2},
    )
)
