"""``cnndsl filters``: the kernels of a convolution as an image grid.

A convolution on 3-channel input shows each kernel as one RGB tile (each scaled on its own, as
in the AlexNet paper's figure); any other shows a grid of filters × input channels on one shared,
symmetric colour scale, so that magnitudes compare.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..errors import error
from . import viz
from .images import columns_for, tile
from .subject import load_subject

WIDTH_IN, HEIGHT_IN = 10.0, 6.5
MAX_INPUTS = 16
_CONVS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)


def conv_layers(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, _CONVS)]


def pick_layer(model: nn.Module, layer: str | None, network: str) -> tuple[str, nn.Module]:
    """The named conv layer (or the first), or a CnnError listing the conv layers."""
    convs = conv_layers(model)
    if not convs:
        raise error(f"{network} has no convolution layers", None, "cnndsl filters draws conv kernels")
    if layer is None:
        return convs[0], model.get_submodule(convs[0])
    if layer not in convs:
        from ..errors import did_you_mean

        what = "is not a convolution" if layer in dict(model.named_modules()) else "does not exist"
        hint = did_you_mean(layer, convs)
        raise error(f"--layer: '{layer}' {what} in {network}", None,
                    (hint + " " if hint else "") + "conv layers: " + ", ".join(convs[:30])
                    + (" ..." if len(convs) > 30 else ""))
    return layer, model.get_submodule(layer)


def draw(weight: np.ndarray, title: str, *, max_filters: int = 64, transposed: bool = False,
         rgb: bool = True, dpi: int = viz.DPI) -> Any:
    """``weight`` is out × in × kh × kw (in × out × ... for transposed convolutions); kernels with 3
    input channels are drawn in colour when ``rgb``."""
    if transposed:
        weight = weight.transpose(1, 0, 2, 3)
    out_ch, in_ch = weight.shape[:2]
    fig = viz.figure(WIDTH_IN, HEIGHT_IN, dpi)
    fig.suptitle(title, fontsize=11)
    n = min(out_ch, max_filters)
    ax = fig.add_axes((0.03, 0.05, 0.84, 0.85))
    kh, kw = weight.shape[2:]
    if in_ch == 3 and rgb:
        w = weight[:n].transpose(0, 2, 3, 1)
        lim = np.abs(w).max(axis=(1, 2, 3), keepdims=True)
        rgb = 0.5 + w / (2 * np.where(lim > 0, lim, 1))
        cols = columns_for(n, kh, kw, 0.84 * WIDTH_IN / (0.85 * HEIGHT_IN))
        ax.imshow(tile(rgb, cols, fill=1.0), interpolation="nearest")
        caption = f"{n} of {out_ch} filters, RGB, each scaled to its own range" if n < out_ch else \
            f"{out_ch} filters, RGB, each scaled to its own range"
        viz.hide_axes(ax)
        ax.set_title(caption, fontsize=9)
        return fig
    shown_in = min(in_ch, MAX_INPUTS)
    w = weight[:n, :shown_in]
    lim = float(np.abs(w).max()) or 1.0
    if shown_in == 1:
        cols = columns_for(n, kh, kw, 0.84 * WIDTH_IN / (0.85 * HEIGHT_IN))
        mosaic = tile(w[:, 0], cols)
        caption = f"{n} of {out_ch} filters" if n < out_ch else f"{out_ch} filters"
    else:  # one block per filter: its kernels, one per input channel
        import math

        per_row = math.ceil(math.sqrt(shown_in))
        blocks = np.stack([tile(w[i], per_row) for i in range(n)])
        cols = columns_for(n, *blocks.shape[1:3], 0.84 * WIDTH_IN / (0.85 * HEIGHT_IN))
        mosaic = tile(blocks, cols, pad=3)
        caption = (f"{n} of {out_ch} filters" if n < out_ch else f"{out_ch} filters") + \
            (f", each a block of its kernels for {shown_in} of {in_ch} input channels" if shown_in < in_ch else
             f", each a block of its kernels for the {in_ch} input channels")
    import matplotlib

    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    viz.hide_axes(ax)
    ax.set_title(caption + "; one colour scale", fontsize=9)
    cax = fig.add_axes((0.9, 0.2, 0.02, 0.55))
    fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)
    return fig


def run(args: Any) -> int:
    viz.require_matplotlib("filters")
    out = viz.check_output(args.output)
    subject = load_subject(args, "filters", need_image_input=False)
    name, conv = pick_layer(subject.model, args.layer, subject.name)
    weight = conv.weight.detach().float().cpu().numpy()
    if weight.ndim == 3:  # conv1d: one row of taps
        weight = weight[:, :, None, :]
    shape = "×".join(map(str, conv.weight.shape))
    title = f"{subject.name}: {name} kernels {shape} ({subject.weights})"
    fig = draw(weight, title, max_filters=args.max_filters, transposed=isinstance(conv, nn.ConvTranspose2d),
               rgb=getattr(conv, "groups", 1) == 1, dpi=args.dpi)
    viz.save(fig, out)
    print(f"wrote {out}")
    return 0
