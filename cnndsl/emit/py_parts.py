"""One expanded graph → the parts the Python emitter writes, with concrete values.

Every module scope of :mod:`cnndsl.emit.scopes` becomes an :class:`Instance` (the network, a
block instance, a stage that is not a plain chain) or an inline :class:`Seq` (a stage that is a
chain: ``nn.Sequential``). An instance lists its children — torch layers as :class:`Leaf` (the
class and every ``__init__`` argument read back from the module the op builds, so any op that
builds a torch.nn module is written without a hand list), sub-instances as :class:`Call` — and
its ``forward`` statements, which follow the container rule (inputs in first-read order; returns
``(output, *values read outside)``). :mod:`cnndsl.emit.py_classes` turns the instances of one
block into one class with symbolic values.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import nn

from ..analysis import Analysis
from ..graph import Graph, Node
from ..nn import Add, Concat, Multiply, Scale
from . import py_text as T
from .scopes import Scope, inplace_nodes, module_scopes

EMPTY = inspect.Parameter.empty
_PAIRS = {"kernel_size", "stride", "padding", "dilation", "output_padding", "output_size", "scale_factor",
          "size"}
_KEYWORD_ONLY = {"kernel_size"}          # written kernel_size=3, as torchvision does
_INLINE = (Add, Concat, Multiply, Scale)  # stateless merges written as expressions


@dataclass
class Arg:
    """One constructor argument: its value in this instance, its default (EMPTY: required)."""

    name: str
    value: Any
    default: Any = EMPTY
    positional: bool = True               # may be written by position while it is required
    same_as: str | None = None            # omitted when equal to this argument (pools: stride = kernel)


@dataclass
class Leaf:
    cls: str                              # "nn.Conv2d"
    args: list[Arg]
    shape: tuple[int, ...] = ()           # its output shape (in the first instance: comments)
    reads_input: bool = False             # fed by its class's input (may take in_channels)


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


Part = Union[Leaf, Seq, Call, Raw]


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
    forward: list[tuple[str, str]]        # (statement, shape comment)
    sequential: bool = False              # an nn.Sequential subclass (chain of children named 0, 1, ...)
    in_name: str | None = None            # "in_channels" / "in_features" where the class may take it
    extras: dict[str, Any] = field(default_factory=dict)


def _collapse(v: Any) -> Any:
    if isinstance(v, (tuple, list)) and len(v) > 0 and len(set(v)) == 1:
        return v[0]
    return v


def leaf(module: nn.Module) -> Leaf:
    """The class and every ``__init__`` argument of a torch.nn module, read back from its
    attributes of the same names (the writer leaves out those at their defaults)."""
    cls = type(module)
    if getattr(nn, cls.__name__, None) is not cls:
        raise NotImplementedError(f"no source rendering for module class {cls.__module__}.{cls.__qualname__}")
    params = inspect.signature(cls.__init__).parameters
    args: list[Arg] = []
    for name, p in params.items():
        if name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name == "bias" and (module.bias is None or isinstance(module.bias, torch.Tensor)):
            value: Any = module.bias is not None
            if not value and (getattr(module, "affine", True) is False
                              or getattr(module, "elementwise_affine", True) is False):
                continue  # a norm without affine parameters has no bias anyway
        elif hasattr(module, name):
            value = getattr(module, name)
        else:
            raise NotImplementedError(f"nn.{cls.__name__}: cannot read back the argument {name!r}")
        if isinstance(value, torch.Tensor):
            raise NotImplementedError(f"nn.{cls.__name__}: argument {name!r} is a tensor")
        if name in _PAIRS:
            value = _collapse(value)
        default = _collapse(p.default) if name in _PAIRS and p.default is not EMPTY else p.default
        same_as = "kernel_size" if name == "stride" and p.default is None and "kernel_size" in params else None
        args.append(Arg(name, value, default, name not in _KEYWORD_ONLY, same_as))
    return Leaf(f"nn.{cls.__name__}", args)


def _literal_default(expr: Any) -> Any:
    """A block parameter's default when it is a plain literal (else the parameter is required)."""
    value = getattr(expr, "value", EMPTY)
    return value if type(expr).__name__ in ("Num", "Bool", "Str") else EMPTY


def python_name(name: str) -> str:
    """A parameter name usable as a Python variable in the emitted file."""
    name = T.identifier(name, "param")
    return name + "_" if name in T.PARAM_RESERVED else name


