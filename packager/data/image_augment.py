"""Training-only augmentation of image data (distill.augment), on uint8 RGB pixels with Pillow:
torchvision's RandomResizedCrop (area and log-aspect sampled, ten tries, then a centre crop),
a horizontal flip and colour jitter (brightness, contrast, saturation, in a random order).
The result is the model's input size; the caller normalises it exactly as at inference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def crop_box(h: int, w: int, scale, ratio, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop, by torchvision's RandomResizedCrop rule."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = round(math.sqrt(target * aspect))
        ch = round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    in_ratio = w / h  # fallback: the largest centre crop within the ratio range
    if in_ratio < min(ratio):
        cw, ch = w, round(w / min(ratio))
    elif in_ratio > max(ratio):
        ch, cw = h, round(h * max(ratio))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def augmented(pixels: np.ndarray, spec: dict[str, Any], aug, rng: np.random.Generator):
    """A random crop of `pixels` resized to the model's input size, maybe flipped, jittered."""
    from PIL import Image, ImageEnhance

    size = spec.get("crop") or spec["resize"]
    out_h, out_w = int(size["height"]), int(size["width"])
    filt = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[spec["resize"]["interpolation"]]
    top, left, ch, cw = crop_box(
        pixels.shape[0], pixels.shape[1], aug.crop_scale, aug.crop_ratio, rng
    )
    im = Image.fromarray(pixels).resize((out_w, out_h), filt, box=(left, top, left + cw, top + ch))
    if rng.random() < aug.hflip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    jitters = [
        (ImageEnhance.Brightness, aug.brightness),
        (ImageEnhance.Contrast, aug.contrast),
        (ImageEnhance.Color, aug.saturation),
    ]
    for i in rng.permutation(len(jitters)):
        enhance, amount = jitters[i]
        if amount > 0:
            im = enhance(im).enhance(rng.uniform(1 - amount, 1 + amount))
    return np.asarray(im, dtype=np.uint8)
