"""Runtime modules for operations torch.nn has no class for (a leaf: imports only torch).

Ops build them (`Op.build`); both emitters use them. Each is traceable by torch.fx. A module that
``--emit python`` does not write inline (``Op.source``) is copied into the generated file with
``inspect.getsource``, so each class refers only to ``torch`` and ``nn``, stores its
constructor's arguments under their own names (the emitter reads them back), and is written as
``ruff format`` writes it (tests/test_emit_python.py checks).
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


class Permute(nn.Module):
    """Reorder the dimensions (batch included), like torchvision's ``ops.misc.Permute``."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (the batch dimension is kept; one size may be -1)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels at each position of an (N, C, H, W) map; the same
    computation as torchvision's ``convnext.LayerNorm2d`` (weight and bias of shape (C,))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        shape, eps = self.normalized_shape, self.eps
        x = nn.functional.layer_norm(x, shape, self.weight, self.bias, eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """``x * weight``: a learned scale per channel. In a cnndsl network its weight is registered on
    the enclosing module under the layer's name, and ``function`` is called with it."""

    def __init__(self, shape: tuple[int, ...], init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full(tuple(shape), float(init)))

    @staticmethod
    def function(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x, self.weight)


class StochasticDepth(nn.Module):
    """Stochastic depth with the semantics (and random draws) of torchvision's
    ``ops.stochastic_depth``: in training, zero the input per sample (``row``) or for the whole
    batch (``batch``) with probability ``p`` and scale what is kept by 1/(1-p); identity in eval."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class PadChannels(nn.Module):
    """Zero channels: ``before`` in front of the input's, ``after`` behind (dimension 1);
    ``trailing``: the dimensions after the channels (2 for a map, 0 for a vector)."""

    def __init__(self, before: int, after: int, trailing: int = 2):
        super().__init__()
        self.before, self.after, self.trailing = before, after, trailing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, (0, 0) * self.trailing + (self.before, self.after))

    def extra_repr(self) -> str:
        return f"before={self.before}, after={self.after}"


class Narrow(nn.Module):
    """Channels ``start`` to ``start + length`` (a view, like ``x[:, start:start + length]``)."""

    def __init__(self, start: int, length: int):
        super().__init__()
        self.start, self.length = start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(1, self.start, self.length)

    def extra_repr(self) -> str:
        return f"start={self.start}, length={self.length}"
