"""Pooling: maxpool, avgpool, adaptive and global pools."""

from __future__ import annotations

from typing import Optional

from .base import (Adaptive, NonNegPair, Op, PosPair, ShapeError, Window, check_window, need_map, pair,
                   register, window_out)


class _Pool(Op):
    positional = ("kernel", "stride")
    aliases = {"k": "kernel", "s": "stride", "p": "padding"}
    inplace_safe = True

    kernel: PosPair
    stride: Optional[PosPair] = None   # default: the kernel size, as in PyTorch
    padding: NonNegPair = 0
    ceil_mode: bool = False

    def _stride(self) -> tuple[int, int]:
        return pair(self.stride if self.stride is not None else self.kernel)

    def _dilation(self) -> tuple[int, int]:
        return (1, 1)

    def infer(self, ins):
        c, h, w = need_map(self.name, ins[0])
        k, s, p, d = pair(self.kernel), self._stride(), pair(self.padding), self._dilation()
        if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
            raise ShapeError(f"padding {p[0]}×{p[1]} must be at most half the kernel {k[0]}×{k[1]} (PyTorch)")
        oh = window_out(h, k[0], s[0], p[0], d[0], self.ceil_mode)
        ow = window_out(w, k[1], s[1], p[1], d[1], self.ceil_mode)
        if oh < 1 or ow < 1:
            raise ShapeError(f"pooling window {k[0]}×{k[1]} does not fit the {h}×{w} input",
                             "remove this pool or use a smaller kernel")
        check_window((h, w), k, s, p, d, ceil=self.ceil_mode)
        return (c, oh, ow)

    def rf(self, ins):
        return Window(pair(self.kernel), self._stride(), pair(self.padding), self._dilation())


@register
class MaxPool(_Pool):
    """Max pooling: ``maxpool(2)`` halves H and W; ``maxpool(3, s=2, p=1)``."""

    name = "maxpool"
    summary = "max pooling (nn.MaxPool2d)"
    example = "maxpool(3, s=2, p=1)"
    aliases = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation"}
    dilation: PosPair = 1

    def _dilation(self):
        return pair(self.dilation)

    def build(self, ins, out):
        from torch import nn

        return nn.MaxPool2d(pair(self.kernel), self._stride(), pair(self.padding), pair(self.dilation),
                            ceil_mode=self.ceil_mode)


@register
class AvgPool(_Pool):
    """Average pooling: ``avgpool(2)``."""

    name = "avgpool"
    summary = "average pooling (nn.AvgPool2d)"
    example = "avgpool(2, ceil_mode=true)"
    example_input = (8, 7, 7)
    count_include_pad: bool = True

    def build(self, ins, out):
        from torch import nn

        return nn.AvgPool2d(pair(self.kernel), self._stride(), pair(self.padding), self.ceil_mode,
                            self.count_include_pad)


class _Adaptive(Op):
    positional = ("size",)
    inplace_safe = True
    size: PosPair = 1

    def infer(self, ins):
        c, _, _ = need_map(self.name, ins[0])
        return (c, *pair(self.size))

    def rf(self, ins):
        return Adaptive(pair(self.size))


@register
class AdaptiveAvgPool(_Adaptive):
    """Average-pool to a fixed output size: ``adaptive_avgpool(7)``."""

    name = "adaptive_avgpool"
    summary = "adaptive average pooling (nn.AdaptiveAvgPool2d)"
    example = "adaptive_avgpool([2, 3])"

    def build(self, ins, out):
        from torch import nn

        return nn.AdaptiveAvgPool2d(pair(self.size))


@register
class AdaptiveMaxPool(_Adaptive):
    """Max-pool to a fixed output size: ``adaptive_maxpool(1)``."""

    name = "adaptive_maxpool"
    summary = "adaptive max pooling (nn.AdaptiveMaxPool2d)"
    example = "adaptive_maxpool(2)"

    def build(self, ins, out):
        from torch import nn

        return nn.AdaptiveMaxPool2d(pair(self.size))


class _Global(Op):
    inplace_safe = True

    def infer(self, ins):
        c, _, _ = need_map(self.name, ins[0])
        return (c, 1, 1)

    def rf(self, ins):
        return Adaptive((1, 1))


@register
class GlobalAvgPool(_Global):
    """Average over H and W: C×H×W → C×1×1."""

    name = "global_avgpool"
    summary = "global average pooling (nn.AdaptiveAvgPool2d(1))"
    example = "global_avgpool"

    def build(self, ins, out):
        from torch import nn

        return nn.AdaptiveAvgPool2d(1)


@register
class GlobalMaxPool(_Global):
    """Maximum over H and W: C×H×W → C×1×1."""

    name = "global_maxpool"
    summary = "global max pooling (nn.AdaptiveMaxPool2d(1))"
    example = "global_maxpool"

    def build(self, ins, out):
        from torch import nn

        return nn.AdaptiveMaxPool2d(1)
