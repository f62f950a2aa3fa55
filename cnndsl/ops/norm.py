"""Normalisation: batchnorm, groupnorm, layernorm, instancenorm."""

from __future__ import annotations

from typing import Optional

from pydantic import Field
from typing import Annotated

from .base import Eps, Op, Pointwise, PosInt, Shape, ShapeError, need_map, register

Momentum = Optional[Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]]


@register
class BatchNorm(Op):
    """Batch normalisation over channels (2-D for maps, 1-D for vectors)."""

    name = "batchnorm"
    summary = "batch normalisation (nn.BatchNorm2d / nn.BatchNorm1d)"
    inplace_safe = True

    eps: Eps = 1e-5
    momentum: Momentum = 0.1        # PyTorch convention: weight of the new batch statistics
    affine: bool = True
    track_running_stats: bool = True

    def infer(self, ins):
        if len(ins[0]) not in (1, 3):
            raise ShapeError(f"batchnorm needs a C×H×W map or a vector, got rank {len(ins[0])}")
        return ins[0]

    def param_shapes(self, ins, out):
        c = ins[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def buffer_shapes(self, ins, out):
        c = ins[0][0]
        if not self.track_running_stats:
            return {}
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}

    def build(self, ins, out):
        from torch import nn

        cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
        return cls(ins[0][0], self.eps, self.momentum, self.affine, self.track_running_stats)


@register
class GroupNorm(Op):
    """Group normalisation: ``groupnorm(32)`` normalises groups of channels per sample."""

    name = "groupnorm"
    summary = "group normalisation (nn.GroupNorm)"
    positional = ("groups",)
    aliases = {"g": "groups"}
    inplace_safe = True

    groups: PosInt
    eps: Eps = 1e-5
    affine: bool = True

    def infer(self, ins):
        c, _, _ = need_map(self.name, ins[0])
        if c % self.groups:
            raise ShapeError(f"groupnorm: {self.groups} groups do not divide {c} channels")
        return ins[0]

    def rf(self, ins):
        return Pointwise(context=True)       # statistics over each group's whole map

    def param_shapes(self, ins, out):
        c = ins[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def build(self, ins, out):
        from torch import nn

        return nn.GroupNorm(self.groups, ins[0][0], self.eps, self.affine)


@register
class LayerNorm(Op):
    """Layer normalisation over the last ``dims`` dimensions (default: all of C×H×W)."""

    name = "layernorm"
    summary = "layer normalisation (nn.LayerNorm)"
    inplace_safe = True

    dims: Optional[PosInt] = None   # normalise over the last `dims` dimensions; None: all
    eps: Eps = 1e-5
    affine: bool = True

    def _normalized(self, shape: Shape) -> Shape:
        dims = len(shape) if self.dims is None else self.dims
        if dims > len(shape):
            raise ShapeError(f"layernorm over {dims} dimensions, but the input has only {len(shape)}")
        return shape[len(shape) - dims:]

    def infer(self, ins):
        self._normalized(ins[0])
        return ins[0]

    def rf(self, ins):
        return Pointwise(context=len(ins[0]) == 3 and len(self._normalized(ins[0])) >= 2)  # over H×W

    def param_shapes(self, ins, out):
        n = self._normalized(ins[0])
        return {"weight": n, "bias": n} if self.affine else {}

    def build(self, ins, out):
        from torch import nn

        return nn.LayerNorm(list(self._normalized(ins[0])), self.eps, self.affine)


@register
class InstanceNorm(Op):
    """Instance normalisation: per sample and channel over H×W."""

    name = "instancenorm"
    summary = "instance normalisation (nn.InstanceNorm2d)"
    inplace_safe = True

    eps: Eps = 1e-5
    affine: bool = False

    def infer(self, ins):
        _, h, w = need_map(self.name, ins[0])
        if h * w == 1:
            raise ShapeError("instancenorm normalises over H×W, which is 1×1 here (PyTorch refuses it)",
                             "move it before the pooling that reduces the map to one pixel")
        return ins[0]

    def rf(self, ins):
        return Pointwise(context=True)       # statistics over each channel's whole map

    def param_shapes(self, ins, out):
        c = ins[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def build(self, ins, out):
        from torch import nn

        return nn.InstanceNorm2d(ins[0][0], self.eps, affine=self.affine)
