"""Models x targets x threads x batch: every configuration gets the kinds of number it can
honestly have, and every record says which kind it is.

- target `host`: `measured` here, one child per (model, threads, batch).
- target `ssh://user@host`: `measured` on that machine (packager.bench.remote).
- a device profile (rpi4, ...): `host-emulated` here under its thread count and memory cap,
  and `estimated` by the cost model against its published peaks. Thread counts are the
  requested ones capped at the device's cores, plus the device's own core count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bench.errors import BenchError
from packager.bench.runner import guess_notes, run_one
from packager.bench.schema import SCHEMA, validate_result
from packager.bench.targets import TargetProfile, is_ssh, load_targets

# progress(done, total, what): called before each job starts, with the jobs done so far.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class BenchModel:
    """One model to benchmark: its file, a label for tables, and optional sample feeds."""

    path: Path
    label: str
    variant: str | None = None
    samples: Path | None = None  # .npz of example feeds (a package's samples)


@dataclass(frozen=True)
class BenchOptions:
    threads: tuple[int, ...] = (1,)
    batches: tuple[int, ...] = (1,)
    warmup: int = 10
    runs: int | None = 100
    seconds: float | None = None
    dims: Mapping[str, int] | None = None
    memory_cap_mb: float | None = None  # overrides each profile's app/device memory
    feeds: Path | None = None  # .npz of real feeds for bare models (packages use their samples)
    keep_raw: bool = True
    timeout: float = 600
    lm: Mapping[str, Any] | None = None  # language models: tokens/s (bench.lm_child spec)
    # The latency model's classes of quantized ops (packager.quantize.registry.op_classes).
    op_classes: Mapping[str, Any] | None = None


def has_kv_cache(path: Path) -> bool:
    """A decoder graph with past_key_values.* inputs: benchmarked in tokens per second."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(i.name.startswith("past_key_values.") for i in graph.input)


def profile_threads(profile: TargetProfile, threads: Sequence[int]) -> list[int]:
    cores = profile.cores or 1
    return sorted({min(t, cores) for t in threads} | {cores})


def sample_feeds(samples: Path, batch: int) -> dict[str, Any]:
    """A package's sample inputs or a user's feeds (.npz, one array per input name), cycled to
    `batch` rows (fewer rows than batch repeat)."""
    from packager.bench.feeds import load_feeds

    return load_feeds(samples, batch)


