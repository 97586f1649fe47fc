"""The quantization modes, each a thin call into onnxruntime's quantization tools.

A `Quantizer` prepares its input graph once (nodes named, static: onnxruntime's pre-process,
int4: Gemm rewritten to MatMul) and then quantizes it as often as the accuracy search asks,
each time with a different set of nodes kept in float. Static calibration runs once: its
tensor ranges are cached to a file and reused by every later call.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from packager.config import QuantizeConfig
from packager.errors import RecipeError
from packager.quantize.data import CalibrationReader, Source
from packager.quantize.embeddings import embedding_gathers, int4_gathers, int8_gathers
from packager.quantize.graph import gemm_to_matmul, keep_outputs_float, name_nodes
from packager.quantize.nbits import lm_head_nodes, nbits
from packager.quantize.tied import share_tied_table

CALIBRATION = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# Histogram settings onnxruntime's create_calibrator takes but quantize_static does not pass on.
# Its entropy defaults (128 bins = 128 quantized bins) leave one candidate threshold, the full
# range, i.e. MinMax in other words (same bytes); TensorRT's 2048 / 128 give it a real search.
CALIBRATOR_OPTIONS = {
    "minmax": {},
    "entropy": {"num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"num_bins": 2048, "percentile": 99.999},
}
PRECISION = {"static": "int8", "dynamic": "int8", "fp16": "fp16", "int4": "int4", "none": "fp32"}


def format_of(cfg: QuantizeConfig) -> str:
    if cfg.mode == "static":
        return "QDQ" if cfg.format == "qdq" else "QOperator"
    return {"dynamic": "QOperator", "fp16": "float16", "int4": "MatMulNBits"}.get(cfg.mode, "fp32")


def quantizable_ops(mode: str) -> set[str] | None:
    """Op types a mode changes (the accuracy search's candidates); None: every op."""
    from onnxruntime.quantization.registry import (
        IntegerOpsRegistry,
        QDQRegistry,
        QLinearOpsRegistry,
    )

    if mode == "static":
        return set(QDQRegistry) | set(QLinearOpsRegistry)
    if mode == "dynamic":
        return set(IntegerOpsRegistry)
    if mode == "int4":
        return {"MatMul"}
    return None


def _qtype(name: str):
    from onnxruntime.quantization import QuantType

    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name]


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


