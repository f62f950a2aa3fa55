"""``cnndsl features``: the activations of named layers for one input, one channel grid per layer."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from . import viz
from .images import columns_for, normalize_each, tile
from .subject import Input, Subject, chosen_input, load_subject

WIDTH_IN, ROW_IN, TITLE_IN, INPUT_IN = 12.0, 2.4, 0.45, 2.3   # figure geometry (inches)


def figure_size(n_layers: int, dpi: int = viz.DPI) -> tuple[int, int]:
    """Pixel size of the picture for ``n_layers`` layers."""
    return round(WIDTH_IN * dpi), round((TITLE_IN + ROW_IN * max(n_layers, 1)) * dpi)


def draw(values: dict[str, torch.Tensor], inp: Input, title: str, *, max_channels: int = 64,
         describe: dict[str, str] | None = None, outputs: Sequence[str] = (),
         classes: Sequence[str] | None = None, dpi: int = viz.DPI) -> Any:
    """One row per layer: a grid of its channel maps (or a bar chart of a vector), the input at left."""
    fig = viz.figure(WIDTH_IN, TITLE_IN + ROW_IN * max(len(values), 1), dpi)
    w, h = fig.get_size_inches()
    fig.suptitle(title, fontsize=11, y=1 - 0.08 / h, va="top")
    pad = 0.12
    ax = fig.add_axes(((pad) / w, 1 - (TITLE_IN + ROW_IN - 0.2) / h, (INPUT_IN - 2 * pad) / w, (ROW_IN - 0.45) / h))
    _show_picture(ax, inp.picture)
    ax.set_title(f"input: {inp.caption}", fontsize=8)
    left = INPUT_IN + pad
    for row, (name, value) in enumerate(values.items()):
        top = TITLE_IN + row * ROW_IN
        box = (left / w, 1 - (top + ROW_IN - 0.12) / h, (w - left - pad) / w, (ROW_IN - 0.45) / h)
        ax = fig.add_axes(box)
        v = value[0].detach().float().cpu().numpy()
        label = f"{name}" + (f" · {describe[name]}" if describe and name in describe else "") \
            + f" · {'×'.join(map(str, v.shape))}"
        if v.ndim == 3:
            shown = min(max_channels, v.shape[0])
            cols = columns_for(shown, v.shape[1], v.shape[2], (box[2] * w) / (box[3] * h))
            mosaic = tile(normalize_each(v[:shown]), cols)
            ax.imshow(np.ma.masked_invalid(mosaic), cmap=_cmap("viridis"), interpolation="nearest")
            viz.hide_axes(ax)
            if shown < v.shape[0]:
                label += f" (first {shown} of {v.shape[0]} channels)"
        else:
            ax.set_position((box[0], box[1] + 0.25 / h, box[2], box[3] - 0.25 / h))
            _bars(ax, v.reshape(-1), classes if name in outputs else None)
        ax.set_title(label, fontsize=9, loc="left")
    return fig


def _bars(ax: Any, values: np.ndarray, names: Sequence[str] | None) -> None:
    """A vector as bars (the class names under them for a network output)."""
    ax.bar(np.arange(values.size), values, color="#4477aa", width=0.8)
    ax.set_xlim(-0.6, values.size - 0.4)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.tick_params(labelsize=7)
    if values.size <= 40:
        ax.set_xticks(np.arange(values.size))
        ax.set_xticklabels(list(names)[:values.size] if names and len(names) >= values.size
                           else [str(i) for i in range(values.size)], fontsize=7)


def _show_picture(ax: Any, picture: np.ndarray) -> None:
    if picture.shape[2] == 1:
        ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(picture, 0, 1), interpolation="nearest")
    viz.hide_axes(ax)


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="white")


def capture(subject: Subject, inp: Input, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    from .taps import Capture, plan

    sites = plan(subject.model, layers, subject.analysis)
    with torch.no_grad(), Capture(subject.model, sites) as cap:
        out = subject.model(inp.x)
    return cap.values(out)


def split_layers(text: Sequence[str]) -> list[str]:
    """``--layer a,b --layer c`` → ``[a, b, c]``."""
    return [n.strip() for item in text for n in item.split(",") if n.strip()]


def run(args: Any) -> int:
    viz.require_matplotlib("features")
    out = viz.check_output(args.output)
    if args.save:
        viz.check_output(args.save, "--save", (".pt",))
    layers = split_layers(args.layer)
    subject = load_subject(args, "features")
    from .taps import plan

    plan(subject.model, layers, subject.analysis)  # name errors before any data is read
    inp = chosen_input(subject, args)
    values = capture(subject, inp, layers)
    graph = subject.analysis.graph
    from .taps import resolve_node

    nodes = {n: resolve_node(subject.analysis, n) for n in layers}
    describe = {n: graph.nodes[i].kind for n, i in nodes.items()}
    outputs = [n for n, i in nodes.items() if i in graph.outputs]
    title = f"{subject.name}: feature maps ({subject.weights})"
    viz.save(draw(values, inp, title, max_channels=args.channels, describe=describe, outputs=outputs,
                  classes=subject.classes, dpi=args.dpi), out)
    print(f"wrote {out}")
    if args.save:
        from ..train.checkpoint import save_atomic

        save_atomic({"input": inp.x, **{k: v.contiguous() for k, v in values.items()}}, os.fspath(args.save))
        print(f"wrote {args.save}")
    return 0
