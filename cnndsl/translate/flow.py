"""Translation records → a tree of spec items: module scopes, and the data flow between them.

The records of a translation are a graph in topological order, each naming the module that holds
its parameters (``layer1.0.conv1``). Module paths are the tree a spec must reproduce for the
state_dict to load: every module becomes an item of its parent's scope —

- a leaf module (a conv, a norm) or a function (``add``, ``flatten``): a layer, named like the
  module (``conv1: conv(...)``); a module at a position (``features.3``) is unnamed and lands at
  that position because each item of a scope takes the next one (checked);
- a ``Sequential`` with a name: a named group (``layer1: { ... }``);
- any other module: a call of a block (its class), defined from the instances in
  :mod:`cnndsl.translate.blocks`.

Inside a scope the flow is written as the language writes it: an item reads the current value;
a node reading another value starts with ``from NAME``; ``add`` / ``concat`` / ``multiply`` of
several values are skip merges (``add(downsample)``). What the language cannot say raises
:class:`ImportBlocked` naming the node and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from ..names import POSITION, RESERVED_MODULE_NAMES, is_reserved_module_name, spelling_problem
from ..syntax.spelling import ITEM_KEYWORDS, KEYWORDS
from .records import INPUT, Record, Translation

MERGES = ("add", "concat", "multiply")
# ops whose modules hold parameters or buffers (a second call of such a module shares them)
STATEFUL = frozenset({"conv", "conv_transpose", "linear", "batchnorm", "groupnorm", "layernorm",
                      "instancenorm", "prelu"})


class ImportBlocked(Exception):
    """The model cannot be written as a spec: ``node`` (a record or module path) and why."""

    def __init__(self, node: str, reason: str, hint: str | None = None):
        super().__init__(f"{node}: {reason}")
        self.node, self.reason, self.hint = node, reason, hint


@dataclass
class LayerItem:
    """An op call (``block`` None) or a block call; ``args`` by field / parameter name."""

    op: str
    args: dict[str, Any]
    name: str | None = None
    block: "Instance | None" = None
    classifier: bool = False            # the network's last layer: its width becomes num_classes


@dataclass
class MergeItem:
    merge: str
    refs: tuple[str, ...]
    name: str | None = None


@dataclass
class FromItem:
    ref: str


@dataclass
class GroupItem:
    name: str
    body: list["Item"]


@dataclass
class ResidualItem:
    """``residual { body } shortcut NAME { shortcut }``: body(x) + shortcut(x) (identity if None)."""

    body: list["Item"]
    shortcut_name: str | None = None
    shortcut: list["Item"] | None = None


Item = Union[LayerItem, MergeItem, FromItem, GroupItem, ResidualItem]


@dataclass
class Instance:
    """One module that becomes a block call: its class, path and body (values still literal)."""

    cls: str
    path: str
    body: list[Item]
    variant: str | None = None          # the block definition it calls (set by blocks.resolve)
    args: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)   # the definition's parameter defaults


@dataclass
class _Unit:
    """One item of a scope: a leaf record, or the records of a child module (``path``)."""

    key: str
    records: list[Record]
    path: str | None = None
    inputs: list[str] = field(default_factory=list)
    output: str = ""
    item: Item | None = None


def valid_label(name: str) -> bool:
    """A name the spec can write as an item's label and refer to (``block: { ... }`` is fine)."""
    return spelling_problem(name) is None and name not in ITEM_KEYWORDS and name not in RESERVED_MODULE_NAMES


def valid_name(name: str) -> bool:
    """A name for a block, a parameter or a network: a label that is no keyword either."""
    return valid_label(name) and name not in KEYWORDS


def owner(r: Record) -> str:
    """The module path a record belongs to: its module, or (functions) its qualified name."""
    return r.module if r.module else r.name


