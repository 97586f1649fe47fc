"""Image data (packager.data.image): every source kind, seeded splits, labels, streaming
through the runtime's preprocessing, and augmentation on training only."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_images import synthetic_pixels, write_image_folder

from packager.config import DataConfig
from packager.data.image import ImageData, build_listing
from packager.data.image_augment import augmented, crop_box
from packager.errors import InputFileError

IMAGE = {"size": 32, "resize": 36}


def _data(tmp_path, source, **fields) -> ImageData:
    cfg = DataConfig(source=str(source), image=IMAGE, **fields)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    meta = build_listing(cfg, out)
    return ImageData(out / meta["file"], meta)


def test_a_folder_of_class_folders_is_labeled_by_folder_name(tmp_path):
    data = _data(tmp_path, write_image_folder(tmp_path / "src", 30, classes=3))
    assert data.meta["labels"] == ["c0", "c1", "c2"] and data.labeled
    assert sum(data.meta["sizes"].values()) == 30
    x, y = next(data.batches("train", 4))
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and set(y) <= {0, 1, 2}


def test_a_flat_folder_is_unlabeled_and_the_split_is_seeded(tmp_path):
    src = write_image_folder(tmp_path / "src", 20)
    a, b = _data(tmp_path, src), _data(tmp_path, src)
    assert not a.labeled and a.meta["labels"] == [] and a.labels("test") is None
    assert a.rows("test") == b.rows("test")
    other = _data(tmp_path, src, seed=1)
    assert other.rows("test") != a.rows("test")
    every = [r["file"] for s in ("train", "val", "test") for r in a.rows(s)]
    assert len(every) == len(set(every)) == 20  # no image in two splits


def test_uint8_hwc_and_float_chw_arrays_give_the_same_tensors(tmp_path):
    rng = np.random.default_rng(0)
    pixels = np.stack([synthetic_pixels(rng, 40, 40) for _ in range(12)])
    np.savez(tmp_path / "u8.npz", x=pixels, y=np.arange(12) % 2)
    np.save(tmp_path / "f.npy", pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    a, b = _data(tmp_path, tmp_path / "u8.npz"), _data(tmp_path, tmp_path / "f.npy")
    assert a.labeled and not b.labeled
    np.testing.assert_array_equal(a.array("test"), b.array("test"))


def test_a_datasets_folder_with_an_image_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = {
        "image": [Image.fromarray(synthetic_pixels(rng, 40, 48)) for _ in range(12)],
        "label": [i % 3 for i in range(12)],
    }
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    )
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "ds"))
    data = _data(tmp_path, tmp_path / "ds")
    assert data.meta["kind"] == "dataset" and data.meta["labels"] == ["a", "b", "c"]
    assert data.array("val").shape[1:] == (3, 32, 32)


def test_arrays_that_are_not_images_are_refused_in_one_line(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((5, 8, 8), np.uint8))
    with pytest.raises(InputFileError, match=r"uint8 \(N, H, W, 3\)"):
        _data(tmp_path, tmp_path / "bad.npy")


def test_augmentation_is_random_resized_crop_flip_and_jitter_at_the_input_size():
    from packager.config.distill import AugmentConfig

    rng = np.random.default_rng(0)
    pixels = synthetic_pixels(rng, 60, 90)
    spec = {
        "resize": {"shorter": 36, "interpolation": "bilinear"},
        "crop": {"height": 32, "width": 32},
    }
    outs = [augmented(pixels, spec, AugmentConfig(), rng) for _ in range(4)]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in outs)
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])
    for _ in range(50):
        top, left, h, w = crop_box(60, 90, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert top >= 0 and left >= 0 and top + h <= 60 and left + w <= 90


def test_only_training_items_asked_for_augmentation_are_augmented_by_their_own_seed(tmp_path):
    from packager.config.distill import AugmentConfig

    data = _data(tmp_path, write_image_folder(tmp_path / "src", 20))
    plain = np.concatenate([x for x, _ in data.batches("train", 8)])
    again = np.concatenate([x for x, _ in data.batches("train", 8)])
    assert np.array_equal(plain, again)
    n = len(data.rows("train"))
    assert np.array_equal(np.stack([data.training_item(i, 1, 0)[0] for i in range(n)]), plain)
    aug = np.stack([data.training_item(i, 1, 0, AugmentConfig())[0] for i in range(n)])
    assert aug.shape == plain.shape and not np.array_equal(aug, plain)
    # One draw per (seed, epoch, image): any process or loader worker makes the same crop.
    assert np.array_equal(data.training_item(3, 1, 0, AugmentConfig())[0], aug[3])
    assert not np.array_equal(data.training_item(3, 2, 0, AugmentConfig())[0], aug[3])


def test_views_are_seeded_crops_that_stay_in_their_images_split(tmp_path):
    src = write_image_folder(tmp_path / "src", 20)
    data = _data(tmp_path, src, views=3)
    for split in ("train", "val", "test"):
        rows = data.rows(split)
        originals = data.originals(split)
        assert len(rows) == 4 * len(originals)
        assert {r["file"] for r in rows} == {r["file"] for r in originals}
    view = next(r for r in data.rows("test") if "view" in r)
    assert data.raw(view)[0] is None and data.raw(view)[1].shape[:2] == tuple(view["view"][2:])
    assert data.rows("test") == _data(tmp_path, src, views=3).rows("test")
