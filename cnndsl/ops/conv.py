"""Convolutions: conv, dwconv (depthwise), conv_transpose."""

from __future__ import annotations

from typing import Literal, Union

from .base import (NonNegInt, NonNegPair, Op, PosInt, PosPair, Shape, ShapeError, Transposed, Window,
                   check_window, need_map, pair, register, window_out)

Padding = Union[NonNegPair, Literal["same", "valid"]]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
Init = Literal["default", "kaiming", "dirac", "whiten"]


def _padding(padding: Padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Leading padding per axis; 'same' pads d*(k-1) in total, the odd one at the end (like torch)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        return (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
    return pair(padding)


def _init(module, init: str) -> None:
    import torch
    from torch import nn

    if init == "kaiming":  # torchvision's ResNet initialisation
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif init == "dirac":  # partial identity: the first in_channels filters pass their input through
        with torch.no_grad():
            n = min(module.weight.size(0), module.weight.size(1))
            nn.init.dirac_(module.weight[:n])
            if module.bias is not None:
                module.bias.zero_()
    elif init == "whiten":  # filled from data by the training runner (patch whitening)
        module.cnndsl_init = "whiten"


@register
class Conv(Op):
    """2-D convolution. ``conv(64, k=3, s=1, p=1)``; ``p=same`` keeps the size (stride 1)."""

    name = "conv"
    summary = "2-D convolution (nn.Conv2d)"
    example = "conv(12, k=3, s=2, p=1, bias=false)"
    positional = ("out", "kernel")
    aliases = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "g": "groups"}
    inplace_safe = True

    out: PosInt                   # output channels
    kernel: PosPair               # kernel size, or [h, w]
    stride: PosPair = 1
    padding: Padding = 0          # int, [h, w], same or valid
    dilation: PosPair = 1
    groups: PosInt = 1
    bias: bool = True
    padding_mode: PaddingMode = "zeros"
    init: Init = "default"        # default (PyTorch's), kaiming, dirac (partial identity), whiten (from data)

    def in_channels(self, ins: list[Shape]) -> int:
        return ins[0][0]

    def infer(self, ins: list[Shape]) -> Shape:
        c, h, w = need_map(self.name, ins[0])
        k, s, d = pair(self.kernel), pair(self.stride), pair(self.dilation)
        if c % self.groups or self.out % self.groups:
            raise ShapeError(f"groups={self.groups} must divide both the input channels ({c}) and "
                             f"the output channels ({self.out})")
        if self.padding == "same" and s != (1, 1):
            raise ShapeError("padding=same needs stride 1 (as in PyTorch)",
                             "compute the padding explicitly, e.g. p=(k-1)//2")
        p = _padding(self.padding, k, d)
        extra = (0, 0)
        if self.padding == "same":
            extra = (d[0] * (k[0] - 1) - 2 * p[0], d[1] * (k[1] - 1) - 2 * p[1])
        oh = window_out(h + extra[0], k[0], s[0], p[0], d[0])
        ow = window_out(w + extra[1], k[1], s[1], p[1], d[1])
        if oh < 1 or ow < 1:
            raise ShapeError(f"kernel {k[0]}×{k[1]} (dilation {d[0]}×{d[1]}, padding {p[0]}×{p[1]}) does "
                             f"not fit the {h}×{w} input", "reduce the kernel or add padding")
        after = (p[0] + extra[0], p[1] + extra[1])
        self._check_padding_mode((h, w), p, after)
        check_window((h, w), k, s, p, d, after, zero_padding=self.padding_mode == "zeros")
        return (self.out, oh, ow)

    def _check_padding_mode(self, size: tuple[int, int], p: tuple[int, int], after: tuple[int, int]) -> None:
        """torch's F.pad preconditions: reflect needs padding < size, circular padding ≤ size."""
        if self.padding_mode not in ("reflect", "circular"):
            return
        strict = self.padding_mode == "reflect"
        for axis, n, pad in zip(("height", "width"), size, (max(p[0], after[0]), max(p[1], after[1]))):
            if pad > n or (strict and pad == n):
                need = f"smaller than {n}" if strict else f"at most {n}"
                raise ShapeError(f"padding_mode={self.padding_mode} needs a padding {need} (the input's "
                                 f"{axis}), got {pad} (PyTorch refuses it)",
                                 "use padding_mode=replicate or zeros, or a smaller padding")

    def rf(self, ins):
        k, d = pair(self.kernel), pair(self.dilation)
        return Window(k, pair(self.stride), _padding(self.padding, k, d), d)

    def param_shapes(self, ins, out):
        k = pair(self.kernel)
        shapes = {"weight": (self.out, self.in_channels(ins) // self.groups, *k)}
        if self.bias:
            shapes["bias"] = (self.out,)
        return shapes

    def macs(self, ins, out):
        k = pair(self.kernel)
        return out[0] * out[1] * out[2] * (self.in_channels(ins) // self.groups) * k[0] * k[1]

    def build(self, ins, out):
        from torch import nn

        padding = self.padding if isinstance(self.padding, str) else pair(self.padding)
        m = nn.Conv2d(self.in_channels(ins), self.out, pair(self.kernel), pair(self.stride), padding,
                      pair(self.dilation), self.groups, self.bias, self.padding_mode)
        _init(m, self.init)
        return m


@register
class DepthwiseConv(Conv):
    """Depthwise convolution: one filter per input channel (``groups = in.channels``)."""

    name = "dwconv"
    summary = "depthwise 2-D convolution (nn.Conv2d with groups = input channels)"
    example = "dwconv(3, p=1, m=2)"
    positional = ("kernel",)
    aliases = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "m": "multiplier"}

    out: NonNegInt = 0            # ignored: the output has in_channels * multiplier channels
    multiplier: PosInt = 1
    groups: PosInt = 1            # ignored: equals the input channels

    def _resolved(self, ins: list[Shape]) -> Conv:
        c = ins[0][0] if len(ins[0]) == 3 else 1
        fields = self.model_dump(exclude={"out", "multiplier", "groups"})
        return Conv(out=c * self.multiplier, groups=c, **fields)

    def infer(self, ins):
        need_map(self.name, ins[0])
        return self._resolved(ins).infer(ins)

    def param_shapes(self, ins, out):
        return self._resolved(ins).param_shapes(ins, out)

    def macs(self, ins, out):
        return self._resolved(ins).macs(ins, out)

    def build(self, ins, out):
        return self._resolved(ins).build(ins, out)


@register
class ConvTranspose(Op):
    """Transposed 2-D convolution (learned upsampling): ``conv_transpose(64, k=2, s=2)``."""

    name = "conv_transpose"
    summary = "transposed 2-D convolution (nn.ConvTranspose2d)"
    example = "conv_transpose(4, k=2, s=2)"
    positional = ("out", "kernel")
    aliases = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "g": "groups",
               "op": "output_padding"}
    inplace_safe = True

    out: PosInt
    kernel: PosPair
    stride: PosPair = 1
    padding: NonNegPair = 0
    output_padding: NonNegPair = 0
    dilation: PosPair = 1
    groups: PosInt = 1
    bias: bool = True

    def infer(self, ins):
        c, h, w = need_map(self.name, ins[0])
        k, s, p, d, op = (pair(v) for v in (self.kernel, self.stride, self.padding, self.dilation,
                                            self.output_padding))
        if c % self.groups or self.out % self.groups:
            raise ShapeError(f"groups={self.groups} must divide both the input channels ({c}) and "
                             f"the output channels ({self.out})")
        for i in range(2):
            if op[i] >= max(s[i], d[i]):
                raise ShapeError(f"output_padding {op[i]} must be smaller than the stride or the dilation")
            span = d[i] * (k[i] - 1) + 1
            if s[i] > span:
                raise ShapeError(f"stride {s[i]} is larger than the kernel ({k[i]}"
                                 + (f" with dilation {d[i]}, spanning {span}" if d[i] > 1 else "")
                                 + "): output positions between the windows would see no input",
                                 f"use a kernel of at least {s[i]}, e.g. conv_transpose(C, k={s[i]}, s={s[i]}), "
                                 "or upsample then conv")
        oh, ow = ((n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((h, w)))
        if oh < 1 or ow < 1:
            raise ShapeError(f"padding {p[0]}×{p[1]} is too large for the {h}×{w} input")
        return (self.out, oh, ow)

    def rf(self, ins):
        return Transposed(pair(self.kernel), pair(self.stride), pair(self.padding), pair(self.dilation))

    def param_shapes(self, ins, out):
        shapes = {"weight": (ins[0][0], self.out // self.groups, *pair(self.kernel))}
        if self.bias:
            shapes["bias"] = (self.out,)
        return shapes

    def macs(self, ins, out):
        c, h, w = ins[0]
        k = pair(self.kernel)
        return c * h * w * (self.out // self.groups) * k[0] * k[1]

    def build(self, ins, out):
        from torch import nn

        return nn.ConvTranspose2d(ins[0][0], self.out, pair(self.kernel), pair(self.stride),
                                  pair(self.padding), pair(self.output_padding), self.groups, self.bias,
                                  pair(self.dilation))
