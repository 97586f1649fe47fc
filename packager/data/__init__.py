"""Datasets: the builtin digits split and user .npz/.npy files, plus the preprocessing that is
written into the manifest so a device app can repeat it exactly."""

from packager.data.array import Splits, load_splits
from packager.data.preprocess import Preprocessing, preprocess

__all__ = ["Preprocessing", "Splits", "load_splits", "preprocess"]