def run_suite(
    models: Sequence[BenchModel],
    targets: Sequence[str],
    options: BenchOptions,
    *,
    targets_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    calibration: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every record for every (model, target, threads, batch), measured ones first. With a host
    `calibration` (packager.bench.latency), estimates carry the latency model's too."""
    profiles = load_targets(targets_dir)
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for target in targets:
        if not is_ssh(target) and target not in profiles:
            raise BenchError(f"unknown target {target!r} (see `edgepack targets`)")
        profile = None if is_ssh(target) else profiles[target]
        for model in models:
            for batch in options.batches:
                jobs += _jobs_for(model, target, profile, batch, options, calibration)
    results = []
    for i, (what, job) in enumerate(jobs):
        if progress is not None:
            progress(i, len(jobs), what)
        results.append(validate_result(job()))
    order = {"measured": 0, "host-emulated": 1, "estimated": 2}
    return sorted(results, key=lambda r: order[r["kind"]])  # stable within a kind


def _jobs_for(model, target, profile, batch, options, calibration=None):
    feeds, source = None, None
    if model.samples is not None:
        feeds, source = sample_feeds(model.samples, batch), "samples"
        if options.dims:  # the user's dims win over the samples' own lengths
            from packager.bench.feeds import fit_to_dims

            feeds = fit_to_dims(feeds, model.path, options.dims)
    elif options.feeds is not None:
        feeds, source = sample_feeds(options.feeds, batch), "given"
    shapes = {name: list(value.shape) for name, value in (feeds or {}).items()}
    common = {
        "batch": batch,
        "warmup": options.warmup,
        "runs": options.runs,
        "seconds": options.seconds,
        "inputs": feeds,
        "dims": options.dims,
        "timeout": options.timeout,
    }
    if options.lm:  # tokens/s; a decoder's past inputs are the loop's, never sample feeds
        common |= {"lm": options.lm, "inputs": None}

    def tag(record: dict[str, Any]) -> dict[str, Any]:
        record["variant"] = model.variant
        record["model_name"] = model.label
        if source is not None:
            record["input_source"] = source
        return record

    where = f"{model.label} on {target}, batch {batch}"
    jobs = []
    if profile is None:  # ssh://
        for t in options.threads:
            jobs.append(
                (
                    f"{where}, {t} thread(s), measured",
                    lambda t=t: tag(_remote(model, target, t, common)),
                )
            )
    elif profile.host:
        for t in options.threads:
            jobs.append(
                (
                    f"{where}, {t} thread(s), measured",
                    lambda t=t: tag(
                        run_one(model.path, threads=t, keep_raw=options.keep_raw, **common)
                    ),
                ),
            )
    else:
        cap = options.memory_cap_mb or profile.memory_cap_mb
        for t in profile_threads(profile, options.threads):
            jobs.append(
                (
                    f"{where}, {t} thread(s), host-emulated",
                    lambda t=t: tag(_emulated(model, profile, t, cap, options, common)),
                )
            )
            if profile.can_estimate() and not options.lm:  # the cost model has no KV loop
                jobs.append(
                    (
                        f"{where}, {t} thread(s), estimated",
                        lambda t=t: tag(
                            estimate(
                                model.path,
                                profile,
                                threads=t,
                                batch=batch,
                                dims=options.dims,
                                shapes=shapes,
                                memory_cap_mb=cap,
                                calibration=calibration,
                                op_classes=options.op_classes,
                            )
                        ),
                    )
                )
    return jobs


def _remote(model: BenchModel, target: str, threads: int, common: dict) -> dict[str, Any]:
    from packager.bench.remote import run_remote

    record = run_remote(target, model.path, threads=threads, **common)
    record["target"] = target
    record.setdefault("status", "ok")
    record.setdefault("model_name", model.path.name)
    return record


def _emulated(model, profile, threads, cap, options, common) -> dict[str, Any]:
    record = run_one(
        model.path,
        threads=threads,
        keep_raw=options.keep_raw,
        memory_cap_mb=cap,
        target=profile.name,
        emulates=profile.name,
        **common,
    )
    host = record["machine"]
    notes = [
        f"latency is this host's CPU ({host['cpu']}, {host['arch']}) under {profile.name}'s "
        f"thread count and {cap:g} MB cap, not a {profile.cpu}"
    ]
    usable = host.get("usable_cores") or host.get("logical_cores") or 1
    record["oversubscribed"] = threads > usable
    if threads > usable:
        notes.append(
            f"{threads} threads oversubscribe this host's {usable} usable cores: flagged, and "
            "left out of every comparison"
        )
    if profile.execution_provider != "CPUExecutionProvider":
        notes.append(
            f"the device would prefer {profile.execution_provider}; this run used "
            "CPUExecutionProvider"
        )
    record["notes"] = [*notes, *record.get("notes", [])]
    return record


def _profile_machine(profile: TargetProfile) -> dict[str, Any]:
    return {
        "cpu": profile.cpu or profile.name,
        "arch": profile.arch,
        "logical_cores": profile.cores,
        "memory_mb": profile.memory_mb,
        "isa": list(profile.isa),
        "profile": profile.name,
        "execution_provider": profile.execution_provider,
    }


def estimate(
    model_path: str | os.PathLike[str],
    profile: TargetProfile,
    *,
    threads: int,
    batch: int = 1,
    dims: Mapping[str, int] | None = None,
    shapes: Mapping[str, list[int]] | None = None,
    memory_cap_mb: float | None = None,
    calibration: dict[str, Any] | None = None,
    op_classes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An `estimated` record: the cost model's roofline against the profile's peaks, at the
    shapes of the real feeds when there are some (`shapes`), else at `batch` and `dims`; with a
    calibration, the latency model's too (`op_classes`: its classes of quantized ops)."""
    from packager.bench.costmodel import analyze, roofline

    if not profile.can_estimate():
        raise BenchError(f"target {profile.name} has no peak_gflops/bandwidth_gbs to estimate with")
    path = Path(model_path)
    try:
        cost = analyze(path, batch=batch, dims=dims, shapes=shapes)
    except Exception as err:  # a graph onnx cannot load is the user's file, not our bug
        raise BenchError(f"cost model of {path.name}: {type(err).__name__}: {err}") from None
    roof = roofline(
        cost,
        peak_gflops=profile.peak_gflops.value,
        bandwidth_gbs=profile.bandwidth_gbs.value,
        threads=threads,
        cores=profile.cores or 1,
        peak_int8_gops=profile.peak_int8_gops.value if profile.peak_int8_gops else None,
    )
    notes = ["roofline lower bound from published peaks: no per-op overhead, ideal caches"]
    notes += _int8_notes(profile, cost)
    if cost.unknown_ops:
        notes.append(f"{cost.unknown_ops} op(s) with uninferred shapes are counted as zero")
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "estimated",
        "status": "ok",
        "target": profile.name,
        "machine": _profile_machine(profile),
        "model": str(path.resolve()),
        "model_name": path.name,
        "file_size_mb": path.stat().st_size / 1e6,
        "threads": threads,
        "batch": batch,
        "inputs": cost.inputs,
        "estimate": {
            "method": "roofline",
            **cost.to_json(with_ops=False),
            **roof,
            "sources": {
                "peak_gflops": profile.peak_gflops.source,
                "bandwidth_gbs": profile.bandwidth_gbs.source,
                **(
                    {"peak_int8_gops": profile.peak_int8_gops.source}
                    if profile.peak_int8_gops and cost.int8_macs
                    else {}
                ),
            },
        },
        "notes": notes,
    }
    record["estimate"].pop("inputs")
    if calibration is not None:
        where = (profile, calibration, threads, batch, dims, shapes, op_classes)
        _add_latency_model(record, path, *where)
    record["guessed_dims"] = record["estimate"].pop("guessed_dims")
    record["notes"] += guess_notes(cost.guessed_dims)
    need_mb = (cost.param_bytes + cost.activation_peak_bytes) / (1024 * 1024)
    if memory_cap_mb is not None and need_mb > memory_cap_mb:
        record["status"] = "does-not-fit"
        record["message"] = (
            f"does not fit in {memory_cap_mb:g} MB (estimated): weights and peak activations "
            f"alone need {need_mb:.0f} MB, before the runtime's own memory"
        )
    return record


def _add_latency_model(
    record, path, profile, calibration, threads, batch, dims, shapes, op_classes
) -> None:
    """The latency model's point and band beside the roofline bound, and a note saying so."""
    from packager.bench.latency import predict

    try:
        p = predict(
            path, calibration, profile, threads=threads, batch=batch, dims=dims, shapes=shapes,
            quantized=op_classes,
        )  # fmt: skip
    except Exception as err:  # onnxruntime could not optimize the graph: the user's file
        raise BenchError(f"latency model of {path.name}: {type(err).__name__}: {err}") from None
    keep = ("method", "latency_ms", "low_ms", "high_ms", "band", "classes_ms", "kernels")
    m = record["estimate"]["model"] = {k: p[k] for k in (*keep, "overhead_scale")}
    record["notes"].append(
        f"latency model: {m['latency_ms']:.4g} ms (band {m['low_ms']:.3g}-{m['high_ms']:.3g}): "
        "host-measured per-op-class costs scaled by the profile's peaks"
    )


def _int8_notes(profile: TargetProfile, cost) -> list[str]:
    """How the int8 ops were priced, said in every estimated record that has some."""
    if not cost.int8_macs:
        return []
    share = f"int8 ops ({cost.int8_macs / max(cost.macs, 1):.0%} of the MACs)"
    if profile.peak_int8_gops is not None:
        return [
            f"{share} priced at the int8 dot-product peak ({profile.peak_int8_gops.value:g} GOP/s)"
        ]
    if not profile.int8_dot_product:
        return [
            f"{share} priced at the FP32 peak: {profile.name} has no int8 dot-product "
            "instructions (asimddp / VNNI), so int8 gains little compute there"
        ]
    return [f"{share} priced at the FP32 peak: the profile gives no int8 peak figure"]


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records (raw latencies included) of a bench.json the bench stage wrote."""
    import json

    return json.loads(Path(path).read_text())["results"]
