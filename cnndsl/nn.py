"""Runtime modules for operations torch.nn has no class for (a leaf: imports only torch).

Ops build them (`Op.build`); both emitters use them. Each is traceable by torch.fx.
"""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """Sum of the inputs; ``inplace`` accumulates into the first (set by the emitter when safe)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        out = first
        for i, x in enumerate(rest):
            out = out.add_(x) if (self.inplace or i > 0) else out + x
        return out

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Concat(nn.Module):
    """Concatenation along channels (dimension 1)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)


class Multiply(nn.Module):
    """Elementwise product with broadcasting."""

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        out = first
        for x in rest:
            out = out * x
        return out


class Scale(nn.Module):
    """Multiply by a constant factor."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class Narrow(nn.Module):
    """Channels ``start`` to ``start + length`` (a view, like ``x[:, start:start + length]``)."""

    def __init__(self, start: int, length: int):
        super().__init__()
        self.start, self.length = start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.start + self.length]

    def extra_repr(self) -> str:
        return f"start={self.start}, length={self.length}"
