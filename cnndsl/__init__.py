"""cnndsl: a declarative language and compiler for convolutional neural networks.

    import cnndsl
    spec = cnndsl.load("specs/resnet18.cnn")      # parse + validate (.cnn or YAML)
    info = cnndsl.analyze(spec)                    # shapes, params, MACs, receptive fields — no torch
    model = cnndsl.build(spec, num_classes=10)     # a plain torch.nn.Module
    maps = cnndsl.features(model, x, ["conv1", "layer1"])   # activations by layer name
    opt = torch.optim.Adam(cnndsl.param_groups(model, spec))   # the train section's lr rules
"""

from __future__ import annotations

from .api import analyze, build, features, load, param_groups, parse
from .errors import CnnError, Diagnostic, Span
from .expand import Limits

__version__ = "0.1.0"
__all__ = ["load", "parse", "analyze", "build", "features", "param_groups", "CnnError", "Diagnostic", "Span", "Limits", "__version__"]
