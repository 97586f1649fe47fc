"""Train/val/test splits of array data: builtin:digits or user .npz / .npy files."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from packager.config import DataConfig
from packager.data.preprocess import Preprocessing
from packager.errors import InputFileError, RecipeError

SPLITS = ("train", "val", "test")


@dataclass
class Splits:
    """Raw inputs and integer labels per split, with the preprocessing that feeds the model."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    preprocessing: Preprocessing
    labels: list[str]
    source: str

    def model_input(self, split: str, limit: int | None = None) -> np.ndarray:
        from packager.data.preprocess import preprocess

        raw = self.x[split] if limit is None else self.x[split][:limit]
        return preprocess(raw, self.preprocessing)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def save(self, path: Path) -> None:
        arrays = {f"x_{s}": self.x[s] for s in SPLITS} | {f"y_{s}": self.y[s] for s in SPLITS}
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path, meta: dict) -> Splits:
        with np.load(path, allow_pickle=False) as z:
            x = {s: z[f"x_{s}"] for s in SPLITS}
            y = {s: z[f"y_{s}"] for s in SPLITS}
        pre = Preprocessing.from_dict(meta["preprocessing"])
        return cls(x, y, pre, list(meta["labels"]), meta["source"])


MAX_CLASSES = 100_000  # labels are class indices; beyond this they are ids, not classes


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in rows[:5])
    return f"row{'s' if len(rows) > 1 else ''} {shown}{' ...' if len(rows) > 5 else ''}"


def check_arrays(source: str, x: np.ndarray, y: np.ndarray) -> None:
    """Inputs a model can learn from and labels that are class indices, said in data terms
    (not as an export parity failure or torch's IndexError many stages later)."""
    what = f"data.source {source}"
    if x.ndim < 2 or len(x) == 0:
        raise InputFileError(
            f"{what}: inputs must be a non-empty array of examples (N, features...), got shape "
            f"{x.shape}" + ("; one feature per example is shape (N, 1)" if x.ndim == 1 else "")
        )
    if y.ndim != 1:
        hint = "; one-hot labels? use y.argmax(axis=1)" if y.ndim == 2 else ""
        raise InputFileError(
            f"{what}: labels must be a 1-D array of class indices, got shape {y.shape}{hint}"
        )
    if len(x) != len(y):
        raise InputFileError(f"{what}: {len(x)} inputs but {len(y)} labels")
    if x.dtype.kind not in "biuf":
        raise InputFileError(f"{what}: inputs must be numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise InputFileError(
                f"{what}: {int(bad.sum())} example(s) hold NaN or inf ({_rows(bad)}); drop or "
                "impute them"
            )
    if y.dtype.kind not in "biu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        raise InputFileError(
            f"{what}: labels must be class indices (integers), got dtype {y.dtype}"
        )
    if len(y) and (y < 0).any():
        raise InputFileError(
            f"{what}: labels must be class indices >= 0; {_rows(y < 0)} have negative labels"
        )


def _split(x: np.ndarray, y: np.ndarray, cfg: DataConfig) -> tuple[dict, dict]:
    from sklearn.model_selection import train_test_split

    n_test = int(np.ceil(len(x) * cfg.test_fraction))
    n_val = int(np.ceil((len(x) - n_test) * cfg.val_fraction))
    if len(x) - n_test - n_val < 1:
        raise InputFileError(
            f"data.source {cfg.source}: {len(x)} example(s) cannot make train, validation and "
            f"test splits (test_fraction {cfg.test_fraction:g}, val_fraction "
            f"{cfg.val_fraction:g}); give at least 10 examples, better hundreds"
        )

    strat = y if len(np.unique(y)) * 2 <= len(y) * cfg.test_fraction else None
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=cfg.test_fraction, random_state=cfg.seed, stratify=strat
    )
    strat = y_rest if strat is not None else None
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=cfg.val_fraction, random_state=cfg.seed, stratify=strat
    )
    return {"train": x_train, "val": x_val, "test": x_test}, {
        "train": y_train,
        "val": y_val,
        "test": y_test,
    }


