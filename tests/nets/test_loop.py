"""The one training loop: any precision, checkpoints a killed run resumes from (ending where an
uninterrupted run ends), throughput counted over the global batch."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from torch import nn

from packager.nets.device import Compute, cpu_has_bf16
from packager.nets.loop import Run, sharded_map
from packager.nets.train import fit
from packager.progress import Reporter, SilentReporter


def _blobs(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 240)
    x = (rng.normal(0, 1, (240, 8)) + 2.5 * np.eye(3, 8)[y]).astype(np.float32)
    return x[:180], y[:180], x[180:], y[180:]


def _fit(run: Run, epochs: int = 6, loss_fn=None, reporter=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    ce = nn.CrossEntropyLoss()
    res = fit(
        model,
        loss_fn or (lambda logits, y, _i: ce(logits, y)),
        *_blobs(),
        epochs=epochs,
        batch_size=32,
        lr=0.02,
        seed=0,
        reporter=reporter or SilentReporter(),
        run=run,
    )
    return model, res


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_model_learns_in_every_precision_and_keeps_float32_weights(precision):
    if precision == "bf16" and not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions (bf16 is refused on it: test_device)")
    model, res = _fit(Run(Compute("cpu", precision)))
    assert res.best_val > 0.8 and res.curve[-1]["train_loss"] < res.curve[0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert res.items == 6 * 180 and res.steps == 6 * 6 and res.throughput() > 0
    if precision != "fp32":  # autocast took effect: not the fp32 run's weights
        ref, _ = _fit(Run(Compute("cpu", "fp32")))
        assert not torch.equal(ref[0].weight, model[0].weight)


def test_a_run_killed_mid_epoch_resumes_from_its_checkpoint_and_ends_where_it_would(tmp_path):
    whole, whole_res = _fit(Run(Compute(), work=str(tmp_path / "a"), checkpoint_steps=4))
    ce, calls = nn.CrossEntropyLoss(), [0]

    def dies_at_step_17(logits, y, _i):
        calls[0] += 1
        if calls[0] == 17:  # epoch 3 (6 steps an epoch), its 5th batch
            raise KeyboardInterrupt  # as a Ctrl-C or a kill would
        return ce(logits, y)

    work = Run(Compute(), work=str(tmp_path / "b"), checkpoint_steps=4)
    with pytest.raises(KeyboardInterrupt):
        _fit(work, loss_fn=dies_at_step_17)
    assert (tmp_path / "b" / "checkpoint.pt").is_file()
    again, res = _fit(work)
    assert res.resumed_at == [16]  # the last checkpoint: mid-epoch 3, after its 4th batch
    for a, b in zip(whole.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    assert res.curve == whole_res.curve and res.steps == whole_res.steps


def test_a_finished_run_resumed_again_does_not_train_more(tmp_path):
    run = Run(Compute(), work=str(tmp_path), checkpoint_steps=100)
    first, res = _fit(run)
    again, res2 = _fit(run)
    assert res2.steps == res.steps and res2.resumed_at == [res.steps]
    assert all(
        torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters(), strict=True)
    )


def test_sharded_map_in_one_process_is_a_map_in_order():
    got = list(sharded_map([3, 1, 2], lambda v: v * 10, Run()))
    assert got == [(3, 30), (1, 10), (2, 20)]


def test_the_progress_line_shows_the_loss_and_the_throughput():
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    _fit(Run(Compute()), epochs=2, reporter=Reporter(console, live=True))
    rates = [float(r) for r in re.findall(r"examples/s=([0-9.e+]+)", out.getvalue())]
    assert rates and all(r > 0 for r in rates), out.getvalue()[-500:]
    assert re.search(r"train .*12/12 loss=[0-9.]+ examples/s=[0-9.e+]+ ", out.getvalue())
