"""Channel slices: ``narrow(start, length)``, and the parts ``chunk``/``split`` cut a map into.

``x1, x2: chunk(2)`` (ShuffleNetV2's ``x.chunk(2, dim=1)``) is a construct (:class:`cnndsl.ir.Split`),
not an op: a graph node has one output, so each named part becomes a ``narrow`` node.
"""

from __future__ import annotations

from .base import NonNegInt, Op, PosInt, ShapeError, register


@register
class Narrow(Op):
    """Channels ``start`` to ``start + length`` of the input (``x[:, start:start + length]``)."""

    name = "narrow"
    summary = "a slice of the channels: x[:, start:start + length]"
    positional = ("start", "length")
    inplace_safe = False  # a view of its input

    example = "narrow(2, 4)"  # for the test over every op (zoo-ops' tests/test_ops.py)

    start: NonNegInt
    length: PosInt

    def source(self, args: list[str], ref: str) -> str:
        """Inline in ``--emit python``'s forward: ``x.narrow(1, start, length)`` (the same view as
        the slice; its numbers may become expressions, ``x.narrow(1, 0, out // 2)``, which a slice
        would have ``ruff format`` respace)."""
        return f"{args[0]}.narrow(1, {self.start}, {self.length})"

    def infer(self, ins):
        c = ins[0][0]
        if self.start + self.length > c:
            raise ShapeError(f"channels {self.start} to {self.start + self.length} of an input with {c}",
                             f"the input has channels 0 to {c}")
        return (self.length, *ins[0][1:])

    def build(self, ins, out):
        from ..nn import Narrow as NarrowModule

        return NarrowModule(self.start, self.length)


def split_sizes(how: str, args: list, channels: int, parts: int) -> list[int]:
    """The channel counts of the parts: ``chunk(n)`` (equal parts, like torch.chunk on a divisible
    count) or ``split(a, b, ...)`` (the sizes, adding up to the channels)."""
    if how == "chunk":
        if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool) or args[0] < 2:
            raise ShapeError("chunk takes the number of parts, a whole number ≥ 2", "e.g. x1, x2: chunk(2)")
        n = args[0]
        if n != parts:
            raise ShapeError(f"chunk({n}) gives {n} parts but {parts} names are given",
                             "give one name per part: x1, x2: chunk(2)")
        if channels % n:
            raise ShapeError(f"chunk({n}) of {channels} channels: {channels} is not divisible by {n}",
                             "use split(a, b) for unequal parts")
        return [channels // n] * n
    sizes = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        raise ShapeError("split takes the channel count of each part, whole numbers ≥ 1", "e.g. a, b: split(16, 48)")
    if len(sizes) != parts:
        raise ShapeError(f"split into {len(sizes)} parts but {parts} names are given", "give one name per part")
    if sum(sizes) != channels:
        raise ShapeError(f"the parts add up to {sum(sizes)} channels but the input has {channels}",
                         f"make the sizes add up to {channels}")
    return sizes
