"""Normalisation: batchnorm, groupnorm, layernorm, layernorm2d, instancenorm."""

from __future__ import annotations

from typing import Annotated, Optional

from ..expr import format_shape
from ..layout import axes_of, is_standard
from .base import Bounds, Eps, Op, Pointwise, PosInt, Shape, ShapeError, need_map, need_standard, register

Momentum = Optional[Annotated[float, Bounds(ge=0.0, le=1.0, finite=True)]]


@register
class BatchNorm(Op):
    """Batch normalisation over channels (2-D for maps, 1-D for vectors)."""

    name = "batchnorm"
    summary = "batch normalisation (nn.BatchNorm2d / nn.BatchNorm1d)"
    inplace_safe = True
    example = "batchnorm(momentum=0.2)"

    eps: Eps = 1e-5
    momentum: Momentum = 0.1        # PyTorch convention: weight of the new batch statistics
    affine: bool = True
    track_running_stats: bool = True

    def infer(self, ins):
        if len(ins[0]) not in (1, 3):
            raise ShapeError(f"batchnorm needs a C×H×W map or a vector, got rank {len(ins[0])}")
        need_standard(self.name, ins[0], "a C×H×W map or a vector")
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
    example = "groupnorm(4)"

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
    """Layer normalisation over the last ``dims`` dimensions (default: all of C×H×W). On a C×H×W
    map the last dimension is W, so ``dims=1`` is refused there: use ``layernorm2d`` for the
    channels at each position, or ``layernorm(dims=1)`` after ``permute(0, 2, 3, 1)``."""

    name = "layernorm"
    summary = "layer normalisation over the trailing dimensions (nn.LayerNorm)"
    inplace_safe = True
    example = "permute(0, 2, 3, 1)  layernorm(dims=1, eps=1e-6)"

    dims: Optional[PosInt] = None   # normalise over the last `dims` dimensions; default: all
    eps: Eps = 1e-5
    affine: bool = True

    def _normalized(self, shape: Shape) -> Shape:
        dims = len(shape) if self.dims is None else self.dims
        if dims > len(shape):
            raise ShapeError(f"layernorm over {dims} dimensions, but the input {format_shape(shape)} has only "
                             f"{len(shape)}")
        if len(shape) == 3 and is_standard(shape) and dims == 1:
            raise ShapeError("layernorm(dims=1) on a C×H×W map would normalise over W alone",
                             "layernorm2d normalises the channels at each position (ConvNeXt's LayerNorm2d); "
                             "leave dims out to normalise over all of C×H×W")
        return shape[len(shape) - dims:]

    def infer(self, ins):
        self._normalized(ins[0])
        return ins[0]

    def rf(self, ins):
        over = axes_of(ins[0])[len(ins[0]) - len(self._normalized(ins[0])):]
        return Pointwise(context=any(a in "HW?" for a in over) and len(ins[0]) > 1)   # statistics over space

    def param_shapes(self, ins, out):
        n = self._normalized(ins[0])
        return {"weight": n, "bias": n} if self.affine else {}

    def build(self, ins, out):
        from torch import nn

        return nn.LayerNorm(list(self._normalized(ins[0])), self.eps, self.affine)


@register
class LayerNorm2d(Op):
    """Layer normalisation of the channels at each position of a C×H×W map (torchvision's
    ``LayerNorm2d`` in ConvNeXt): ``layernorm2d(eps=1e-6)``. Parameters ``weight`` and ``bias`` of
    shape (C,)."""

    name = "layernorm2d"
    summary = "layer normalisation over channels at each position (torchvision's LayerNorm2d)"
    inplace_safe = True
    example = "layernorm2d(eps=1e-6)"

    eps: Eps = 1e-5
    affine: bool = True

    def infer(self, ins):
        need_map(self.name, ins[0])
        return ins[0]

    def rf(self, ins):
        return Pointwise()

    def param_shapes(self, ins, out):
        c = ins[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def build(self, ins, out):
        from ..nn import LayerNorm2d as LayerNorm2dModule

        return LayerNorm2dModule(ins[0][0], self.eps, self.affine)


@register
class InstanceNorm(Op):
    """Instance normalisation: per sample and channel over H×W."""

    name = "instancenorm"
    summary = "instance normalisation (nn.InstanceNorm2d)"
    inplace_safe = True
    example = "instancenorm(affine=true)"

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
