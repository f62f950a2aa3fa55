"""Parameters (trainable and frozen), buffers, MACs and activation sizes per node.

MACs count the multiply-accumulates of convolutions, transposed convolutions and linear layers
(weights only: biases, norms, activations and pools are not counted), the convention behind the
usual "1.8 GMACs" for ResNet-18.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import globs
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


def costs(graph: Graph) -> tuple[list[Cost | None], list[Diagnostic]]:
    out: list[Cost | None] = [None]
    names: list[str] = []
    freeze, unfreeze = [p for p, _ in graph.freeze], [p for p, _ in graph.unfreeze]
    for node in graph.layers():
        ins = [graph.nodes[i].shape for i in node.inputs]
        pshapes = node.op.param_shapes(ins, node.shape)
        bshapes = node.op.buffer_shapes(ins, node.shape)
        full = {pname: param_key(node.path, pname) for pname in pshapes}
        names += full.values()
        frozen = [pname for pname in pshapes if globs.frozen(full[pname], freeze, unfreeze)]
        params = sum(math.prod(s) for s in pshapes.values())
        trainable = params - sum(math.prod(pshapes[p]) for p in frozen)
        out.append(Cost(params, trainable, node.op.macs(ins, node.shape), math.prod(node.shape),
                        pshapes, bshapes, tuple(frozen)))
    return out, freeze_warnings(graph, names)


def freeze_warnings(graph: Graph, names: list[str]) -> list[Diagnostic]:
    """A ``freeze``/``unfreeze`` pattern that matches no parameter, or that changes nothing."""
    found: list[Diagnostic] = []
    freeze, unfreeze = [p for p, _ in graph.freeze], [p for p, _ in graph.unfreeze]
    for kind, rules in (("freeze", graph.freeze), ("unfreeze", graph.unfreeze)):
        for pattern, span in rules:
            hits = [n for n in names if globs.matches(n, pattern)]
            if not hits:
                found.append(warning(f"{kind} '{pattern}' matches no parameter", span,
                                     globs.no_match_hint(pattern, names)))
            elif kind == "freeze" and all(globs.match_any(n, unfreeze) for n in hits):
                undo = next(u for u in unfreeze if any(globs.matches(n, u) for n in hits))
                found.append(warning(f"freeze '{pattern}' has no effect: unfreeze '{undo}' makes every parameter "
                                     "it matches trainable again", span,
                                     "every unfreeze applies after every freeze (it makes exceptions); "
                                     "narrow the unfreeze pattern instead"))
            elif kind == "unfreeze" and not any(globs.match_any(n, freeze) for n in hits):
                found.append(warning(f"unfreeze '{pattern}' has no effect: no freeze pattern matches the "
                                     "parameters it matches", span,
                                     "unfreeze makes exceptions to freeze; parameters are trainable unless frozen"))
            elif kind == "unfreeze" and (later := _later_freeze(span, hits, graph.freeze)):
                found.append(warning(f"unfreeze '{pattern}' is written before freeze '{later}', but still "
                                     "applies after it: these parameters stay trainable", span,
                                     "every unfreeze makes exceptions to every freeze, whatever the order "
                                     "(YAML's freeze and unfreeze lists have none); write the unfreeze after "
                                     "the freeze, or narrow the freeze pattern to re-freeze them"))
    return found


def _later_freeze(span: Any, hits: list[str], freezes: Any) -> str | None:
    """A ``freeze`` written after this ``unfreeze`` in the same file, matching what it unfreezes."""
    if span is None or span.line < 1:
        return None
    for pattern, fspan in freezes:
        if (fspan is not None and fspan.file == span.file and (fspan.line, fspan.col) > (span.line, span.col)
                and any(globs.matches(n, pattern) for n in hits)):
            return pattern
    return None
