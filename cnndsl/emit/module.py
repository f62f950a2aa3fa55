"""Graph → ``torch.nn.Module``.

Every node becomes a plain torch module registered at its path (``layer1.0.conv1``), inside
container modules named after the spec's stages and blocks, so ``state_dict`` keys follow the spec.
Each container runs its own ``forward`` — the network calls its stages, a stage its blocks — so
forward hooks, ``torchinfo`` and ``model.layer1[0](x)`` behave as on a hand-written model; which
values a container takes and returns is the rule of :mod:`cnndsl.emit.scopes`. Children are looked
up by name at each call, so replacing one (``model.fc = nn.Linear(512, 10)``) takes effect.
Activations and residual sums run in place when the tensor they overwrite is used by nothing else,
belongs to their own container and was produced by an op whose backward does not need it — the
same choices torchvision makes by hand.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from ..analysis import Analysis
from ..graph import Graph
from ..nn import Add
from .frozen import hold_frozen_norms, mark_norms
from .scopes import Scope, inplace_nodes, module_scopes


class Signature(NamedTuple):
    """What a container's ``forward`` takes and returns, as the spec's node paths."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class _Plan:
    """A straight-line program over value slots. Each step: (child name or function, input slots,
    output slot — or a tuple of slots for a child returning several values —, slots to free)."""

    __slots__ = ("steps", "outputs", "single", "n", "n_inputs", "signature")

    def __init__(self, steps: list[tuple[Any, tuple[int, ...], Any, tuple[int, ...]]], n_inputs: int,
                 outputs: list[int], n: int, signature: Signature):
        self.steps, self.n_inputs, self.outputs, self.n = steps, n_inputs, outputs, n
        self.single = len(outputs) == 1
        self.signature = signature

    def run(self, owner: nn.Module, inputs: tuple) -> Any:
        children = owner._modules
        vals: list[Any] = [None] * self.n
        vals[:len(inputs)] = inputs
        for fn, ins, out, free in self.steps:
            if fn.__class__ is str:
                fn = children[fn]
            y = fn(vals[ins[0]]) if len(ins) == 1 else fn(*[vals[i] for i in ins])
            if out.__class__ is int:
                vals[out] = y
            else:
                for o, v in zip(out, y):
                    vals[o] = v
            for f in free:
                vals[f] = None
        if self.single:
            return vals[self.outputs[0]]
        return tuple(vals[o] for o in self.outputs)


class Container(nn.Module):
    """A named scope of the spec (a stage, a block instance): holds modules, runs its own layers.

    ``forward(*inputs)`` takes the values its layers read from outside it (usually one) and returns
    its output, or ``(output, *values read outside)``; see :func:`signature`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._plan: _Plan | None = None

    def __getitem__(self, key: int | str) -> nn.Module:
        """``model.layer1[0]`` as with nn.Sequential (children are named by position)."""
        if isinstance(key, int) and key < 0:
            key += len(self._modules)
        try:
            return self._modules[str(key)]  # type: ignore[return-value]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no child {key!r}; children: "
                           + ", ".join(self._modules)) from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, *inputs: torch.Tensor) -> Any:
        plan = self._plan
        if len(inputs) != plan.n_inputs:
            raise TypeError(f"{type(self).__name__}.forward takes {plan.n_inputs} input(s) "
                            f"({', '.join(plan.signature.inputs)}), got {len(inputs)}")
        return plan.run(self, inputs)

    def extra_repr(self) -> str:
        sig = self._plan.signature if self._plan is not None else None
        if sig is None or (len(sig.inputs) == 1 and len(sig.outputs) == 1):
            return ""
        return f"inputs=({', '.join(sig.inputs)}), returns=({', '.join(sig.outputs)})"


@functools.lru_cache(maxsize=None)
def _container_class(label: str) -> type[Container]:
    """A Container subclass named after the block (``BasicBlock``), for readable printouts."""
    name = label if label.isidentifier() else "Stage"
    if name in ("group", "repeat", "parallel", "residual", "shortcut"):
        name = {"group": "Stage", "repeat": "Repeat"}.get(name, name.title())
    return type(name, (Container,), {"__doc__": f"cnndsl {label}", "__module__": __name__})


class Network(nn.Module):
    """A network compiled from a cnndsl spec. ``forward(x)`` returns a tensor, or a tuple for
    several outputs. ``bn_policy``: ``"frozen"`` (default) keeps the norm layers whose parameters
    are all frozen in eval mode through ``train()``; ``"train"`` lets them update their statistics."""

    bn_policy = "frozen"

    def __init__(self, analysis: Analysis):
        super().__init__()
        graph = analysis.graph
        self.spec_name = graph.name
        self.input_shape = tuple(graph.input.shape)
        self.output_names = [graph.nodes[i].path for i in graph.outputs]
        root = module_scopes(graph)
        functions = _build_modules(self, analysis, inplace_nodes(graph, root))
        for scope in root.walk():
            owner = self.get_submodule(scope.path) if scope.path else self
            owner._plan = _make_plan(graph, scope, functions)
        mark_norms(self, [p for p, _ in graph.freeze], [p for p, _ in graph.unfreeze])

    def train(self, mode: bool = True) -> "Network":
        """As ``nn.Module.train``; frozen norm layers stay in eval mode (see ``bn_policy``)."""
        super().train(mode)
        hold_frozen_norms(self)
        return self

    def forward(self, x: torch.Tensor) -> Any:
        return self._plan.run(self, (x,))

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, input={'x'.join(map(str, self.input_shape))}"


def signature(module: nn.Module) -> Signature:
    """The spec paths a built network or container takes and returns (the order of its forward's
    arguments and of its returned tuple)."""
    plan = getattr(module, "_plan", None)
    if not isinstance(plan, _Plan):
        raise TypeError(f"{type(module).__name__} is not a network or container built by cnndsl")
    return plan.signature


def _build_modules(root: nn.Module, analysis: Analysis, inplace: set[int]) -> dict[int, Callable]:
    """Register every node's module under its path; return the functions of unregistered nodes."""
    graph = analysis.graph
    functions: dict[int, Callable] = {}
    for info in analysis.layers:
        node = info.node
        ins = [graph.nodes[i].shape for i in node.inputs]
        module = node.op.build(ins, node.shape)
        if node.id in inplace and (getattr(node.op, "can_inplace", False) or isinstance(module, Add)):
            module.inplace = True
        for pname in info.cost.frozen:
            getattr(module, pname or "weight").requires_grad_(False)
        if node.op.bare_parameter:   # the parameter lives on the container, under the layer's name
            parent_path, _, attr = node.path.rpartition(".")
            parent = _parent(root, parent_path, graph)
            parent.register_parameter(attr, module.weight)
            functions[node.id] = _BareParameter(parent, attr, type(module).function)
        elif node.registered:
            parent_path, _, attr = node.path.rpartition(".")
            _parent(root, parent_path, graph).add_module(attr, module)
        else:  # an implicit merge (the sum of a residual): a plain function, not a submodule
            functions[node.id] = module.forward
    return functions


