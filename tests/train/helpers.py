"""Test helpers: a stand-in for cnndsl.ir.Spec and small hand-written models."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn


class FakeSpec:
    """Quacks like cnndsl.ir.Spec for the runner: .train, .train_span, .path, and what
    cnndsl.canonical.spec_hash reads (.blocks, .model_dump)."""

    blocks = ()

    def __init__(self, train: dict, net: str = "tiny", path: str | None = None, **net_kw: Any):
        self.train, self.net, self.path, self.net_kw = train, net, path, net_kw

    def train_span(self, path: tuple) -> Any:
        from cnndsl.errors import Span
        return Span("fake.cnn", 10 + len(path), 5) if path else None

    def model_dump(self, **_: Any) -> dict:
        return json.loads(json.dumps({"blocks": [], "network": {"net": self.net, "kw": self.net_kw},
                                      "train": self.train}, default=str))


class Tiny(nn.Module):
    """conv-bn-relu-pool, dropout, linear: exercises BN buffers and dropout RNG."""

    def __init__(self, c: int = 3, hw: int = 8, classes: int = 4, width: int = 8, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Conv2d(c, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(width * (hw // 2) ** 2, classes)
        self.cnndsl_input_shape = (c, hw, hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(self.drop(x.flatten(1)))


def build_tiny(spec: FakeSpec, **params: Any) -> nn.Module:
    kw = {**spec.net_kw, **params}
    return Tiny(**kw)


def synthetic_train(**over: Any) -> dict:
    t = {"data": {"type": "synthetic", "num_train": 96, "num_val": 32, "shape": [3, 8, 8], "num_classes": 4},
         "epochs": 2, "batch_size": 16, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
         "device": "cpu", "log_every": 1000}
    t.update(over)
    return t
