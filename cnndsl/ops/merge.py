"""Merges of several inputs: add, concat (along channels), multiply (broadcasting)."""

from __future__ import annotations

from ..expr import format_shape
from .base import Merge, Op, ShapeError, need_standard, register, same_layout


class _MergeOp(Op):
    arity = -1

    def rf(self, ins):
        return Merge()


@register
class Add(_MergeOp):
    """Elementwise sum of inputs of equal shape (residual connections)."""

    name = "add"
    summary = "elementwise sum of inputs"
    inplace_safe = True
    example = "add { identity | conv(8, k=3, p=1) }"

    def infer(self, ins):
        same_layout(self.name, ins)
        first = ins[0]
        for i, s in enumerate(ins[1:], 1):
            if s != first:
                raise ShapeError(f"add needs inputs of one shape: input 1 is {format_shape(first)}, "
                                 f"input {i + 1} is {format_shape(s)}",
                                 "project the shortcut (e.g. a 1×1 conv with the right stride) to match")
        return first

    def build(self, ins, out):
        from ..nn import Add as AddModule

        return AddModule()

    def source(self, args, ref):
        return " + ".join(args)


@register
class Concat(_MergeOp):
    """Concatenate inputs along channels; their other dimensions must match."""

    name = "concat"
    summary = "concatenation along channels"
    example = "concat { identity | conv(4, k=1) }"

    def infer(self, ins):
        for s in ins:
            need_standard(self.name, s, "C×H×W maps or vectors (it joins along channels)")
        first = ins[0]
        for i, s in enumerate(ins[1:], 1):
            if len(s) != len(first) or s[1:] != first[1:]:
                raise ShapeError(f"concat joins along channels, so the other dimensions must agree: input 1 "
                                 f"is {format_shape(first)}, input {i + 1} is {format_shape(s)}",
                                 "crop, pad or resample one side so their spatial sizes match")
        return (sum(s[0] for s in ins), *first[1:])

    def build(self, ins, out):
        from ..nn import Concat as ConcatModule

        return ConcatModule()

    def source(self, args, ref):
        return f"torch.cat([{', '.join(args)}], dim=1)"


@register
class Multiply(_MergeOp):
    """Elementwise product with broadcasting (gates, squeeze-and-excitation)."""

    name = "multiply"
    summary = "elementwise product (broadcasting C×1×1 over C×H×W)"
    example = "multiply { identity | global_avgpool  conv(8, k=1)  sigmoid }"

    def infer(self, ins):
        same_layout(self.name, ins)
        out = list(ins[0])
        for i, s in enumerate(ins[1:], 1):
            if len(s) != len(out) or any(a != b and 1 not in (a, b) for a, b in zip(out, s)):
                vec, other = (s, out) if len(s) == 1 else (out, s)
                hint = (f"turn the vector into a {vec[0]}×1×1 map first: reshape({vec[0]}, 1, 1)"
                        if len(vec) == 1 and len(other) == 3 and vec[0] == other[0] else None)
                raise ShapeError(f"multiply needs broadcastable shapes: {format_shape(tuple(out))} and "
                                 f"{format_shape(s)} (input {i + 1})", hint)
            out = [max(a, b) for a, b in zip(out, s)]
        return ins[0] if tuple(out) == ins[0] else tuple(out)

    def build(self, ins, out):
        from ..nn import Multiply as MultiplyModule

        return MultiplyModule()

    def source(self, args, ref):
        return " * ".join(args)
