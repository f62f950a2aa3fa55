"""Dense layers and friends: linear, dropout, mul (constant scale)."""

from __future__ import annotations

from .base import Dense, Gain, Op, PosInt, Prob, Shape, ShapeError, register


@register
class Linear(Op):
    """Fully connected layer on a vector: ``linear(256)`` (``flatten`` first for maps)."""

    name = "linear"
    summary = "fully connected layer (nn.Linear)"
    positional = ("out",)
    inplace_safe = True

    out: PosInt
    bias: bool = True

    def infer(self, ins):
        if len(ins[0]) != 1:
            raise ShapeError(f"linear needs a vector, but its input is a {len(ins[0])}-D map "
                             f"{'×'.join(map(str, ins[0]))}",
                             "add 'flatten' (or 'global_avgpool flatten') before it")
        return (self.out,)

    def rf(self, ins):
        return Dense()

    def param_shapes(self, ins, out):
        shapes = {"weight": (self.out, ins[0][0])}
        if self.bias:
            shapes["bias"] = (self.out,)
        return shapes

    def macs(self, ins, out):
        return ins[0][0] * self.out

    def build(self, ins, out):
        from torch import nn

        return nn.Linear(ins[0][0], self.out, self.bias)


@register
class Dropout(Op):
    """Dropout: zeroes elements with probability ``p`` in training, identity in eval."""

    name = "dropout"
    summary = "dropout (nn.Dropout)"
    positional = ("p",)
    p: Prob = 0.5

    def build(self, ins, out):
        from torch import nn

        return nn.Dropout(self.p)


@register
class Dropout2d(Dropout):
    """Channel dropout: zeroes whole feature maps."""

    name = "dropout2d"
    summary = "channel dropout (nn.Dropout2d)"

    def infer(self, ins: list[Shape]) -> Shape:
        if len(ins[0]) != 3:
            raise ShapeError("dropout2d needs a C×H×W map", "use 'dropout' on vectors")
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
    factor: Gain

    def build(self, ins, out):
        from ..nn import Scale

        return Scale(self.factor)
