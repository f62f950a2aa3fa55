"""Trace a model with torch.fx on the meta device and translate its graph into records.

The model is traced by torchvision's feature-extraction tracer (``NodePathTracer``, the one
``get_graph_node_names`` and ``create_feature_extractor`` use), so node names are the ones users
write for a cut or a tap (``layer3``, ``layer4.1.relu_1``). ``create_feature_extractor`` cuts the
graph at the requested nodes, ``ShapeProp`` runs it on a meta tensor (no memory, no arithmetic),
and every tensor-valued node becomes a :class:`~cnndsl.translate.records.Record` through the tables
of :mod:`cnndsl.translate.tables`. Each translated node is checked against what torch traced (its
output shape, its module's parameters and buffers); a node that has no cnndsl op, or whose op
disagrees with the trace, becomes opaque: shape from the trace, parameters from the module, no
receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata
from torchvision.models.feature_extraction import (
    NodePathTracer,
    _set_default_tracer_kwargs,
)

from ..ops import REGISTRY, ShapeError
from .nodes import make_op
from .patterns import fuse_channel_shuffles
from .records import INPUT, OPAQUE, Record, Translation, resolve_node
from .tables import FUNCTIONS, METHODS, MODULES, PARTS, node_target


class CutError(Exception):
    """A cut or tap names no node of the model; carries the node names that exist."""

    def __init__(self, query: str, available: list[str]):
        super().__init__(query)
        self.query, self.available = query, available


def node_names(model: nn.Module, tracer_kwargs: dict[str, Any] | None = None) -> list[str]:
    """The node names users cut and tap at: ``get_graph_node_names(model)[1]`` (eval mode)."""
    return list(_trace(model, _public_kwargs(tracer_kwargs))[1].values())


# torchvision.ops modules that are plain compositions of torch.nn layers: traced through for the
# translation (their convs and norms become cnndsl ops), though torchvision keeps them as leaves
_COMPOSITE_OPS = ("Conv2dNormActivation", "SqueezeExcitation", "MLP")


def _public_kwargs(extra: dict[str, Any] | None) -> dict[str, Any]:
    """Tracer settings of ``create_feature_extractor``: torchvision.ops modules are leaves."""
    return _set_default_tracer_kwargs(dict(extra or {}))


def _deep_kwargs(extra: dict[str, Any] | None) -> dict[str, Any]:
    """The same, but tracing through the torchvision.ops modules that are only compositions, and
    keeping whole the modules outside torch.nn that the tables translate (ConvNeXt's LayerNorm2d)."""
    kw = _public_kwargs(extra)
    kw["leaf_modules"] = [m for m in kw["leaf_modules"] if m.__name__ not in _COMPOSITE_OPS]
    kw["leaf_modules"] += [m for m in MODULES
                           if m not in kw["leaf_modules"] and not m.__module__.startswith("torch.nn")]
    return kw


def _trace(model: nn.Module, tracer_kwargs: dict[str, Any]) -> tuple[fx.Graph, dict[str, str]]:
    """The eval-mode graph and ``{fx node name: qualified name}``."""
    was_training = model.training
    model.eval()
    tracer = NodePathTracer(**tracer_kwargs)
    try:
        graph = tracer.trace(model)
    finally:
        model.train(was_training)
    return graph, {n.name: q for n, q in tracer.node_to_qualname.items()}


def resolve(query: str, available: list[str]) -> str:
    """The node a cut/tap query names: the node itself, or the last node under a module prefix
    (``layer3`` → ``layer3.1.relu_1``) — the rule of ``create_feature_extractor``."""
    hit = resolve_node(query, available)
    if hit is None:
        raise CutError(query, available)
    return hit


def classifier_cut(model: nn.Module, graph: fx.Graph, names: dict[str, str]) -> str:
    """The node feeding the model's final classifier — the last Linear (or Conv2d, as in
    SqueezeNet) of the graph — so the default cut drops that layer and everything after it: the
    layer the usual transfer recipe replaces (``model.fc``, ``model.classifier[-1]``)."""
    modules = dict(model.named_modules())
    for node in reversed(list(graph.nodes)):
        if node.op == "call_module" and isinstance(modules.get(node.target), (nn.Linear, nn.Conv2d)):
            inp = next((a for a in node.args if isinstance(a, fx.Node)), None)
            if inp is not None and inp.name in names:
                return names[inp.name]
    return list(names.values())[-1]   # no classifier: keep the whole model


def translate(model: nn.Module, input_shape: tuple[int, ...], queries: Iterable[str] | None = None, *,
              source: str = "torchvision", name: str = "", tracer_kwargs: dict[str, Any] | None = None,
              versions: dict[str, str] | None = None) -> Translation:
    """Trace ``model`` (best on the meta device) for a C×H×W input and translate it, cut at
    ``queries`` — node names of :func:`node_names` or module prefixes; None: drop the final
    classifier. Raises :class:`CutError` for a query that names no node."""
    public, names = _trace(model, _public_kwargs(tracer_kwargs))
    available = list(names.values())
    asked = list(queries) if queries is not None else [classifier_cut(model, public, names)]
    for q in asked:
        resolve(q, available)
    graph, deep_names = _trace(model, _deep_kwargs(tracer_kwargs))
    deep = list(deep_names.values())
    wanted = list(dict.fromkeys(resolve(q, deep) for q in asked))   # one output per node, in order
    gm = _cut(model, graph, deep_names, wanted)
    device = next((p.device for p in model.parameters()), torch.device("meta"))
    ShapeProp(gm).propagate(torch.empty((1, *input_shape), device=device))
    fuse_channel_shuffles(gm, deep_names)
    records = _Translator(gm, deep_names).run()
    outputs = tuple(resolve(q, deep) for q in asked)
    kept = set(gm.state_dict())
    dropped = tuple(k for k in model.state_dict() if k not in kept)
    return Translation(source, name or type(model).__name__, tuple(input_shape), tuple(records), outputs,
                       _containers(model, records), dropped, dict(versions or {}), tuple(asked))


def _cut(model: nn.Module, graph: fx.Graph, names: dict[str, str], wanted: list[str]) -> fx.GraphModule:
    """The graph returning the ``wanted`` nodes, with what they do not need removed — what
    ``create_feature_extractor`` does, on the graph traced through composite ops."""
    owner = fx.GraphModule(model, graph)          # the graph needs an owner for its purity checks
    by_qual = {q: n for n in graph.nodes for q in [names.get(n.name)] if q is not None}
    for n in [n for n in graph.nodes if n.op == "output"]:
        graph.erase_node(n)
    with graph.inserting_after(list(graph.nodes)[-1]):
        graph.output(tuple(by_qual[w] for w in wanted))
    graph.eliminate_dead_code()
    gm = fx.GraphModule(owner, graph)              # keeps only the modules the cut graph uses
    gm.eval()
    return gm


def _containers(model: nn.Module, records: list[Record]) -> dict[str, str]:
    """Module classes of every module path that holds translated nodes (``layer1.0`` → BasicBlock)."""
    prefixes: set[str] = set()
    for r in records:
        parts = (r.module or r.name).split(".")
        prefixes.update(".".join(parts[:k]) for k in range(1, len(parts)))
    out = {}
    for path, m in model.named_modules():
        if path in prefixes:
            out[path] = type(m).__name__
    return out


class _Translator:
    """One pass over the cut graph, in topological order."""

    def __init__(self, gm: fx.GraphModule, names: dict[str, str]):
        self.gm = gm
        self.names = names
        self.modules = dict(gm.named_modules())
        self.calls: dict[str, int] = {}
        for n in gm.graph.nodes:
            if n.op == "call_module":
                self.calls[n.target] = self.calls.get(n.target, 0) + 1
        self.seen: dict[str, Record] = {}    # fx node name → record (tensor-valued nodes only)
        self.shapes: dict[str, tuple[int, ...]] = {}   # fx node name → shape with its layout (H×W×C)
        self.parts: dict[str, fx.Node] = {}  # a channel split (x.chunk(2, dim=1)) → the tensor it splits
        self.batched: set[str] = set()       # fx nodes whose value carries the batch dimension

    def run(self) -> list[Record]:
        out = []
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.batched.add(node.name)
                continue
            if node.op == "output":
                continue
            recs = self.records(node)
            if recs:
                self.seen[node.name] = recs[-1]
                out += recs
        read = {i for r in out for i in r.inputs}
        # parameters read outside a module call that became part of an op (layer_scale) are no nodes
        return [r for r in out if r.kind != "get_attr" or r.name in read]

    def qualname(self, node: fx.Node) -> str:
        return self.names.get(node.name, node.name)

    def tensor_inputs(self, node: fx.Node) -> list[fx.Node]:
        found: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(self.parts.get(n.name, n)))
        return [n for n in found if n.op == "placeholder" or n.name in self.seen]

    def records(self, node: fx.Node) -> list[Record]:
        """The node's record — or, for a node that is a chain of ops (``x.mean([2, 3])``), one per
        op, the last named like the node; none for a value that is no tensor (a size, a number)."""
        meta = node.meta.get("tensor_meta")
        ins = self.tensor_inputs(node)
        batched = node.op != "get_attr" and any(n.name in self.batched for n in ins)
        if batched:
            self.batched.add(node.name)
        if isinstance(meta, TensorMetadata):
            shape = tuple(int(s) for s in meta.shape)
            shape = shape[1:] if batched and shape else shape
        elif meta is None:
            return []                        # not a tensor (a size, a number): not a node of the graph
        elif node_target(node) in PARTS and len(ins) == 1:
            self.parts[node.name] = ins[0]   # its parts (getitem) are narrow nodes of its input
            return []
        else:
            shape = ()                       # several tensors (chunk, split): read by getitem nodes
        call = self.call(node, isinstance(meta, TensorMetadata))
        inputs = [INPUT if n.op == "placeholder" else self.qualname(n) for n in ins]
        in_shapes = [self._shape_of(n) for n in ins]
        steps = call.steps
        unknown_axes = steps and steps[0][0] in LAYOUT_READERS and any(self.seen[n.name].opaque for n in ins
                                                                       if n.name in self.seen)
        if steps and REGISTRY[steps[-1][0]].bare_parameter:
            held = next((i for i, n in enumerate(ins) if n.op == "get_attr"), None)
            if held is None or len(steps) != 1:
                steps = []
            else:   # the parameter belongs to the op, at its own path (ConvNeXt's <block>.layer_scale)
                call.module, call.params = ins[held].target, {"": in_shapes[held]}
                del ins[held], inputs[held], in_shapes[held]
        submodule = node.op == "call_module" and self.calls[node.target] == 1
        name = self.qualname(node)
        if unknown_axes:    # an opaque node's axes are unknown: a permute of them would guess them
            reason = f"{steps[0][0]} reads a node without a cnndsl op, whose axes are unknown"
        elif steps and len(shape) and in_shapes and all(len(s) for s in in_shapes):
            recs, reason = self.chain(node, name, steps, inputs, in_shapes, shape, call, submodule)
            if reason is None:
                return recs
        elif not steps:
            reason = f"no cnndsl op for {call.target}"
        else:
            reason = "works on several tensors at once"
        args = {"rf": "pointwise"} if call.target in POINTWISE else {}
        return [Record(name, OPAQUE, args, tuple(inputs or [INPUT]), shape, node.op, call.target, call.module,
                       submodule, call.params, call.buffers, reason)]

    def call(self, node: fx.Node, tensor_valued: bool) -> "_Call":
        """What the node calls, its state, and the ops the tables translate it to."""
        out = _Call(node_target(node))
        if node.op == "call_module":
            m = self.modules[node.target]
            out.module, out.target = node.target, type(m).__name__
            out.params, out.buffers = _own_state(m)
            table = MODULES.get(type(m))
            translated = table(m) if table is not None and tensor_valued else None
        elif node.op in ("call_function", "call_method"):
            table = FUNCTIONS.get(node.target) if node.op == "call_function" else METHODS.get(node.target)
            translated = table(node.args, dict(node.kwargs)) if table is not None else None
        else:   # get_attr: a parameter, buffer or constant read outside a module call
            module, _, leaf = node.target.rpartition(".")
            out.module, out.target, translated = module, leaf, None
            owner = self.gm.get_submodule(module) if module else self.gm
            value = getattr(owner, leaf)
            if isinstance(value, nn.Parameter):
                out.params = {leaf: tuple(value.shape)}
            elif leaf in owner._buffers and leaf not in owner._non_persistent_buffers_set:
                out.buffers = {leaf: tuple(value.shape)}
        out.steps = translated if isinstance(translated, list) else [translated] if translated is not None else []
        return out

    def chain(self, node: fx.Node, name: str, steps: list[tuple[str, dict[str, Any]]], inputs: list[str],
              in_shapes: list[tuple[int, ...]], shape: tuple[int, ...], call: "_Call",
              submodule: bool) -> tuple[list[Record], str | None]:
        """One record per op, each checked against its input; the last against the traced node."""
        recs: list[Record] = []
        for k, (op_name, args) in enumerate(steps):
            last = k == len(steps) - 1
            reason, out = _check(op_name, args, in_shapes, shape if last else None,
                                 call.params if last else {}, call.buffers if last else {})
            if reason is not None:
                return [], reason
            step_name = name if last else f"{name}_{op_name}"
            recs.append(Record(step_name, op_name, args, tuple(inputs or [INPUT]), tuple(out), node.op,
                               call.target, call.module, submodule))
            in_shapes, inputs = [out], [step_name]
        self.shapes[node.name] = in_shapes[0]
        return recs, None

    def _shape_of(self, n: fx.Node) -> tuple[int, ...]:
        if n.op == "placeholder":
            return tuple(int(s) for s in n.meta["tensor_meta"].shape[1:])
        return self.shapes.get(n.name, self.seen[n.name].shape)


