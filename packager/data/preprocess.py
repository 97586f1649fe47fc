"""The tensor preprocessing a package records: x = (raw * scale + offset - mean) / std, reshaped
to (-1, *sample_shape). The runtimes implement the same formula from the manifest; `verify`
compares the two on the package's samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    sample_shape: tuple[int, ...]
    scale: float = 1.0
    offset: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    dtype: str = "float32"
    input: str = "input"

    def to_manifest(self) -> dict:
        d = asdict(self)
        d["sample_shape"] = list(self.sample_shape)
        return {"type": "tensor", **d}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        d = {k: v for k, v in d.items() if k != "type"}
        d["sample_shape"] = tuple(d["sample_shape"])
        return cls(**d)


def preprocess(raw: np.ndarray, spec: Preprocessing) -> np.ndarray:
    x = np.asarray(raw, dtype=np.float64) * spec.scale + spec.offset
    x = (x - spec.mean) / spec.std
    return x.astype(spec.dtype).reshape(-1, *spec.sample_shape)