def blockers(records: tuple[Record, ...] | list[Record]) -> tuple[dict[str, int], int, str | None]:
    """What keeps a translation from being a spec: ``{cause: count}`` for the opaque nodes that are
    causes — no cnndsl op, or an op refusing inputs that all come from translated nodes — the
    number of opaque nodes that only follow them (an op refusing an input whose axes are unknown
    because an opaque node made it), and the first cause's node."""
    tainted: set[str] = set()
    causes: dict[str, int] = {}
    after, first = 0, None
    for r in records:
        follows = any(i in tainted for i in r.inputs)
        if r.opaque or follows:
            tainted.add(r.name)
        if not r.opaque:
            continue
        missing = r.reason is None or r.reason.startswith("no cnndsl op")
        if follows and not missing:
            after += 1
            continue
        first = first or r.name
        cause = _what(r) if missing else f"{_what(r)}: {r.reason}"
        causes[cause] = causes.get(cause, 0) + 1
    return causes, after, first


def _what(r: Record) -> str:
    """What an opaque node does: its target, or for a tensor read outside a module call (a get_attr
    node) what that tensor is — ``parameter relative_position_bias_table``, ``tensor constant``."""
    if r.kind != "get_attr":
        return r.target
    if r.target.startswith("_tensor_constant"):   # a tensor torch.fx made a constant of the graph
        return "tensor constant"
    if r.params:
        return f"parameter {r.target}"
    return f"buffer {r.target}" if r.buffers else f"tensor {r.target}"


def opaque_summary(records: tuple[Record, ...] | list[Record], limit: int | None = 6) -> str:
    """``no cnndsl op for Tensor.permute (×3), StochasticDepth (×16)`` — each cause once, counted
    (``limit``: at most that many), and how many nodes after them fail only because of them."""
    causes, after, _ = blockers(records)
    shown = list(causes.items())[:limit]
    listed = [f"{c} (×{n})" if n > 1 else c for c, n in shown]
    more = f", and {len(causes) - len(shown)} more" if len(causes) > len(shown) else ""
    tail = f" ({after} node(s) after them refuse inputs those nodes make)" if after else ""
    return f"no cnndsl op for {', '.join(listed)}{more}{tail}"


