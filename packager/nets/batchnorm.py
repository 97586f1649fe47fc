"""Batch norm over the global batch of a torchrun job, on any backend: each rank's per-channel
sums are all-reduced (autograd-aware), so the statistics, and the gradients through them, are
those of the whole batch, as one process computes them. torch's SyncBatchNorm does this on
GPUs only; this runs on gloo (CPUs) too. Its state dict is BatchNorm's: a student converted
for training saves and loads as the model its factory builds."""

from __future__ import annotations

import torch
from torch import nn


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm1d/2d/3d whose training statistics span every rank's rows."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist
        from torch.distributed.nn.functional import all_reduce

        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        x32 = x.float()
        count = x32.new_tensor([x32.numel() / x32.shape[1]])
        stats = all_reduce(torch.cat([x32.sum(dims), (x32 * x32).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp(min=0)
        self._track(mean.detach(), var.detach(), float(n))
        shape = [1, c] + [1] * (x.dim() - 2)
        out = (x32 - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(var * n / max(n - 1, 1), alpha=m)  # unbiased


def global_batch_norm(model: nn.Module) -> nn.Module:
    """`model` with every BatchNorm layer computing global-batch statistics under torchrun
    (torch's SyncBatchNorm on CUDA, GlobalBatchNorm elsewhere); parameters and buffers kept."""
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, GlobalBatchNorm | nn.SyncBatchNorm
        ):
            device = next(iter(child.buffers()), torch.empty(0)).device
            cls = nn.SyncBatchNorm if device.type == "cuda" else GlobalBatchNorm
            new = cls(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            setattr(model, name, new)
        else:
            global_batch_norm(child)
    return model