@dataclass
class _Call:
    """What a node calls (``Conv2d``, ``torch.flatten``, a get_attr's leaf name), the module holding
    its state, that state's shapes, and the cnndsl ops the tables give (none: opaque)."""

    target: str
    module: str | None = None
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)
    buffers: dict[str, tuple[int, ...]] = field(default_factory=dict)
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# ops whose meaning depends on which axis is which (an opaque node's output has unknown axes)
LAYOUT_READERS = frozenset({"permute"})
# opaque layers known to act position by position (their receptive field is their input's)
POINTWISE = {"StochasticDepth", "DropPath", "torchvision.ops.stochastic_depth.stochastic_depth"}


def _own_state(m: nn.Module) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Parameter and (persistent) buffer shapes of a module, including its submodules."""
    names = {n for n, _ in m.named_parameters()}
    params, buffers = {}, {}
    for k, v in m.state_dict(keep_vars=True).items():
        (params if k in names else buffers)[k] = tuple(v.shape)
    return params, buffers


def _check(op_name: str, args: dict[str, Any], ins: list[tuple[int, ...]], shape: tuple[int, ...] | None,
           params: dict[str, tuple[int, ...]], buffers: dict[str, tuple[int, ...]]
           ) -> tuple[str | None, tuple[int, ...]]:
    """Why the cnndsl op disagrees with the trace (None: it agrees on shape — unless ``shape`` is
    None, inside a chain — parameters and buffers), and its output shape, with its layout."""
    try:
        op = make_op(op_name, args)
        out = op.infer(ins)
    except (ShapeError, ValueError, TypeError) as exc:
        return f"{op_name} does not accept this call: {exc}", ()
    if shape is not None and tuple(out) != tuple(shape):
        return f"{op_name} would give {out}, the model gives {shape}", out
    if op.param_shapes(ins, out) != params or op.buffer_shapes(ins, out) != buffers:
        return f"{op_name} would hold other parameters than the module", out
    return None, out
