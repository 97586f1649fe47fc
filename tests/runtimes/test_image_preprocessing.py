"""Each step of type "image" preprocessing (edgepack_runtime.image) against torchvision's
documented semantics on the same array, written with Pillow (tests/tiny_images.py says why
torchvision itself is not installed here), and the spec's checks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from edgepack_runtime.errors import InputError, InvalidPackageError
from edgepack_runtime.image import (
    ImagePreprocessor,
    apply,
    check_spec,
    crop_offset,
    decode,
    resize,
    resized_size,
)
from PIL import Image
from tiny_images import PIL_FILTERS, reference_pixels, reference_tensor, sample_images

INPUTS = [{"name": "x", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_resize_is_pillows_filter_bit_for_bit_one_axis_at_a_time(interpolation):
    rng = np.random.default_rng(0)
    f = PIL_FILTERS[interpolation]
    for _ in range(60):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 70, 4))
        x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = Image.fromarray(x).resize((ow, h), f).resize((ow, oh), f)
        assert np.array_equal(resize(x, oh, ow, interpolation), np.asarray(ref)), (h, w, oh, ow)


def test_resize_of_a_photo_sized_image_matches_pillows_one_call():
    # Shorter side 256 of a 4:3 image: Pillow runs horizontal then vertical in one call too.
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:480, 0:640]
    x = np.stack([xx % 256, yy % 256, (xx * yy) % 256], -1).astype(np.uint8)
    x = np.clip(x + rng.integers(-8, 8, x.shape), 0, 255).astype(np.uint8)
    ref = np.asarray(Image.fromarray(x).resize((341, 256), Image.BILINEAR))
    assert np.array_equal(resize(x, 256, 341, "bilinear"), ref)


def test_resize_shorter_follows_torchvisions_int_rule():
    for h, w in [(480, 640), (640, 480), (333, 500), (1600, 2560), (10, 10), (7, 1000)]:
        short, long = min(h, w), max(h, w)
        new_long = int(256 * long / short)
        want = (256, new_long) if h <= w else (new_long, 256)
        assert resized_size(h, w, {"shorter": 256}) == want
    assert resized_size(480, 640, {"height": 224, "width": 300}) == (224, 300)


def test_centre_crop_offsets_round_half_to_even_like_torchvision():
    for size in range(224, 300):
        assert crop_offset(size, 224) == int(round((size - 224) / 2.0))  # noqa: RUF046 (verbatim)
    assert [crop_offset(s, 1) for s in (2, 4, 6)] == [0, 2, 2]  # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2


def test_normalization_matches_totensor_then_normalize(tmp_path):
    spec = check_spec(
        {"resize": None, "crop": None, "scale": 1 / 255, "mean": [0.485, 0.456, 0.406],
         "std": [0.229, 0.224, 0.225]}
    )  # fmt: skip
    x = np.random.default_rng(2).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    ref = (x.astype(np.float32) / np.float32(255) - np.float32(spec["mean"])) / np.float32(
        spec["std"]
    )
    got = apply(x, spec)
    assert got.dtype == np.float32 and got.shape == (3, 9, 11)
    np.testing.assert_allclose(got, ref.transpose(2, 0, 1), atol=1e-6, rtol=0)


def test_the_whole_chain_matches_the_reference_on_every_png_kind(tmp_path):
    spec = {"resize": {"shorter": 20, "interpolation": "bilinear"}, "crop": {"height": 16,
            "width": 16}, "scale": 1 / 255, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}  # fmt: skip
    pre = ImagePreprocessor({"type": "image", **spec}, INPUTS)
    for path in sample_images(tmp_path):
        if path.suffix == ".png":
            np.testing.assert_allclose(pre.one(path), reference_tensor(path, spec), atol=1e-6)


@pytest.mark.parametrize(
    "extra", [{"channel_order": "BGR"}, {"layout": "NHWC"}, {"dtype": "uint8", "layout": "NHWC"}]
)
def test_channel_order_layout_and_uint8_input(tmp_path, extra):
    spec = {"resize": {"height": 12, "width": 18, "interpolation": "bicubic"},
            "crop": {"height": 10, "width": 16}, "scale": 1 / 255, **extra}  # fmt: skip
    path = sample_images(tmp_path)[0]
    got = ImagePreprocessor({"type": "image", **spec}, INPUTS).one(path)
    pixels = reference_pixels(path, spec)
    if extra.get("dtype") == "uint8":
        assert got.dtype == np.uint8 and np.array_equal(got, pixels)
        return
    want = pixels.astype(np.float64) / 255
    want = want.transpose(2, 0, 1) if extra.get("layout", "NCHW") == "NCHW" else want
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_decoding_gives_pillows_rgb_for_gray_alpha_and_palette(tmp_path):
    for path in sample_images(tmp_path):
        want = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(decode(path.read_bytes()), want)


def test_sixteen_bit_and_other_formats_are_refused_by_name():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(buf, format="PNG")
    with pytest.raises(InputError, match="16-bit"):
        decode(buf.getvalue(), "deep.png")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="BMP")
    with pytest.raises(InputError, match="BMP images are not supported"):
        decode(buf.getvalue(), "x.bmp")
    with pytest.raises(InputError, match="cannot decode"):
        decode(b"not an image", "junk.png")


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"layout": "CHWN"}, "layout"),
        ({"channel_order": "RGBA"}, "channel_order"),
        ({"resize": {"shorter": 256, "interpolation": "lanczos"}}, "resize.interpolation"),
        ({"resize": {"shorter": 0, "interpolation": "bilinear"}}, "resize.shorter"),
        ({"crop": {"height": 224}}, "crop.width"),
        ({"mean": [0.5, 0.5]}, "mean"),
        ({"std": [1, 0, 1]}, "std"),
    ],
)
def test_a_bad_image_block_is_refused_naming_the_field(bad, field):
    with pytest.raises(InvalidPackageError, match=f"preprocessing.{field}"):
        check_spec(bad)


def test_an_image_smaller_than_the_crop_is_an_input_error():
    spec = check_spec({"crop": {"height": 32, "width": 32}})
    with pytest.raises(InputError, match="smaller than the 32x32 centre crop"):
        apply(np.zeros((16, 40, 3), np.uint8), spec)
