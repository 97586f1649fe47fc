"""The latency model against published CPU benchmarks: predicted vs published latency for
(model, device) pairs, with the error. Prints the README's validation table.

    .venv/bin/python scripts/validate_latency_model.py [--cache-dir DIR]

The published figures are TensorFlow Lite's "Performance benchmarks" page
(tensorflow.org/lite/performance/benchmarks, the table of Android results, "CPU, 4 threads"
column; Pixel 3 and Pixel 4), transcribed from memory because this machine has no internet:
they could not be re-checked here. They are TFLite's kernels, not onnxruntime's, on 224x224
(MobileNet) and 299x299 (Inception) inputs. The graphs are rebuilt here from the papers'
architectures (random weights: latency does not depend on them); the int8 MobileNet is this
repo's static QDQ quantization of it. The device profiles are in scripts/validation_targets/.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (model, device profile, published ms, where)
PUBLISHED = [
    ("mobilenet_v1_1.0_224 float", "pixel3-cpu", 23.9),
    ("mobilenet_v1_1.0_224 float", "pixel4-cpu", 14.0),
    ("mobilenet_v1_1.0_224 int8", "pixel3-cpu", 13.4),
    ("mobilenet_v1_1.0_224 int8", "pixel4-cpu", 5.0),
    ("inception_v4 float", "pixel3-cpu", 486.0),
    ("inception_v4 float", "pixel4-cpu", 324.1),
]
SOURCE = "TFLite performance benchmarks, Android, CPU 4 threads (transcribed)"


def _bn(c_in: int, c_out: int, k, s=1, p=0, groups=1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


def mobilenet_v1() -> nn.Module:
    """Howard et al. 2017, width 1.0: a 3x3 stem, 13 depthwise-separable blocks, pool, FC."""
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5
    cfg += [(1024, 2), (1024, 1)]
    layers, c = [_bn(3, 32, 3, 2, 1)], 32
    for out, stride in cfg:
        layers += [_bn(c, c, 3, stride, 1, groups=c), _bn(c, out, 1)]
        c = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1001))


class _Cat(nn.Module):
    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


def _seq(*specs) -> nn.Sequential:
    """(c_in, c_out, kernel, stride, padding) convs in a row."""
    return nn.Sequential(*(_bn(*s) for s in specs))


def _pool(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _bn(c_in, c_out, 1))


def inception_v4() -> nn.Module:
    """Szegedy et al. 2016 (Inception-v4): stem, 4x A, reduction A, 7x B, reduction B, 3x C."""
    stem = nn.Sequential(
        _seq((3, 32, 3, 2, 0), (32, 32, 3, 1, 0), (32, 64, 3, 1, 1)),
        _Cat(nn.MaxPool2d(3, 2), _bn(64, 96, 3, 2, 0)),
        _Cat(
            _seq((160, 64, 1, 1, 0), (64, 96, 3, 1, 0)),
            _seq(
                (160, 64, 1, 1, 0),
                (64, 64, (1, 7), 1, (0, 3)),
                (64, 64, (7, 1), 1, (3, 0)),
                (64, 96, 3, 1, 0),
            ),
        ),
        _Cat(_bn(192, 192, 3, 2, 0), nn.MaxPool2d(3, 2)),
    )
    a = [
        _Cat(_pool(384, 96), _bn(384, 96, 1), _seq((384, 64, 1, 1, 0), (64, 96, 3, 1, 1)),
             _seq((384, 64, 1, 1, 0), (64, 96, 3, 1, 1), (96, 96, 3, 1, 1)))
        for _ in range(4)
    ]  # fmt: skip
    red_a = _Cat(
        nn.MaxPool2d(3, 2),
        _bn(384, 384, 3, 2, 0),
        _seq((384, 192, 1, 1, 0), (192, 224, 3, 1, 1), (224, 256, 3, 2, 0)),
    )
    b = [
        _Cat(_pool(1024, 128), _bn(1024, 384, 1),
             _seq((1024, 192, 1, 1, 0), (192, 224, (1, 7), 1, (0, 3)), (224, 256, (7, 1), 1, (3, 0))),
             _seq((1024, 192, 1, 1, 0), (192, 192, (1, 7), 1, (0, 3)), (192, 224, (7, 1), 1, (3, 0)),
                  (224, 224, (1, 7), 1, (0, 3)), (224, 256, (7, 1), 1, (3, 0))))
        for _ in range(7)
    ]  # fmt: skip
    red_b = _Cat(
        nn.MaxPool2d(3, 2),
        _seq((1024, 192, 1, 1, 0), (192, 192, 3, 2, 0)),
        _seq((1024, 256, 1, 1, 0), (256, 256, (1, 7), 1, (0, 3)), (256, 320, (7, 1), 1, (3, 0)),
             (320, 320, 3, 2, 0)),
    )  # fmt: skip

    class _C(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.one = _pool(1536, 256), _bn(1536, 256, 1)
            self.b3, self.b3a, self.b3b = (
                _bn(1536, 384, 1),
                _bn(384, 256, (1, 3), 1, (0, 1)),
                _bn(384, 256, (3, 1), 1, (1, 0)),
            )
            self.b5 = _seq(
                (1536, 384, 1, 1, 0), (384, 448, (1, 3), 1, (0, 1)), (448, 512, (3, 1), 1, (1, 0))
            )
            self.b5a, self.b5b = _bn(512, 256, (3, 1), 1, (1, 0)), _bn(512, 256, (1, 3), 1, (0, 1))

        def forward(self, x):
            t, u = self.b3(x), self.b5(x)
            parts = [self.pool(x), self.one(x), self.b3a(t), self.b3b(t), self.b5a(u), self.b5b(u)]
            return torch.cat(parts, 1)

    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1536, 1001)]
    return nn.Sequential(stem, *a, red_a, *b, red_b, *(_C() for _ in range(3)), *head)


def _export(net: nn.Module, side: int, path: Path) -> Path:
    torch.manual_seed(0)
    torch.onnx.export(net.eval(), torch.randn(1, 3, side, side), str(path), dynamo=False,
                      input_names=["input"], output_names=["logits"], opset_version=17)  # fmt: skip
    return path


def _int8(fp32: Path, out: Path, side: int) -> Path:
    """Static QDQ, per-channel weights, u8 activations: the repo's static mode's settings."""
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.items = iter([{"input": rng.standard_normal((1, 3, side, side)).astype("float32")}
                               for _ in range(4)])  # fmt: skip

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    from packager import pipeline
    from packager.bench.latency import predict
    from packager.bench.targets import load_targets
    from packager.plans import calibrate_step

    res = pipeline.run([calibrate_step()], cache_dir=args.cache_dir)
    cal = json.loads(res.artifact("calibrate").file().read_text())
    profiles = load_targets(ROOT / "scripts" / "validation_targets")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        mb = _export(mobilenet_v1(), 224, t / "mobilenet.onnx")
        models = {
            "mobilenet_v1_1.0_224 float": mb,
            "mobilenet_v1_1.0_224 int8": _int8(mb, t / "mobilenet.int8.onnx", 224),
            "inception_v4 float": _export(inception_v4(), 299, t / "inception_v4.onnx"),
        }
        rows = []
        for name, device, published in PUBLISHED:
            p = predict(models[name], cal, profiles[device], threads=4)
            err = p["latency_ms"] / published - 1
            rows.append((name, device, published, p, err))
    print("| model | device | published ms | predicted ms (band) | error |")
    print("|---|---|---:|---:|---:|")
    for name, device, published, p, err in rows:
        print(f"| {name} | {device} | {published:g} | {p['latency_ms']:.1f} "
              f"({p['low_ms']:.1f}-{p['high_ms']:.1f}) | {err:+.0%} |")  # fmt: skip
    logs = [abs(math.log(1 + e)) for *_, e in rows]
    print(f"\nmean |error| {sum(abs(e) for *_, e in rows) / len(rows):.0%}; worst factor "
          f"x{math.exp(max(logs)):.2f}; within the stated band: "
          f"{sum(r[3]['low_ms'] <= r[2] <= r[3]['high_ms'] for r in rows)}/{len(rows)}")  # fmt: skip
    print(
        f"host: {cal['host']['cpu']}, {cal['peaks']['rule']}, clock {cal['peaks']['clock_ghz']:.2f} GHz"
    )
    print(f"published: {SOURCE}")


if __name__ == "__main__":
    main()
