"""One expanded graph → the parts the Python emitter writes, with concrete values.

Every module scope of :mod:`cnndsl.emit.scopes` becomes an :class:`Instance` (the network, a
block instance, a stage that is not a plain chain) or an inline :class:`Seq` (a stage that is a
chain: ``nn.Sequential``). An instance lists its children — layers as :class:`Leaf` and bare
parameters as :class:`Param` (:mod:`cnndsl.emit.py_leaf`), sub-instances as :class:`Call` — and
its ``forward`` statements (ops with an ``Op.source`` written inline), which follow the container rule (inputs in first-read order; returns
``(output, *values read outside)``). :mod:`cnndsl.emit.py_classes` turns the instances of one
block into one class with symbolic values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import nn

from .. import expr as E
from ..analysis import Analysis
from ..graph import Graph, Node
from . import py_text as T
from .py_leaf import EMPTY, Arg, Leaf, Param, Template, bare_parameter, is_runtime, leaf, template
from .scopes import Scope, inplace_nodes, module_scopes

__all__ = ["EMPTY", "Arg", "Call", "GraphParts", "Instance", "Leaf", "Param", "Part", "Raw", "Seq", "Template",
           "inline", "network_body", "python_name", "shape_text", "spec_values"]


def inline(node: Node) -> bool:
    """A layer ``forward`` writes as an expression (its op's ``source``: merges, scale, permute,
    narrow, a bare parameter's use), not as a call of a submodule."""
    return node.op.source(["x"] * max(1, len(node.inputs)), "self.p") is not None


@dataclass
class Seq:
    children: list[tuple[str, "Part"]]
    shape: tuple[int, ...] = ()

    @property
    def positional(self) -> bool:
        return [k for k, _ in self.children] == [str(i) for i in range(len(self.children))]


@dataclass
class Raw:
    """A module written as a fixed expression (a torchvision backbone cut by create_feature_extractor)."""

    expr: Any                             # a py_layout.CallExpr
    source: str = "torchvision"
    shape: tuple[int, ...] = ()


@dataclass
class Call:
    instance: "Instance"
    shape: tuple[int, ...] = ()
    reads_input: bool = False


Part = Union[Leaf, Param, Seq, Call, Raw]


@dataclass(eq=False)
class Instance:
    """A network, block instance or stage as it occurs once: the material of one class."""

    kind: str                             # "network", "block" or "stage"
    label: str                            # block name, stage key or network name
    path: str
    names: dict[str, Any]                 # values of the class's parameters in this instance
    params: list[tuple[str, Any]]         # declared parameters (python name, default or EMPTY)
    children: list[tuple[str, Part]]
    head: tuple[str, str]                 # ("def forward(self, x):", shape comment)
    forward: list[tuple[Template, str]]   # (statement, shape comment); numbers of inline ops are values
    sequential: bool = False              # an nn.Sequential subclass (chain of children named 0, 1, ...)
    in_name: str | None = None            # "in_channels" / "in_features" where the class may take it
    extras: dict[str, Any] = field(default_factory=dict)
    in_shape: tuple[int, ...] = ()        # the shape of its (first) input
    probe: bool = False                   # expanded at another parameter value (py_probe), not written
    loop: Any = None                      # a py_loop.Loop: its calls are written as a loop
    spec_values: dict[str, Any] = field(default_factory=dict)  # the block's own expressions → values here


def _literal_default(expr: Any) -> Any:
    """A block parameter's default when it is a plain literal (else the parameter is required)."""
    return expr.value if isinstance(expr, (E.Num, E.Bool, E.Str)) else EMPTY


def python_name(name: str) -> str:
    """A parameter name usable as a Python variable in the emitted file."""
    name = T.identifier(name, "param")
    return name + "_" if name in T.PARAM_RESERVED else name


_LOWERED: dict[int, tuple[Analysis, tuple]] = {}   # id(analysis) → (analysis, what _lowered made)


def forget_lowered() -> None:
    """Drop what :func:`_lowered` keeps (python_source calls it when it is done)."""
    _LOWERED.clear()


def _lowered(analysis: Analysis) -> tuple[Analysis, Scope, set[int], dict[int, nn.Module]]:
    """The parts of an analysis every :class:`GraphParts` of it shares, made once per analysis (the
    writer reads one expansion several times: proving parameters, then writing): the lowered
    analysis (a backbone: one module, plus one pick per output it gives), its module scopes, the
    nodes that run in place, and a module per layer (on the meta device). Read-only afterwards."""
    hit = _LOWERED.get(id(analysis))
    if hit is not None and hit[0] is analysis:
        return hit[1]
    from ..backbone.lower import lower

    low = lower(analysis)
    g = low.graph
    root = module_scopes(g)
    inplace = inplace_nodes(g, root)
    modules: dict[int, nn.Module] = {}
    for node in g.layers():
        if node.op.name in ("backbone", "pick"):  # written from their description, never built
            modules[node.id] = nn.Identity()
            continue
        ins = [g.nodes[i].shape for i in node.inputs]
        try:
            with torch.device("meta"):
                module = node.op.build(ins, node.shape)
        except Exception:  # noqa: BLE001  an op whose construction needs real tensors
            module = node.op.build(ins, node.shape)
        if node.id in inplace and getattr(node.op, "can_inplace", False) and hasattr(module, "inplace"):
            module.inplace = True
        modules[node.id] = module
    _LOWERED[id(analysis)] = (analysis, (low, root, inplace, modules))
    return low, root, inplace, modules


class GraphParts:
    """The instances of one expanded graph (``free``: network parameters that stay symbolic)."""

    def __init__(self, analysis: Analysis, free: list[str], no_loops: frozenset[str] = frozenset(),
                 body: Any = ()):
        self.no_loops = no_loops                 # blocks written unrolled (py_loop.NoLoop)
        lowered = _lowered(analysis)
        self.analysis, self.root_scope, self.inplace, self.modules = lowered
        self.graph: Graph = self.analysis.graph
        self._inputs: list[set[int]] = []        # the inputs of the instances being read, innermost last
        g = self.graph
        names = {python_name(k): g.params[k] for k in free}
        self.root = self._instance(self.root_scope, "network", g.name, names,
                                   [(python_name(k), g.params[k]) for k in free])
        self.root.spec_values = spec_values(body, {k: g.params[k] for k in free})   # the network's own

    # ---- scopes → instances and inline sequentials
    def _key(self, path: str) -> str:
        return path.rpartition(".")[2]

    def _is_chain(self, scope: Scope) -> bool:
        """Each step reads only the previous value and gives one; the last gives the output."""
        if len(scope.inputs) != 1 or len(scope.outputs) != 1:
            return False
        prev = scope.inputs[0]
        for step in scope.steps:
            if isinstance(step, Scope):
                if step.inputs != [prev] or len(step.outputs) != 1:
                    return False
                prev = step.outputs[0]
            else:
                node = self.graph.nodes[step]
                if not node.registered or (inline(node) and not self._modular(node)) or node.inputs != (prev,):
                    return False
                prev = step
        return prev == scope.outputs[0]

    def _modular(self, node: Node) -> bool:
        """An inline op that can also be a module in an ``nn.Sequential`` (``Permute``, as in
        torchvision's ConvNeXt): one input, no bare parameter, a torch.nn or cnndsl.nn module."""
        cls = type(self.modules[node.id])
        return len(node.inputs) == 1 and not node.op.bare_parameter and (is_runtime(cls) or getattr(nn, cls.__name__, None) is cls)

    def _part(self, step: int | Scope, chain: bool = False) -> Part | None:
        """The child ``step`` gives (None: written inline in ``forward``); in a ``chain`` (an
        ``nn.Sequential``) an inline op with a module is that module."""
        if isinstance(step, Scope):
            c = step.container
            shape = self.graph.nodes[step.outputs[0]].shape
            keys = [self._key(s.path if isinstance(s, Scope) else self.graph.nodes[s].path) for s in step.steps]
            if c is not None and c.kind != "block" and self._is_chain(step) \
                    and keys == [str(i) for i in range(len(keys))]:
                return Seq([(k, self._part(s, chain=True)) for k, s in zip(keys, step.steps)], shape)
            if c is not None and c.kind == "block":
                block = c.block
                declared = [p.name for p in block.params] if block is not None else list(c.args)
                defaults = {p.name: _literal_default(p.default) for p in block.params} if block is not None else {}
                names = {python_name(k): c.args[k] for k in declared if k in c.args}
                params = [(python_name(k), defaults.get(k, EMPTY)) for k in declared if k in c.args]
                reads = bool(step.inputs) and step.inputs[0] in self._inputs[-1]
                inst = self._instance(step, "block", c.label, names, params)
                inst.spec_values = spec_values(block.body if block is not None else (), dict(c.args))
                if c.label not in self.no_loops:
                    inst.loop = self._loop(step, inst)
                return Call(inst, shape, reads)
            reads = bool(step.inputs) and step.inputs[0] in self._inputs[-1]
            return Call(self._instance(step, "stage", self._key(step.path), {}, []), shape, reads)
        node = self.graph.nodes[step]
        if not node.registered or (inline(node) and not node.op.bare_parameter and not chain):
            return None
        if node.op.name == "backbone":
            from .py_backbone import backbone_expression

            return Raw(backbone_expression(node.op.desc), node.op.desc.source, node.shape)
        part = bare_parameter(self.graph, node) if node.op.bare_parameter else leaf(self.modules[step])
        part.shape = node.shape
        part.reads_input = node.inputs[0] in self._inputs[-1]
        return part

    def _loop(self, scope: Scope, inst: Instance) -> Any:
        """The loop writing a block instance made of one repeat of another block (None: unrolled)."""
        from .py_loop import find_loop

        calls = [(k, p) for k, p in inst.children if isinstance(p, Call)]
        if not calls or len(calls) != len(inst.children) or not self._is_chain(scope) or not inst.in_shape:
            return None
        c = self.graph.containers[scope.path]
        child = self.graph.containers.get(calls[0][1].instance.path)
        if child is None or child.block is None:
            return None
        return find_loop(c.block, child.block, dict(c.args), inst.in_name, inst.in_shape[0], calls)

    def _instance(self, scope: Scope, kind: str, label: str, names: dict[str, Any],
                  params: list[tuple[str, Any]]) -> Instance:
        keys = [self._key(s.path if isinstance(s, Scope) else self.graph.nodes[s].path) for s in scope.steps]
        sequential = kind == "block" and keys == [str(i) for i in range(len(keys))] and self._is_chain(scope)
        children: list[tuple[str, Part]] = []
        self._inputs.append(set(scope.inputs))
        for key, step in zip(keys, scope.steps):
            part = self._part(step, chain=sequential)
            if part is not None:
                children.append((key, part))
        self._inputs.pop()
        in_name = None
        if kind != "network" and scope.inputs:  # a block or stage may take its input's size
            shape = self.graph.nodes[scope.inputs[0]].shape
            in_name = "in_channels" if len(shape) == 3 else "in_features"
            while in_name in names:
                in_name += "_"
            names = {in_name: shape[0], **names}
        head, forward = ForwardWriter(self, scope, sequential).write()
        in_shape = self.graph.nodes[scope.inputs[0]].shape if scope.inputs else ()
        return Instance(kind, label, scope.path, names, params, children, head, forward, sequential, in_name,
                        in_shape=in_shape)


def spec_values(body: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The argument expressions of a block's (or the network's) ``body`` that are Python over its
    parameters (``bn_size * growth``), with their values where those are bound to ``args``: the
    first texts a class writes a value with."""
    from ..ir import iter_items
    from .py_loop import python_text

    if not body or any(python_name(k) != k for k in args):
        return {}
    out: dict[str, Any] = {}
    for item in iter_items(body):
        for e in (*getattr(item, "args", ()), *(kw.value for kw in getattr(item, "kwargs", ()))):
            text = python_text(e, set(args)) if type(e).__name__ in ("BinOp", "Unary", "IfExp") else None
            if text is not None and text not in out:
                try:
                    out[text] = E.evaluate(e, E.Env(args))
                except Exception:  # noqa: BLE001  a value cnndsl computes otherwise: no text from it
                    continue
    return out


def network_body(spec: Any) -> Any:
    """The network's items, whose expressions the network class writes values with first."""
    return spec.network.body if spec is not None and spec.network is not None else ()


def shape_text(shape: tuple[int, ...]) -> str:
    return "(B, " + ", ".join(map(str, shape)) + ")"


class ForwardWriter:
    """The statements of one scope's ``forward``, reusing a variable once its value is dead."""

    def __init__(self, parts: GraphParts, scope: Scope, sequential: bool):
        self.parts, self.scope, self.sequential = parts, scope, sequential
        self.graph = parts.graph

    def _var_base(self, node_id: int, key: str | None = None) -> str:
        node = self.graph.nodes[node_id]
        if node.op is not None and node.op.name == "pick" and isinstance(node.op.key, str):
            key = node.op.key               # a backbone's tap: named after it
        key = key if key is not None else node.path.rpartition(".")[2]
        base = f"out{key}" if key.isascii() and key.isdigit() else T.identifier(key, "out")
        return base + "_" if base in T.RESERVED else base

    def write(self) -> tuple[tuple[str, str], list[tuple[Template, str]]]:
        """Variables: ``x`` in, a chain reuses the variable of a value that dies (``x = f(x)``),
        a value read later or twice gets the name of the step that made it (``enc1``)."""
        g, scope = self.graph, self.scope
        reads: list[list[int]] = [list(s.inputs) if isinstance(s, Scope) else list(g.nodes[s].inputs)
                                  for s in scope.steps]
        uses: dict[int, list[int]] = {}
        for k, r in enumerate(reads):
            for v in r:
                uses.setdefault(v, []).append(k)
        end = len(scope.steps)
        for v in scope.outputs:
            uses.setdefault(v, []).append(end)
        holds: dict[str, int] = {}              # variable → the value it holds
        var: dict[int, str] = {}

        def dead(v: int, k: int) -> bool:
            return max(uses.get(v, [-1])) <= k and v not in scope.outputs

        def fresh(base: str, k: int) -> str:
            name, n = base, 2
            while name in holds and not dead(holds[name], k):
                name, n = f"{base}_{n}", n + 1
            return name

        for k, v in enumerate(scope.inputs):
            var[v] = "x" if k == 0 else fresh(self._var_base(v), -1)
            holds[var[v]] = v
        stmts: list[tuple[Template, str]] = []
        for k, step in enumerate(scope.steps):
            ins = reads[k]
            args = ", ".join(var[v] for v in ins)
            if isinstance(step, Scope):
                key = step.path.rpartition(".")[2]
                expr = Template([f"{T.child('self', key, self.sequential)}({args})"], [])
                made = list(step.outputs)
            else:
                node = g.nodes[step]
                key = node.path.rpartition(".")[2]
                made = [step]
                expr = self._expression(node, [var[v] for v in ins])
            targets = []
            for j, v in enumerate(made):
                u = uses.get(v, [])
                chain = j == 0 and (u == [end] or (u == [k + 1] and reads[k + 1][0] == v))
                first = ins[0] if ins else None
                if chain and first is not None and dead(first, k) and holds.get(var[first]) == first \
                        and var[first] in ("x", "out"):
                    name = var[first]
                elif chain:
                    name = fresh("out", k)
                else:
                    name = fresh(self._var_base(v, key if j == 0 else None), k)
                var[v] = name
                holds[name] = v
                targets.append(name)
            expr.pieces[0] = f"{', '.join(targets)} = {expr.pieces[0]}"
            stmts.append((expr, shape_text(g.nodes[made[0]].shape)))
        stmts.append((Template(["return " + ", ".join(var[v] for v in scope.outputs)], []), ""))
        head = ("def forward(self, " + ", ".join(var[v] for v in scope.inputs) + "):",
                shape_text(g.nodes[scope.inputs[0]].shape))
        return head, stmts

    def _expression(self, node: Node, ins: list[str]) -> Template:
        """The op's own rendering (``Op.source``, given ``self.<name>`` for a bare parameter) with
        its numbers as values, else a call of the submodule."""
        ref = T.child("self", node.path.rpartition(".")[2], self.sequential)
        expr = node.op.source(ins, ref)
        if expr is not None:
            return template(expr, node.op)
        if not node.registered:
            raise NotImplementedError(f"{node.path}: implicit {node.kind} without a source rendering")
        return Template([f"{ref}({', '.join(ins)})"], [])
