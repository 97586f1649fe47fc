"""distill.device and distill.precision, resolved on this machine: a device that is not here is
one error line; bf16 runs on a CPU only with bf16 instructions; autocast and the fp16 scaler."""

from __future__ import annotations

import pytest
import torch

from packager.errors import RecipeError
from packager.nets.device import Compute, cpu_has_bf16, resolve


def _missing_cuda() -> str:
    """A CUDA device this machine does not have (cuda here; one past the last on a GPU box)."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def test_auto_picks_cuda_when_present_and_the_cpu_otherwise():
    got = resolve("auto", "fp32")
    assert got.kind == ("cuda" if torch.cuda.is_available() else got.kind)
    if not torch.cuda.is_available():
        assert got.device in ("cpu", "mps")
    assert resolve("cpu").device == "cpu"


def test_a_cuda_device_that_is_not_here_is_one_line():
    with pytest.raises(RecipeError) as err:
        resolve(_missing_cuda(), "fp32")
    line = str(err.value)
    assert "\n" not in line and line.startswith("distill.device = cuda") and "cpu" in line


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:a", "tpu"])
def test_a_device_name_outside_the_pattern_is_refused(bad):
    with pytest.raises(RecipeError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve(bad)


def test_bf16_on_this_cpu_follows_its_instructions():
    if cpu_has_bf16():
        assert resolve("cpu", "bf16") == Compute("cpu", "bf16")
    else:
        with pytest.raises(RecipeError, match="no bf16 instructions"):
            resolve("cpu", "bf16")


def test_autocast_runs_matmuls_in_the_low_precision_and_fp32_not_at_all():
    x, lin = torch.randn(2, 8), torch.nn.Linear(8, 4)
    with Compute("cpu", "bf16").autocast():
        assert lin(x).dtype == torch.bfloat16
    with Compute("cpu", "fp16").autocast():
        assert lin(x).dtype == torch.float16
    with Compute("cpu", "fp32").autocast():
        assert lin(x).dtype == torch.float32
    assert lin.weight.dtype == torch.float32  # the weights stay float32


def test_only_fp16_scales_its_gradients():
    assert Compute("cpu", "fp16").scaler().is_enabled()
    assert not Compute("cpu", "bf16").scaler().is_enabled()
    assert not Compute("cpu", "fp32").scaler().is_enabled()


def test_one_gpu_a_process_under_torchrun():
    c = Compute("cuda:0", "bf16", 2)
    assert c.for_rank(3, 4) == Compute("cuda:3", "bf16", 2) and c.for_rank(3, 1) == c
    assert Compute("cpu").for_rank(1, 2) == Compute("cpu") and not Compute("cpu").pin_memory
    described = Compute("cpu", "bf16").describe()
    assert described["precision"] == "bf16" and described["device_name"]
