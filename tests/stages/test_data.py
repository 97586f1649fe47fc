"""data stage: the builtin digits split and user .npz/.npy files."""

from __future__ import annotations

import numpy as np
import pytest

from packager.config import DataConfig
from packager.data import load_splits, preprocess
from packager.errors import InputFileError, RecipeError


def test_builtin_digits_split_is_fixed_by_seed_and_disjoint():
    a, b = load_splits(DataConfig()), load_splits(DataConfig())
    assert {k: len(v) for k, v in a.x.items()} == {"train": 1221, "val": 216, "test": 360}
    assert np.array_equal(a.x["test"], b.x["test"])
    rows = {tuple(r) for r in a.x["train"]}
    assert sum(tuple(r) in rows for r in a.x["test"]) < 5  # digits has a few duplicate images
    c = load_splits(DataConfig(seed=1))
    assert not np.array_equal(a.x["test"], c.x["test"])


def test_digits_preprocessing_scales_to_unit_range_and_reshapes():
    s = load_splits(DataConfig())
    x = s.model_input("test", limit=3)
    assert x.shape == (3, 1, 8, 8) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.allclose(preprocess(s.x["test"][:3], s.preprocessing), x)


def test_user_npz_with_x_and_y_is_split(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.normal(size=(200, 3, 4)).astype(np.float32),
        y=rng.integers(0, 3, 200),
    )
    s = load_splits(DataConfig(source=str(tmp_path / "d.npz")))
    assert s.preprocessing.sample_shape == (3, 4) and s.num_classes == 3
    assert sum(len(v) for v in s.x.values()) == 200


def test_user_npz_with_explicit_splits_is_kept(tmp_path):
    arrays = {
        f"x_{k}": np.ones((n, 5), np.float32) for k, n in [("train", 7), ("val", 3), ("test", 4)]
    }
    arrays |= {
        f"y_{k}": np.zeros(len(arrays[f"x_{k}"]), np.int64) + 1 for k in ("train", "val", "test")
    }
    np.savez(tmp_path / "s.npz", **arrays)
    s = load_splits(DataConfig(source=str(tmp_path / "s.npz"), label_names=("no", "yes")))
    assert [len(s.x[k]) for k in ("train", "val", "test")] == [7, 3, 4]
    assert s.labels == ["no", "yes"]


def test_user_npy_needs_labels_file(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((50, 4), np.float32))
    np.save(tmp_path / "y.npy", np.arange(50) % 2)
    with pytest.raises(RecipeError, match=r"data\.labels_file is required"):
        load_splits(DataConfig(source=str(tmp_path / "x.npy")))
    s = load_splits(DataConfig(source=str(tmp_path / "x.npy"), labels_file=str(tmp_path / "y.npy")))
    assert s.num_classes == 2


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.npz", None, "file not found"),
        ("d.csv", b"a,b\n", "unsupported file type"),
        ("bad.npz", b"not a zip", "cannot read"),
    ],
)
def test_unreadable_user_data_is_a_one_line_error(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(InputFileError, match=match):
        load_splits(DataConfig(source=str(tmp_path / name)))


def test_sample_shape_must_hold_the_example():
    with pytest.raises(RecipeError, match="does not hold 64 values"):
        load_splits(DataConfig(sample_shape=(1, 7, 7)))
