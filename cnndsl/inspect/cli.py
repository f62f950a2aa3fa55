"""argparse registration of ``features``, ``filters``, ``rf``, ``cam``, ``graph`` and ``plot``.

Imports argparse only: each handler imports torch / matplotlib when its command runs.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable, Sequence

# cnndsl.cli imports this module while it builds its parser
from ..cli import number_type

_non_negative, _positive = number_type(int, 0), number_type(int, 1)


def _lazy(module: str) -> Callable[[Any], int]:
    """A handler that imports ``cnndsl.inspect.<module>`` and calls its ``run(args)``."""
    def handler(args: Any) -> int:
        return importlib.import_module(f"cnndsl.inspect.{module}").run(args)
    return handler


def _checkpoint(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--checkpoint", required=required, metavar="PATH|RUN_DIR",
                   help="trained weights: a checkpoint file or a run directory (its --set values and "
                        "normalisation are reused); without it, the random initial weights")


def _output(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("-o", "--output", default=default, metavar="FILE", help=f"image to write (default {default})")
    p.add_argument("--dpi", type=_positive, default=100, help="pixels per inch of the picture (default 100)")


def _image(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=False)
    g.add_argument("--image", metavar="IMG", help="an image file (converted to the network's channels and size)")
    g.add_argument("--sample", type=_non_negative, metavar="N", help="image N of the spec's validation data")
    p.add_argument("--data-root", dest="data_root", help="directory holding dataset files (with --sample)")


def register(subparsers: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add the inspection subcommands; each sets ``func(args) -> int``."""
    parents = list(parents)
    p = subparsers.add_parser("features", parents=parents, help="draw the feature maps of named layers for one input",
                              description="Run one image (or a dataset sample) through the network and draw the "
                                          "activations of the named layers, one channel grid per layer.")
    _checkpoint(p)
    _image(p)
    p.add_argument("--layer", action="append", required=True, metavar="NAME[,NAME...]",
                   help="layers or blocks to show (repeatable): conv1, layer1, layer1.0.bn2, ...")
    p.add_argument("--channels", type=_positive, default=64, metavar="N", help="at most N channels per layer (64)")
    p.add_argument("--save", metavar="FILE.pt", help="also save the raw tensors (torch.save of {name: tensor})")
    _output(p, "features.png")
    p.set_defaults(func=_lazy("features"))

    p = subparsers.add_parser("filters", parents=parents, help="draw the learned kernels of a conv layer",
                              description="The kernels of a convolution as an image grid (RGB for a first "
                                          "layer on 3-channel input).")
    _checkpoint(p)
    p.add_argument("--layer", metavar="NAME", help="the conv layer (default: the first one)")
    p.add_argument("--max", dest="max_filters", type=_positive, default=64, metavar="N",
                   help="at most N filters (64)")
    _output(p, "filters.png")
    p.set_defaults(func=_lazy("filters"))

    p = subparsers.add_parser("rf", parents=parents, help="draw the receptive field of a layer on the input",
                              description="The theoretical receptive field of the centre and corner units of a "
                                          "layer (from the static analysis), optionally the effective one "
                                          "(input-gradient magnitude), and RF size and stride against depth.")
    _checkpoint(p)
    _image(p)
    p.add_argument("--layer", metavar="NAME", help="the layer (default: the deepest feature map)")
    p.add_argument("--effective", action="store_true", help="also draw the effective receptive field (Luo et al. 2016)")
    p.add_argument("--samples", type=_positive, default=8, metavar="N",
                   help="inputs the effective field is averaged over (8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")
    _output(p, "rf.png")
    p.set_defaults(func=_lazy("rf"))

    p = subparsers.add_parser("cam", parents=parents, help="Grad-CAM heatmap of a class over an image",
                              description="Grad-CAM (Selvaraju et al. 2017): where in the image the evidence "
                                          "for the predicted (or given) class lies.")
    _checkpoint(p)
    _image(p)
    p.add_argument("--layer", metavar="NAME", help="feature map to explain (default: the deepest one)")
    p.add_argument("--class", dest="target", metavar="K", help="class index or name (default: the predicted one)")
    _output(p, "cam.png")
    p.set_defaults(func=_lazy("cam"))

    p = subparsers.add_parser("graph", parents=parents, help="architecture diagram (.svg, .png, .dot, .mmd)",
                              description="A diagram of the network: each layer with its op and output shape, "
                                          "branches and merges, blocks and stages as clusters.")
    p.add_argument("-o", "--output", default="net.svg", metavar="FILE",
                   help="net.svg | net.png | net.pdf (Graphviz, else matplotlib) | net.dot | net.mmd (text)")
    p.add_argument("--depth", type=_non_negative, metavar="N",
                   help="show N levels of blocks; deeper blocks are drawn as one box (default: all)")
    p.add_argument("--dpi", type=_positive, default=100, help="pixels per inch for .png (default 100)")
    p.set_defaults(func=_lazy("diagram"))

    p = subparsers.add_parser("plot", help="training curves of one or more runs",
                              description="Loss, accuracy and learning rate against epochs (train and "
                                          "validation), several runs overlaid.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (with metrics.jsonl or metrics.csv)")
    _output(p, "curves.png")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    p.set_defaults(func=_lazy("curves"))
