"""Ops of residual blocks: layer_scale and stochastic_depth on the branch, pad_channels on the
shortcut."""

from __future__ import annotations

from typing import Literal

from ..expr import format_shape
from ..layout import axes_of, is_standard
from .base import Gain, Op, PosInt, Prob, Shape, ShapeError, need_standard, register


@register
class LayerScale(Op):
    """A learned scale per channel, initialised to ``init`` (ConvNeXt, CaiT): ``layer_scale(1e-6)``.

    Its parameter is registered on the enclosing module under the layer's own name, as torchvision's
    ``CNBlock.layer_scale``: ``layer_scale: layer_scale(1e-6)`` in a block gives the ``state_dict``
    key ``<block>.layer_scale``, of shape (C, 1, 1) on a C×H×W map, (C,) on a vector or a
    channels-last map."""

    name = "layer_scale"
    summary = "learned per-channel scale, a parameter of the enclosing module (ConvNeXt)"
    positional = ("init",)
    bare_parameter = True
    inplace_safe = True
    example = "layer_scale(1e-6)"

    init: Gain = 1e-6             # initial value of every scale

    def _shape(self, shape: Shape) -> Shape:
        if len(shape) == 3 and is_standard(shape):
            return (shape[0], 1, 1)
        if axes_of(shape)[-1] != "C":
            raise ShapeError(f"layer_scale scales channels, but the last axis of {format_shape(shape)} is not "
                             "the channels", "use it on a C×H×W map, a vector or a channels-last map")
        return (shape[-1],)

    def infer(self, ins):
        self._shape(ins[0])
        return ins[0]

    def param_shapes(self, ins, out):
        return {"": self._shape(ins[0])}

    def build(self, ins, out):
        from ..nn import LayerScale as LayerScaleModule

        return LayerScaleModule(self._shape(ins[0]), self.init)

    def source(self, args, ref):
        return f"{args[0]} * {ref}"

    def parameter_source(self, ins: list[Shape]) -> str:
        """The initial value, as ``--emit python`` writes it."""
        return f"nn.Parameter(torch.full({self._shape(ins[0])!r}, {float(self.init)!r}))"   # (96,) or (96, 1, 1)


@register
class StochasticDepth(Op):
    """Drop a residual branch at random while training (Huang et al., 2016), with
    ``torchvision.ops.stochastic_depth``'s semantics: ``stochastic_depth(0.1)`` zeroes the branch
    for each sample with probability p (``mode=row``; ``mode=batch``: for the whole batch at once)
    and scales the kept ones by 1/(1-p); the identity in eval."""

    name = "stochastic_depth"
    summary = "stochastic depth: drop the residual branch per sample or per batch (torchvision.ops.StochasticDepth)"
    positional = ("p",)
    example = "stochastic_depth(0.2, mode=batch)"

    p: Prob                       # probability of dropping the branch
    mode: Literal["row", "batch"] = "row"   # row: per sample; batch: the whole batch together

    def build(self, ins, out):
        from ..nn import StochasticDepth as StochasticDepthModule

        return StochasticDepthModule(self.p, self.mode)


@register
class PadChannels(Op):
    """Zero channels added to reach ``out`` channels, the parameter-free shortcut of ResNet's
    option A: ``pad_channels(64)``. ``at=both`` (default) splits them evenly before and after the
    input's channels, the extra one after (as the common CIFAR ResNet code pads); ``at=end`` puts
    them all after. Subsample first for a strided block: ``maxpool(1, s=2) pad_channels(64)``."""

    name = "pad_channels"
    summary = "pad with zero channels (ResNet option A shortcut)"
    positional = ("out",)
    inplace_safe = True
    example = "pad_channels(16)"

    out: PosInt                   # channels after padding
    at: Literal["both", "end"] = "both"   # where the zero channels go

    def _pads(self, shape: Shape) -> tuple[int, int]:
        extra = self.out - shape[0]
        return (extra // 2, extra - extra // 2) if self.at == "both" else (0, extra)

    def infer(self, ins):
        shape = ins[0]
        if len(shape) not in (1, 3):
            raise ShapeError(f"pad_channels needs a C×H×W map or a vector, got {format_shape(shape)}")
        need_standard(self.name, shape, "a C×H×W map or a vector")
        if self.out < shape[0]:
            raise ShapeError(f"pad_channels({self.out}) cannot remove channels: the input has {shape[0]}",
                             f"out must be at least {shape[0]}")
        return (self.out, *shape[1:])

    def build(self, ins, out):
        from ..nn import PadChannels as PadChannelsModule

        return PadChannelsModule(*self._pads(ins[0]), trailing=len(ins[0]) - 1)
