"""The Quantizer: one prepared graph, quantized by its scheme as often as the search asks.

A `Quantizer` prepares its input graph once (nodes named; the opset its scheme needs; what the
scheme asks first: onnxruntime's pre-process, Gemm rewritten to MatMul) and then quantizes it
as often as the accuracy search asks, each time with a different set of nodes kept in float,
through its scheme's call into onnxruntime (packager.quantize.schemes: one file per scheme).
Static calibration runs once: its tensor ranges are cached to a file and reused by every
later call. Embedding tables (packager.quantize.embeddings) are a pass of their own.
"""

from __future__ import annotations

import difflib
import fnmatch
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from packager.config import QuantizeConfig
from packager.errors import RecipeError
from packager.quantize.data import Source
from packager.quantize.embeddings import embedding_gathers, int4_gathers, int8_gathers
from packager.quantize.graph import gemm_to_matmul, name_nodes
from packager.quantize.registry import scheme_of


def resolve_exclusions(model, cfg: QuantizeConfig) -> tuple[list[str], list[str]]:
    """Node names to keep in float from names, glob patterns and op types; plus warnings."""
    names = [n.name for n in model.graph.node]
    known, out, warnings = set(names), [], []
    for name in cfg.exclude_nodes:
        if name not in known:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise RecipeError(f"quantize.exclude_nodes: no node named {name!r} in the model{hint}")
        out.append(name)
    for pattern in cfg.exclude_patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise RecipeError(f"quantize.exclude_patterns: {pattern!r} matches no node name")
        out += hits
    ops = {n.op_type for n in model.graph.node}
    for op in cfg.exclude_op_types:
        if op not in ops:
            warnings.append(f"exclude_op_types: the model has no {op} node")
        out += [n.name for n in model.graph.node if n.op_type == op]
    return list(dict.fromkeys(out)), warnings


def required_opset(cfg: QuantizeConfig) -> int | None:
    """The lowest opset the scheme can be written at (None: any). onnxruntime's int4 quantizer
    only stamps 21 on an older model, without converting its ops (an opset-17 ReduceL2 then
    no longer loads): int4 embedding tables need a real upgrade first."""
    from packager.quantize.opset import INT4_OPSET

    return INT4_OPSET if cfg.int4_tables else scheme_of(cfg).opset(cfg)


class Quantizer:
    """Quantizes one prepared graph with `cfg`, as often as asked, with varying exclusions.

    A model below the opset its scheme needs is upgraded first (packager.quantize.opset),
    checked on `check_feeds` when there are some (else `self.upgrade` says why not). `calib`
    is the calibration data of a scheme that calibrates (the plan makes sure there is some)."""

    def __init__(
        self,
        src: Path,
        cfg: QuantizeConfig,
        workdir: Path,
        calib: Source | None,
        check_feeds: dict[str, np.ndarray] | None = None,
        no_feeds_why: str | None = None,
    ):
        import onnx

        from packager.quantize.kinds import weight_bits
        from packager.quantize.opset import opset_of, upgrade

        self.cfg, self.scheme, self.calib, self.workdir = cfg, scheme_of(cfg), calib, workdir
        self.calibration_examples = 0
        self.calibration_applied: str | None = None
        self.calib_cache = workdir / "calibration.json"
        self.bias_means: dict[str, np.ndarray] = {}  # bias correction's input means, once
        self.bias_correction: dict[str, Any] | None = None
        self.float_outputs = 0  # graph outputs freed of their QuantizeLinear/DequantizeLinear
        model = onnx.load(str(src))
        self.upgrade: dict[str, Any] | None = None
        target = required_opset(cfg)
        if target is not None and opset_of(model) < target:
            model, self.upgrade = upgrade(model, target, check_feeds, no_feeds_why)
        reduce_range = getattr(cfg, "reduce_range", False)
        self.reduce_range, self.reduce_range_reason = weight_bits(
            reduce_range, self.scheme.int8_weights
        )
        self.renamed = name_nodes(model)
        self.rewritten = gemm_to_matmul(model) if self.scheme.gemm_to_matmul else 0
        self.graph = workdir / "float.onnx"  # the graph quantized; node names refer to it
        onnx.save(model, str(self.graph))
        if self.scheme.preprocess:  # onnxruntime's recommended pre-processing
            from onnxruntime.quantization.shape_inference import quant_pre_process

            pre = workdir / "preprocessed.onnx"
            # Symbolic shape inference chokes on transformer graphs; ONNX inference suffices.
            quant_pre_process(str(self.graph), str(pre), skip_symbolic_shape=True)
            shutil.move(pre, self.graph)
        self.model = onnx.load(str(self.graph))
        self.excluded, self.warnings = resolve_exclusions(self.model, cfg)
        self.embedding_gathers = embedding_gathers(self.model)

    def write(self, dst: Path, extra_exclude: list[str] = ()) -> None:
        """Quantize the prepared graph into `dst`, `extra_exclude` kept in float too."""
        kept = list(dict.fromkeys([*self.excluded, *extra_exclude]))  # stay float, by request
        tables = self.cfg.tables
        # Tables are a pass of their own, after the scheme's: int4 blocks (onnxruntime's
        # GatherBlockQuantized) or int8 rows (one scale each, packager.quantize.embeddings).
        self.scheme.quantize(self, dst, list(dict.fromkeys([*kept, *self.embedding_gathers])))
        if self.scheme.finish is not None:
            self.scheme.finish(self.cfg, self, dst)
        rest = [g for g in self.embedding_gathers if g not in kept]
        if tables == "int4":
            int4_gathers(dst, rest, self.cfg.embedding_block_size, self.cfg.int4_symmetric)
        elif tables == "int8":
            int8_gathers(dst, rest)

    def quantizable_ops(self) -> set[str] | None:
        """Op types the scheme changes: the accuracy search's candidates (None: every op)."""
        return self.scheme.ops(self.cfg)

    def settings(self) -> dict[str, Any]:
        """What was done, for the manifest's quantization block."""
        c, s = self.cfg, self.scheme
        out: dict[str, Any] = {"mode": c.mode, "precision": s.precision, "format": s.format_of(c)}
        if s.int8_weights:
            out |= {
                "per_channel": c.per_channel,
                "reduce_range": self.reduce_range,
                "weight_bits": 7 if self.reduce_range else 8,
                "weight_bits_reason": self.reduce_range_reason,
                "weight_type": c.weight_type,
            }
        out |= s.settings(c, self)
        if self.upgrade is not None:
            out["opset_upgrade"] = self.upgrade
        out["embeddings"] = c.tables
        if c.tables == "int4":
            out |= {"embedding_block_size": c.embedding_block_size, "symmetric": c.int4_symmetric}
        out["embedding_tables"] = len(self.embedding_gathers)
        return out
