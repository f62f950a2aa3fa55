"""Backbones in the emitted file: the model built by its library and cut at the spec's taps.

A torchvision backbone is written as ``create_feature_extractor(torchvision.models.get_model(...),
return_nodes={...})`` — what :mod:`cnndsl.backbone.runtime` builds — so its parameters keep their
names (``backbone.layer1.0.conv1.weight``) and cnndsl's state_dict loads with ``strict=True``; a
timm backbone likewise with timm's functions. A backbone that is another cnndsl spec is refused:
compile that spec on its own and call its class.
"""

from __future__ import annotations

from typing import Any

from ..errors import error
from . import py_text as T
from .py_layout import CallExpr, KwArg

IMPORTS = {
    "torchvision": ["import torchvision", "from torchvision.models.feature_extraction import create_feature_extractor"],
    "timm": ["import timm", "from timm.layers import create_feature_extractor"],
}


def backbone_expression(desc: Any) -> CallExpr:
    """The Python expression building backbone ``desc`` (a BackboneDesc) with random weights."""
    if desc.source not in IMPORTS:
        raise error(f"--emit python cannot write backbone '{desc.path}': it is the cnndsl spec {desc.model}",
                    desc.span, "compile that spec with --emit python on its own and use its class, or export "
                               "the network (cnndsl export)")
    for name in desc.args:
        if not T.is_identifier(str(name)):
            raise error(f"--emit python cannot pass argument {name!r} to {desc.model}", desc.span)
    args: list[Any] = [KwArg(k, T.literal(v)) for k, v in desc.args.items()]
    if desc.source == "timm":
        model = CallExpr("timm.create_model", [T.string(desc.model), KwArg("pretrained", "False"), *args])
    else:
        model = CallExpr("torchvision.models.get_model", [T.string(desc.model), KwArg("weights", "None"), *args])
    queries = list(dict.fromkeys(desc.queries[desc.outputs.index(n)] for n in dict.fromkeys(desc.outputs)))
    nodes = ", ".join(f"{T.string(q)}: {T.string(q)}" for q in queries)
    return CallExpr("create_feature_extractor", [model, KwArg("return_nodes", "{" + nodes + "}")])


def imports(sources: set[str]) -> tuple[list[str], list[str]]:
    """(``import`` lines, ``from`` lines) for the libraries of the file's backbones, sorted as
    ruff's isort rule wants them around ``import torch`` / ``from torch import nn``."""
    lines = [line for s in sorted(sources) for line in IMPORTS.get(s, [])]
    return [l for l in lines if l.startswith("import ")], [l for l in lines if l.startswith("from ")]
