"""Quantization schemes, declared once.

Each scheme is one file under packager/quantize/schemes/: its config class (a member of the
recipe's `quantize:` union, tagged by `mode`, so the YAML stays flat and a field the scheme does
not take is an error when the recipe loads) and a `Scheme` record of what is true of it: its
precision, graph format, the op types it changes, the opset it needs, the modalities it serves,
why it may be slow, the latency model's class of the ops it writes, and the call into
onnxruntime that does it. The recipe schema, the quantize command's choices and options,
`edgepack auto`'s space, the opset and speed checks and the docs read this registry; nothing
else lists the modes (torchao's config-to-handler registry; llama.cpp's one table of types).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import core_schema

from packager.config import QuantizeConfig
from packager.config.modalities import MODALITIES

# (the Quantizer: packager.quantize.quantizer, which imports this module; its prepared graph,
# calibration and settings), the output path, the nodes kept in float.
QuantizeFn = Callable[[Any, Path, list[str]], None]
OpClass = str | Callable[[Any], str]


def _none(*_args: Any) -> None:
    return None


def _no_causes(*_args: Any) -> list[str]:
    return []


def _no_settings(*_args: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Scheme:
    """What is true of one quantization scheme; `config` is its recipe section's class."""

    config: type[QuantizeConfig]
    precision: str  # of the weights it writes: int8, fp16, int4, fp32
    summary: str  # one line: the CLI's --mode help, the docs
    quantize: QuantizeFn  # the call into onnxruntime's tools: (quantizer, dst, nodes kept float)
    modalities: tuple[str, ...] = tuple(MODALITIES)  # the data it serves
    format: Callable[[Any], str] | str = "fp32"  # the graph format it writes (cfg -> name)
    ops: Callable[[Any], set[str] | None] = _none  # op types it changes (None: every op)
    opset: Callable[[Any], int | None] = _none  # the lowest opset it can be written at
    # Why a model it wrote may be no faster than fp32: (cfg, op counts onnxruntime ran, cpu).
    causes: Callable[[Any, Counter, dict[str, Any]], list[str]] = _no_causes
    # A scheme known to run the model faster, from the ops onnxruntime ran (cfg, op counts).
    instead: Callable[[Any, Counter], str | None] = _none
    # The op types it writes -> the latency model's op class (packager.bench.latency).
    op_classes: Mapping[str, OpClass] = field(default_factory=dict)
    settings: Callable[[Any, Any], dict[str, Any]] = _no_settings  # (cfg, quantizer): manifest
    finish: Callable[[Any, Any, Path], None] | None = None  # (cfg, quantizer, dst): a pass after
    preprocess: bool = False  # onnxruntime's quant_pre_process before quantizing
    gemm_to_matmul: bool = False  # Gemm rewritten to MatMul first (MatMulNBits covers MatMul)
    int8_weights: bool = False  # writes int8 weights (reduce_range applies)
    calibrates: bool = False  # needs calibration data (a build: the training split)
    searched: Mapping[str, int] = field(default_factory=dict)  # auto's default: modality -> rank

    @property
    def mode(self) -> str:
        return str(self.config.model_fields["mode"].default)

    def format_of(self, cfg: QuantizeConfig) -> str:
        return self.format(cfg) if callable(self.format) else self.format


SCHEMES: dict[str, Scheme] = {}
_DEPENDENTS: list[type[BaseModel]] = []  # models with a `quantize:` union field, rebuilt on change


def register(scheme: Scheme) -> Scheme:
    """Add `scheme` (its mode must be new) and rebuild every model that holds the union."""
    mode = scheme.mode
    if not mode or mode == "auto":
        raise ValueError(
            f"a scheme's config needs a `mode` Literal default other than auto: {mode!r}"
        )
    if mode in SCHEMES and SCHEMES[mode] is not scheme:
        raise ValueError(f"quantization scheme {mode!r} is registered already")
    bad = set(scheme.modalities) - set(MODALITIES)
    if bad:
        raise ValueError(f"scheme {mode}: unknown modalities {sorted(bad)}")
    SCHEMES[mode] = scheme
    _rebuild()
    return scheme


