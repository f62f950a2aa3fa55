"""Building a backbone: the model cut with torchvision's ``create_feature_extractor`` (or timm's
wrapper of it), or a cnndsl network; then its weights, by name; then its frozen parameters."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ..errors import error
from ..weights.init import loading_initial_weights
from ..weights.load import read_state
from ..weights.match import load_matched
from .expand import BackboneDesc, instantiate


class Pick(nn.Module):
    """``out[key]``: one tap of a backbone's outputs (the whole output for ``key=None``)."""

    def __init__(self, key: Any):
        super().__init__()
        self.key = key

    def forward(self, out: Any) -> torch.Tensor:
        return out if self.key is None else out[self.key]

    def extra_repr(self) -> str:
        return repr(self.key)


def build_backbone(desc: BackboneDesc, frozen: tuple[str, ...]) -> nn.Module:
    module = _spec_network(desc) if desc.source == "spec" else _extractor(desc)
    if desc.weights is not None and loading_initial_weights():
        state = read_state(desc.weights)
        report = load_matched(module, state, strict=desc.strict, ignore=desc.dropped,
                              what=f"backbone '{desc.path}' ({desc.model})", source=desc.weights.describe(),
                              span=desc.weights.span)
        module.cnndsl_weights = report.line(f"backbone '{desc.path}'", desc.weights.describe(), desc.strict)
    for name in frozen:
        module.get_parameter(name).requires_grad_(False)
    return module


def _extractor(desc: BackboneDesc) -> nn.Module:
    """The model with random weights, cut at the backbone's outputs (a GraphModule returning
    ``{node name: tensor}``), built by the feature-extraction API of its library."""
    model = instantiate(desc.source, desc.model, desc.args, desc.span, meta=False)
    queries = [desc.queries[desc.outputs.index(n)] for n in dict.fromkeys(desc.outputs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # train/eval graph differences (aux heads) are expected
        if desc.source == "timm":
            from timm.layers import create_feature_extractor
            return create_feature_extractor(model, return_nodes={q: q for q in queries})
        from torchvision.models.feature_extraction import create_feature_extractor
        return create_feature_extractor(model, return_nodes={q: q for q in queries})


def _spec_network(desc: BackboneDesc) -> nn.Module:
    from ..analysis import analyze_graph
    from ..emit.module import build_network

    if desc.inner is None:  # pragma: no cover - set by the expander for every spec backbone
        raise error(f"backbone {desc.model} has no graph", desc.span)
    return build_network(analyze_graph(desc.inner))
