"""Activations and softmax. Parameterless ones are declared from one table."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import Alpha, Gain, Op, ShapeError, need_standard, register


class Activation(Op):
    """Elementwise; keeps the shape. ``can_inplace``: the emitter may set ``inplace=True``."""

    module: ClassVar[str] = ""
    can_inplace: ClassVar[bool] = False

    def build(self, ins, out):
        from torch import nn

        return getattr(nn, self.module)()


# name: (torch.nn class, may run in place, summary)
_SIMPLE = {
    "relu": ("ReLU", True, "rectified linear unit"),
    "relu6": ("ReLU6", True, "ReLU clipped at 6 (MobileNet)"),
    "sigmoid": ("Sigmoid", False, "logistic sigmoid"),
    "tanh": ("Tanh", False, "hyperbolic tangent"),
    "silu": ("SiLU", False, "sigmoid linear unit (swish)"),
    "hardswish": ("Hardswish", False, "hard swish (MobileNetV3)"),
    "hardsigmoid": ("Hardsigmoid", False, "hard sigmoid"),
    "mish": ("Mish", False, "mish"),
    "softplus": ("Softplus", False, "softplus"),
    "identity": ("Identity", False, "passes its input through unchanged"),
}

for _name, (_module, _inplace, _summary) in _SIMPLE.items():
    register(type(_name.title().replace("_", ""), (Activation,), {
        "__doc__": _summary, "__module__": __name__, "__annotations__": {},
        "name": _name, "module": _module, "can_inplace": _inplace, "summary": f"{_summary} (nn.{_module})",
        "example": _name}))


@register
class LeakyReLU(Activation):
    """``leaky_relu(0.1)``: slope for negative inputs."""

    name = "leaky_relu"
    summary = "leaky ReLU (nn.LeakyReLU)"
    example = "leaky_relu(0.1)"
    positional = ("slope",)
    slope: Gain = 0.01

    @property
    def can_inplace(self) -> bool:  # type: ignore[override]
        """torch's in-place leaky_relu has no backward for a negative slope."""
        return self.slope >= 0

    def build(self, ins, out):
        from torch import nn

        return nn.LeakyReLU(self.slope)


@register
class GELU(Activation):
    """Gaussian error linear unit; ``gelu(approximate=tanh)`` for the tanh approximation."""

    name = "gelu"
    summary = "Gaussian error linear unit (nn.GELU)"
    example = "gelu(approximate=tanh)"
    approximate: Literal["none", "tanh"] = "none"

    def build(self, ins, out):
        from torch import nn

        return nn.GELU(self.approximate)


@register
class ELU(Activation):
    name = "elu"
    summary = "exponential linear unit (nn.ELU)"
    example = "elu(2.0)"
    positional = ("alpha",)
    alpha: Alpha = 1.0

    def build(self, ins, out):
        from torch import nn

        return nn.ELU(self.alpha)


@register
class CELU(Activation):
    name = "celu"
    summary = "continuously differentiable ELU (nn.CELU)"
    example = "celu(0.5)"
    positional = ("alpha",)
    alpha: Alpha = 1.0

    def build(self, ins, out):
        from torch import nn

        return nn.CELU(self.alpha)


@register
class PReLU(Activation):
    """Parametric ReLU with a learned slope, one per channel with ``per_channel=true``."""

    name = "prelu"
    summary = "parametric ReLU (nn.PReLU)"
    example = "prelu(per_channel=true)"
    per_channel: bool = False
    init: Gain = 0.25

    def infer(self, ins):
        if self.per_channel:   # nn.PReLU's weights follow dimension 1
            need_standard(self.name, ins[0], "channels first (a C×H×W map or a vector) with per_channel=true")
        return ins[0]

    def _n(self, ins) -> int:
        return ins[0][0] if self.per_channel else 1

    def param_shapes(self, ins, out):
        return {"weight": (self._n(ins),)}

    def build(self, ins, out):
        from torch import nn

        return nn.PReLU(self._n(ins), self.init)


@register
class Softmax(Activation):
    """Softmax over channels (``dim=1`` counts the batch as dimension 0)."""

    name = "softmax"
    summary = "softmax over a dimension (nn.Softmax)"
    example = "softmax(dim=1)"
    positional = ("dim",)
    dim: int = 1

    def infer(self, ins):
        rank = len(ins[0]) + 1  # the batch dimension counts
        if not -rank <= self.dim < rank:
            raise ShapeError(f"dim={self.dim} is out of range for a {rank}-D tensor (batch included)",
                             "dim=1 is the channels (or features) dimension")
        return ins[0]

    def build(self, ins, out):
        from torch import nn

        return nn.Softmax(self.dim)


@register
class LogSoftmax(Softmax):
    name = "log_softmax"
    summary = "log-softmax over a dimension (nn.LogSoftmax)"
    example = "log_softmax(2)"

    def build(self, ins, out):
        from torch import nn

        return nn.LogSoftmax(self.dim)
