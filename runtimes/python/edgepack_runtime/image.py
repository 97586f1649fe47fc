"""type "image" preprocessing: image files (or decoded uint8 pixels) -> the model's tensor.

The steps and their arithmetic are specified in docs/package-format.md ("Image packages") so that
the Python, C++ and JavaScript runtimes produce the same tensor from the same PNG:

    decode (8-bit, to RGB) -> channel order -> resize -> centre crop -> scale, mean, std -> layout

Resize is Pillow's 8-bit resampling (`Image.resize`, BILINEAR or BICUBIC): separable filters,
horizontal pass first, coefficients in 22-bit fixed point and each pass rounded to 8 bits. It is
written out here in numpy (so decoded arrays need no Pillow) and checked against Pillow itself,
bit for bit (tests/runtimes/test_image_preprocessing.py). Decoding uses Pillow (the runtime's
`image` extra): `pip install 'edgepack-runtime[image]'`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._source import read_regular
from .errors import InputError, InvalidPackageError, UnsupportedPackageError
from .limits import MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS

PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c: 8-bit pixels, 22-bit coefficients
INTERPOLATIONS = ("bilinear", "bicubic")
LAYOUTS = ("NCHW", "NHWC")


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


_FILTERS = {"bilinear": (1.0, _bilinear), "bicubic": (2.0, _bicubic)}


def coefficients(in_size: int, out_size: int, interpolation: str) -> tuple[np.ndarray, np.ndarray]:
    """(first input index per output, fixed-point weights (out, taps)): Pillow's
    precompute_coeffs + normalize_coeffs_8bpc. Taps past an output's window weigh 0."""
    support, fn = _FILTERS[interpolation]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    ksize = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    # C's (int) cast truncates toward zero; every value here is > -1, so trunc is the rule.
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    w = fn((taps[None, :] + xmin[:, None] - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where(taps[None, :] < xmax[:, None], w, 0.0)
    # One tap at a time, left to right: the sum Pillow's loop makes (numpy's sum is pairwise).
    ww = np.zeros(out_size)
    for k in range(ksize):
        ww = ww + w[:, k]
    w = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    one = float(1 << PRECISION_BITS)
    fixed = np.where(w < 0, np.trunc(-0.5 + w * one), np.trunc(0.5 + w * one))
    return xmin, fixed.astype(np.int64)


def _pass(pixels: np.ndarray, axis: int, out_size: int, interpolation: str) -> np.ndarray:
    """One 8-bit resampling pass along `axis` (0: rows, vertical; 1: columns, horizontal)."""
    xmin, k = coefficients(pixels.shape[axis], out_size, interpolation)
    src = np.moveaxis(pixels.astype(np.int64), axis, 0)
    acc = np.full((out_size, *src.shape[1:]), 1 << (PRECISION_BITS - 1), dtype=np.int64)
    last = src.shape[0] - 1
    extra = (slice(None),) + (None,) * (src.ndim - 1)
    for t in range(k.shape[1]):
        # Taps past the window have weight 0; their index is clamped only to stay in bounds.
        acc += src[np.minimum(xmin + t, last)] * k[:, t][extra]
    out = np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def resize(pixels: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """uint8 (H, W, C) -> (height, width, C), as Pillow's Image.resize does (horizontal first;
    a pass whose size does not change is skipped)."""
    out = pixels
    if width != out.shape[1]:
        out = _pass(out, 1, width, interpolation)
    if height != out.shape[0]:
        out = _pass(out, 0, height, interpolation)
    return out


MAX_RESIZED_PIXELS = 1 << 24  # a resize never makes more (a 1x20000 strip would: 5 G pixels)


def resized_size(height: int, width: int, spec: Mapping[str, Any]) -> tuple[int, int]:
    """The (height, width) a resize block gives: "shorter" matches the shorter side to it and
    scales the longer by floor(shorter * long / short) (torchvision's Resize(int)); else
    "height" and "width" exactly. InputError over MAX_RESIZED_PIXELS."""
    if "shorter" in spec:
        size = int(spec["shorter"])
        h, w = (
            (size, (size * width) // height)
            if height <= width
            else ((size * height) // width, size)
        )
    else:
        h, w = int(spec["height"]), int(spec["width"])
    if h * w > MAX_RESIZED_PIXELS:
        raise InputError(
            f"a {width}x{height} image resizes to {w}x{h}, over the {MAX_RESIZED_PIXELS:,}-pixel "
            "cap (an extreme aspect ratio): crop it first"
        )
    return h, w


def crop_offset(size: int, crop: int) -> int:
    """torchvision's CenterCrop offset: round((size - crop) / 2), halves to even."""
    d = size - crop
    half = d // 2
    return half + (1 if d % 2 and half % 2 else 0)


def centre_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    if height > h or width > w:
        raise InputError(
            f"image of {w}x{h} after resize is smaller than the {width}x{height} centre crop"
        )
    top, left = crop_offset(h, height), crop_offset(w, width)
    return pixels[top : top + height, left : left + width]


def decode(data: bytes, where: str = "image", max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 (H, W, 3) RGB: 8-bit, gray repeated, alpha dropped, no EXIF
    rotation, no colour management (what stb_image and the JS decoders do). The size in the
    image's header is checked against `max_pixels` (a user's image: MAX_IMAGE_PIXELS; a
    package's sample: MAX_SAMPLE_IMAGE_PIXELS) before anything is decoded."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise UnsupportedPackageError(
            "decoding images needs Pillow: pip install 'edgepack-runtime[image]' (or pass "
            "decoded uint8 (H, W, 3) pixels)"
        ) from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ("PNG", "JPEG"):
                raise InputError(f"{where}: {im.format} images are not supported (PNG or JPEG)")
            width, height = im.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise InputError(
                    f"{where}: {width}x{height} pixels is over the {max_pixels}-pixel limit "
                    "(a decompression bomb?)"
                )
            # Byte 24 is a PNG's IHDR bit depth: Pillow opens 16-bit RGB as "RGB", saying nothing.
            if im.mode in ("I;16", "I;16B", "I", "F") or (
                im.format == "PNG" and data[24:25] == b"\x10"
            ):
                raise InputError(f"{where}: 16-bit images are not supported (8-bit PNG or JPEG)")
            rgb = im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8).copy()
    except InputError:
        raise
    except Exception as exc:  # PIL raises many kinds on a broken file
        raise InputError(f"{where}: cannot decode the image ({exc})") from exc


class ImagePreprocessor:
    """type "image": image files, bytes or uint8 (H, W, 3) pixels -> the model's tensor."""

    def __init__(self, spec: Mapping[str, Any], inputs: list[dict[str, Any]]) -> None:
        from .preprocessing import _target_input

        target = _target_input(spec, inputs)
        self.input: str = target["name"]
        self.spec = check_spec(spec)
        self.dtype = np.dtype(self.spec["dtype"])

    def __call__(self, raw: Any) -> dict[str, np.ndarray]:
        images = _as_images(raw)
        return {self.input: np.stack([self.one(im, where) for im, where in images])}

    def one(self, image: Any, where: str = "image", max_pixels: int = MAX_IMAGE_PIXELS):
        """One image (path, bytes or pixels) -> its (C, H, W) or (H, W, C) tensor."""
        return apply(pixels_of(image, where, max_pixels), self.spec)


def pixels_of(image: Any, where: str = "image", max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        try:
            # a FIFO or device: refused, not waited on; a file over the cap: refused unread
            data = read_regular(image, MAX_IMAGE_FILE_BYTES)
        except OSError as exc:
            raise InputError(f"{image}: cannot read the image ({exc.strerror})") from exc
        return decode(data, str(image), max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode(bytes(image), where, max_pixels)
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError(
            f"{where}: expected an image file, its bytes or uint8 pixels shaped (H, W, 3), got "
            f"{pixels.dtype} {pixels.shape}"
        )
    return pixels


def _as_images(raw: Any) -> list[tuple[Any, str]]:
    if isinstance(raw, (str, os.PathLike, bytes, bytearray, memoryview)):
        return [(raw, "image")]
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 4:
        return [(im, f"image {i}") for i, im in enumerate(raw)]
    if isinstance(raw, np.ndarray) and raw.ndim == 3:
        return [(raw, "image")]
    if isinstance(raw, Sequence) and not isinstance(raw, np.ndarray) and raw:
        return [(im, f"image {i}") for i, im in enumerate(raw)]
    raise InputError(
        "input must be an image file path, its bytes, uint8 pixels (H, W, 3) or a list of them"
    )


def apply(pixels: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Decoded uint8 (H, W, 3) RGB pixels -> the tensor of one image, per a checked spec."""
    if spec["channel_order"] == "BGR":
        pixels = pixels[:, :, ::-1]
    resize_spec = spec.get("resize")
    if resize_spec:
        h, w = resized_size(pixels.shape[0], pixels.shape[1], resize_spec)
        pixels = resize(pixels, h, w, resize_spec["interpolation"])
    crop = spec.get("crop")
    if crop:
        pixels = centre_crop(pixels, int(crop["height"]), int(crop["width"]))
    if spec["dtype"] == "uint8":
        x = np.ascontiguousarray(pixels)
    else:
        mean = np.asarray(spec["mean"], dtype=np.float64)
        std = np.asarray(spec["std"], dtype=np.float64)
        # float64, one cast at the end: the same numbers in every runtime.
        x = ((pixels.astype(np.float64) * spec["scale"] - mean) / std).astype(spec["dtype"])
    return np.ascontiguousarray(x.transpose(2, 0, 1) if spec["layout"] == "NCHW" else x)


def _bad(what: str) -> InvalidPackageError:
    return InvalidPackageError(f"manifest.json: preprocessing.{what}")


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(f"{what} must be a positive integer")
    return value


def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The image block with its defaults, or InvalidPackageError naming the bad field."""
    out = {
        "channel_order": spec.get("channel_order", "RGB"),
        "resize": spec.get("resize"),
        "crop": spec.get("crop"),
        "dtype": spec.get("dtype", "float32"),
        "layout": spec.get("layout", "NCHW"),
    }
    if out["channel_order"] not in ("RGB", "BGR"):
        raise _bad("channel_order must be RGB or BGR")
    if out["layout"] not in LAYOUTS:
        raise _bad("layout must be NCHW or NHWC")
    if out["dtype"] not in ("float32", "uint8"):
        raise _bad("dtype must be float32 or uint8")
    r = out["resize"]
    if r is not None:
        if not isinstance(r, Mapping) or r.get("interpolation") not in INTERPOLATIONS:
            raise _bad("resize.interpolation must be bilinear or bicubic")
        if "shorter" in r:
            _positive(r["shorter"], "resize.shorter")
        else:
            _positive(r.get("height"), "resize.height")
            _positive(r.get("width"), "resize.width")
    c = out["crop"]
    if c is not None:
        if not isinstance(c, Mapping):
            raise _bad("crop must be {height, width}")
        _positive(c.get("height"), "crop.height")
        _positive(c.get("width"), "crop.width")
    if out["dtype"] == "float32":
        scale = spec.get("scale", 1.0)
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not math.isfinite(scale)
        ):
            raise _bad("scale must be a finite number")
        out["scale"] = float(scale)
        for key, default in (("mean", 0.0), ("std", 1.0)):
            value = spec.get(key, [default] * 3)
            if not (
                isinstance(value, list)
                and len(value) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                and all(math.isfinite(v) for v in value)
            ):
                raise _bad(f"{key} must be a list of 3 finite numbers (one per channel)")
            out[key] = [float(v) for v in value]
        if any(s == 0 for s in out["std"]):
            raise _bad("std must not be 0")
    return out
