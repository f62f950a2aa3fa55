"""The graph a network is built from: each backbone's layers folded into one node.

The analysis keeps a backbone's layers as ordinary nodes (shapes, costs, receptive fields, names
for ``freeze``). The built network runs the backbone as one module — torchvision's
``create_feature_extractor`` for a traced model, a cnndsl network for a spec — registered under the
item's name, so its parameters keep their names (``features.layer1.0.conv1.weight``). ``lower``
replaces each backbone's nodes by that module's node plus one ``pick`` node per output it
returns; the emitter then builds the result like any other graph.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..analysis import Analysis, LayerInfo
from ..analysis.cost import Cost
from ..graph import Graph, Node
from ..ops.base import Op, Shape, Unknown
from .expand import BackboneDesc


class BackboneOp(Op):
    """Runs a whole backbone: built by :func:`cnndsl.backbone.runtime.build_backbone`."""

    inplace_safe = False

    def __init__(self, desc: BackboneDesc, frozen: tuple[str, ...], shape: Shape):
        self.__dict__.update(name="backbone", desc=desc, frozen=frozen, shape=shape)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def describe(self) -> str:
        return f"backbone({self.desc.label})"

    def infer(self, ins):
        return self.shape

    def rf(self, ins):
        return Unknown()

    def build(self, ins, out):
        from .runtime import build_backbone

        return build_backbone(self.desc, self.frozen)


class Pick(Op):
    """One output of a backbone: ``out[key]`` (a tap of the feature extractor, or the whole output)."""

    inplace_safe = False

    def __init__(self, key: Any, shape: Shape):
        self.__dict__.update(name="pick", key=key, shape=shape)

    def __hash__(self) -> int:
        return hash((self.key, self.shape))

    def describe(self) -> str:
        return f"pick({self.key!r})"

    def source(self, args: list[str], ref: str) -> str:
        """``--emit python``: the backbone's output itself, or one of its taps by key."""
        from ..emit.py_text import literal

        return args[0] if self.key is None else f"{args[0]}[{literal(self.key)}]"

    def infer(self, ins):
        return self.shape

    def rf(self, ins):
        return Unknown()

    def build(self, ins, out):
        from .runtime import Pick as PickModule

        return PickModule(self.key)


def lower(analysis: Analysis) -> Analysis:
    """The analysis with every backbone folded into one node (the input of the module builder)."""
    graph = analysis.graph
    if not graph.backbones:
        return analysis
    info = {l.node.id: l for l in analysis.layers}
    starts = {d.first: d for d in graph.backbones.values()}
    inside = {i for d in graph.backbones.values() for i in d.node_ids()}
    nodes: list[Node] = []
    layers: list[LayerInfo] = []
    new: dict[int, int] = {}

    def add(path: str, op: Op | None, inputs: tuple[int, ...], shape: Shape, span: Any, registered: bool,
            cost: Cost | None) -> int:
        node = Node(len(nodes), path, op, inputs, shape, span, registered)
        nodes.append(node)
        if op is not None:
            layers.append(LayerInfo(node, None, cost))
        return node.id

    for n in graph.nodes:
        desc = starts.get(n.id)
        if desc is not None:
            _fold(desc, graph, info, new, add)
        if n.id in inside:
            continue
        cost = info[n.id].cost if n.op is not None else None
        new[n.id] = add(n.path, n.op, tuple(new[i] for i in n.inputs), n.shape, n.span, n.registered, cost)
    containers = {p: replace(c, output=new.get(c.output, -1)) for p, c in graph.containers.items()
                  if not any(p == d.path or p.startswith(d.path + ".") for d in graph.backbones.values())}
    lowered = Graph(graph.name, nodes, [new[i] for i in graph.outputs], containers, graph.params,
                    graph.freeze, graph.unfreeze, graph.warnings, {}, graph.init)
    return Analysis(lowered, layers, analysis.warnings, None, None)


def _fold(desc: BackboneDesc, graph: Graph, info: dict[int, LayerInfo], new: dict[int, int], add) -> None:
    """The backbone node and its pick nodes; ``new`` maps each returned node to its pick."""
    region = [info[i] for i in desc.node_ids()]
    frozen = tuple(f"{l.name[len(desc.path) + 1:]}.{p}" for l in region for p in l.cost.frozen)
    params = sum(l.cost.params for l in region)
    trainable = sum(l.cost.trainable for l in region)
    macs = sum(l.cost.macs for l in region)
    outputs = list(dict.fromkeys(desc.outputs))
    op = BackboneOp(desc, frozen, graph.nodes[outputs[-1]].shape)
    whole = add(desc.path, op, (new[desc.input],), op.shape, desc.span, True,
                Cost(params, trainable, macs, 0, {}, {}, ()))
    for nid in outputs:
        key = _key(desc, nid, len(outputs))
        n = graph.nodes[nid]
        new[nid] = add(n.path, Pick(key, n.shape), (whole,), n.shape, n.span, False,
                       Cost(0, 0, 0, 0, {}, {}, ()))


def _key(desc: BackboneDesc, nid: int, count: int) -> Any:
    """How the backbone module's output is indexed for node ``nid``."""
    i = list(dict.fromkeys(desc.outputs)).index(nid)
    if desc.source == "spec":
        return i if count > 1 else None
    return desc.queries[desc.outputs.index(nid)]
