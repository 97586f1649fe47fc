"""Accuracy-aware quantization: an over-budget model is repaired, or the miss is said plainly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from packager.onnx_utils import session
from packager.quantize.data import materialize, model_inputs, open_source
from packager.quantize.search import node_sensitivity


def test_plain_static_int8_breaks_the_budget(outlier, tmp_path, run_quantize):
    art = run_quantize(
        outlier["model"],
        tmp_path,
        mode="static",
        calib=str(outlier["calib"]),
        eval=str(outlier["eval"]),
        speed_check=False,
    )
    assert art.meta["metric"]["fp32"] == 1.0 and art.meta["metric"]["drop"] > 0.3


def test_search_recovers_the_budget_by_keeping_the_outlier_layer_in_float(
    outlier, tmp_path, run_quantize
):
    art = run_quantize(
        outlier["model"],
        tmp_path,
        mode="static",
        calib=str(outlier["calib"]),
        eval=str(outlier["eval"]),
        max_drop=0.05,
        speed_runs=5,
    )
    q = art.meta["quantization"]
    assert q["budget_met"] is True and q["metric"]["drop"] <= 0.05
    assert q["excluded_nodes"][0] == "spread"  # the most sensitive node is tried first
    table = json.loads(art.file("search.json").read_text())
    assert (
        table["trials"][0]["within_budget"]
        and table["trials"][0]["excluded"] == q["excluded_nodes"]
    )
    assert len(table["trials"]) == q["trials"] >= 2
    assert all(t["p50_ms"] > 0 and t["size_bytes"] > 0 for t in table["trials"])
    md = art.file("search.md").read_text()
    assert "| rank | trial | kept in float |" in md and "spread" in md and "(none)" in md
    x = np.load(outlier["eval"])
    pred = session(art.file()).run(None, {"x": x["x"]})[0].argmax(1)
    assert (pred == x["y"]).mean() >= 0.95


def test_budget_that_cannot_be_met_still_writes_the_best_model_and_the_table(
    outlier, tmp_path, run_quantize, monkeypatch
):
    from packager.quantize import search

    monkeypatch.setattr(search, "schedule", lambda n, m: [])  # no search trial at all
    art = run_quantize(
        outlier["model"],
        tmp_path,
        mode="static",
        calib=str(outlier["calib"]),
        eval=str(outlier["eval"]),
        max_drop=0.05,
        speed_check=False,
    )
    q = art.meta["quantization"]
    assert q["budget_met"] is False and q["trials"] == 1 and q["metric"]["drop"] > 0.05
    assert art.file().is_file() and art.file("search.md").is_file()
    assert art.meta["budget_met"] is False


def test_search_never_ends_empty_handed():
    from packager.quantize.search import Limits, Trial, best_of, search

    first = Trial(0, [], 0.5, 0.5, 100)
    tried = search(
        first,
        [("a", 0.9, ("a",)), ("b", 0.1, ("b", "a"))],
        lambda i, ex: Trial(i, ex, 0.5 + 0.1 * len(ex), 0.5 - 0.1 * len(ex), 100, None, False),
        Limits(max_drop=0.01, max_trials=4),
        log=lambda m: None,
    )
    assert [t.excluded for t in tried] == [[], ["a"], ["a", "b"]]
    assert best_of(tried).excluded == ["a", "b"]  # none within budget: the highest metric


def test_sensitivity_ranks_the_outlier_layer_first(outlier, tmp_path):
    from packager.quantize.quantizer import Quantizer
    from packager.quantize.schemes import quantize_config

    inputs = model_inputs(outlier["model"])
    cfg = quantize_config(mode="static")
    qz = Quantizer(
        outlier["model"], cfg, tmp_path, open_source(outlier["calib"], inputs, batch=32, limit=128)
    )
    qz.write(tmp_path / "q.onnx")
    batches = materialize(open_source(outlier["eval"], inputs, batch=16, limit=64))
    ranking = node_sensitivity(qz.graph, tmp_path / "q.onnx", batches, ["fc1", "spread", "head"])
    assert ranking[0][0] == "spread" and ranking[0][1] > 0.5
    assert all(score is None or score < 0.1 for _, score in ranking[1:])


def test_schedule_is_one_more_per_trial_or_a_ramp_that_ends_at_every_candidate():
    from packager.quantize.search import schedule

    assert schedule(3, 16) == [1, 2, 3]
    ramp = schedule(200, 8)
    assert len(ramp) <= 8 and ramp[-1] == 200 and ramp == sorted(set(ramp))


def test_a_failed_trial_is_a_row_in_the_table_and_the_earlier_trials_are_kept(
    outlier, tmp_path, run_quantize, monkeypatch
):
    from packager.quantize.quantizer import Quantizer

    real_run = Quantizer.write

    def broken_candidates(self, dst, extra_exclude=()):
        real_run(self, dst, extra_exclude)
        if extra_exclude:  # every search trial writes a file onnxruntime refuses to load
            dst.write_bytes(b"not an onnx model")

    monkeypatch.setattr(Quantizer, "write", broken_candidates)
    art = run_quantize(
        outlier["model"],
        tmp_path,
        mode="static",
        calib=str(outlier["calib"]),
        eval=str(outlier["eval"]),
        max_drop=0.05,
        speed_check=False,
    )
    q = art.meta["quantization"]
    assert q["budget_met"] is False and q["trials"] >= 2
    assert q["failed_trials"] == q["trials"] - 1 and q["excluded_nodes"] == []
    rows = json.loads(art.file("search.json").read_text())["trials"]
    assert rows[0]["trial"] == 0 and rows[0]["error"] is None and rows[0]["drop"] > 0.05
    assert all(r["metric"] is None and "protobuf" in r["error"].lower() for r in rows[1:])
    md = art.file("search.md").read_text()
    assert "| failed |" in md and "Failed trials:" in md
    # The model written is trial 0's, and it runs.
    x = np.load(outlier["eval"])
    pred = session(art.file()).run(None, {"x": x["x"]})[0].argmax(1)
    assert (pred == x["y"]).mean() == rows[0]["metric"]


def test_a_trial_that_makes_things_worse_is_put_back_so_the_best_drop_never_rises():
    from packager.quantize.search import Limits, Trial, search

    drops = {("a",): 0.3, ("a", "b"): 0.45, ("a", "c"): 0.1}  # b makes it worse

    def attempt(i, ex):
        return Trial(i, ex, 1 - drops[tuple(ex)], drops[tuple(ex)], 100, None, False)

    first = Trial(0, [], 0.5, 0.5, 100)
    ranking = [("a", 0.9, ("a",)), ("b", 0.5, ("b",)), ("c", 0.1, ("c",))]
    tried = search(first, ranking, attempt, Limits(0.01, 8), log=lambda m: None)
    assert [t.excluded for t in tried] == [[], ["a"], ["a", "b"], ["a", "c"]]
    assert [t.accepted for t in tried[1:]] == [True, False, True]
    best = [min(t.drop for t in tried[: i + 1] if t.accepted is not False) for i in range(4)]
    assert best == sorted(best, reverse=True)


def test_a_trial_over_the_size_cap_is_never_kept_nor_within_budget():
    """Keeping a big layer in float (b: 4 bytes a weight) would meet the budget but not the
    size cap: it is put back, and the small one after it is tried on top of what was kept."""
    from packager.quantize.search import Limits, Trial, best_of, search

    drops = {("a",): 0.3, ("a", "b"): 0.0, ("a", "c"): 0.2}
    sizes = {("a",): 110, ("a", "b"): 400, ("a", "c"): 120}

    def attempt(i, ex):
        d = drops[tuple(ex)]
        return Trial(i, ex, 1 - d, d, sizes[tuple(ex)], None, d <= 0.01)

    first = Trial(0, [], 0.5, 0.5, 100)
    ranking = [("a", 0.9, ("a",)), ("b", 0.5, ("b",)), ("c", 0.1, ("c",))]
    logs = []
    tried = search(first, ranking, attempt, Limits(0.01, 8, max_size=300), logs.append)
    assert [t.excluded for t in tried] == [[], ["a"], ["a", "b"], ["a", "c"]]
    assert [t.accepted for t in tried[1:]] == [True, False, True]
    assert tried[2].within_budget is False and "over" in logs[1]
    assert best_of(tried).excluded == ["a", "c"]


def test_a_trial_slower_than_min_speedup_is_never_kept():
    from packager.quantize.search import Limits, Trial, best_of, search

    drops = {("a",): 0.3, ("a", "b"): 0.0, ("a", "c"): 0.2}
    speedups = {("a",): 1.6, ("a", "b"): 1.1, ("a", "c"): 1.4}

    def attempt(i, ex):
        d = drops[tuple(ex)]
        t = Trial(i, ex, 1 - d, d, 100, 1.0, d <= 0.01)
        t.speedup = speedups[tuple(ex)]
        return t

    first = Trial(0, [], 0.5, 0.5, 100)
    ranking = [("a", 0.9, ("a",)), ("b", 0.5, ("b",)), ("c", 0.1, ("c",))]
    logs = []
    tried = search(first, ranking, attempt, Limits(0.01, 8, min_speedup=1.3), logs.append)
    assert [t.accepted for t in tried[1:]] == [True, False, True]
    assert "only 1.10x faster" in logs[1] and tried[2].over_cap
    assert best_of(tried).excluded == ["a", "c"]


def test_with_a_guide_a_chunk_is_judged_by_the_kl_not_the_top1_drop():
    """Top-1 drops move in steps: b leaves the drop where it was but halves the KL (kept), c
    lowers the drop by one lucky flip while the KL rises (put back). The pick is the lowest KL."""
    from packager.quantize.search import Limits, Trial, best_of, search

    scores = {("a",): (0.04, 0.010), ("a", "b"): (0.04, 0.005), ("a", "b", "c"): (0.03, 0.008)}

    def attempt(i, ex):
        drop, kl = scores[tuple(ex)]
        t = Trial(i, ex, 1 - drop, drop, 100, None, False)
        t.guide = kl
        return t

    first = Trial(0, [], 0.9, 0.1, 100, None, False)
    first.guide = 0.05
    ranking = [("a", 0.9, ("a",)), ("b", 0.5, ("b",)), ("c", 0.1, ("c",))]
    logs = []
    tried = search(first, ranking, attempt, Limits(0.01, 8), logs.append)
    assert [t.accepted for t in tried[1:]] == [True, True, False]
    assert "kl 0.0050: kept in float" in logs[1] and "put back (no better)" in logs[2]
    assert best_of(tried).excluded == ["a", "b"]  # not c's trial, which has the smaller drop


def test_the_guide_is_the_kl_for_classifiers_and_absent_for_embeddings(tmp_path):
    from onnx import TensorProto, helper

    from packager.quantize.metrics import Evaluator

    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype(np.float32)

    def linear(path, weight):
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
            [helper.make_tensor("w", TensorProto.FLOAT, [4, 3], weight.ravel())],
        )
        import onnx

        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path

    fp32, other = linear(tmp_path / "a.onnx", w), linear(tmp_path / "b.onnx", w * 0.5)
    batches = [({"x": rng.normal(size=(16, 4)).astype(np.float32)}, None)]
    agreement = Evaluator(fp32, batches, "agreement")
    assert agreement.guide == "kl" and agreement.scores(fp32)[1] < 1e-9
    value, kl = agreement.scores(other)
    assert value == 1.0 and kl > 1e-3  # the same top-1 everywhere, the softmax flatter
    assert Evaluator(fp32, batches, "cosine").scores(other)[1] is None


def test_mean_kl_reads_probabilities_as_they_are_and_gives_up_on_masked_classes():
    from packager.quantize.metrics import mean_kl

    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    flatter = np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)
    # A model ending in Softmax: the KL of the probabilities, not of softmax(probabilities).
    assert mean_kl(flatter, probs) == pytest.approx(mean_kl(logits / 2, logits), rel=1e-6)
    assert mean_kl(probs, probs) == pytest.approx(0.0, abs=1e-12)
    masked = logits.copy()
    masked[:, 2] = -np.inf  # masked classes: no finite KL, so the search goes by the drop
    assert mean_kl(masked, masked) is None


def test_a_trial_within_budget_is_kept_even_when_its_kl_is_not_lower():
    from packager.quantize.search import Limits, Trial, best_of, search

    def attempt(i, ex):
        t = Trial(i, ex, 0.995, 0.005, 100, None, True)  # within max_drop 0.01
        t.guide = 0.02  # higher than trial 0's, by chance
        return t

    first = Trial(0, [], 0.9, 0.1, 100, None, False)
    first.guide = 0.01
    logs = []
    tried = search(first, [("a", 0.9, ("a",))], attempt, Limits(0.01, 8), logs.append)
    assert tried[1].accepted and "kept in float" in logs[0]
    assert best_of(tried) is tried[1]


def test_a_trial_over_max_float_macs_is_never_kept():
    """The graph-counted speed cap: b would meet the budget, but its float nodes hold 30% of
    the MACs (over 25%): put back, said so, never the pick; c (20%) is kept."""
    from packager.quantize.search import Limits, Trial, best_of, search

    drops = {("a",): 0.3, ("a", "b"): 0.0, ("a", "c"): 0.2}
    shares = {"a": 0.1, "b": 0.2, "c": 0.1}

    def attempt(i, ex):
        d = drops[tuple(ex)]
        t = Trial(i, ex, 1 - d, d, 100, 1.0, d <= 0.01)
        t.float_macs = sum(shares[n] for n in ex)
        return t

    first = Trial(0, [], 0.5, 0.5, 100)
    ranking = [("a", 0.9, ("a",)), ("b", 0.5, ("b",)), ("c", 0.1, ("c",))]
    logs = []
    tried = search(first, ranking, attempt, Limits(0.01, 8, max_float_macs=0.25), logs.append)
    assert [t.accepted for t in tried[1:]] == [True, False, True]
    assert "30.0% of the MACs in float, over 25.0%" in logs[1]
    assert tried[2].over_cap and tried[2].within_budget is False
    assert best_of(tried).excluded == ["a", "c"]


def test_node_macs_counts_each_conv_of_the_graph(tmp_path):
    """What max_float_macs adds up: a 3x3 conv from 2 to 4 channels on 8x8 is 4*8*8*2*9 MACs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from packager.quantize.speed import node_macs

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2, 3, 3], np.zeros(72, np.float32))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="c1", pads=[1, 1, 1, 1])
    relu = helper.make_node("Relu", ["y"], ["z"], name="r1")
    graph = helper.make_graph(
        [conv, relu],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 8, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4, 8, 8])],
        [w],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    macs, total = node_macs(path, {"x": np.zeros((5, 2, 8, 8), np.float32)})
    assert macs["c1"] == 4 * 8 * 8 * 2 * 9 and macs["r1"] == 0 and total == macs["c1"]
