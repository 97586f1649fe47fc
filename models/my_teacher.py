"""A template teacher for models/python-teacher.yaml: your own PyTorch model, as edgepack loads it.

edgepack imports this module from the recipe's folder and calls `make_teacher(**teacher.kwargs)`
for an `nn.Module`, then loads `teacher.weights` (.safetensors, or a .pt state_dict read with
weights_only=True) into it. Replace the class with your model; keep the factory's signature.

    python models/my_teacher.py    # trains this one on the digits (~10 s), writes my_teacher.safetensors
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """8x8 grayscale digits, (batch, 1, 8, 8) scaled to 0..1 as builtin:digits gives them, to 10
    logits."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_teacher(hidden: int = 128) -> nn.Module:
    """The factory the recipe names: python:my_teacher:make_teacher."""
    return DigitsMLP(hidden)


def train(out: Path, hidden: int = 128, epochs: int = 60, seed: int = 0) -> float:
    """Train on 80% of sklearn's digits (a seeded shuffle) and save the weights; returns the
    accuracy on the other 20% (not the build's split: its test accuracy of this teacher is
    optimistic). Stands in for the training you already did on your own model."""
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    d = load_digits()
    order = torch.randperm(len(d.target))
    x = torch.tensor(d.data, dtype=torch.float32).reshape(-1, 1, 8, 8)[order] / 16.0
    y = torch.tensor(d.target)[order]
    cut = int(0.8 * len(x))
    model = make_teacher(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for i in torch.randperm(cut).split(64):
            loss = nn.functional.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x[cut:]).argmax(1) == y[cut:]).float().mean().item()
    save_file(model.state_dict(), str(out))
    return acc


if __name__ == "__main__":
    path = Path(__file__).with_name("my_teacher.safetensors")
    print(f"held-out accuracy {train(path):.4f}; wrote {path}")