class _BareParameter:
    """The step of a layer whose parameter is registered on its container (``layer_scale``): calls
    the op's function with the parameter as the container holds it now."""

    __slots__ = ("owner", "name", "function")

    def __init__(self, owner: nn.Module, name: str, function: Callable):
        self.owner, self.name, self.function = owner, name, function

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x, self.owner._parameters[self.name])


def _parent(root: nn.Module, path: str, graph: Graph) -> nn.Module:
    """The container at ``path``, creating it (and its ancestors) in spec order on first use."""
    if not path:
        return root
    head, _, attr = path.rpartition(".")
    parent = _parent(root, head, graph)
    existing = parent._modules.get(attr)
    if existing is None:
        existing = _container_class(graph.containers[path].label)()
        parent.add_module(attr, existing)
    return existing


def _make_plan(graph: Graph, scope: Scope, functions: dict[int, Callable]) -> _Plan:
    """Number the scope's values (inputs first), then one step per own node or child scope."""
    slot: dict[int, int] = {v: i for i, v in enumerate(scope.inputs)}
    program: list[tuple[Any, list[int], list[int]]] = []          # (callee, values read, values made)
    for step in scope.steps:
        if isinstance(step, Scope):
            callee = step.path.rpartition(".")[2]
            program.append((callee, step.inputs, step.outputs))
        else:
            node = graph.nodes[step]
            callee = functions[step] if step in functions else node.path.rpartition(".")[2]
            program.append((callee, list(node.inputs), [step]))
        for v in program[-1][2]:
            slot.setdefault(v, len(slot))
    last_use: dict[int, int] = {}
    for k, (_, reads, _) in enumerate(program):
        for v in reads:
            last_use[v] = k
    keep = set(scope.outputs)
    steps = []
    for k, (callee, reads, made) in enumerate(program):
        free = tuple(slot[v] for v in set(reads) if last_use[v] == k and v not in keep)
        out = slot[made[0]] if len(made) == 1 else tuple(slot[v] for v in made)
        steps.append((callee, tuple(slot[v] for v in reads), out, free))
    paths = [graph.nodes[v].path for v in scope.inputs], [graph.nodes[v].path for v in scope.outputs]
    return _Plan(steps, len(scope.inputs), [slot[o] for o in scope.outputs], len(slot),
                 Signature(*map(tuple, paths)))


def build_network(analysis: Analysis) -> Network:
    from ..backbone.lower import lower  # a backbone is built as one module (create_feature_extractor)
    from ..weights.init import apply_init

    network = Network(lower(analysis))
    apply_init(network, analysis.graph.init)  # the spec's `init` weights, by name
    return network
