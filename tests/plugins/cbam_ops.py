"""A cnndsl plugin, as a package would ship it: CBAM, the convolutional block attention module
(Woo et al., 2018) — channel attention (a shared MLP over the average- and max-pooled map), then
spatial attention (a k×k conv over the channel-wise mean and max). Used by tests/test_plugins.py,
installed there through cbam_ops-0.1.dist-info (entry point group cnndsl.ops)."""

from __future__ import annotations

from functools import cache

from cnndsl.plugins import Op, PosInt, Shape, Window, need_map, register


@cache
def _module_class():
    import torch
    from torch import nn

    class CBAMModule(nn.Module):
        def __init__(self, channels: int, hidden: int, kernel: int):
            super().__init__()
            self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                     nn.Conv2d(hidden, channels, 1, bias=False))
            self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            gate = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
            x = x * torch.sigmoid(gate)
            pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
            return x * torch.sigmoid(self.spatial(pooled))

    return CBAMModule


@register
class CBAM(Op):
    """Convolutional block attention: ``cbam(16)``, ``cbam(8, k=3)``."""

    name = "cbam"
    summary = "convolutional block attention (channel, then spatial)"
    positional = ("reduction",)
    aliases = {"k": "kernel"}
    reduction: PosInt = 16  # channel reduction of the attention MLP
    kernel: PosInt = 7  # spatial attention kernel (odd)

    def _hidden(self, c: int) -> int:
        return max(1, c // self.reduction)

    def infer(self, ins: list[Shape]) -> Shape:
        need_map(self.name, ins[0])
        return ins[0]

    def rf(self, ins: list[Shape]) -> Window:
        k = self.kernel
        return Window((k, k), padding=(k // 2, k // 2), context=True)

    def param_shapes(self, ins: list[Shape], out: Shape) -> dict[str, Shape]:
        c = ins[0][0]
        h = self._hidden(c)
        return {"mlp.0.weight": (h, c, 1, 1), "mlp.2.weight": (c, h, 1, 1),
                "spatial.weight": (1, 2, self.kernel, self.kernel)}

    def macs(self, ins: list[Shape], out: Shape) -> int:
        c, hgt, wid = ins[0]
        return 2 * 2 * c * self._hidden(c) + 2 * self.kernel ** 2 * hgt * wid

    def build(self, ins: list[Shape], out: Shape):
        c = ins[0][0]
        return _module_class()(c, self._hidden(c), self.kernel)