def _read_user_arrays(cfg: DataConfig) -> tuple[dict | None, np.ndarray, np.ndarray | None]:
    path = Path(cfg.source)
    if not path.is_file():
        raise InputFileError(
            f"data.source {cfg.source}: file not found (expected builtin:digits, .npz or .npy)"
        )
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                if {f"x_{s}" for s in SPLITS} <= keys and {f"y_{s}" for s in SPLITS} <= keys:
                    return {k: z[k] for k in keys}, np.empty(0), None
                xk = next((k for k in ("x", "X", "inputs") if k in keys), None)
                yk = next((k for k in ("y", "labels", "targets") if k in keys), None)
                if xk is None or yk is None:
                    raise InputFileError(
                        f"data.source {path}: .npz needs x/y arrays or x_train..y_test (found {sorted(keys)})"
                    )
                return None, z[xk], z[yk]
        if path.suffix == ".npy":
            if not cfg.labels_file:
                raise RecipeError(
                    "data.labels_file is required when data.source is a .npy of inputs"
                )
            return (
                None,
                np.load(path, allow_pickle=False),
                np.load(cfg.labels_file, allow_pickle=False),
            )
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        why = str(err)
        if path.suffix == ".npz" and not zipfile.is_zipfile(path):
            why = "not a complete zip archive, which an .npz from numpy.savez is"
        raise InputFileError(f"data.source {path}: cannot read ({why})") from None
    raise InputFileError(
        f"data.source {path}: unsupported file type {path.suffix!r} (use .npz or .npy)"
    )


def load_splits(cfg: DataConfig) -> Splits:
    if cfg.source.startswith("builtin:"):
        if cfg.source != "builtin:digits":
            raise RecipeError(
                f"data.source = {cfg.source!r} is not allowed: builtin datasets are: builtin:digits"
            )
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data.astype(np.float32), d.target.astype(np.int64)
        xs, ys = _split(x, y, cfg)
        shape, scale, source = (
            (1, 8, 8),
            1.0 / 16.0,
            "builtin:digits (sklearn load_digits, 8x8, 0..16)",
        )
    else:
        pre_split, x, y = _read_user_arrays(cfg)
        if pre_split is not None:
            for s in SPLITS:
                check_arrays(f"{cfg.source} ({s} split)", pre_split[f"x_{s}"], pre_split[f"y_{s}"])
            shapes = {s: pre_split[f"x_{s}"].shape[1:] for s in SPLITS}
            if len(set(shapes.values())) > 1:
                raise InputFileError(
                    f"data.source {cfg.source}: the splits' examples differ in shape ("
                    + ", ".join(f"{s} {shapes[s]}" for s in SPLITS)
                    + ")"
                )
            xs = {s: pre_split[f"x_{s}"] for s in SPLITS}
            ys = {s: pre_split[f"y_{s}"].astype(np.int64) for s in SPLITS}
        else:
            check_arrays(cfg.source, x, y)
            xs, ys = _split(x.astype(np.float32), y.astype(np.int64), cfg)
        shape, scale, source = tuple(xs["train"].shape[1:]), 1.0, str(cfg.source)
    if cfg.limit is not None:
        xs["train"], ys["train"] = xs["train"][: cfg.limit], ys["train"][: cfg.limit]
    shape = tuple(cfg.sample_shape or shape)
    per_sample = int(np.prod(xs["train"].shape[1:]))
    if int(np.prod(shape)) != per_sample:
        raise RecipeError(
            f"data.sample_shape = {list(shape)} does not hold {per_sample} values per example"
        )
    n_classes = int(max(int(ys[s].max()) for s in SPLITS)) + 1
    if n_classes > MAX_CLASSES:
        raise RecipeError(
            f"data: labels go up to {n_classes - 1:,}; labels are class indices 0..K-1 "
            f"(at most {MAX_CLASSES:,} classes): remap them"
        )
    labels = list(cfg.label_names) if cfg.label_names else [str(i) for i in range(n_classes)]
    if len(labels) < n_classes:
        raise RecipeError(
            f"data.label_names has {len(labels)} names but labels go up to {n_classes - 1}"
        )
    pre = Preprocessing(
        sample_shape=shape,
        scale=cfg.scale if cfg.scale is not None else scale,
        offset=cfg.offset,
        mean=cfg.mean,
        std=cfg.std,
    )
    return Splits(xs, ys, pre, labels, source)
