"""``cnndsl cam``: Grad-CAM (Selvaraju et al., 2017) — where the evidence for a class lies.

The feature map A of a layer is weighted per channel by the spatial mean of d score / dA; the
positive part of the weighted sum, upsampled to the input, is the heatmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import error
from . import viz
from .subject import Subject, chosen_input, load_subject

WIDTH_IN, HEIGHT_IN = 13.0, 4.8


@dataclass
class Cam:
    heatmap: np.ndarray       # H x W in [0, 1], at the input's resolution
    target: int               # the class explained
    probs: np.ndarray         # softmax of the network's scores
    layer: str
    where: str = ""           # for captions: "relu, 128×7×7"


def grad_cam(model: torch.nn.Module, x: torch.Tensor, layer: str, target: int | None = None, *,
             analysis: Any = None) -> Cam:
    """Grad-CAM of ``model`` on one input ``x`` (1 x C x H x W) at ``layer`` for class ``target``
    (default: the predicted class)."""
    from .taps import Capture, plan

    sites = plan(model, [layer], analysis)
    with torch.enable_grad(), Capture(model, sites, keep_grad=True) as cap:
        out = model(x)
        acts = cap.values(out)[layer]
        scores = out[0] if isinstance(out, (tuple, list)) else out
        if scores.dim() != 2:
            raise error(f"Grad-CAM explains class scores, but the network's output is "
                        f"{'×'.join(map(str, scores.shape[1:]))} per image", None,
                        "use a classifier (its first output: one score per class)")
        if acts.dim() != 4:
            raise error(f"--layer: '{layer}' outputs {'×'.join(map(str, acts.shape[1:]))}; Grad-CAM needs a "
                        "feature map (C×H×W)", None, "pick a conv block's output, e.g. the deepest feature map")
        k = int(scores[0].argmax()) if target is None else target
        if not 0 <= k < scores.shape[1]:
            raise error(f"--class {k} is out of range: the network has {scores.shape[1]} classes", None,
                        f"use 0 ... {scores.shape[1] - 1}")
        (grads,) = torch.autograd.grad(scores[0, k], acts)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)[0, 0]
    top = float(cam.max())
    heat = (cam / top if top > 0 else cam).double().cpu().numpy()
    probs = scores.detach()[0].float().softmax(0).cpu().numpy()
    return Cam(heat, k, probs, layer)


def class_index(text: str | None, classes: Sequence[str] | None) -> int | None:
    """``--class`` as an index or a class name."""
    if text is None:
        return None
    if classes and text in classes:
        return list(classes).index(text)
    try:
        return int(text)
    except ValueError:
        from ..errors import did_you_mean

        hint = did_you_mean(text, classes or [])
        raise error(f"--class: unknown class '{text}'", None,
                    (hint + " " if hint else "") + ("classes: " + ", ".join(classes[:30]) if classes
                                                    else "give a class index")) from None


def draw(cam: Cam, picture: np.ndarray, subject: Subject, caption: str, dpi: int = viz.DPI) -> Any:
    import matplotlib

    fig = viz.figure(WIDTH_IN, HEIGHT_IN, dpi)
    pred = int(cam.probs.argmax())
    where = f" ({cam.where})" if cam.where else ""
    fig.suptitle(f"{subject.name}: Grad-CAM at {cam.layer}{where} for class '{subject.class_name(cam.target)}' "
                 f"(p = {cam.probs[cam.target]:.1%}; predicted '{subject.class_name(pred)}') — {subject.weights}",
                 fontsize=10)
    gray = picture[:, :, 0] if picture.shape[2] == 1 else picture.mean(axis=2)
    shown = np.repeat(gray[:, :, None], 3, axis=2) if picture.shape[2] == 1 else picture
    panels = [("input: " + caption, shown, None), ("Grad-CAM", cam.heatmap, "jet"), ("overlay", None, None)]
    for i, (title, img, cmap) in enumerate(panels):
        ax = fig.add_axes((0.02 + i * 0.245, 0.06, 0.23, 0.78))
        if img is not None:
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest" if cmap is None else "bilinear")
        else:
            heat = matplotlib.colormaps["jet"](cam.heatmap)[..., :3]
            ax.imshow(np.clip(0.55 * np.repeat(gray[:, :, None], 3, axis=2) + 0.45 * heat, 0, 1))
        viz.hide_axes(ax)
        ax.set_title(title, fontsize=9)
    ax = fig.add_axes((0.8, 0.12, 0.18, 0.7))
    order = np.argsort(cam.probs)[::-1][:5]
    ax.barh(np.arange(len(order))[::-1], cam.probs[order],
            color=["#d62728" if k == cam.target else "#4477aa" for k in order])
    ax.set_yticks(np.arange(len(order))[::-1])
    ax.set_yticklabels([subject.class_name(int(k)) for k in order], fontsize=8)
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title("top classes", fontsize=9)
    return fig


def run(args: Any) -> int:
    viz.require_matplotlib("cam")
    out = viz.check_output(args.output)
    subject = load_subject(args, "cam")
    from .rf import spatial_node

    layer, nid = spatial_node(subject, args.layer, "Grad-CAM explains a feature map")
    node = subject.analysis.graph.nodes[nid]
    target = class_index(args.target, subject.classes)
    inp = chosen_input(subject, args)
    cam = grad_cam(subject.model, inp.x, layer, target, analysis=subject.analysis)
    cam.where = f"{node.kind}, {'×'.join(map(str, node.shape))}"
    if not cam.heatmap.any():
        from .subject import note

        note(f"no positive evidence for class '{subject.class_name(cam.target)}' at {layer}: the heatmap is empty")
    viz.save(draw(cam, inp.picture, subject, inp.caption, args.dpi), out)
    print(f"wrote {out}: class '{subject.class_name(cam.target)}' p = {cam.probs[cam.target]:.1%}")
    return 0
