"""cnndsl: a declarative language and compiler for convolutional neural networks.

    import cnndsl
    spec = cnndsl.load("specs/resnet18.cnn")      # parse + validate (.cnn or YAML)
    info = cnndsl.analyze(spec)                    # shapes, params, MACs, receptive fields — no torch
    model = cnndsl.build(spec, num_classes=10)     # a plain torch.nn.Module
    maps = cnndsl.features(model, x, ["conv1", "layer1"])   # activations by layer name
    res = cnndsl.train("specs/mnist5k.cnn", epochs=3)   # train with the spec's train section (docs/api.md)
    ev = cnndsl.evaluate(res)                      # accuracy, per-class accuracy, confusion matrix
    opt = torch.optim.Adam(cnndsl.param_groups(model, spec))   # the train section's lr rules

The names are imported on first use (PEP 562), so ``import cnndsl`` — and ``cnndsl --version`` —
costs nothing until a spec is read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load", "parse", "analyze", "build", "features", "param_groups", "train", "evaluate", "predict",
           "CnnError", "Diagnostic", "Span", "Limits", "__version__"]

# name -> the module that defines it; ``train`` is the callable :mod:`cnndsl.train` package itself
_HOME = {"load": "api", "parse": "api", "analyze": "api", "build": "api", "features": "api", "param_groups": "api",
         "evaluate": "train.api", "predict": "train.api",
         "CnnError": "errors", "Diagnostic": "errors", "Span": "errors", "Limits": "expand"}

if TYPE_CHECKING:
    from .api import analyze, build, features, load, param_groups, parse
    from .errors import CnnError, Diagnostic, Span
    from .expand import Limits
    from .train import train
    from .train.api import evaluate, predict


def __getattr__(name: str) -> Any:
    if name == "train":
        return importlib.import_module(".train", __name__)
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnndsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
