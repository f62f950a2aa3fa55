"""Shape changes: flatten, upsample."""

from __future__ import annotations

from typing import Optional

from .base import Mode, Op, PosPair, ShapeError, Upsample, need_map, pair, prod, register


@register
class Flatten(Op):
    """C×H×W → a vector of C·H·W features (the batch dimension is kept)."""

    name = "flatten"
    summary = "flatten to a vector (nn.Flatten)"
    inplace_safe = False

    def infer(self, ins):
        return (prod(ins[0]),)

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

    scale: Optional[PosPair] = None
    size: Optional[PosPair] = None
    mode: Mode = "nearest"
    align_corners: Optional[bool] = None

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
