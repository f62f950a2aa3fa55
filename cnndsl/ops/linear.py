"""Dense layers and friends: linear, dropout, mul (constant scale)."""

from __future__ import annotations

from ..layout import axes_of, is_standard, laid_out
from .base import Dense, Gain, Lost, Op, Pointwise, PosInt, Prob, Shape, ShapeError, need_map, prod, register


@register
class Linear(Op):
    """Fully connected layer over the last dimension (``nn.Linear``): ``linear(256)`` on a vector
    (``flatten`` a map first), or per position on a channels-last map after
    ``permute(0, 2, 3, 1)`` (ConvNeXt), with a weight of shape (out, in)."""

    name = "linear"
    summary = "fully connected layer over the last dimension (nn.Linear)"
    positional = ("out",)
    inplace_safe = True
    example = "linear(12)"
    example_input = (20,)

    out: PosInt
    bias: bool = True

    def infer(self, ins):
        shape = ins[0]
        if len(shape) == 3 and is_standard(shape):
            raise ShapeError(f"linear works on the last dimension, which is W on the {'×'.join(map(str, shape))} "
                             "C×H×W map here",
                             "add 'flatten' (or 'global_avgpool flatten') before it; for a linear over the "
                             "channels at each position, permute(0, 2, 3, 1) first (or use conv(out, k=1))")
        return laid_out((*shape[:-1], self.out), axes_of(shape))

    def rf(self, ins):
        last = axes_of(ins[0])[-1]
        if len(ins[0]) == 1:
            return Dense()
        return Pointwise() if last == "C" else Lost()    # per position / along a spatial axis

    def param_shapes(self, ins, out):
        shapes = {"weight": (self.out, ins[0][-1])}
        if self.bias:
            shapes["bias"] = (self.out,)
        return shapes

    def macs(self, ins, out):
        return prod(ins[0]) * self.out

    def build(self, ins, out):
        from torch import nn

        return nn.Linear(ins[0][-1], self.out, self.bias)


@register
class Dropout(Op):
    """Dropout: zeroes elements with probability ``p`` in training, identity in eval."""

    name = "dropout"
    summary = "dropout (nn.Dropout)"
    positional = ("p",)
    example = "dropout(0.5)"
    p: Prob = 0.5

    def build(self, ins, out):
        from torch import nn

        return nn.Dropout(self.p)


@register
class Dropout2d(Dropout):
    """Channel dropout: zeroes whole feature maps."""

    name = "dropout2d"
    summary = "channel dropout (nn.Dropout2d)"
    example = "dropout2d(0.1)"

    def infer(self, ins: list[Shape]) -> Shape:
        if len(ins[0]) != 3:
            raise ShapeError("dropout2d needs a C×H×W map", "use 'dropout' on vectors")
        need_map(self.name, ins[0])
        return ins[0]

    def build(self, ins, out):
        from torch import nn

        return nn.Dropout2d(self.p)


@register
class Mul(Op):
    """Multiply by a constant: ``mul(0.125)`` (logit scaling, as in airbench)."""

    name = "mul"
    summary = "multiply by a constant"
    positional = ("factor",)
    example = "mul(0.125)"
    factor: Gain

    def build(self, ins, out):
        from ..nn import Scale

        return Scale(self.factor)

    def source(self, args, ref):
        return f"{args[0]} * {self.factor!r}"
