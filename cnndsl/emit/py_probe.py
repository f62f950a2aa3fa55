"""Which block parameters an emitted class may take: each one is proven by expanding the block again.

A block class takes a parameter (or the size of its input, ``in_channels``) only when cnndsl's
expansion of one of its instances at another value of it gives an instance of the same structure
whose every value the class's expressions explain — so ``DenseLayer(in_channels, growth,
bn_size=8)`` builds what the spec builds with ``bn_size = 8``. A parameter that changes the
structure (a repeat count, a ``when``) or a value nothing explains is fixed at its value in each
class and named in the class's docstring. The probe instance joins the class's instances, so the
expressions chosen hold at both values (``bn_size * growth``, not the ``128`` of every instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import expr as E
from . import py_text as T
from .py_parts import GraphParts, Instance


@dataclass(frozen=True)
class BlockClass:
    """A block class of the emitted file: an instance's path and input shape, and the constructor
    arguments that build that instance (``extras``: values nothing explains); ``others``: the same
    for its next instances (a parameter may be proven on one of them: py_probe)."""

    path: str
    in_shape: tuple[int, ...]
    args: dict[str, Any]
    extras: tuple[str, ...] = ()
    others: tuple["BlockClass", ...] = ()


_TRIES = 3     # values tried per parameter and instance (cnndsl may refuse one: a stride the input cannot take)
_INSTANCES = 3  # instances of a class a parameter is tried on


def alternatives(value: Any) -> list[Any]:
    """Other values to probe a parameter with (none for text, symbols and other values)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        out = [value * 2 if value else 1, value + 1, value + 2]
    elif isinstance(value, float):
        out = [value / 2 if value else 0.5, value + 1.0]
    else:
        return []
    return list(dict.fromkeys(v for v in out if v != value))[:_TRIES]


def probe_instance(spec: Any, graph: Any, inst: Instance, changes: dict[str, Any],
                   no_loops: frozenset[str] = frozenset()) -> Instance | None:
    """The instance cnndsl expands for block instance ``inst`` with its parameters (python names,
    or its ``in_name``: the input's size) changed as ``changes`` says; None when cnndsl refuses."""
    from ..analysis import analyze_graph
    from ..errors import CnnError
    from ..expand import Expander, Limits
    from ..ir import Kwarg, Layer, NetworkDef
    from .py_parts import python_name

    container = graph.containers.get(inst.path)
    if container is None or container.block is None or not inst.in_shape:
        return None
    shape = list(inst.in_shape)
    args = dict(container.args)
    for name, value in changes.items():
        if name == inst.in_name:
            shape[0] = value
            continue
        declared = [k for k in args if python_name(k) == name]
        if not declared:
            return None
        args[declared[0]] = value
    try:
        kwargs = tuple(Kwarg(name=k, value=E.literal(v)) for k, v in args.items())
        layer = Layer(op=container.block.name, name="block", kwargs=kwargs)
        net = NetworkDef(name="Probe", input=tuple(E.Num(value=d) for d in shape), body=(layer,))
        probe = spec.model_copy(update={"network": net, "networks": ()})
        parts = GraphParts(analyze_graph(Expander(probe, Limits()).run({})), [], no_loops)
    except (CnnError, TypeError, ValueError, NotImplementedError, RuntimeError):
        return None
    instance = getattr(dict(parts.root.children).get("block"), "instance", None)
    if instance is not None:
        instance.probe = True
    return instance


