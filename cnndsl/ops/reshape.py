"""Shape changes: flatten, reshape, unflatten, permute, channel_shuffle, upsample.

Dimensions: ``reshape``/``unflatten`` give the shape of one sample (the batch is kept, as by
``flatten``); ``permute`` lists every dimension with the batch as 0 (as ``softmax(dim=1)`` counts
them), and the batch must stay first. See :mod:`cnndsl.layout` for how a permuted layout is kept.
"""

from __future__ import annotations

from typing import Annotated, Optional


from ..expr import format_shape
from ..layout import axes_of, laid_out
from .base import (Bounds, Mode, NonNegInt, Op, Pointwise, PosInt, PosPair, Reshape as ReshapeRule, ShapeError,
                   Upsample, need_map, pair, prod, register)


@register
class Flatten(Op):
    """C×H×W → a vector of C·H·W features (the batch dimension is kept)."""

    name = "flatten"
    summary = "flatten to a vector (nn.Flatten)"
    inplace_safe = False
    example = "flatten"

    def infer(self, ins):
        return (prod(ins[0]),)

    def rf(self, ins):
        return ReshapeRule()

    def build(self, ins, out):
        from torch import nn

        return nn.Flatten(1)


@register
class UpsampleOp(Op):
    """Upsampling by an integer ``scale`` or to a ``size``: ``upsample(2, mode=bilinear)``."""

    name = "upsample"
    summary = "upsampling (nn.Upsample)"
    positional = ("scale",)
    inplace_safe = True

    example = "upsample(2, mode=bilinear)"

    scale: Optional[PosPair] = None         # a factor, or [h, w]; or give size instead
    size: Optional[PosPair] = None          # the output's [h, w]
    mode: Mode = "nearest"
    align_corners: Optional[bool] = None    # bilinear and bicubic: as in nn.Upsample

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        if (self.scale is None) == (self.size is None):
            raise ShapeError("upsample needs exactly one of scale or size", "e.g. upsample(2)")
        if self.scale is not None:
            s = pair(self.scale)
            return h * s[0], w * s[1]
        return pair(self.size)

    def infer(self, ins):
        c, h, w = need_map(self.name, ins[0])
        if self.align_corners is not None and self.mode == "nearest":
            raise ShapeError("align_corners only applies to bilinear and bicubic modes")
        return (c, *self._out_hw(h, w))

    def rf(self, ins):
        _, h, w = ins[0]
        oh, ow = self._out_hw(h, w)
        return Upsample((oh, ow), (h, w), self.mode != "nearest")

    def build(self, ins, out):
        from torch import nn

        if self.scale is not None:
            s = pair(self.scale)
            return nn.Upsample(scale_factor=(float(s[0]), float(s[1])), mode=self.mode,
                               align_corners=self.align_corners)
        return nn.Upsample(size=pair(self.size), mode=self.mode, align_corners=self.align_corners)


Size = Annotated[int, Bounds(ge=-1)]


