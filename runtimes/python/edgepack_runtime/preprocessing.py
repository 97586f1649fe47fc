"""Raw app input -> model feeds, as the manifest's "preprocessing" block describes.

Each preprocessor checks its block when the package loads, so a bad block fails at load time
with a message naming the field, not at the first predict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .errors import InputError, InvalidPackageError, UnsupportedPackageError

Feeds = dict[str, np.ndarray]


def parse_dtype(value: object, where: str) -> np.dtype:
    try:
        return np.dtype(str(value))
    except TypeError as exc:
        raise InvalidPackageError(f"manifest.json: {where} has unknown dtype {value!r}") from exc


def check_finite(name: str, array: np.ndarray) -> np.ndarray:
    """Refuse NaN and infinity in a float input (InputError naming it): a model answers them
    with a label that means nothing, and the app should hear that its input is broken."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        flat = array.ravel()
        first = int(np.flatnonzero(~np.isfinite(flat))[0])
        raise InputError(
            f"input {name!r}: contains NaN or infinity ({flat[first]} at flat index {first}): "
            "pass finite numbers"
        )
    return array


def check_real(name: str, value: Any) -> None:
    """Refuse complex numbers (InputError naming the input): a cast to the model's dtype would
    drop the imaginary part without a word. Raises ValueError for a ragged list, as a cast would."""
    if np.iscomplexobj(value):
        raise InputError(
            f"input {name!r}: complex numbers ({np.asarray(value).dtype}) would lose their "
            "imaginary part: pass real numbers"
        )


def finite_number(block: Mapping[str, Any], key: str, default: float, where: str) -> float:
    """block[key] (or default) as a float; InvalidPackageError unless it is a finite number."""
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidPackageError(f"manifest.json: {where}.{key} must be a finite number")
    return float(value)


