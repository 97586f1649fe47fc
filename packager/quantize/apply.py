"""One quantization, whole: quantize, measure against fp32, search under the accuracy budget,
check the output loads, time it beside fp32, and say what held.

    result = quantize_model(src, original, cfg, workdir, calib=..., batches=..., dataset=...)

Trial 0 quantizes everything the config allows; over `max_drop`, the search keeps the most
sensitive nodes in float, a chunk more per trial (packager.quantize.search), only while that
lowers the drop (for top-1 agreement: the KL to fp32); every trial goes to search.md/search.json.
The quantize stage reads its inputs, calls this with plain arguments and builds its output.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.config import QuantizeConfig
from packager.errors import EdgepackError, one_line
from packager.quantize import search as S
from packager.quantize.quantizer import Quantizer

Log = Callable[[str], None]


class QuantizeFailed(Exception):
    """A library call failed where nothing can be kept (the first trial, the output's load):
    one line, for the stage to name itself in."""


@dataclass
class Result:
    quantizer: Quantizer
    best: S.Trial
    trials: list[S.Trial]
    metric: dict[str, Any] | None
    speed: dict[str, Any] | None
    verdict: dict[str, Any]


def quantize_model(
    src: Path,
    original: Path,
    cfg: QuantizeConfig,
    workdir: Path,
    *,
    out: Path,
    calib=None,
    batches=None,
    dataset: str | None = None,
    log: Log = print,
    warn: Log = print,
) -> Result:
    """Quantize `src` (sizes, the metric and the speed check relative to `original`, the model
    before optimize/slim) into `out`; `batches` are the evaluation data, `calib` the
    calibration source. Scratch files go to `workdir` and are removed."""
    from packager.quantize.speed import checked_speed, example_feeds

    work = workdir / "work"
    work.mkdir()
    evaluator = _evaluator(cfg, original, batches, dataset)
    feeds = example_feeds(cfg, original, batches, calib)
    qz = _guard(cfg, lambda: Quantizer(src, cfg, work, calib, feeds["feeds"], feeds["why"]))
    _log_upgrade(log, warn, qz.upgrade)
    for w in qz.warnings:
        warn(w)
    search = _Search(cfg, qz, evaluator, batches, feeds["feeds"], work, log, warn)
    trials, candidates = search.trials()
    best = S.best_of(trials)
    shutil.copyfile(best.path, out)
    _carry_metadata(log, src, out)
    _check_output(cfg, warn, original, out)
    if cfg.max_drop is not None:
        S.write_table(
            trials, workdir, metric=cfg.metric, fp32=evaluator.fp32, max_drop=cfg.max_drop
        )
    # Timed afresh, fp32 and quantized back to back: a search trial's p50 was taken minutes
    # earlier under other load, and a side-by-side claim needs both sides under the same.
    speed, warnings = checked_speed(cfg, original, out, feeds)
    for w in warnings:
        warn(w)
    verdict = _verdict(cfg, warn, best, trials, candidates)
    shutil.rmtree(work)
    metric = None
    if evaluator is not None:
        metric = {
            "name": cfg.metric,
            "fp32": evaluator.fp32,
            "quantized": best.metric,
            "drop": best.drop,
            "examples": evaluator.examples,
            "dataset": dataset,
        }
    return Result(qz, best, trials, metric, speed, verdict)


def _evaluator(cfg: QuantizeConfig, original: Path, batches, dataset):
    from packager.quantize.metrics import Evaluator

    if batches is None:
        return None
    return Evaluator(
        original,
        batches,
        cfg.metric,
        where=dataset,
        class_axis=cfg.class_axis,
        threshold=cfg.iou_threshold,
    )


def _log_upgrade(log: Log, warn: Log, up: dict[str, Any] | None) -> None:
    head = up and f"opset {up['from']} upgraded to {up['to']} with onnx's version converter"
    if up and up["checked"]:
        log(f"{head}; max |upgraded - original| = {up['max_abs_diff']:.2e}")
    elif up:
        warn(f"{head}, NOT checked against the original: {up['why']}")


class _Search:
    """The trials of one quantization: trial 0 and, over budget, the accuracy search."""

    def __init__(self, cfg, qz: Quantizer, evaluator, batches, feeds, work: Path, log, warn):
        from packager.quantize.speed import node_macs

        self.cfg, self.qz, self.evaluator, self.batches = cfg, qz, evaluator, batches
        self.feeds, self.work, self.log, self.warn = feeds, work, log, warn
        self.macs, self.total = node_macs(qz.graph, feeds) if cfg.max_float_macs else ({}, 0)

    def scored(self, i: int, extra: list[str]) -> S.Trial:
        from packager.quantize.speed import latency

        cfg, qz, ev = self.cfg, self.qz, self.evaluator
        path = self.work / f"trial{i}.onnx"
        qz.write(path, extra)
        metric, guide = ev.scores(path) if ev else (None, None)
        drop = None if metric is None else ev.drop(metric)
        within = None if cfg.max_drop is None else drop <= cfg.max_drop + 1e-12
        # Each candidate is timed only when the search may compare several.
        timed = cfg.speed_check and cfg.max_drop is not None
        p50 = latency(path, cfg.speed_threads, cfg.speed_runs, self.feeds) if timed else None
        excluded, size = [*qz.excluded, *extra], path.stat().st_size
        t = S.Trial(i, excluded, metric, drop, size, p50, within, str(path), guide=guide)
        t.float_macs = (
            sum(self.macs.get(n, 0) for n in excluded) / self.total if self.total else None
        )
        if cfg.min_speedup is not None and p50:  # fp32 timed right beside it: same load
            t.speedup = latency(qz.graph, cfg.speed_threads, cfg.speed_runs, self.feeds) / p50
        return t

    def attempt(self, i: int, extra: list[str]) -> S.Trial:
        if i == 0:  # nothing to fall back on: the quantization fails
            return _guard(self.cfg, lambda: self.scored(i, extra))
        try:
            return self.scored(i, extra)
        except Exception as err:  # onnxruntime or the quantizer on one candidate
            # A failed candidate is a row in the table, not the end of the search: the
            # earlier trials (and the best model among them) are kept.
            self.warn(f"search trial {i} failed ({one_line(err)}); trials before it kept")
            path = self.work / f"trial{i}.onnx"
            size = path.stat().st_size if path.is_file() else 0
            excluded = [*self.qz.excluded, *extra]
            return S.Trial(i, excluded, None, None, size, within_budget=False, error=one_line(err))

    def trials(self) -> tuple[list[S.Trial], list[str]]:
        """(trials, the search's candidates)."""
        cfg, qz = self.cfg, self.qz
        first = self.attempt(0, [])
        if cfg.max_drop is None or first.within_budget:
            return [first], []
        self.log(
            f"{cfg.mode}: {cfg.metric} drop {first.drop:.4f} is over max_drop "
            f"{cfg.max_drop:g}; searching for nodes to keep in float"
        )
        candidates = S.candidates_of(qz.graph, qz.quantizable_ops(), qz.excluded)
        ranking = self.ranking(Path(first.path), candidates)
        cap = (
            None
            if cfg.max_size_ratio is None
            else int(cfg.max_size_ratio * qz.graph.stat().st_size)
        )
        trials = S.search(
            first,
            ranking,
            self.attempt,
            S.Limits(cfg.max_drop, cfg.max_trials, cap, cfg.min_speedup, cfg.max_float_macs),
            self.log,
        )
        return trials, candidates

    def ranking(self, first: Path, candidates: list[str]):
        """The candidates, most sensitive first, each with the producers it needs in float."""
        from packager.quantize import effects as E

        cfg, qz = self.cfg, self.qz
        try:
            ranking = S.node_sensitivity(qz.graph, first, self.batches, candidates)
            if qz.scheme.int8_weights:  # weighted nodes first: effect per float weight
                bits = 7 if qz.reduce_range else 8
                effects = E.weight_effects(
                    qz.graph, self.batches, candidates, cfg.per_channel, bits
                )
                ranking = E.by_measured_effect(ranking, effects)
        except Exception as err:  # the augmented models failed in onnxruntime
            self.warn(
                f"node sensitivity could not be measured ({one_line(err)}); "
                "trying candidates in graph order"
            )
            ranking = [(name, None) for name in candidates]
        return S.with_producers(ranking, qz.graph, first, candidates)


def _carry_metadata(log: Log, src: Path, out: Path) -> None:
    """The input's metadata_props (an edgepack package's lineage, a user's own) survive."""
    from packager.provenance.onnx_meta import carry

    if carry(src, out):
        log("metadata_props the quantizer dropped were re-applied")


def _check_output(cfg: QuantizeConfig, warn: Log, src: Path, out: Path) -> None:
    """The quantized model must load in onnxruntime (or it is an error, never exit 0), and a
    model that grew is said out loud."""
    from packager.onnx_utils import ort_message, session

    try:
        session(out)
    except Exception as err:
        # onnxruntime names the file it read: a temporary folder in the cache, no use to anyone.
        why = ort_message(err).replace(str(out), "the output")
        raise QuantizeFailed(
            f"the {cfg.mode} model does not load in onnxruntime ({why}); nothing was written"
        ) from None
    grown = out.stat().st_size / max(1, src.stat().st_size)
    if grown > 1.0 and cfg.mode != "none":
        warn(
            f"the {cfg.mode} model is {grown:.0%} of the input's size: nothing in it was "
            "quantized that shrinks it (check the ops the mode covers, or exclude_* settings)"
        )


def _verdict(cfg: QuantizeConfig, warn: Log, best, trials, candidates) -> dict[str, Any]:
    """Whether the budget held, and whether it held only by keeping everything in float."""
    budget_met = None if cfg.max_drop is None else bool(best.within_budget)
    all_float = bool(candidates) and set(candidates) <= set(best.excluded)
    if budget_met and all_float:
        warn(
            f"the budget held only with every {cfg.mode} candidate node in float: "
            "the model is effectively not quantized; raise max_drop or try another mode"
        )
    if budget_met is False:
        warn(
            f"accuracy budget NOT met: {cfg.metric} drop {best.drop:.4f} of the pick"
            f"{' (the lowest KL to fp32)' if best.guide is not None else ''} > "
            f"max_drop {cfg.max_drop:g} after {len(trials)} trial(s) ({len(best.excluded)} "
            "node(s) in float); the best model and search.md were written anyway"
        )
    return {"budget_met": budget_met, "all_candidates_in_float": all_float}


def _guard(cfg: QuantizeConfig, fn):
    """Run a library call; its failure becomes one line naming the mode."""
    try:
        return fn()
    except EdgepackError:
        raise
    except Exception as err:
        raise QuantizeFailed(f"{cfg.mode} quantization failed: {one_line(err)}") from err
