"""A tiny image package built by hand (no packager), its sample images, and the reference
preprocessing written from torchvision's documented semantics on PIL images.

torchvision itself cannot be installed beside the pinned torch 2.13.0 (PyPI's torchvision
needs another torch), so the reference is the composition torchvision documents for a PIL
image: Resize(int) matches the shorter side and truncates the longer
(int(size * long / short)), resizing with Pillow's filter; CenterCrop offsets by
int(round((size - crop) / 2)); ToTensor divides by 255 in float32; Normalize subtracts the
mean and divides by the std in float32. Pillow's resize is applied one axis at a time,
horizontal first: the order the format specifies (Pillow up to 12 does exactly this in one
call; Pillow 13 sometimes runs the vertical pass first, which moves a pixel by 1 level).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
SPEC = {
    "type": "image",
    "input": "pixel_values",
    "channel_order": "RGB",
    "resize": {"shorter": 20, "interpolation": "bicubic"},
    "crop": {"height": 16, "width": 16},
    "dtype": "float32",
    "scale": 1 / 255,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "layout": "NCHW",
}


def sample_images(folder: Path, seed: int = 0) -> list[Path]:
    """PNGs of every 8-bit kind (RGB, RGBA, gray, palette; portrait, landscape, odd sizes) and
    two JPEGs, made of smooth gradients plus noise so resize has something to do."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def picture(h: int, w: int) -> np.ndarray:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
        return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)

    out = []
    for name, (h, w), mode in (
        ("rgb.png", (37, 53), "RGB"),
        ("rgba.png", (61, 29), "RGBA"),
        ("gray.png", (24, 24), "L"),
        ("palette.png", (33, 47), "P"),
        ("photo.jpg", (45, 66), "RGB"),
        ("tall.jpg", (80, 31), "RGB"),
    ):
        im = Image.fromarray(picture(h, w))
        if mode == "RGBA":
            im.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
        elif mode != "RGB":
            im = im.convert(mode)
        path = folder / name
        im.save(path, quality=90) if name.endswith(".jpg") else im.save(path)
        out.append(path)
    return out


def reference_pixels(path: Path | Image.Image, spec: dict) -> np.ndarray:
    """uint8 (H, W, 3) after decode, resize and centre crop, per torchvision's semantics."""
    im = path if isinstance(path, Image.Image) else Image.open(path)
    im = im.convert("RGB")
    if spec.get("channel_order") == "BGR":
        im = Image.fromarray(np.asarray(im)[:, :, ::-1])
    r = spec.get("resize")
    if r:
        w, h = im.size
        if "shorter" in r:
            s = r["shorter"]
            ow, oh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
        else:
            ow, oh = r["width"], r["height"]
        f = PIL_FILTERS[r["interpolation"]]
        if ow != w:
            im = im.resize((ow, h), f)
        if oh != h:
            im = im.resize((ow, oh), f)
    c = spec.get("crop")
    if c:
        w, h = im.size
        # torchvision's F.center_crop, verbatim: int(round(...)), Python's round (halves to even)
        top = int(round((h - c["height"]) / 2.0))  # noqa: RUF046
        left = int(round((w - c["width"]) / 2.0))  # noqa: RUF046
        im = im.crop((left, top, left + c["width"], top + c["height"]))
    return np.asarray(im, dtype=np.uint8)


def reference_tensor(path: Path, spec: dict) -> np.ndarray:
    """ToTensor + Normalize (float32) on the reference pixels; (C, H, W) or (H, W, C)."""
    x = reference_pixels(path, spec)
    if spec.get("dtype") != "uint8":
        assert spec["scale"] == 1 / 255, "ToTensor divides by 255"
        x = x.astype(np.float32) / np.float32(255)
        mean = np.asarray(spec["mean"], np.float32)
        std = np.asarray(spec["std"], np.float32)
        x = (x - mean) / std
    return x.transpose(2, 0, 1) if spec.get("layout", "NCHW") == "NCHW" else x


def _model(spec: dict) -> bytes:
    """pixel_values (batch, 3, 16, 16) -> mean over H, W -> Gemm -> 4 logits."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["pixel_values"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["pooled", "W"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def build_image_package(folder: Path, images: list[Path], jpeg_atol: float = 0.5) -> Path:
    """A package folder whose samples are `images`, their tensors by the Python runtime's
    preprocessing and the outputs onnxruntime gives on them."""
    import onnxruntime as ort
    from edgepack_runtime.image import ImagePreprocessor

    folder.mkdir(parents=True, exist_ok=True)
    inputs = [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]
    pre = ImagePreprocessor(SPEC, inputs)
    files: dict[str, bytes] = {"model.onnx": _model(SPEC)}
    names = []
    for i, path in enumerate(images):
        name = f"samples/images/{i}{path.suffix}"
        files[name] = path.read_bytes()
        names.append(name)
    x = np.stack([pre.one(p) for p in images])
    (logits,) = ort.InferenceSession(files["model.onnx"]).run(None, {"pixel_values": x})
    for name, array in (("samples/input.npy", x), ("samples/logits.npy", logits)):
        buf = io.BytesIO()
        np.save(buf, array)
        files[name] = buf.getvalue()
    manifest = {
        "schema_version": "1.3",
        "name": "tiny-image",
        "version": "0.1.0",
        "task": "image-classification",
        "model": "model.onnx",
        "inputs": inputs,
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 4]}],
        "preprocessing": SPEC,
        "postprocessing": {
            "type": "classification",
            "output": "logits",
            "activation": "softmax",
            "labels": ["cat", "dog", "car", "tree"],
        },
        "samples": {
            "count": len(images),
            "images": names,
            "inputs": {"pixel_values": "samples/input.npy"},
            "outputs": {"logits": "samples/logits.npy"},
            "atol": 1e-5,
            "rtol": 1e-4,
            "jpeg_atol": jpeg_atol,
        },
        "files": {
            n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in files.items()
        },
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def synthetic_pixels(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random-coloured picture with noise: colour and layout differ image to image."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    c0, c1, c2 = (rng.uniform(0, 255, 3) for _ in range(3))
    base = c0 + np.multiply.outer(xx, c1 - c0) + np.multiply.outer(yy, c2 - c0) * 0.5
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def write_image_folder(root: Path, n: int, classes: int | None = None, seed: int = 0) -> Path:
    """`n` synthetic PNGs in `root` (flat: unlabeled), or in `classes` sub-folders c0, c1, ..."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root if classes is None else root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = (int(v) for v in rng.integers(36, 64, 2))
        Image.fromarray(synthetic_pixels(rng, h, w)).save(folder / f"{i:03d}.png")
    return root


def image_recipe_dict(data: str, **sections) -> dict:
    """A tiny image recipe over `data` (a folder or array file of synthetic images), built in
    seconds: 32x32 inputs, the colour teacher of tests/tiny_models.py, a tiny cnn student."""
    from pathlib import Path as _P

    base = {
        "name": "images-tiny",
        "task": "image-classification",
        "teacher": {
            "source": "python:tiny_models:make_colour_teacher",
            "import_path": str(_P(__file__).resolve().parent),
        },
        "data": {"source": data, "image": {"size": 32, "resize": 36}},
        "distill": {
            "student": {"arch": "cnn", "channels": [8, 16], "hidden": 16},
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.01,
        },
        "quantize": {"mode": "static", "metric": "agreement", "calib_samples": 32},
        "evaluate": {"max_drop": 1.0},
        "bench": {"enabled": False},
        "package": {"samples": 3},
    }
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value} if isinstance(value, dict) else value
    return base
