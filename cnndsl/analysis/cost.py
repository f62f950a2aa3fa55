"""Parameters (trainable and frozen), buffers, MACs and activation sizes per node.

MACs count the multiply-accumulates of convolutions, transposed convolutions and linear layers
(weights only: biases, norms, activations and pools are not counted), the convention behind the
usual "1.8 GMACs" for ResNet-18.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from ..errors import Diagnostic, warning
from ..graph import Graph


@dataclass(frozen=True, slots=True)
class Cost:
    params: int
    trainable: int
    macs: int
    activations: int                       # output elements per sample
    param_shapes: dict[str, tuple[int, ...]]
    buffer_shapes: dict[str, tuple[int, ...]]
    frozen: tuple[str, ...]                # names of this node's frozen parameters


def param_key(path: str, name: str) -> str:
    """The state_dict key of parameter ``name`` of the layer at ``path`` ("" for a bare parameter,
    registered under the layer's own name: ``layer_scale``)."""
    return f"{path}.{name}" if name else path


def _matches(name: str, pattern: str) -> bool:
    """A glob over parameter names; a bare module path also matches everything below it."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def costs(graph: Graph) -> tuple[list[Cost | None], list[Diagnostic]]:
    out: list[Cost | None] = [None]
    used: set[str] = set()
    for node in graph.layers():
        ins = [graph.nodes[i].shape for i in node.inputs]
        pshapes = node.op.param_shapes(ins, node.shape)
        bshapes = node.op.buffer_shapes(ins, node.shape)
        frozen = []
        for pname in pshapes:
            full = param_key(node.path, pname)
            hits = [p for p, _ in graph.freeze if _matches(full, p)]
            keeps = [p for p, _ in graph.unfreeze if _matches(full, p)]
            used.update(hits + keeps)
            if hits and not keeps:
                frozen.append(pname)
        params = sum(math.prod(s) for s in pshapes.values())
        trainable = params - sum(math.prod(pshapes[p]) for p in frozen)
        out.append(Cost(params, trainable, node.op.macs(ins, node.shape), math.prod(node.shape),
                        pshapes, bshapes, tuple(frozen)))
    warnings = [warning(f"pattern '{p}' matches no parameter", span,
                        "patterns are globs over names like 'layer1.0.conv1.weight'")
                for p, span in graph.freeze + graph.unfreeze if p not in used]
    return out, warnings
