"""Block definitions from module instances: one definition per class and structure, parameters
for the values that differ between its instances.

Two instances of a class (``layer1.0`` and ``layer3.1``, both ``BasicBlock``) share a definition
when their bodies have the same structure — the same items, names, ops, argument names, merges and
nested block calls. Each argument value is a slot; a slot whose value is the same in every instance
stays a literal, the others become parameters of the block (slots that vary together share one:
``conv1.out`` and ``conv2.out`` of a BasicBlock are both ``out``). Instances of one class with
different structures get numbered definitions (``BasicBlock``, ``BasicBlock_2``). Inner modules are
resolved before the modules that contain them, so a nested block call is part of the structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from ..ops import REGISTRY
from .flow import FromItem, GroupItem, ImportBlocked, Instance, Item, LayerItem, MergeItem, ResidualItem, valid_name


@dataclass
class Variant:
    """A block definition: its name, parameters (in order) and its body with a value per slot —
    ``("param", name)`` or ``("value", literal)``."""

    name: str
    params: list[str]
    body: list[Item]
    slots: list[tuple[str, Any]]
    defaults: dict[str, Any]       # parameter → default (the most common value; the first has none)


def block_calls(items: list[Item]) -> Iterator[LayerItem]:
    for it in items:
        if isinstance(it, LayerItem) and it.block is not None:
            yield it
        elif isinstance(it, GroupItem):
            yield from block_calls(it.body)
        elif isinstance(it, ResidualItem):
            yield from block_calls(it.body + (it.shortcut or []))


def structure(items: list[Item]) -> tuple[tuple, list[tuple[str, str]], list[Any]]:
    """The hashable structure of a body, and its slots: (item label, argument name) and value."""
    shape: list[tuple] = []
    labels: list[tuple[str, str]] = []
    values: list[Any] = []
    for it in items:
        if isinstance(it, LayerItem):
            op = it.block.variant if it.block is not None else it.op
            args = it.block.args if it.block is not None else it.args
            shape.append(("L", op, it.name, tuple(args), it.classifier))
            for k, v in args.items():
                labels.append((it.name or str(op), k))
                values.append(v)
        elif isinstance(it, MergeItem):
            shape.append(("M", it.merge, it.refs, it.name))
        elif isinstance(it, FromItem):
            shape.append(("F", it.ref))
        elif isinstance(it, ResidualItem):
            inner, lab, val = structure(it.body + (it.shortcut or []))
            shape.append(("R", len(it.body), it.shortcut_name, it.shortcut is None, inner))
            labels += lab
            values += val
        else:
            inner, lab, val = structure(it.body)
            shape.append(("G", it.name, inner))
            labels += lab
            values += val
    return tuple(shape), labels, values


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, (list, tuple)) else (type(v).__name__, v)


def resolve(instances: list[Instance], reserved: set[str]) -> list[Variant]:
    """Give every instance a definition (``inst.variant``) and its arguments (``inst.args``)."""
    variants: list[Variant] = []
    used = set(reserved)
    pending = list(instances)
    while pending:
        ready = [i for i in pending if all(c.block.variant for c in block_calls(i.body))]  # type: ignore[union-attr]
        if not ready:   # pragma: no cover - module paths form a tree
            raise ImportBlocked(pending[0].path, "internal: nested blocks could not be ordered")
        groups: dict[tuple[str, tuple], list[Instance]] = {}
        for inst in ready:
            groups.setdefault((inst.cls, structure(inst.body)[0]), []).append(inst)
        for (cls, _), members in groups.items():
            name = _variant_name(cls, used)
            used.add(name)
            variants.append(_define(name, members))
        pending = [i for i in pending if i.variant is None]
    return variants


def _variant_name(cls: str, used: set[str]) -> str:
    base = cls if valid_name(cls) and cls not in REGISTRY else f"{cls}Block"
    if not valid_name(base):
        base = "Block"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    return name


def _define(name: str, members: list[Instance]) -> Variant:
    _, labels, first = structure(members[0].body)
    columns = [structure(m.body)[2] for m in members]
    params: dict[tuple, str] = {}
    slots: list[tuple[str, Any]] = []
    for j, (label, key) in enumerate(labels):
        vector = tuple(col[j] for col in columns)
        if all(_hashable(v) == _hashable(vector[0]) for v in vector):
            slots.append(("value", first[j]))
            continue
        hkey = _hashable(vector)
        if hkey not in params:
            params[hkey] = _param_name(label, key, set(params.values()))
        slots.append(("param", params[hkey]))
    names = list(params.values())
    for i, m in enumerate(members):
        m.variant = name
        m.args = {}
        for j, (kind, p) in enumerate(slots):
            if kind == "param" and p not in m.args:
                m.args[p] = columns[i][j]
    defaults = {p: _most_common([m.args[p] for m in members]) for p in names[1:]}
    for m in members:
        m.defaults = defaults
    return Variant(name, names, members[0].body, slots, defaults)


def _most_common(values: list[Any]) -> Any:
    counts: dict[Any, int] = {}
    for v in values:
        counts[_hashable(v)] = counts.get(_hashable(v), 0) + 1
    best = max(counts.values())
    return next(v for v in values if counts[_hashable(v)] == best)   # the first of the most common


def _param_name(label: str, key: str, taken: set[str]) -> str:
    for base in (key, f"{label}_{key}"):
        if valid_name(base) and base not in taken:
            return base
    base = f"{label}_{key}" if valid_name(f"{label}_{key}") else f"p_{key}"
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"