@register
class Reshape(Op):
    """Reshape each sample: ``reshape(96, 1, 1)`` turns a vector of 96 into a 96×1×1 map (a
    squeeze-and-excitation gate made of linear layers); ``reshape(-1)`` flattens. The batch
    dimension is kept and not written; one size may be -1 (inferred)."""

    name = "reshape"
    summary = "reshape each sample (torch.reshape; the batch dimension is kept)"
    positional = ("shape",)
    variadic = True
    example = "global_avgpool  flatten  reshape(8, 1, 1)"

    shape: tuple[Size, ...]           # the sizes of one sample; one may be -1

    def infer(self, ins):
        total, sizes = prod(ins[0]), self.shape
        if not sizes or 0 in sizes or sizes.count(-1) > 1:
            raise ShapeError(f"{self.name}({', '.join(map(str, sizes))}): give each size (≥ 1), at most one of "
                             "them -1", f"e.g. {self.name}({total}) or {self.name}(-1, 1, 1)")
        known = prod(tuple(s for s in sizes if s != -1))
        if -1 in sizes:
            if total % known:
                raise ShapeError(f"cannot reshape {format_shape(ins[0])} ({total} values) to "
                                 f"{'×'.join(map(str, sizes))}: {known} does not divide {total}")
            sizes = tuple(total // known if s == -1 else s for s in sizes)
        elif known != total:
            raise ShapeError(f"cannot reshape {format_shape(ins[0])} ({total} values) to "
                             f"{'×'.join(map(str, sizes))} ({known} values)", "the number of values must stay the same")
        return laid_out(sizes, {1: "C", 3: "CHW"}.get(len(sizes), "?" * len(sizes)))

    def rf(self, ins):
        return ReshapeRule()

    def build(self, ins, out):
        from ..nn import Reshape as ReshapeModule

        return ReshapeModule(self.shape)

    def source(self, args, ref):
        return f"{args[0]}.reshape({args[0]}.shape[0], {', '.join(map(str, self.shape))})"


@register
class Unflatten(Reshape):
    """A vector back to a map: ``unflatten(96, 1, 1)`` (``nn.Unflatten``)."""

    name = "unflatten"
    summary = "vector → C×H×W map (nn.Unflatten)"
    example = "global_avgpool  flatten  unflatten(8, 1, 1)"

    shape: tuple[PosInt, ...]         # the sizes of one sample, e.g. C, H, W

    def infer(self, ins):
        if len(ins[0]) != 1:
            raise ShapeError(f"unflatten needs a vector, but its input is {format_shape(ins[0])}",
                             "use reshape(...) to reshape a map")
        return super().infer(ins)

    def build(self, ins, out):
        from torch import nn

        return nn.Unflatten(1, self.shape)

    def source(self, args, ref):
        return None


@register
class Permute(Op):
    """Reorder the axes: ``permute(0, 2, 3, 1)`` makes a C×H×W map H×W×C (channels last, as in
    ConvNeXt's blocks, where ``layernorm(dims=1)`` and ``linear`` then work per position), and
    ``permute(0, 3, 1, 2)`` makes it C×H×W again. Dimensions are numbered with the batch as 0,
    which must stay first."""

    name = "permute"
    summary = "reorder the axes (torch.permute; dimension 0 is the batch)"
    positional = ("dims",)
    variadic = True
    example = "permute(0, 2, 3, 1)"

    dims: tuple[NonNegInt, ...]       # every dimension once, the batch (0) first

    def infer(self, ins):
        shape, rank = ins[0], len(ins[0]) + 1
        if sorted(self.dims) != list(range(rank)):
            raise ShapeError(f"permute({', '.join(map(str, self.dims))}) must list each of the {rank} dimensions "
                             f"0…{rank - 1} once: its input is {format_shape(shape)} plus the batch dimension 0",
                             "e.g. permute(0, 2, 3, 1) for channels last" if rank == 4 else None)
        if self.dims[0] != 0:
            raise ShapeError("permute must keep the batch dimension first (the first number must be 0)",
                             f"e.g. permute(0, {', '.join(str(d) for d in self.dims if d)})")
        axes, order = axes_of(shape), [d - 1 for d in self.dims[1:]]
        return laid_out(tuple(shape[i] for i in order), "".join(axes[i] for i in order))

    def build(self, ins, out):
        from ..nn import Permute as PermuteModule

        return PermuteModule(self.dims)

    def source(self, args, ref):
        return f"{args[0]}.permute({', '.join(map(str, self.dims))})"


@register
class ChannelShuffle(Op):
    """Interleave the channels of ``groups`` groups (ShuffleNet): ``channel_shuffle(2)``."""

    name = "channel_shuffle"
    summary = "channel shuffle (nn.ChannelShuffle, ShuffleNet)"
    positional = ("groups",)
    aliases = {"g": "groups"}
    example = "channel_shuffle(2)"

    groups: PosInt

    def infer(self, ins):
        c, _, _ = need_map(self.name, ins[0])
        if c % self.groups:
            raise ShapeError(f"channel_shuffle: {self.groups} groups do not divide {c} channels")
        return ins[0]

    def rf(self, ins):
        return Pointwise()

    def build(self, ins, out):
        from torch import nn

        return nn.ChannelShuffle(self.groups)
