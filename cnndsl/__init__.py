"""cnndsl: a declarative language and compiler for convolutional neural networks.

    import cnndsl
    spec = cnndsl.load("specs/resnet18.cnn")      # parse + validate (.cnn or YAML)
    info = cnndsl.analyze(spec)                    # shapes, params, MACs, receptive fields — no torch
    model = cnndsl.build(spec, num_classes=10)     # a plain torch.nn.Module
    maps = cnndsl.features(model, x, ["conv1", "layer1"])   # activations by layer name
    res = cnndsl.train("specs/mnist5k.cnn", epochs=3)   # train with the spec's train section (docs/api.md)
    ev = cnndsl.evaluate(res)                      # accuracy, per-class accuracy, confusion matrix
"""

from __future__ import annotations

from .api import analyze, build, features, load, parse
from .errors import CnnError, Diagnostic, Span
from .expand import Limits

__version__ = "0.1.0"
__all__ = ["load", "parse", "analyze", "build", "features", "train", "evaluate", "predict", "CnnError", "Diagnostic",
           "Span", "Limits", "__version__"]


def __getattr__(name: str):
    """``train`` (the callable :mod:`cnndsl.train` package), ``evaluate`` and ``predict``, imported on
    first use so that ``import cnndsl`` stays light."""
    if name in ("train", "evaluate", "predict"):
        import importlib

        if name == "train":
            return importlib.import_module(".train", __name__)
        return getattr(importlib.import_module(".train.api", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