def unregister(mode: str) -> None:
    SCHEMES.pop(mode, None)
    _rebuild()


@contextmanager
def registered(scheme: Scheme) -> Iterator[Scheme]:
    """A scheme registered for the duration (tests)."""
    register(scheme)
    try:
        yield scheme
    finally:
        unregister(scheme.mode)


def tracks(model: type[BaseModel]) -> type[BaseModel]:
    """Mark `model` as holding a QuantizeSection field: it is rebuilt when schemes change."""
    _DEPENDENTS.append(model)
    return model


def _rebuild() -> None:
    global _ADAPTER
    _ADAPTER = None
    for model in _DEPENDENTS:
        model.model_rebuild(force=True)


def scheme_of(cfg: QuantizeConfig | str) -> Scheme:
    mode = cfg if isinstance(cfg, str) else cfg.mode
    try:
        return SCHEMES[mode]
    except KeyError:
        raise KeyError(f"no quantization scheme {mode!r} (known: {', '.join(SCHEMES)})") from None


def modes(modality: str | None = None) -> list[str]:
    """The registered modes, in registration order; with a modality, those that serve it."""
    return [m for m, s in SCHEMES.items() if modality is None or modality in s.modalities]


def op_classes() -> dict[str, OpClass]:
    """Every registered scheme's ops -> the latency model's op class (packager.bench.latency)."""
    return {op: cls for s in SCHEMES.values() for op, cls in s.op_classes.items()}


def searched_modes(modality: str) -> tuple[str, ...]:
    """`edgepack auto`'s default modes for `modality`, in each scheme's declared rank."""
    found = [(s.searched[modality], m) for m, s in SCHEMES.items() if modality in s.searched]
    return tuple(m for _, m in sorted(found))


DEFAULT_MODE = "static"


def _with_default_mode(data: Any) -> Any:
    if isinstance(data, dict) and "mode" not in data:
        return {**data, "mode": DEFAULT_MODE}
    return data


class QuantizeSection:
    """The type of a recipe's `quantize:` field: the registered schemes' configs as a union
    tagged by `mode` (a section without one is the default, static)."""

    @classmethod
    def union_members(cls) -> list[tuple[str, type[QuantizeConfig]]]:
        """(mode, config class) of every registered scheme: what the docs list under the tag."""
        return [(m, s.config) for m, s in SCHEMES.items()]

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, handler: Any) -> core_schema.CoreSchema:
        choices = {m: handler.generate_schema(s.config) for m, s in SCHEMES.items()}
        union = core_schema.tagged_union_schema(choices, discriminator="mode")
        return core_schema.no_info_before_validator_function(_with_default_mode, union)


_ADAPTER: TypeAdapter | None = None


def quantize_config(**fields: Any) -> QuantizeConfig:
    """The config of the scheme `fields["mode"]` names (default static), validated like a
    recipe's `quantize:` section (a pydantic ValidationError when it is not valid)."""
    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = TypeAdapter(QuantizeSection)
    return _ADAPTER.validate_python(fields)


def is_valid(fields: dict[str, Any]) -> bool:
    try:
        quantize_config(**fields)
    except ValidationError:
        return False
    return True


def fields_for(mode: str, section: dict[str, Any]) -> dict[str, Any]:
    """`section` (a quantize: mapping) switched to `mode`: the fields that scheme does not take,
    or takes with other values (embeddings: int4 under none), are left out (edgepack auto
    trying each mode on one recipe)."""
    names = scheme_of(mode).config.model_fields
    out = {k: v for k, v in section.items() if k in names and k != "mode"} | {"mode": mode}
    for _ in range(len(out)):
        try:
            quantize_config(**out)
        except ValidationError as err:
            first = err.errors()[0]
            field = next((p for p in first["loc"][1:] if isinstance(p, str) and p in out), None)
            named = re.match(r"(?:Value error, )?quantize\.(\w+)", first["msg"])
            field = field or (named.group(1) if named and named.group(1) in out else None)
            if field is None or field == "mode":
                return out  # not a field's value: the caller's validation says what
            out.pop(field)
        else:
            break
    return out