def fixed_block_params(spec: Any, graph: Any, classes_of: Callable[[dict, list[Instance]], Any], classes: Any,
                       no_loops: frozenset[str] = frozenset()) -> tuple[dict[tuple, set[str]], list[Instance]]:
    """(per class signature, the parameters fixed in it; the probe instances that prove the others).

    ``classes`` holds the classes of the network's own instances; ``classes_of(fixed, probes)``
    builds and finishes them again with those parameters fixed and those probes added (raising
    NoUnify when the network no longer unifies). A parameter is proven on one instance: changed
    alone — or, where that gives another structure (a ``when`` such as ``in.channels != planes``),
    together with the parameters of equal value — the expansion has the class's structure and
    values its expressions give; a class stands for one structure of its block."""
    from .py_classes import NoUnify

    fixed: dict[tuple, set[str]] = {}
    probes: list[tuple[Instance, Instance]] = []   # (probe, the instance it varies)
    proves: list[tuple[tuple, str]] = []           # (class signature, parameter) of each probe
    for c in classes.order:
        if c.kind != "block":
            continue
        sig = classes.sig(c.first)
        fixed[sig] = set()
        names = ([c.first.in_name] if c.first.in_name is not None else []) + [n for n, _ in c.first.params]
        found: list[tuple[str, Instance, Instance]] = []
        for name in names:
            got = _probe(spec, graph, classes, c.instances[:_INSTANCES], name, fixed[sig], no_loops)
            if got is None:
                fixed[sig].add(name)
            else:
                found.append((name, *got))
        # the class's probes together, and one by one where that fails
        batches = [found] if _trial(classes_of, fixed, probes, [(p, i) for _, p, i in found], NoUnify) \
            else [[f] for f in found]
        for batch in batches:
            if len(batches) == 1 or _trial(classes_of, fixed, probes, [(p, i) for _, p, i in batch], NoUnify):
                probes += [(p, i) for _, p, i in batch]
                proves += [(sig, name) for name, _, _ in batch]
            else:
                fixed[sig] |= {name for name, _, _ in batch}
    # a parameter fixed after another was proven may leave that one's probe unexplained: fix it too
    while probes:
        classes_of(fixed, [p for p, _ in probes])
        bad = [k for k, (p, o) in enumerate(probes) if p.extras != o.extras]
        if not bad:
            break
        for k in reversed(bad):
            sig, name = proves.pop(k)
            probes.pop(k)
            fixed[sig].add(name)
    return {k: v for k, v in fixed.items() if v}, [p for p, _ in probes]


def _trial(classes_of: Callable, fixed: dict[tuple, set[str]], probes: list[tuple[Instance, Instance]],
           new: list[tuple[Instance, Instance]], no_unify: type) -> bool:
    """Whether the classes with the ``new`` probes added explain every probe as the classes of its
    instance do (no value left to an extra argument)."""
    if not new:
        return True
    try:
        classes_of(fixed, [p for p, _ in probes + new])
    except no_unify:
        return False
    return all(p.extras == o.extras for p, o in probes + new)


def _probe(spec: Any, graph: Any, classes: Any, instances: list[Instance], name: str, fixed: set[str],
           no_loops: frozenset[str]) -> tuple[Instance, Instance] | None:
    """(probe, the instance it varies) of parameter ``name`` of the class of ``instances`` with the
    class's structure; None where the value changes the structure, or cnndsl refuses every value tried."""
    sig = classes.sig(instances[0])

    def sig_of(probe: Instance) -> tuple:   # a fresh cache: a probe's id may be a dropped probe's
        return type(classes)(set()).sig(probe)

    for inst in instances:
        value = inst.names.get(name)
        for other in alternatives(value):
            probe = probe_instance(spec, graph, inst, {name: other}, no_loops)
            if probe is None or sig_of(probe) != sig:
                # refused or another structure alone: together with the parameters of equal value
                joint = {n: other for n, v in inst.names.items() if n not in fixed and T.same_value(v, value)}
                if len(joint) > 1:
                    probe = probe_instance(spec, graph, inst, joint, no_loops) or probe
                if probe is None:
                    continue        # cnndsl refuses this value: try the next
                if sig_of(probe) != sig:
                    return None
            return probe, inst
    return None


__all__ = ["BlockClass", "alternatives", "fixed_block_params", "probe_instance"]
