"""Which submodule runs which layers: the container-forward rule every back end follows (no torch).

A *module scope* is the network or a named container (stage, block instance, repeat, shortcut,
named parallel) that holds at least one registered layer, and so becomes a submodule. During
``model(x)`` every module scope runs its own ``forward`` exactly once, so forward hooks on any
named module fire, ``torchinfo`` shows per-block rows, and ``model.layer1[0](x)`` computes what
the network computed there. The rule:

* **Inputs.** A scope's ``forward`` takes, as positional arguments, the values its layers read from
  outside it, in the order they are first read. A block or a stage takes one (its input);
  a decoder stage holding ``concat(enc2)`` takes ``(x, enc2)``.
* **Outputs.** It returns its output (the value its name refers to). When layers outside it also
  read values computed inside it (``add(enc1.c)``, ``output fc, layer1.0.conv1``), it returns the
  tuple ``(output, *those values)``, the extra values in graph order; enclosing scopes pass them on.
* A named container with no registered layer (a named parallel of identity branches) is not a
  module: its nodes run in the enclosing scope.
* **In place.** On top of :meth:`Graph.reusable_inputs`, a layer overwrites its input only if that
  value was computed by a layer of the same scope and is not a value any scope returns. So a scope
  never overwrites its caller's tensor, and what a hook on a scope saw is never changed afterwards.

Expansion emits the nodes of a named container contiguously and in topological order, so each
scope's steps (its own layers and child scopes, ordered by first node) form a valid program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..graph import Container, Graph


@dataclass(eq=False)
class Scope:
    """The network (``path == ""``) or a named container that becomes a submodule."""

    path: str
    container: Container | None                          # None for the network
    steps: list[int | Scope] = field(default_factory=list)   # own node ids and child scopes, in order
    inputs: list[int] = field(default_factory=list)      # forward's positional arguments (node ids)
    outputs: list[int] = field(default_factory=list)     # returned values: [output, *exports]

    @property
    def children(self) -> list[Scope]:
        return [s for s in self.steps if isinstance(s, Scope)]

    def walk(self):
        """This scope and every scope under it, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()


def module_scopes(graph: Graph) -> Scope:
    """The tree of module scopes with each scope's steps, inputs and outputs (see the module doc)."""
    modular = dict.fromkeys(_modular_containers(graph))
    root = Scope("", None, inputs=[0], outputs=list(graph.outputs))
    scopes = {"": root} | {p: Scope(p, graph.containers[p]) for p in modular}
    chains = [_chain(n.path, modular) for n in graph.nodes]
    chains[0] = []
    _place_steps(graph, root, scopes, chains)

    exports: dict[str, set[int]] = {p: set() for p in scopes}

    def use(value: int, reader: list[str]) -> None:
        """``value`` is read by code running in scope chain ``reader`` (outermost first)."""
        have = chains[value]
        for p in reader:                     # scopes the value enters from outside
            if p not in have and value not in scopes[p].inputs:
                scopes[p].inputs.append(value)
        for p in have:                       # scopes the value leaves
            if p not in reader:
                exports[p].add(value)

    for n in graph.layers():
        for i in n.inputs:
            use(i, chains[n.id])
    for o in graph.outputs:
        use(o, [])
    for p in modular:                        # a scope returns its output: read by its parent's code
        c = graph.containers[p]
        use(c.output, _chain(p, modular) + [p])
    for p in modular:
        out = graph.containers[p].output
        scopes[p].outputs = [out] + sorted(exports[p] - {out})
    return root


def inplace_nodes(graph: Graph, root: Scope) -> set[int]:
    """Nodes that may overwrite their first input: :meth:`Graph.reusable_inputs`, restricted to
    values computed in the node's own scope and returned by no scope."""
    owner: dict[int, str] = {}
    returned: set[int] = set()
    for scope in root.walk():
        returned.update(scope.outputs)
        for step in scope.steps:
            if isinstance(step, int):
                owner[step] = scope.path
    return {n for n in graph.reusable_inputs()
            if (src := graph.nodes[n].inputs[0]) not in returned and owner.get(src) == owner[n]}


def _modular_containers(graph: Graph) -> list[str]:
    """Containers holding a registered layer, in graph order of their first node."""
    found: dict[str, None] = {}
    for n in graph.layers():
        if n.registered:
            for p in _prefixes(n.path):
                if p in graph.containers:
                    found.setdefault(p)
    return list(found)


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _chain(path: str, modular: dict[str, None]) -> list[str]:
    """The module scopes enclosing ``path`` (a node's or a scope's), outermost first."""
    return [p for p in _prefixes(path) if p in modular]


def _place_steps(graph: Graph, root: Scope, scopes: dict[str, Scope], chains: list[list[str]]) -> None:
    """Append every node to its innermost scope and every scope to its parent, in node order."""
    open_: list[str] = []
    closed: set[str] = set()
    for n in graph.layers():
        chain = chains[n.id]
        k = 0
        while k < len(open_) and k < len(chain) and open_[k] == chain[k]:
            k += 1
        closed.update(open_[k:])
        del open_[k:]
        for p in chain[k:]:
            if p in closed:  # pragma: no cover - expansion keeps containers contiguous
                raise RuntimeError(f"container {p!r} is not contiguous in the graph (at {n.path!r})")
            (scopes[open_[-1]] if open_ else root).steps.append(scopes[p])
            open_.append(p)
        (scopes[open_[-1]] if open_ else root).steps.append(n.id)
