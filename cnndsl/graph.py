"""The Graph IR: a flat list of named nodes in topological order, edges by node id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import Diagnostic, Span
from .ops.base import Op, Shape


@dataclass(slots=True)
class Node:
    """One layer of the expanded network."""

    id: int
    path: str                    # module path ("layer1.0.conv1"); the network input is "input"
    op: Op | None                # None for the network input
    inputs: tuple[int, ...]      # ids of the nodes feeding this one
    shape: Shape                 # output shape without the batch dimension
    span: Span | None = None
    registered: bool = True      # False for implicit merges (the "+" of a residual): not a submodule

    @property
    def kind(self) -> str:
        return "input" if self.op is None else self.op.name


@dataclass(slots=True)
class Container:
    """A named scope that becomes a submodule holding other modules: a block instance or a stage."""

    path: str
    kind: str                    # "block", "group", "repeat", "parallel", "residual", "shortcut"
    label: str                   # block name for block instances, else the kind
    span: Span | None = None
    output: int = -1             # id of the node whose value the container produces
    args: dict[str, Any] = field(default_factory=dict)  # a block instance's bound parameters
    block: Any = None            # a block instance's cnndsl.ir.BlockDef


@dataclass
class Graph:
    """An expanded network: nodes, outputs, containers and what the expansion noticed."""

    name: str
    nodes: list[Node]
    outputs: list[int]
    containers: dict[str, Container]
    params: dict[str, Any]                          # bound network parameters
    freeze: list[tuple[str, Span | None]] = field(default_factory=list)
    unfreeze: list[tuple[str, Span | None]] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    backbones: dict[str, Any] = field(default_factory=dict)  # path → cnndsl.backbone.expand.BackboneDesc
    init: Any = None                                         # cnndsl.ir.Init: weights the network starts from

    @property
    def input(self) -> Node:
        return self.nodes[0]

    def layers(self) -> Iterator[Node]:
        """All nodes except the network input."""
        return iter(self.nodes[1:])

    def consumers(self) -> list[list[int]]:
        users: list[list[int]] = [[] for _ in self.nodes]
        for n in self.nodes:
            for i in n.inputs:
                users[i].append(n.id)
        return users

    def reusable_inputs(self) -> set[int]:
        """Nodes that may overwrite their first input in place: that tensor is read by nothing else,
        is not the network input or an output, and its producer's backward does not need it."""
        users = self.consumers()
        outputs = set(self.outputs)
        out = set()
        for n in self.nodes[1:]:
            first = n.inputs[0]
            src = self.nodes[first]
            if (first != 0 and first not in outputs and users[first] == [n.id]
                    and src.op is not None and src.op.inplace_safe):
                out.add(n.id)
        return out

    def __str__(self) -> str:
        """One line per node, like torch.fx's graph printout."""
        lines = [f"graph {self.name}:"]
        for n in self.nodes:
            args = ", ".join(f"%{self.nodes[i].path}" for i in n.inputs)
            op = "input" if n.op is None else n.op.describe()
            lines.append(f"  %{n.path} : {'×'.join(map(str, n.shape))} = {op}({args})" if n.inputs
                         else f"  %{n.path} : {'×'.join(map(str, n.shape))} = {op}")
        lines.append("  return " + ", ".join(f"%{self.nodes[i].path}" for i in self.outputs))
        return "\n".join(lines)
