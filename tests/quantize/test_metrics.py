"""Metrics that fit the output: computed over the class axis, never over a flattened map."""

from __future__ import annotations

import numpy as np
import pytest

from packager.errors import InputFileError
from packager.quantize.metrics import check_metric, resolve_class_axis, score


def test_agreement_is_taken_over_the_class_axis_of_a_segmentation_map():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)  # (N, classes, H, W)
    out = ref.copy()
    out[0, :, 0, 0] = ref[0, ::-1, 0, 0] + 10 * np.eye(3)[ref[0, :, 0, 0].argmin()]
    axis = resolve_class_axis(None, ref.ndim)
    assert axis == 1
    assert score("agreement", out, ref, None, class_axis=axis) == pytest.approx(1 - 1 / 256)
    # the old rule (argmax of the flattened map) calls a near-identical map a disagreement
    flat = (out.reshape(4, -1).argmax(1) == ref.reshape(4, -1).argmax(1)).mean()
    assert score("agreement", out, ref, None, class_axis=axis) > flat


def test_top5_counts_a_label_anywhere_in_the_five_largest():
    logits = np.array([[0, 1, 2, 3, 4, 5, 6.0], [6, 5, 4, 3, 2, 1, 0.0]], np.float32)
    labels = np.array([2, 6])  # 3rd largest of row 0 (a hit), smallest of row 1 (a miss)
    assert score("top5", logits, logits, labels) == 0.5
    assert score("accuracy", logits, logits, labels) == 0.0


def test_sequence_agreement_needs_every_timestep_and_iou_thresholds_maps():
    ref = np.zeros((2, 5, 4), np.float32)
    ref[:, :, 1] = 1.0
    out = ref.copy()
    out[1, 3] = [0, 0, 5, 0]  # one timestep of example 1 changes class
    assert score("sequence", out, ref, None) == 0.5
    assert score("agreement", out, ref, None) == pytest.approx(0.9)
    maps = np.zeros((1, 1, 4, 4), np.float32)
    maps[0, 0, :2, :2] = 0.9  # 4 foreground pixels
    shifted = np.zeros_like(maps)
    shifted[0, 0, :2, 1:3] = 0.9  # 2 of them shared, union of 6
    assert score("iou", shifted, maps, None, threshold=0.5) == pytest.approx(2 / 6)
    assert score("mse", maps, maps, None) == 0.0 < score("mse", shifted, maps, None)


def test_a_metric_that_does_not_fit_is_refused_with_the_ones_that_do():
    batches = [({"x": np.zeros((2, 3))}, None)]
    with pytest.raises(InputFileError, match=r"needs at least 2 classes.*use iou, cosine or mse"):
        check_metric("agreement", batches, "eval.npz", np.zeros((2, 1, 8, 8)), 1)
    with pytest.raises(InputFileError, match="needs per-timestep outputs"):
        check_metric("sequence", batches, "eval.npz", np.zeros((2, 10)), -1)
    with pytest.raises(InputFileError, match="needs labels"):
        check_metric("top5", batches, "eval.npz", np.zeros((2, 10)), -1)
    labelled = [({"x": np.zeros((2, 3))}, np.zeros((2, 5), np.int64))]
    with pytest.raises(InputFileError, match=r"labels have shape \[2, 5\]"):
        check_metric("accuracy", labelled, "eval.npz", np.zeros((2, 10)), -1)
