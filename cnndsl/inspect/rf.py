"""``cnndsl rf``: the receptive field of a layer, drawn on the input.

The theoretical field comes from the static analysis (:mod:`cnndsl.analysis.receptive_field`):
unit (i, j) of a layer is centred at ``start + (i, j)·stride`` input pixels and spans ``size`` pixels
(pixel k covers [k, k+1]). The effective field (Luo et al., 2016, "Understanding the effective
receptive field in deep convolutional neural networks") is the magnitude of the input gradient of
that unit — summed over its channels — averaged over a few inputs.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import error
from ..layout import axes_text, is_standard
from . import viz
from .subject import Subject, chosen_input, load_subject

WIDTH_IN, HEIGHT_IN = 13.0, 5.5
MASS = 0.9   # the effective size is the centred square holding this share of the gradient


def unit_box(rf: Any, unit: tuple[int, int]) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) of unit ``(i, j)``'s field in input pixel coordinates, unclipped."""
    cy = float(rf.start[0] + unit[0] * rf.jump[0])
    cx = float(rf.start[1] + unit[1] * rf.jump[1])
    hy, hx = float(rf.size[0]) / 2, float(rf.size[1]) / 2
    return cy - hy, cx - hx, cy + hy, cx + hx


def pixel_box(rf: Any, unit: tuple[int, int], height: int, width: int) -> tuple[int, int, int, int]:
    """The input pixels inside unit ``(i, j)``'s field: rows [r0, r1), columns [c0, c1), clipped."""
    top, left, bottom, right = unit_box(rf, unit)
    return (max(0, math.floor(top)), max(0, math.floor(left)),
            min(height, math.ceil(bottom)), min(width, math.ceil(right)))


def centre_unit(shape: Sequence[int]) -> tuple[int, int]:
    return (shape[-2] - 1) // 2, (shape[-1] - 1) // 2


def spatial_node(subject: Subject, layer: str | None, why: str = "a receptive field belongs to a feature map"
                 ) -> tuple[str, int]:
    """The requested layer (default: the deepest feature map), which must be a C×H×W map."""
    from .taps import resolve_node

    a = subject.analysis
    if layer is None:
        if a.final_rf_node is None:
            raise error(f"{a.name} has no feature map to take a receptive field of", None,
                        "the network's input must be an image")
        layer = a.final_rf_node
    nid = resolve_node(a, layer)
    node = a.graph.nodes[nid]
    if len(node.shape) != 3 or nid == 0 or not is_standard(node.shape):
        spatial = [n.path for n in a.graph.layers() if len(n.shape) == 3 and is_standard(n.shape)]
        what = ("a vector" if len(node.shape) == 1 else "the input" if nid == 0
                else f"a map whose axes are {axes_text(node.shape)}")
        raise error(f"--layer: '{layer}' outputs {what} ({'×'.join(map(str, node.shape))}); {why}", None,
                    "pick a layer with a C×H×W output, e.g. " + ", ".join(f"'{p}'" for p in spatial[-3:]))
    field = next(info.rf for info in a.layers if info.node.id == nid)
    if field is not None and field.lost:
        raise error(f"--layer: '{layer}' has no receptive field: the spatial structure was lost at "
                    f"'{field.lost}'", None, "pick a layer before it")
    return layer, nid


def effective_rf(subject: Subject, layer: str, unit: tuple[int, int], inputs: torch.Tensor) -> np.ndarray:
    """Mean over ``inputs`` (N x C x H x W) of |d unit / d input|, summed over input channels (H x W)."""
    from .taps import Capture, plan

    sites = plan(subject.model, [layer], subject.analysis)
    x = inputs.clone().requires_grad_(True)
    with torch.enable_grad(), Capture(subject.model, sites, keep_grad=True) as cap:
        out = subject.model(x)
        value = cap.values(out)[layer]
        target = value[:, :, unit[0], unit[1]].sum()
        (grad,) = torch.autograd.grad(target, x)
    return grad.abs().sum(1).mean(0).double().cpu().numpy()


def effective_size(erf: np.ndarray, centre: tuple[float, float], mass: float = MASS) -> int:
    """Side of the smallest square centred on ``centre`` that holds ``mass`` of the gradient."""
    total = erf.sum()
    if total <= 0:
        return 0
    h, w = erf.shape
    for side in range(1, 2 * max(h, w) + 1):
        r0, c0 = max(0, math.floor(centre[0] - side / 2)), max(0, math.floor(centre[1] - side / 2))
        if erf[r0:r0 + side, c0:c0 + side].sum() >= mass * total:
            return side
    return 2 * max(h, w)


def depth_profile(analysis: Any) -> list[tuple[str, float, float, bool]]:
    """(name, RF size, RF stride, global) for the feature maps along the network's trunk: the path
    back from the first output that follows, at each merge, the input with the largest field."""
    graph = analysis.graph
    rf = {info.node.id: info.rf for info in analysis.layers}
    nid, path = graph.outputs[0], []
    while nid != 0:
        path.append(nid)
        nid = max(graph.nodes[nid].inputs, key=lambda i: (i != 0, rf[i].size if rf.get(i) else (0, 0)))
    rows = []
    for nid in reversed(path):
        node, field = graph.nodes[nid], rf[nid]
        if field is not None and len(node.shape) == 3 and not field.lost:
            rows.append((node.path, float(field.size[0]), float(field.jump[0]), field.global_))
    return rows