class Quantizer:
    """Quantizes one prepared graph with `cfg`, as often as asked, with varying exclusions.

    A model below the opset its scheme needs is upgraded first (packager.quantize.opset),
    checked on `check_feeds` when there are some (else `self.upgrade` says why not)."""

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

        from packager.quantize.opset import opset_of, required_opset, upgrade

        if cfg.mode == "static" and calib is None:
            raise RecipeError(
                "quantize.calib is required for mode=static: point it at a .npz/.npy/.jsonl/.txt "
                "file or set mode=dynamic"
            )
        self.cfg, self.calib, self.workdir = cfg, calib, workdir
        self.calibration_examples = 0
        self.calibration_applied: str | None = None
        self._calib_cache = workdir / "calibration.json"
        self._bias_means: dict[str, np.ndarray] = {}  # bias correction's input means, once
        self.bias_correction: dict[str, Any] | None = None
        self.float_outputs = 0  # graph outputs freed of their QuantizeLinear/DequantizeLinear
        model = onnx.load(str(src))
        self.upgrade: dict[str, Any] | None = None
        target = required_opset(cfg.mode, cfg.per_channel, cfg.embeddings == "int4")
        if target is not None and opset_of(model) < target:
            model, self.upgrade = upgrade(model, target, check_feeds, no_feeds_why)
        from packager.quantize.kinds import weight_bits

        self.reduce_range, self.reduce_range_reason = weight_bits(cfg.reduce_range, cfg.mode)
        self.renamed = name_nodes(model)
        self.rewritten = gemm_to_matmul(model) if cfg.mode == "int4" else 0
        self.graph = workdir / "float.onnx"  # the graph quantized; node names refer to it
        onnx.save(model, str(self.graph))
        if cfg.mode in ("static", "dynamic"):  # onnxruntime's recommended pre-processing
            from onnxruntime.quantization.shape_inference import quant_pre_process

            pre = workdir / "preprocessed.onnx"
            # Symbolic shape inference chokes on transformer graphs; ONNX inference suffices.
            quant_pre_process(str(self.graph), str(pre), skip_symbolic_shape=True)
            shutil.move(pre, self.graph)
        self.model = onnx.load(str(self.graph))
        self.excluded, self.warnings = resolve_exclusions(self.model, cfg)
        self.embedding_gathers = embedding_gathers(self.model)
        self.tied_table = False

    def run(self, dst: Path, extra_exclude: list[str] = ()) -> None:
        kept = list(dict.fromkeys([*self.excluded, *extra_exclude]))  # stay float, by request
        tables = self._embedding_choice()
        dynamic8 = tables == "int8" and self.cfg.mode == "dynamic"
        exclude = kept if dynamic8 else list(dict.fromkeys([*kept, *self.embedding_gathers]))
        getattr(self, f"_{self.cfg.mode}")(dst, exclude)
        c = self.cfg
        if c.mode == "static" and c.format == "qdq" and c.float_outputs:
            self.float_outputs = keep_outputs_float(dst)
        rest = [g for g in self.embedding_gathers if g not in kept]
        if tables == "int4" and c.mode == "int4":  # a table tied to the head: its blocks, once
            self.tied_table = share_tied_table(dst)
        if tables == "int4":  # a pass of its own: the mode's quantizer has no int4 Gather
            int4_gathers(dst, rest, self.cfg)
        elif tables == "int8" and not dynamic8:  # int4 mode: onnxruntime's Gather is 4-bit only
            int8_gathers(dst, rest)

    def _embedding_choice(self) -> str:
        """What happens to embedding tables: "auto" (whatever the mode's pass does: dynamic
        makes them int8 with one scale a table, fp16 halves them), "int8", "int4", "fp32"."""
        choice = self.cfg.embeddings
        if choice == "int8" and self.cfg.mode not in ("dynamic", "int4"):
            raise RecipeError(
                "quantize.embeddings = int8 needs mode = dynamic or int4; use embeddings = int4 "
                "with other modes"
            )
        return choice

    def _none(self, dst: Path, exclude: list[str]) -> None:
        shutil.copyfile(self.graph, dst)

    def _dynamic(self, dst: Path, exclude: list[str]) -> None:
        from onnxruntime.quantization import quantize_dynamic

        quantize_dynamic(
            str(self.graph),
            str(dst),
            weight_type=_qtype(self.cfg.weight_type),
            per_channel=self.cfg.per_channel,
            reduce_range=self.reduce_range,
            nodes_to_exclude=exclude,
        )

    def _calibrate(self) -> None:
        """Tensor ranges by the configured method, computed once with onnxruntime's own
        calibrator (and the histogram settings quantize_static cannot pass), saved as the
        calibration cache every quantize_static call then reads."""
        import tempfile

        from onnxruntime.quantization import CalibrationMethod
        from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

        reader = CalibrationReader(self.calib)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            calibrator = create_calibrator(
                self.graph,
                list(set(QDQRegistry) | set(QLinearOpsRegistry)),
                augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=getattr(CalibrationMethod, CALIBRATION[self.cfg.calibration]),
                extra_options=CALIBRATOR_OPTIONS[self.cfg.calibration],
            )
            calibrator.collect_data(reader)
            ranges = calibrator.compute_data()
        save_tensors_data(ranges, self._calib_cache)
        self.calibration_examples = reader.count

    def _static(self, dst: Path, exclude: list[str]) -> None:
        import inspect

        from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
        from onnxruntime.quantization.calibrate import load_tensors_data

        if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
            raise RecipeError(
                f"this onnxruntime ({_ort_version()}) cannot quantize from precomputed ranges, "
                "so calibration entropy/percentile would silently be minmax: upgrade "
                "onnxruntime (pip install -U onnxruntime)"
            )
        if not self._calib_cache.exists():
            # Its histogram calibrators print their settings; the CLI's stdout stays ours.
            with contextlib.redirect_stdout(io.StringIO()):
                self._calibrate()
        # What onnxruntime will use: the method recorded in the ranges it reads (it refuses a
        # cache whose method differs from calibrate_method).
        applied = load_tensors_data(self._calib_cache).calibration_method
        self.calibration_applied = {v: k for k, v in CALIBRATION.items()}[applied.name]
        src = self.graph
        if self.cfg.bias_correction and self.cfg.weight_type == "int8" and self.cfg.per_channel:
            from packager.quantize.bias import correct_graph

            src = self.workdir / "bias_corrected.onnx"
            self.bias_correction = correct_graph(
                self.model, src, lambda: (b[0] for b in self.calib.batches()), exclude=exclude,
                reduce_range=self.reduce_range, means=self._bias_means,
            )  # fmt: skip
        quantize_static(
            str(src),
            str(dst),
            None,
            quant_format=QuantFormat.QDQ if self.cfg.format == "qdq" else QuantFormat.QOperator,
            per_channel=self.cfg.per_channel,
            reduce_range=self.reduce_range,
            activation_type=_qtype(self.cfg.activation_type),
            weight_type=_qtype(self.cfg.weight_type),
            nodes_to_exclude=exclude,
            calibrate_method=getattr(CalibrationMethod, CALIBRATION[self.cfg.calibration]),
            calibration_cache_path=str(self._calib_cache),
        )

    def _fp16(self, dst: Path, exclude: list[str]) -> None:
        import onnx

        # onnxruntime's fork of onnxconverter-common's converter: the original leaves
        # Cast(to=float) nodes typed float16, which onnxruntime refuses to load.
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel

        model = convert_float_to_float16(
            onnx.load(str(self.graph)),
            keep_io_types=self.cfg.keep_io_types,
            node_block_list=exclude or None,
        )
        # The converter appends the Casts it inserts for graph inputs after their consumers:
        # onnxruntime runs that, onnx.checker (and every tool that checks) refuses it.
        sorted_model = OnnxModel(model)
        sorted_model.topological_sort()
        onnx.checker.check_model(sorted_model.model)
        onnx.save(sorted_model.model, str(dst))

    def _int4(self, dst: Path, exclude: list[str]) -> None:
        import onnx

        head = lm_head_nodes(self.model) if self.cfg.lm_head != "auto" else []
        model = nbits(
            onnx.load(str(self.graph)),
            self.cfg,
            bits=4,
            nodes_to_exclude=[*exclude, *head],
        )
        if head and self.cfg.lm_head in ("int8", "int4"):  # the head alone, at its own width
            bits = 8 if self.cfg.lm_head == "int8" else 4
            model = nbits(model, self.cfg, bits=bits, nodes_to_include=head)
        onnx.save(model, str(dst))
        ops = {n.op_type for n in onnx.load(str(dst), load_external_data=False).graph.node}
        if "MatMulNBits" not in ops and not exclude:
            raise RecipeError(
                "quantize.mode=int4 found no MatMul with constant 2-D weights to quantize "
                "(int4 is weight-only for MatMul-heavy models); use mode=dynamic or static"
            )

    def settings(self) -> dict[str, Any]:
        """What was done, for the manifest's quantization block."""
        c = self.cfg
        out: dict[str, Any] = {
            "mode": c.mode,
            "precision": PRECISION[c.mode],
            "format": format_of(c),
        }
        if c.mode in ("static", "dynamic"):
            out |= {
                "per_channel": c.per_channel,
                "reduce_range": self.reduce_range,
                "weight_bits": 7 if self.reduce_range else 8,
                "weight_bits_reason": self.reduce_range_reason,
                "weight_type": c.weight_type,
            }
        if c.mode == "static":
            out |= {
                "activation_type": c.activation_type,
                "calibration": self.calibration_applied,
                "calibration_options": CALIBRATOR_OPTIONS[c.calibration],
                "calibration_examples": self.calibration_examples,
                "bias_correction": self.bias_correction,  # convs shifted, largest shift
                "float_outputs": self.float_outputs,
            }
        if self.upgrade is not None:
            out["opset_upgrade"] = self.upgrade
        if c.mode == "int4":
            out |= {
                "block_size": c.block_size,
                "symmetric": c.int4_symmetric,
                "accuracy_level": c.int4_accuracy_level,
                "lm_head": c.lm_head,
                "gemm_rewritten": self.rewritten,
            }
        if c.mode == "fp16":
            out["keep_io_types"] = c.keep_io_types
        out["embeddings"] = self._embedding_choice()
        if out["embeddings"] == "int4":
            out |= {"embedding_block_size": c.embedding_block_size, "symmetric": c.int4_symmetric}
        out["embedding_tables"] = len(self.embedding_gathers)
        if self.tied_table:
            out["tied_table"] = "int4, read from the LM head's blocks (GatherBlockQuantized)"
        return out


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