class GraphParts:
    """The instances of one expanded graph (``free``: network parameters that stay symbolic)."""

    def __init__(self, analysis: Analysis, free: list[str]):
        from ..backbone.lower import lower  # a backbone: one module, plus one pick per output it gives

        analysis = lower(analysis)
        self.analysis = analysis
        self.graph: Graph = analysis.graph
        self.root_scope = module_scopes(self.graph)
        self.inplace = inplace_nodes(self.graph, self.root_scope)
        self.modules: dict[int, nn.Module] = {}
        self._inputs: list[set[int]] = []        # the inputs of the instances being read, innermost last
        self._build()
        g = self.graph
        names = {python_name(k): g.params[k] for k in free}
        self.root = self._instance(self.root_scope, "network", g.name, names,
                                   [(python_name(k), g.params[k]) for k in free])

    def _build(self) -> None:
        g = self.graph
        for node in g.layers():
            if node.op.name in ("backbone", "pick"):  # written from their description, never built
                self.modules[node.id] = nn.Identity()
                continue
            ins = [g.nodes[i].shape for i in node.inputs]
            try:
                with torch.device("meta"):
                    module = node.op.build(ins, node.shape)
            except Exception:  # noqa: BLE001  an op whose construction needs real tensors
                module = node.op.build(ins, node.shape)
            if node.id in self.inplace and getattr(node.op, "can_inplace", False) and hasattr(module, "inplace"):
                module.inplace = True
            self.modules[node.id] = module

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
                if not node.registered or isinstance(self.modules[step], _INLINE) or node.inputs != (prev,):
                    return False
                prev = step
        return prev == scope.outputs[0]

    def _part(self, step: int | Scope) -> Part | None:
        if isinstance(step, Scope):
            c = step.container
            shape = self.graph.nodes[step.outputs[0]].shape
            keys = [self._key(s.path if isinstance(s, Scope) else self.graph.nodes[s].path) for s in step.steps]
            if c is not None and c.kind != "block" and self._is_chain(step) \
                    and keys == [str(i) for i in range(len(keys))]:
                return Seq([(k, self._part(s)) for k, s in zip(keys, step.steps)], shape)
            if c is not None and c.kind == "block":
                block = c.block
                declared = [p.name for p in block.params] if block is not None else list(c.args)
                defaults = {p.name: _literal_default(p.default) for p in block.params} if block is not None else {}
                names = {python_name(k): c.args[k] for k in declared if k in c.args}
                params = [(python_name(k), defaults.get(k, EMPTY)) for k in declared if k in c.args]
                reads = bool(step.inputs) and step.inputs[0] in self._inputs[-1]
                return Call(self._instance(step, "block", c.label, names, params), shape, reads)
            reads = bool(step.inputs) and step.inputs[0] in self._inputs[-1]
            return Call(self._instance(step, "stage", self._key(step.path), {}, []), shape, reads)
        module = self.modules[step]
        if isinstance(module, _INLINE) or not self.graph.nodes[step].registered:
            return None
        op = self.graph.nodes[step].op
        if op.name == "backbone":
            from .py_backbone import backbone_expression

            return Raw(backbone_expression(op.desc), op.desc.source, self.graph.nodes[step].shape)
        part = leaf(module)
        part.shape = self.graph.nodes[step].shape
        part.reads_input = self.graph.nodes[step].inputs[0] in self._inputs[-1]
        return part

    def _instance(self, scope: Scope, kind: str, label: str, names: dict[str, Any],
                  params: list[tuple[str, Any]]) -> Instance:
        children: list[tuple[str, Part]] = []
        self._inputs.append(set(scope.inputs))
        for step in scope.steps:
            part = self._part(step)
            if part is not None:
                path = step.path if isinstance(step, Scope) else self.graph.nodes[step].path
                children.append((self._key(path), part))
        self._inputs.pop()
        positional = [k for k, _ in children] == [str(i) for i in range(len(children))]
        sequential = kind == "block" and positional and self._is_chain(scope)
        in_name = None
        if kind == "block" and scope.inputs:
            shape = self.graph.nodes[scope.inputs[0]].shape
            in_name = "in_channels" if len(shape) == 3 else "in_features"
            while in_name in names:
                in_name += "_"
            names = {in_name: shape[0], **names}
        head, forward = ForwardWriter(self, scope, sequential).write()
        return Instance(kind, label, scope.path, names, params, children, head, forward, sequential, in_name)


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

    def write(self) -> tuple[tuple[str, str], list[tuple[str, str]]]:
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
        stmts: list[tuple[str, str]] = []
        for k, step in enumerate(scope.steps):
            ins = reads[k]
            args = ", ".join(var[v] for v in ins)
            if isinstance(step, Scope):
                key = step.path.rpartition(".")[2]
                expr = f"{T.child('self', key, self.sequential)}({args})"
                made = list(step.outputs)
            else:
                node = g.nodes[step]
                key = node.path.rpartition(".")[2]
                made = [step]
                expr = self._expression(node, self.parts.modules[step], [var[v] for v in ins])
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
            stmts.append((f"{', '.join(targets)} = {expr}", shape_text(g.nodes[made[0]].shape)))
        stmts.append(("return " + ", ".join(var[v] for v in scope.outputs), ""))
        head = ("def forward(self, " + ", ".join(var[v] for v in scope.inputs) + "):",
                shape_text(g.nodes[scope.inputs[0]].shape))
        return head, stmts

    def _expression(self, node: Node, module: nn.Module, ins: list[str]) -> str:
        if isinstance(module, Add):
            return " + ".join(ins)
        if isinstance(module, Multiply):
            return " * ".join(ins)
        if isinstance(module, Concat):
            return f"torch.cat([{', '.join(ins)}], dim=1)"
        if isinstance(module, Scale):
            return f"{ins[0]} * {module.factor!r}"
        if node.op.name == "pick":  # one output of a backbone
            return ins[0] if node.op.key is None else f"{ins[0]}[{T.literal(node.op.key)}]"
        if not node.registered:  # pragma: no cover - implicit nodes are merges
            raise NotImplementedError(f"{node.path}: implicit {node.kind}")
        key = node.path.rpartition(".")[2]
        return f"{T.child('self', key, self.sequential)}({', '.join(ins)})"
