"""Old opsets: bring a model up to the opset its quantization scheme needs, with onnx's own
version converter, and check the upgraded graph against the original.

Per-channel int8 writes DequantizeLinear with an `axis` attribute, which exists from opset 13;
onnxruntime's quantizer (1.32) only bumps the opset number of a model below that, so an opset-11
model (every PaddleOCR/RapidOCR export) comes out as a file onnxruntime cannot load. Converting
first (onnx.version_converter: an adapter per op and opset) gives a graph whose ops mean the
same at the new opset; running both on the same inputs proves it did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Each scheme declares the opset it writes (packager.quantize.schemes); int4 embedding tables,
# a pass any scheme may add, need:
INT4_OPSET = 21  # the int4 tensor type GatherBlockQuantized's table is stored in
_TOLERANCE = 1e-5  # relative to the largest output value: the converter must not change numbers


def opset_of(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _first_line(err: BaseException) -> str:
    from packager.onnx_utils import ort_message

    return ort_message(err)


class UpgradeFailed(Exception):
    """The converter failed, or the upgraded graph computes something else; one line."""


def _outputs(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # a failure is reported as one line by the caller
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [np.asarray(v, dtype=np.float64) for v in sess.run(None, feeds)]


def upgrade(model, target: int, feeds: dict[str, np.ndarray] | None, why: str | None = None):
    """(the model converted to `target`, a record of what was done). With `feeds`, both graphs
    run on them and any difference beyond float noise raises UpgradeFailed; without, the
    record says the upgrade was not checked and `why`."""
    import onnx
    from onnx import version_converter

    before = opset_of(model)
    try:
        converted = version_converter.convert_version(model, target)
        onnx.checker.check_model(converted)
    except Exception as err:
        raise UpgradeFailed(
            f"onnx's version converter could not upgrade opset {before} to {target} "
            f"({_first_line(err)})"
        ) from None
    record: dict[str, Any] = {"from": before, "to": target, "tool": "onnx.version_converter"}
    if feeds is None:
        return converted, {**record, "checked": False, "max_abs_diff": None, "why": why}
    try:
        ref = _outputs(model, feeds)
    except Exception as err:  # e.g. generated inputs at guessed dims the model cannot take
        why = f"the original model does not run on the check inputs ({_first_line(err)})"
        return converted, {**record, "checked": False, "max_abs_diff": None, "why": why}
    got = _outputs(converted, feeds)
    diff = max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(ref, got, strict=True))
    scale = max(1.0, *(float(np.max(np.abs(a), initial=0.0)) for a in ref))
    if not diff <= _TOLERANCE * scale:
        raise UpgradeFailed(
            f"the model upgraded from opset {before} to {target} by onnx's version converter "
            f"differs from the original by {diff:.3g} (max |output| {scale:.3g}); export the "
            f"model at opset >= {target} instead"
        )
    n = len(next(iter(feeds.values())))
    return converted, {**record, "checked": True, "max_abs_diff": diff, "examples": n}
