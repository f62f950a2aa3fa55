"""Static analysis: shapes (from expansion), receptive fields and costs, as one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic, warning
from ..graph import Graph, Node
from .cost import Cost, costs, param_key
from .receptive_field import RF, final_receptive_field, receptive_fields


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """Everything known about one node before anything is built."""

    node: Node
    rf: RF | None
    cost: Cost

    @property
    def name(self) -> str:
        return self.node.path

    @property
    def op(self) -> str:
        return self.node.kind

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape


@dataclass
class Analysis:
    """The result of analysing a spec: per-layer table, totals and warnings."""

    graph: Graph
    layers: list[LayerInfo]
    warnings: list[Diagnostic] = field(default_factory=list)
    final_rf: RF | None = None
    final_rf_node: str | None = None

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.input.shape

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [self.graph.nodes[i].shape for i in self.graph.outputs]

    @property
    def params(self) -> int:
        return sum(l.cost.params for l in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(l.cost.trainable for l in self.layers)

    @property
    def macs(self) -> int:
        return sum(l.cost.macs for l in self.layers)

    @property
    def activations(self) -> int:
        return sum(l.cost.activations for l in self.layers)

    def graph_node(self, path: str) -> Node:
        return next(n for n in self.graph.nodes if n.path == path)

    def layer(self, name: str) -> LayerInfo:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    def state_dict_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state_dict keys the built module will have, with their shapes."""
        out: dict[str, tuple[int, ...]] = {}
        for l in self.layers:
            if not l.node.registered and not (l.cost.param_shapes or l.cost.buffer_shapes):
                continue  # implicit merges; a traced model's parameters outside modules do count
            for n, s in {**l.cost.param_shapes, **l.cost.buffer_shapes}.items():
                out[param_key(l.name, n)] = s
        return out

    def totals(self) -> dict[str, Any]:
        return {"params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
                "activations": self.activations,
                "receptive_field": self.final_rf.as_json() if self.final_rf else None}


def analyze_graph(graph: Graph) -> Analysis:
    rfs, rf_warnings = receptive_fields(graph)
    cost_list, cost_warnings = costs(graph)
    layers = [LayerInfo(n, rfs[n.id], cost_list[n.id]) for n in graph.layers()]
    warnings = list(graph.warnings) + rf_warnings + cost_warnings + _partial_views(graph, rfs)
    nid, final = final_receptive_field(graph, rfs)
    return Analysis(graph, layers, warnings, final, graph.nodes[nid].path if final else None)


def _partial_views(graph: Graph, rfs: list[RF | None]) -> list[Diagnostic]:
    """A warning for each output none of whose values sees the whole input: no dense layer, global
    pool or global context on its path and a field smaller than the input (a fully convolutional
    head). A classifier whose last conv sees a patch is fine: its dense layers see everything."""
    h, w = graph.input.shape[1:] if len(graph.input.shape) == 3 else (0, 0)
    out = []
    for nid in dict.fromkeys(graph.outputs):
        rf, node = rfs[nid], graph.nodes[nid]
        if rf is None or rf.lost or rf.sees_all or (rf.size[0] >= h and rf.size[1] >= w):
            continue
        size = rf.text() if "×" in rf.text() else f"{rf.text()}×{rf.text()}"
        out.append(warning(
            f"output '{node.path}' ({node.kind}) never sees the whole {h}×{w} input: each of its values "
            f"is computed from a {size} window (receptive-field stride {rf.text('stride')}) and no layer "
            "on its path pools, flattens or gates over the whole map", node.span,
            "if the task needs global context, add depth, strides or dilation, or a global branch "
            "(e.g. squeeze-and-excitation: multiply { | global_avgpool conv(C, k=1) sigmoid })"))
    return out
