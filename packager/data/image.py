"""Image data: folders, .npz/.npy arrays and datasets folders, listed once into seeded
train/val/test splits and streamed from there, a batch at a time, through the preprocessing the
runtimes apply (edgepack_runtime.image: one implementation for the packager and the device).

Sources (data.source with a data.image section):
- a folder of image files (.png, .jpg, .jpeg): one sub-folder per class (labels are the
  sub-folder names, sorted), or files directly in it (unlabeled);
- a .npz (`x`/`images`, optional `y`/`labels`) or .npy (`data.labels_file` optional) of uint8
  (N, H, W, 3) pixels or float (N, 3, H, W) values in 0..1 (ToTensor's range; made 8-bit);
- a folder written by datasets' save_to_disk with an image column (`data.image_column`) and
  optionally `data.label_column`.
Unlabeled images are enough for distillation and for agreement metrics.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from packager.config import DataConfig
from packager.errors import InputFileError, RecipeError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LISTING = "images.json"


def _folder_rows(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    from packager.hashing import sha256_file

    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = []
    if classes:
        for i, name in enumerate(classes):
            files += [(p, i) for p in sorted((root / name).rglob("*")) if _is_image(p)]
    else:
        files = [(p, None) for p in sorted(root.iterdir()) if _is_image(p)]
    # The content of every image joins the listing, so the data artifact changes with them.
    rows = [{"file": str(p), "label": y, "sha256": sha256_file(p)} for p, y in files]
    return rows, classes


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES


def _array_rows(cfg: DataConfig) -> tuple[list[dict[str, Any]], list[str]]:
    x, y = _read_arrays(cfg)
    if len(x) and not (
        (x.dtype == np.uint8 and x.ndim == 4 and x.shape[3] == 3)
        or (x.dtype.kind == "f" and x.ndim == 4 and x.shape[1] == 3)
    ):
        raise InputFileError(
            f"data.source {cfg.source}: images must be uint8 (N, H, W, 3) or float (N, 3, H, W) "
            f"in 0..1, got {x.dtype} {tuple(x.shape)}"
        )
    labels = None if y is None else [int(v) for v in np.asarray(y).reshape(-1)]
    if labels is not None and len(labels) != len(x):
        raise InputFileError(f"data.source {cfg.source}: {len(x)} images but {len(labels)} labels")
    rows = [{"index": i, "label": None if labels is None else labels[i]} for i in range(len(x))]
    classes = [] if labels is None else [str(i) for i in range(max(labels, default=-1) + 1)]
    return rows, classes


def _read_arrays(cfg: DataConfig):
    path = Path(cfg.source)
    try:
        if path.suffix == ".npy":
            y = np.load(cfg.labels_file, allow_pickle=False) if cfg.labels_file else None
            return np.load(path, mmap_mode="r", allow_pickle=False), y
        with np.load(path, allow_pickle=False) as z:
            xk = next((k for k in ("x", "images", "X") if k in z.files), None)
            if xk is None:
                raise InputFileError(f"data.source {path}: .npz needs an x (or images) array")
            yk = next((k for k in ("y", "labels") if k in z.files), None)
            return z[xk], (z[yk] if yk else None)
    except (OSError, ValueError) as err:
        raise InputFileError(f"data.source {path}: cannot read ({err})") from None


def _dataset_rows(cfg: DataConfig) -> tuple[list[dict[str, Any]], list[str]]:
    ds = _open_dataset(cfg.source)
    if cfg.image_column not in ds.column_names:
        raise InputFileError(
            f"data.source {cfg.source}: no image column {cfg.image_column!r} (columns: "
            f"{ds.column_names}); set data.image_column"
        )
    label = cfg.label_column if cfg.label_column in ds.column_names else None
    classes: list[str] = []
    labels: list[int | None] = [None] * len(ds)
    if label is not None:
        feature = ds.features[label]
        names = getattr(feature, "names", None)
        raw = ds[label]
        classes = list(names) if names else sorted({str(v) for v in raw})
        labels = [int(v) if names else classes.index(str(v)) for v in raw]
    return [{"index": i, "label": labels[i]} for i in range(len(ds))], classes


def _open_dataset(source: str):
    from datasets import load_from_disk

    try:
        ds = load_from_disk(source)
    except Exception as err:  # datasets raises FileNotFoundError or its own kinds
        raise InputFileError(f"data.source {source}: not a save_to_disk folder ({err})") from None
    if hasattr(ds, "keys"):  # a DatasetDict: its train split (or the first)
        ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
    return ds


def source_kind(cfg: DataConfig) -> str:
    path = Path(cfg.source)
    if path.suffix in (".npz", ".npy"):
        return "arrays"
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()
                          or (path / "dataset_dict.json").exists()):  # fmt: skip
        return "dataset"
    if path.is_dir():
        return "folder"
    raise InputFileError(
        f"data.source {cfg.source}: not found (images: a folder of .png/.jpg files, a .npz/.npy "
        "of images, or a datasets save_to_disk folder)"
    )


def build_listing(cfg: DataConfig, dest: Path) -> dict[str, Any]:
    """Seeded train/val/test rows of the source, written to `dest` (images.json); returns the
    meta the data stage records."""
    from packager.hashing import stamp

    kind = source_kind(cfg)
    rows, classes = {"folder": _folder_rows, "arrays": _array_rows, "dataset": _dataset_rows}[kind](
        Path(cfg.source) if kind == "folder" else cfg
    )
    if len(rows) < 3:
        raise InputFileError(f"data.source {cfg.source}: {len(rows)} image(s); give at least 3")
    order = np.random.default_rng(cfg.seed).permutation(len(rows))
    n_test = max(1, int(np.ceil(len(rows) * cfg.test_fraction)))
    n_val = max(1, int(np.ceil((len(rows) - n_test) * cfg.val_fraction)))
    picked = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    if cfg.limit is not None:
        picked["train"] = picked["train"][: cfg.limit]
    splits = {s: [rows[i] for i in sorted(picked[s])] for s in SPLITS}
    if cfg.views:
        splits = {
            s: _with_views(v, cfg, kind, seed=cfg.seed + i)
            for i, (s, v) in enumerate(splits.items())
        }
    if cfg.label_names:
        classes = list(cfg.label_names)
    labeled = all(r["label"] is not None for r in rows)
    listing = {
        "kind": kind,
        "source": cfg.source,
        "content": None if kind == "folder" else stamp(cfg.source),
        "image_column": cfg.image_column,
        "splits": splits,
    }
    (dest / LISTING).write_text(json.dumps(listing))
    return {
        "file": LISTING,
        "modality": "image",
        "source": str(cfg.source),
        "kind": kind,
        "sizes": {s: len(v) for s, v in splits.items()},
        "labels": classes if labeled else [],
        "labeled": labeled,
        "preprocessing": cfg.image.manifest(),
    }


def _size_of(row: dict[str, Any], cfg: DataConfig, kind: str) -> tuple[int, int]:
    if kind == "folder":
        from PIL import Image

        with Image.open(row["file"]) as im:  # the header only
            return im.size[1], im.size[0]
    if kind == "arrays":
        x = _read_arrays(cfg)[0]
        return (x.shape[1], x.shape[2]) if x.dtype == np.uint8 else (x.shape[2], x.shape[3])
    value = _open_dataset(cfg.source)[row["index"]][cfg.image_column]
    return _pil_pixels(value).shape[:2]


def _with_views(rows: list[dict[str, Any]], cfg: DataConfig, kind: str, seed: int) -> list:
    """Each row, then `cfg.views` seeded random crops of it (as boxes: top, left, h, w)."""
    from packager.data.image_augment import crop_box

    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        out.append(row)
        h, w = _size_of(row, cfg, kind)
        for _ in range(cfg.views):
            out.append({**row, "view": list(crop_box(h, w, (0.05, 0.6), (3 / 4, 4 / 3), rng))})
    return out


class ImageData:
    """The splits of a data artifact: decoded images, their labels, and model-ready batches."""

    def __init__(self, listing_file: Path, meta: dict[str, Any]):
        self.listing = json.loads(Path(listing_file).read_text())
        self.meta = meta
        self.spec = meta["preprocessing"]
        self._arrays = None
        self._dataset = None

    @property
    def labeled(self) -> bool:
        return bool(self.meta.get("labeled"))

    def rows(self, split: str) -> list[dict[str, Any]]:
        return self.listing["splits"][split]

    def labels(self, split: str, limit: int | None = None) -> np.ndarray | None:
        if not self.labeled:
            return None
        return np.asarray([r["label"] for r in self.rows(split)[:limit]], dtype=np.int64)

    def raw(self, row: dict[str, Any]) -> tuple[bytes | None, np.ndarray]:
        """(the file's bytes, when the row is a whole image file, and) its uint8 RGB pixels;
        a view is its crop of the image (no file of its own)."""
        data, pixels = self._decoded(row)
        if "view" not in row:
            return data, pixels
        top, left, h, w = row["view"]
        return None, np.ascontiguousarray(pixels[top : top + h, left : left + w])

    def originals(self, split: str) -> list[dict[str, Any]]:
        """The split's whole images (views left out)."""
        return [r for r in self.rows(split) if "view" not in r]

    def _decoded(self, row: dict[str, Any]) -> tuple[bytes | None, np.ndarray]:
        from packager.edge_runtime import load_runtime

        image = load_runtime().image
        kind = self.listing["kind"]
        if kind == "folder":
            data = Path(row["file"]).read_bytes()
            return data, image.decode(data, row["file"])
        if kind == "arrays":
            x = self._array()[row["index"]]
            if x.dtype != np.uint8:  # float CHW in 0..1: ToTensor's range, made 8-bit
                x = np.clip(np.rint(np.asarray(x, np.float64) * 255), 0, 255).astype(np.uint8)
                x = x.transpose(1, 2, 0)
            return None, np.ascontiguousarray(x)
        value = self._rows_dataset()[row["index"]][self.listing["image_column"]]
        return None, _pil_pixels(value)

    def _array(self):
        if self._arrays is None:
            path = Path(self.listing["source"])
            if path.suffix == ".npy":
                self._arrays = np.load(path, mmap_mode="r", allow_pickle=False)
            else:
                with np.load(path, allow_pickle=False) as z:
                    key = next(k for k in ("x", "images", "X") if k in z.files)
                    self._arrays = z[key]
        return self._arrays

    def _rows_dataset(self):
        if self._dataset is None:
            self._dataset = _open_dataset(self.listing["source"])
        return self._dataset

    def tensor(self, pixels: np.ndarray, geometry: bool = True) -> np.ndarray:
        """Pixels -> the model input, by the runtime's own preprocessing (without resize and
        crop when the pixels are already the input size)."""
        from packager.edge_runtime import load_runtime

        image = load_runtime().image
        spec = self.spec if geometry else {**self.spec, "resize": None, "crop": None}
        return image.apply(pixels, image.check_spec(spec))

    def batches(
        self, split: str, batch: int, limit: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(x, labels or None) batches of `split` in order, preprocessed as the runtimes do
        (training batches are `training_item`s, augmented)."""
        rows = self.rows(split)[:limit]
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            xs = [self.tensor(self.raw(row)[1]) for row in chunk]
            labels = None
            if self.labeled:
                labels = np.asarray([r["label"] for r in chunk], dtype=np.int64)
            yield np.stack(xs), labels

    def training_item(self, i: int, epoch: int, seed: int, augment=None) -> tuple[np.ndarray, int]:
        """Training image `i` of epoch `epoch`, augmented with its own seeded draw (the same in
        any process, loader worker or resumed run), preprocessed; and its label (-1: none)."""
        row = self.rows("train")[i]
        pixels = self.raw(row)[1]
        label = -1 if row.get("label") is None else int(row["label"])
        if augment is None or not augment.enabled:
            return self.tensor(pixels), label
        from packager.data.image_augment import augmented

        rng = np.random.default_rng([seed, epoch, i])
        return self.tensor(augmented(pixels, self.spec, augment, rng), geometry=False), label

    def array(self, split: str, limit: int | None = None) -> np.ndarray:
        """The whole (limited) split as one array: for small evaluation sets."""
        parts = [x for x, _ in self.batches(split, 64, limit)]
        return np.concatenate(parts) if parts else np.zeros((0,))

    def input_shape(self) -> list[int]:
        spec = self.spec
        crop = spec.get("crop") or spec["resize"]
        h, w = int(crop["height"]), int(crop["width"])
        return [3, h, w] if spec["layout"] == "NCHW" else [h, w, 3]


def _pil_pixels(value: Any) -> np.ndarray:
    """A datasets Image feature value (PIL image, or {"bytes", "path"}) -> uint8 RGB."""
    from PIL import Image

    if isinstance(value, dict):
        value = Image.open(io.BytesIO(value["bytes"])) if value.get("bytes") else value["path"]
    if isinstance(value, str | Path):
        value = Image.open(value)
    if not hasattr(value, "convert"):
        raise RecipeError("data.image_column: values must be images (a datasets Image column)")
    return np.asarray(value.convert("RGB"), dtype=np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 RGB pixels as PNG bytes (lossless: every runtime decodes the same pixels)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