def _target_input(spec: Mapping[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The model input this preprocessing feeds: named by "input", or the only one."""
    by_name = {i["name"]: i for i in inputs}
    name = spec.get("input")
    if name is None:
        if len(inputs) != 1:
            raise InvalidPackageError(
                f"manifest.json: preprocessing.input is required for a model with inputs "
                f"{sorted(by_name)}"
            )
        return inputs[0]
    if name not in by_name:
        raise InvalidPackageError(
            f"manifest.json: preprocessing.input {name!r} is not a model input {sorted(by_name)}"
        )
    return by_name[name]


class TensorPreprocessor:
    """type "tensor": x = (raw * scale + offset - mean) / std, cast, reshaped to (-1, *sample)."""

    def __init__(self, spec: Mapping[str, Any], inputs: list[dict[str, Any]]) -> None:
        target = _target_input(spec, inputs)
        self.input: str = target["name"]
        self.dtype = parse_dtype(spec.get("dtype", target["dtype"]), "preprocessing.dtype")
        shape = spec.get("sample_shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise InvalidPackageError(
                "manifest.json: preprocessing.sample_shape must be a list of positive integers"
            )
        self.sample_shape = tuple(shape)
        self.scale = finite_number(spec, "scale", 1.0, "preprocessing")
        self.offset = finite_number(spec, "offset", 0.0, "preprocessing")
        self.mean = finite_number(spec, "mean", 0.0, "preprocessing")
        self.std = finite_number(spec, "std", 1.0, "preprocessing")
        if self.std == 0:
            raise InvalidPackageError("manifest.json: preprocessing.std must not be 0")

    def __call__(self, raw: Any) -> Feeds:
        try:
            check_real(self.input, raw)
            x = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"input must be numeric, shaped {self._expected()}: {exc}") from exc
        check_finite(self.input, x)
        per_sample = math.prod(self.sample_shape)
        if x.size == 0 or x.size % per_sample:
            raise InputError(
                f"input has {x.size} values, not a whole number of samples: expected "
                f"{self._expected()} ({per_sample} values per sample), got shape {x.shape}"
            )
        # float64 arithmetic, one cast at the end: the same numbers whatever dtype raw had.
        x = (x * self.scale + self.offset - self.mean) / self.std
        return {self.input: x.astype(self.dtype).reshape(-1, *self.sample_shape)}

    def _expected(self) -> str:
        dims = ", ".join(map(str, self.sample_shape))
        return f"({dims}) or (N, {dims})"


class NonePreprocessor:
    """type "none": raw is already the model feed (a dict of feeds for a multi-input model)."""

    def __init__(self, spec: Mapping[str, Any], inputs: list[dict[str, Any]]) -> None:
        self.dtypes = {i["name"]: parse_dtype(i["dtype"], f"input {i['name']!r}") for i in inputs}
        self.input: str | None = _target_input(spec, inputs)["name"] if len(inputs) == 1 else None

    def __call__(self, raw: Any) -> Feeds:
        if not isinstance(raw, Mapping):
            if self.input is None:
                raise InputError(
                    f"this model has inputs {sorted(self.dtypes)}: pass a dict of arrays by name"
                )
            raw = {self.input: raw}
        feeds: Feeds = {}
        for name, value in raw.items():
            # Cast to the declared dtype: a float64 array for a float32 model is a common slip.
            dtype = self.dtypes.get(name)
            try:
                if dtype is None or dtype.kind != "c":  # a complex64 model input takes them
                    check_real(name, value)
                feeds[name] = check_finite(name, np.asarray(value, dtype=dtype))
            except (TypeError, ValueError) as exc:
                raise InputError(f"input {name!r}: cannot convert to {dtype}: {exc}") from exc
        return feeds


class TextPreprocessor:
    """type "text": strings -> token ids with the package's tokenizer.json (needs `tokenizers`).

    Fields: "tokenizer" (file in the package, default "tokenizer.json"), "max_length" (default
    128; a fixed sequence dim in the model's input shape wins), "truncation" (default true),
    "pad_id" (else tokenizer.json's padding pad_id, else 0) and "pad_token". The manifest's
    settings replace whatever tokenizer.json has baked in: the C++ and Node runtimes apply the
    same rule (text.py). Feeds the model inputs named input_ids, attention_mask and
    token_type_ids.
    """

    _FIELDS: ClassVar[dict[str, str]] = {
        "input_ids": "ids",
        "attention_mask": "attention_mask",
        "token_type_ids": "type_ids",
    }

    def __init__(
        self, spec: Mapping[str, Any], inputs: list[dict[str, Any]], files: Mapping[str, bytes]
    ) -> None:
        from .text import load_tokenizer

        unknown = sorted(i["name"] for i in inputs if i["name"] not in self._FIELDS)
        if unknown:
            raise UnsupportedPackageError(
                f"text preprocessing can feed {sorted(self._FIELDS)}, not model inputs {unknown}"
            )
        self.dtypes = {i["name"]: parse_dtype(i["dtype"], f"input {i['name']!r}") for i in inputs}
        path = spec.get("tokenizer", "tokenizer.json")
        baked = _baked_padding(files.get(path))
        self.tokenizer = load_tokenizer(files, path, "preprocessing.tokenizer")
        fixed = {d for i in inputs for d in i["shape"][1:2] if isinstance(d, int)}
        length = fixed.pop() if len(fixed) == 1 else int(spec.get("max_length", 128))
        if spec.get("truncation", True):
            self.tokenizer.enable_truncation(max_length=length)
        self.tokenizer.enable_padding(
            pad_id=int(spec.get("pad_id", baked.get("pad_id", 0))),
            pad_token=str(spec.get("pad_token", baked.get("pad_token", "[PAD]"))),
            length=length if fixed else None,
        )

    def __call__(self, raw: Any) -> Feeds:
        from .text import check_text

        texts = [raw] if isinstance(raw, str) else list(np.asarray(raw, dtype=object).ravel())
        if not texts:
            raise InputError("input must be a string or a non-empty list of strings")
        where = "text" if isinstance(raw, str) else "text {}"
        texts = [check_text(t, where.format(i)) for i, t in enumerate(texts)]
        encodings = self.tokenizer.encode_batch(texts)
        return {
            name: np.array([getattr(e, self._FIELDS[name]) for e in encodings], dtype=dtype)
            for name, dtype in self.dtypes.items()
        }


def _baked_padding(data: bytes | None) -> dict[str, Any]:
    """tokenizer.json's own padding block (pad_id, pad_token), the fallback of the manifest's."""
    import json

    try:
        padding = json.loads(data or b"{}").get("padding")
    except (ValueError, AttributeError):
        return {}  # load_tokenizer reports a broken file
    return padding if isinstance(padding, dict) else {}


Preprocessor = Any  # TensorPreprocessor | NonePreprocessor | TextPreprocessor | ImagePreprocessor


def make_preprocessor(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> Preprocessor:
    """Build the preprocessor for a validated manifest; a package without the block is "none"."""
    spec = manifest.get("preprocessing") or {"type": "none"}
    kind = spec.get("type")
    if kind == "tensor":
        return TensorPreprocessor(spec, manifest["inputs"])
    if kind == "none":
        return NonePreprocessor(spec, manifest["inputs"])
    if kind == "text":
        return TextPreprocessor(spec, manifest["inputs"], files)
    if kind == "image":
        from .image import ImagePreprocessor

        return ImagePreprocessor(spec, manifest["inputs"])
    raise UnsupportedPackageError(
        f"preprocessing type {kind!r} is not supported (supported: tensor, none, text, image)"
    )