class FlowBuilder:
    """Builds the item tree of a translation (see the module docstring)."""

    def __init__(self, t: Translation):
        blocked = [r for r in t.records if r.opaque]
        if blocked:
            raise ImportBlocked(blockers(t.records)[2] or blocked[0].name, opaque_summary(t.records),
                                "the nodes need ops cnndsl does not have yet")
        clash = next((r for r in t.records if owner(r).split(".")[0] == INPUT), None)
        if clash is not None:   # records call the model's input INPUT too
            raise ImportBlocked(owner(clash), f"the module name '{INPUT}' names the network's input in a spec",
                                "rename the module in the model")
        self.t = t
        self.users: dict[str, list[str]] = {}
        for r in t.records:
            for i in r.inputs:
                self.users.setdefault(i, []).append(r.name)
        self.outputs = set(t.outputs)
        self.instances: list[Instance] = []
        self.called: set[str] = set()

    def build(self) -> list[Item]:
        if len(self.t.outputs) != 1:
            raise ImportBlocked(", ".join(self.t.outputs), "the model returns several tensors")
        return self.scope("", list(self.t.records), INPUT, closed=True)

    # ------------------------------------------------------------------ scopes
    def units(self, scope: str, records: list[Record]) -> list[_Unit]:
        prefix = f"{scope}." if scope else ""
        units: list[_Unit] = []
        done: set[str] = set()
        for r in records:
            key, _, rest = owner(r)[len(prefix):].partition(".")
            if not rest:
                if prefix + key in self.t.containers and r.module:
                    raise ImportBlocked(r.name, f"module '{r.module}' runs as one node but holds submodules")
                units.append(_Unit(key, [r]))
                continue
            path = prefix + key
            if units and units[-1].path == path:
                units[-1].records.append(r)
                continue
            if path in done:
                raise ImportBlocked(r.name, f"the nodes of module '{path}' are interleaved with others'",
                                    "a module must run as one piece to become a block or group")
            done.add(path)
            units.append(_Unit(key, [r], path))
        units = [part for u in units for part in self.hoist(u)]
        for u in units:
            inside = {r.name for r in u.records}
            u.inputs = list(dict.fromkeys(i for r in u.records for i in r.inputs if i not in inside))
            outs = [r.name for r in u.records
                    if r.name in self.outputs or any(x not in inside for x in self.users.get(r.name, ()))]
            if len(outs) != 1:
                what = "no value" if not outs else f"{len(outs)} values ({', '.join(outs)})"
                raise ImportBlocked(u.path or u.records[0].name, f"module gives {what} to the rest of the model",
                                    "a block or group has one output")
            u.output = outs[0]
        return units

    @staticmethod
    def hoist(u: _Unit) -> list[_Unit]:
        """A module that starts by merging several outside values (DenseNet's layers concatenate
        the features so far) reads one value once that merge moves out, in front of it: the merge
        holds no parameters, so the state_dict does not change."""
        first = u.records[0]
        if u.path is None or len(u.records) < 2 or first.op not in MERGES or len(first.inputs) < 2:
            return [u]
        rest = u.records[1:]
        if any(first.name != i and i not in {r.name for r in rest} for r in rest for i in r.inputs):
            return [u]
        return [_Unit(first.name.rsplit(".", 1)[-1], [first]), _Unit(u.key, rest, u.path)]

    def scope(self, scope: str, records: list[Record], vin: str, closed: bool) -> list[Item]:
        """The items of one module scope, fed ``vin``; ``closed``: a block (``input`` = ``vin``)."""
        units = self.units(scope, records)
        by_value = {u.output: u for u in units}
        taken = {u.key for u in units}
        items: list[Item] = []

        def ref(value: str, reader: str) -> str:
            if value == vin and closed:
                return "input"
            u = by_value.get(value)
            if u is None or u.item is None:
                raise ImportBlocked(reader, f"reads '{value}', which its scope '{scope or 'network'}' "
                                            "cannot name", "only values of the same module scope can be named")
            return self.name_of(u, taken, reader)

        cur = vin
        for slot, u in enumerate(units):
            if POSITION.fullmatch(u.key) and u.key != str(slot):
                raise ImportBlocked(u.path or u.records[0].name,
                                    f"module '{u.key}' would land at position {slot} of '{scope or 'network'}'")
            r = u.records[0]
            if u.path is None and r.op in MERGES:
                ins = list(r.inputs)
                if r.op != "concat" and cur in ins:
                    ins.remove(cur)
                    ins.insert(0, cur)
                if ins[0] != cur:
                    items.append(FromItem(ref(ins[0], r.name)))
                u.item = MergeItem(r.op, tuple(ref(v, r.name) for v in ins[1:]))
            else:
                if len(u.inputs) != 1:
                    raise ImportBlocked(u.path or r.name, f"reads {len(u.inputs)} values ({', '.join(u.inputs)})",
                                        "a layer, block or group reads one value")
                if u.inputs[0] != cur:
                    items.append(FromItem(ref(u.inputs[0], r.name)))
                u.item = self.leaf(u) if u.path is None else self.container(u, u.inputs[0])
            items.append(u.item)
            cur = u.output
        out = [u.output for u in units][-1] if units else vin
        if out != cur:   # pragma: no cover - the last unit's output is the scope's
            items.append(FromItem(ref(out, scope)))
        return residuals(items, units) if closed else items

    def name_of(self, u: _Unit, taken: set[str], reader: str) -> str:
        """The name a later item refers to ``u`` by (named now if it had none)."""
        item = u.item
        if isinstance(item, FromItem) or item is None:   # pragma: no cover
            raise ImportBlocked(reader, "internal: a from cannot be named")
        if item.name is not None:
            return item.name
        stateful = any(r.op in STATEFUL for r in u.records)
        if u.path is not None or (POSITION.fullmatch(u.key) and stateful):
            raise ImportBlocked(reader, f"reads the module at position '{u.key}', which a spec cannot name")
        base = next(b for b in (u.key, f"{u.key}_out", "out_" + re.sub(r"\W", "_", u.key)) if valid_label(b))
        name, n = base, 1
        while name in taken or not valid_label(name):
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        item.name = name
        return name

    # ------------------------------------------------------------------ items
    def leaf(self, u: _Unit) -> LayerItem:
        r = u.records[0]
        name = None
        if r.module:
            first = r.module not in self.called
            self.called.add(r.module)
            if not first:
                if r.op in STATEFUL:
                    raise ImportBlocked(r.name, f"module '{r.module}' is called twice (shared weights)")
            elif not POSITION.fullmatch(u.key):
                name = self.label(u.key, r.module)
        return LayerItem(r.op, dict(r.args), name)

    @staticmethod
    def label(key: str, path: str) -> str:
        """A module's name as the item's label: an identifier, or a quoted name (RegNet's
        ``block1-0``; a keyword such as ``from``), which the formatter writes in quotes."""
        problem = spelling_problem(key, quoted=True)
        if problem is not None:
            raise ImportBlocked(path, f"the module name '{key}' is not a spec name ({problem})",
                                "a spec name holds letters, digits, '_' and '-' (quoted)")
        if is_reserved_module_name(key):
            raise ImportBlocked(path, f"the module name '{key}' is an attribute of every torch.nn.Module",
                                "rename the module in the model")
        return key

    def container(self, u: _Unit, vin: str) -> Item:
        assert u.path is not None
        cls = self.t.containers.get(u.path, "Module")
        named = not POSITION.fullmatch(u.key)
        if cls == "Sequential" and named:
            return GroupItem(self.label(u.key, u.path), self.scope(u.path, u.records, vin, closed=False))
        inst = Instance(cls, u.path, self.scope(u.path, u.records, vin, closed=True))
        self.instances.append(inst)
        return LayerItem(cls, {}, self.label(u.key, u.path) if named else None, inst)


