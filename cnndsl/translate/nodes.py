"""Records → cnndsl ops (no torch): translated ops come from the registry; the rest are opaque.

:class:`Opaque` stands for a node the translator could not express: its shape is the traced one,
its parameters those of the module, its receptive field unknown (never guessed) and its cost
uncounted. :class:`SharedCall` is a later call of a module already called once (a ReLU used twice
in a ResNet block): same shape and cost rules, no parameters of its own (they are counted once).
Opaque layers known to work position by position (stochastic depth) keep their input's receptive
field. Neither is a spec op: they exist only in graphs made from traced models, which are built by the
backbone's own module (see :mod:`cnndsl.backbone.lower`), never node by node.
"""

from __future__ import annotations

from typing import Any

from ..ops import REGISTRY
from ..ops.base import Op, Pointwise, RFRule, Shape, Unknown
from .records import Record


def make_op(op_name: str, args: dict[str, Any]) -> Op:
    """A registered cnndsl op from record arguments (JSON lists become the tuples pydantic expects)."""
    return REGISTRY[op_name].model_validate({k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})


class Opaque(Op):
    """A traced node with no cnndsl op: shape and parameters from the trace, receptive field unknown."""

    inplace_safe = False

    def __init__(self, label: str, shape: Shape, params: dict[str, Shape], buffers: dict[str, Shape],
                 reason: str | None = None, pointwise: bool = False):
        self.__dict__.update(name=label, shape=tuple(shape), params=dict(params), buffers=dict(buffers),
                             reason=reason, pointwise=pointwise)

    def __hash__(self) -> int:
        return hash((self.name, self.shape))

    def describe(self) -> str:
        return f"{self.name}()"

    def infer(self, ins: list[Shape]) -> Shape:
        return self.shape

    def rf(self, ins: list[Shape]) -> RFRule:
        return Pointwise() if self.pointwise else Unknown()   # stochastic depth: position by position

    def param_shapes(self, ins, out):
        return dict(self.params)

    def buffer_shapes(self, ins, out):
        return dict(self.buffers)

    def build(self, ins, out):
        raise NotImplementedError(f"{self.name} is built by its backbone, not on its own")


class SharedCall(Op):
    """A later call of a module that an earlier node already holds: its rules without its parameters."""

    def __init__(self, op: Op):
        self.__dict__.update(inner=op, name=op.name, inplace_safe=op.inplace_safe)

    def __hash__(self) -> int:
        return hash(("shared", self.inner))

    def describe(self) -> str:
        return self.inner.describe()

    def infer(self, ins):
        return self.inner.infer(ins)

    def rf(self, ins):
        return self.inner.rf(ins)

    def macs(self, ins, out):
        return self.inner.macs(ins, out)

    def build(self, ins, out):
        return self.inner.build(ins, out)


def record_op(rec: Record, first_call: bool = True) -> Op:
    """The op of a record: its cnndsl op, opaque, or (for a module's later calls) a shared call."""
    if rec.opaque:
        op: Op = Opaque(rec.target, rec.shape, rec.params if first_call else {},
                        rec.buffers if first_call else {}, rec.reason, rec.args.get("rf") == "pointwise")
        return op
    op = make_op(rec.op, rec.args)
    return op if first_call else SharedCall(op)