def draw(subject: Subject, layer: str, nid: int, picture: np.ndarray | None, erf: np.ndarray | None,
         caption: str, dpi: int = viz.DPI) -> Any:
    from matplotlib.patches import Rectangle

    a = subject.analysis
    node = a.graph.nodes[nid]
    rf = next(info.rf for info in a.layers if info.node.id == nid)
    _, h, w = a.input_shape
    fig = viz.figure(WIDTH_IN, HEIGHT_IN, dpi)
    fig.suptitle(f"{a.name}: receptive field of {layer} ({node.kind}, {'×'.join(map(str, node.shape))}) — "
                 f"size {rf.text()}, stride {rf.text('stride')}", fontsize=11)
    ax = fig.add_axes((0.03, 0.17, 0.5, 0.71))
    if picture is None:
        ax.imshow(np.full((h, w), 0.92), cmap="gray", vmin=0, vmax=1, extent=(0, w, h, 0))
    elif picture.shape[2] == 1:
        ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=1, extent=(0, w, h, 0), interpolation="nearest")
    else:
        ax.imshow(picture, extent=(0, w, h, 0), interpolation="nearest")
    units = {"centre": centre_unit(node.shape), "corner": (0, 0)}
    boxes = {k: unit_box(rf, u) for k, u in units.items()}
    legend = []
    if erf is not None:
        import matplotlib

        top = float(np.quantile(erf, 0.995)) or float(erf.max()) or 1.0
        heat = np.sqrt(np.clip(erf / top, 0, 1))  # square root, peak clipped: the tails stay visible
        rgba = matplotlib.colormaps["inferno"](heat)
        rgba[..., 3] = np.clip(heat * 1.2, 0, 0.85)
        ax.imshow(rgba, extent=(0, w, h, 0), interpolation="nearest")
        cy, cx = (boxes["centre"][0] + boxes["centre"][2]) / 2, (boxes["centre"][1] + boxes["centre"][3]) / 2
        side = effective_size(erf, (cy, cx))
        ax.add_patch(Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, linewidth=1.2,
                               linestyle="--", edgecolor="#ffd400",
                               label=f"effective: {MASS:.0%} of the gradient, {side}×{side} px"))
        r0, c0, r1, c1 = pixel_box(rf, units["centre"], h, w)
        inside = erf[r0:r1, c0:c1].sum() / (erf.sum() or 1)
        legend.append(f"effective field of the centre unit (heat, square-root scale): {inside:.1%} of its "
                      "gradient inside the theoretical box")
    colours = {"centre": "#00c8ff", "corner": "#ff4fd8"}
    for k, (top, left, bottom, right) in boxes.items():
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, linewidth=2,
                               edgecolor=colours[k], label=f"{k} unit {units[k]}: {right - left:g}×{bottom - top:g} px"))
        ax.plot([(left + right) / 2], [(top + bottom) / 2], "o", color=colours[k], markersize=4)
    lo_y = min(0.0, *(b[0] for b in boxes.values()))
    lo_x = min(0.0, *(b[1] for b in boxes.values()))
    hi_y = max(float(h), *(b[2] for b in boxes.values()))
    hi_x = max(float(w), *(b[3] for b in boxes.values()))
    ax.add_patch(Rectangle((0, 0), w, h, fill=False, linewidth=0.8, edgecolor="black", linestyle=":"))
    ax.set_xlim(lo_x - 1, hi_x + 1)
    ax.set_ylim(hi_y + 1, lo_y - 1)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.05), fontsize=8, frameon=False, ncol=2)
    ax.set_title(caption + ("\n" + legend[0] if legend else ""), fontsize=8)
    _draw_profile(fig.add_axes((0.6, 0.22, 0.37, 0.66)), a, layer, node.path)
    return fig


def _draw_profile(ax: Any, analysis: Any, layer: str, path: str) -> None:
    rows = depth_profile(analysis)
    xs = np.arange(len(rows))
    ax.plot(xs, [r[1] for r in rows], "-o", markersize=2.5, color="#1f77b4", label="RF size (px)")
    ax.plot(xs, [r[2] for r in rows], "-s", markersize=2.5, color="#d62728", label="RF stride (px)")
    ax.axhline(analysis.input_shape[1], color="gray", linestyle="--", linewidth=0.8, label="input height")
    ax.set_yscale("log", base=2)
    here = [i for i, r in enumerate(rows) if r[0] == path]
    if here:
        ax.axvline(here[0], color="#00c8ff", linewidth=1.5, label=f"{layer}")
    named = [i for i, r in enumerate(rows) if not r[0].rsplit(".", 1)[-1].isdigit()] or list(xs)
    step = max(1, math.ceil(len(named) / 14))
    ticks = named[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([rows[i][0] for i in ticks], rotation=60, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("depth (feature maps along the trunk)", fontsize=8)
    ax.set_title("receptive field against depth", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def run(args: Any) -> int:
    viz.require_matplotlib("rf")
    out = viz.check_output(args.output)
    subject = load_subject(args, "rf")
    layer, nid = spatial_node(subject, args.layer)
    given = args.image is not None or args.sample is not None
    inp = chosen_input(subject, args) if given else None
    erf = None
    caption = f"on {inp.caption}" if inp else "on a blank canvas of the input size"
    if args.effective:
        g = torch.Generator().manual_seed(args.seed)
        shape = (args.samples, *subject.analysis.input_shape)
        if inp is not None:  # the image and noisy copies of it
            noise = torch.randn(shape, generator=g) * 0.25
            noise[0] = 0
            inputs = inp.x + noise
        else:
            inputs = torch.randn(shape, generator=g)
        node = subject.analysis.graph.nodes[nid]
        erf = effective_rf(subject, layer, centre_unit(node.shape), inputs)
        what = "the image and noisy copies" if inp else "random inputs"
        caption += f"; effective field averaged over {args.samples} inputs ({what}), {subject.weights}"
    viz.save(draw(subject, layer, nid, inp.picture if inp else None, erf, caption, args.dpi), out)
    print(f"wrote {out}")
    return 0