def residuals(items: list[Item], units: list[_Unit]) -> list[Item]:
    """A block body that starts with a chain from its input and adds the input (or a projection of
    it) back is a ``residual``: ``conv1 … bn2  add(input)`` → ``residual { conv1 … bn2 }``, and
    ``conv1 … bn2  from input  downsample: { … }  add(bn2)`` → ``residual { … } shortcut
    downsample { … }``. The implicit sum takes no position, so nothing stateful may follow it at
    a position."""
    for k, it in enumerate(items):
        if isinstance(it, MergeItem) and it.merge == "add" and it.name is None and len(it.refs) == 1:
            break
    else:
        return items
    head, tail = items[:k], items[k + 1:]
    if any(isinstance(x, (MergeItem, ResidualItem)) for x in head) or not head:
        return items
    unnamed_stateful = [u for u in units if POSITION.fullmatch(u.key) and u.item is not None
                        and any(r.op in STATEFUL for r in u.records)]
    if any(u.item in tail for u in unnamed_stateful) or any(isinstance(x, LayerItem) and x.block is not None
                                                           and x.name is None for x in tail):
        return items
    froms = [i for i, x in enumerate(head) if isinstance(x, FromItem)]
    if not froms and it.refs == ("input",):
        return [ResidualItem(head), *tail]
    if froms == [len(head) - 2] and head[-2].ref == "input" and isinstance(head[-1], GroupItem):  # type: ignore[union-attr]
        main = head[:-2]
        last = main[-1] if main else None
        if main and getattr(last, "name", None) == it.refs[0]:
            short = head[-1]
            return [ResidualItem(main, short.name, short.body), *tail]  # type: ignore[union-attr]
    return items
