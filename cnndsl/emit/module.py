"""Graph → ``torch.nn.Module``.

Every node becomes a plain torch module registered at its path (``layer1.0.conv1``), inside
container modules named after the spec's stages and blocks, so ``state_dict`` keys follow the spec.
The network's ``forward`` runs the nodes in order; a container whose nodes take one outside input
can be called on its own (``model.layer1(x)``). Activations and residual sums run in place when
the tensor they overwrite is used by nothing else and was produced by an op whose backward does
not need it — the same choices torchvision makes by hand.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from ..analysis import Analysis
from ..graph import Graph
from .frozen import hold_frozen_norms, mark_norms
from .layers import Add


class Container(nn.Module):
    """A named scope of the spec (a stage or a block instance): holds modules, runs its own nodes."""

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

    def forward(self, x: torch.Tensor) -> Any:
        if self._plan is None:
            raise RuntimeError(f"{type(self).__name__} cannot run on its own: its layers take inputs from "
                               "outside it; call the whole network instead")
        return self._plan.run((x,))


@functools.lru_cache(maxsize=None)
def _container_class(label: str) -> type[Container]:
    """A Container subclass named after the block (``BasicBlock``), for readable printouts."""
    name = label if label.isidentifier() else "Stage"
    if name in ("group", "repeat", "parallel", "residual", "shortcut"):
        name = {"group": "Stage", "repeat": "Repeat"}.get(name, name.title())
    return type(name, (Container,), {"__doc__": f"cnndsl {label}", "__module__": __name__})


class _Plan:
    """A straight-line program over value slots: (module, input slots, output slot, slots to free)."""

    __slots__ = ("steps", "outputs", "single", "n")

    def __init__(self, steps: list[tuple[Any, tuple[int, ...], int, tuple[int, ...]]], outputs: list[int],
                 n: int):
        self.steps, self.outputs, self.n = steps, outputs, n
        self.single = len(outputs) == 1

    def run(self, inputs: tuple) -> Any:
        vals: list[Any] = [None] * self.n
        for i, x in enumerate(inputs):
            vals[i] = x
        for fn, ins, out, free in self.steps:
            if len(ins) == 1:
                vals[out] = fn(vals[ins[0]])
            else:
                vals[out] = fn(*[vals[i] for i in ins])
            for f in free:
                vals[f] = None
        if self.single:
            return vals[self.outputs[0]]
        return tuple(vals[o] for o in self.outputs)


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
        modules = _build_modules(self, analysis)
        self._plan = _make_plan(graph, modules, [n.id for n in graph.nodes], [0], graph.outputs)
        members: dict[str, list[int]] = {path: [] for path in graph.containers}
        for n in graph.nodes:  # each node belongs to every container on its path
            parts = n.path.split(".")
            for k in range(1, len(parts)):
                prefix = ".".join(parts[:k])
                if prefix in members:
                    members[prefix].append(n.id)
        for path, c in graph.containers.items():
            own = members[path]
            if not any(graph.nodes[n].registered for n in own):
                continue  # e.g. a named parallel of identity branches: no module holds anything
            own_set = set(own)
            outside = {i for nid in own for i in graph.nodes[nid].inputs if i not in own_set}
            if len(outside) == 1 and c.output in own:
                src = outside.pop()
                writes_input = any(getattr(getattr(modules[n], "__self__", modules[n]), "inplace", False)
                                   and graph.nodes[n].inputs[0] == src for n in own)
                if not writes_input:  # never overwrite a caller's tensor
                    self.get_submodule(path)._plan = _make_plan(graph, modules, [src] + own, [src], [c.output])
        mark_norms(self, [p for p, _ in graph.freeze], [p for p, _ in graph.unfreeze])

    def train(self, mode: bool = True) -> "Network":
        """As ``nn.Module.train``; frozen norm layers stay in eval mode (see ``bn_policy``)."""
        super().train(mode)
        hold_frozen_norms(self)
        return self

    def forward(self, x: torch.Tensor) -> Any:
        return self._plan.run((x,))

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, input={'x'.join(map(str, self.input_shape))}"


def _build_modules(root: nn.Module, analysis: Analysis) -> dict[int, nn.Module]:
    graph = analysis.graph
    reusable = graph.reusable_inputs()
    modules: dict[int, nn.Module] = {}
    for info in analysis.layers:
        node = info.node
        ins = [graph.nodes[i].shape for i in node.inputs]
        module = node.op.build(ins, node.shape)
        if node.id in reusable and (getattr(node.op, "can_inplace", False) or isinstance(module, Add)):
            module.inplace = True
        for pname in info.cost.frozen:
            getattr(module, pname).requires_grad_(False)
        if node.registered:
            parent_path, _, attr = node.path.rpartition(".")
            _parent(root, parent_path, graph).add_module(attr, module)
            modules[node.id] = module
        else:  # an implicit merge (the sum of a residual): a plain function, not a submodule
            modules[node.id] = module.forward
    return modules


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


def _make_plan(graph: Graph, modules: dict[int, nn.Module], order: list[int], inputs: list[int],
               outputs: list[int]) -> _Plan:
    slot = {nid: i for i, nid in enumerate(order)}
    last_use: dict[int, int] = {}
    for step, nid in enumerate(order):
        for i in graph.nodes[nid].inputs:
            last_use[i] = step
    keep = set(outputs)
    steps = []
    for step, nid in enumerate(order):
        if nid in inputs:
            continue
        node = graph.nodes[nid]
        free = tuple(slot[i] for i in set(node.inputs) if last_use.get(i) == step and i not in keep)
        steps.append((modules[nid], tuple(slot[i] for i in node.inputs), slot[nid], free))
    return _Plan(steps, [slot[o] for o in outputs], len(order))


def build_network(analysis: Analysis) -> Network:
    from ..backbone.lower import lower  # a backbone is built as one module (create_feature_extractor)
    from ..weights.init import apply_init

    network = Network(lower(analysis))
    apply_init(network, analysis.graph.init)  # the spec's `init` weights, by name
    return network
