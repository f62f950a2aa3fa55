"""A translation → a cnndsl :class:`~cnndsl.ir.Spec` (then written by the formatter).

:mod:`cnndsl.translate.flow` turns records into items, :mod:`cnndsl.translate.blocks` turns module
instances into block definitions; this module writes both as IR: op arguments that equal the op's
default are left out (unless they are block parameters), the first positional argument is written
by position and the others by their short names (``k``, ``s``, ``p``), the width of the final
classifier becomes the network parameter ``num_classes``, and runs of equal items become repeats
(``layer1: BasicBlock(64) x2``).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from ..expr import Expr, ListExpr, Name, Num, literal
from ..ir import (BlockDef, From, Group, Item, Kwarg, Layer, Merge, NetworkDef, Param, Ref, Repeat, Residual, Shortcut,
                  Spec)
from ..names import spelling_problem
from ..ops import REGISTRY
from .blocks import Variant, resolve
from .flow import FlowBuilder, FromItem, GroupItem, LayerItem, MergeItem, ResidualItem, valid_name
from .flow import Item as FlowItem
from .records import Translation

_PARAM = object()   # a slot that is a parameter (never dropped as a default)
CLASSIFIER_OUT = ("linear", "conv")


def translation_to_spec(t: Translation, name: str) -> Spec:
    """The spec of a whole translated model (raises :class:`~cnndsl.translate.flow.ImportBlocked`)."""
    builder = FlowBuilder(t)
    body = builder.build()
    net_name = name if valid_name(name) else "Imported"
    variants = resolve(builder.instances, {net_name})
    params: tuple[Param, ...] = ()
    last = _last_layer(body)
    if last is not None:
        last.classifier = True
        params = (Param(name="num_classes", default=Num(int(last.args["out"]))),)
    blocks = tuple(_block_def(v) for v in variants)
    network = NetworkDef(name=net_name, params=params, input=tuple(Num(int(d)) for d in t.input_shape),
                         body=_items(body, iter(()), literal_slots=True))
    return Spec(blocks=blocks, network=network)


def _last_layer(body: list[FlowItem]) -> LayerItem | None:
    """The layer that produces the network's output, when it is a linear/conv classifier."""
    while body:
        it = body[-1]
        if isinstance(it, GroupItem):
            body = it.body
            continue
        if isinstance(it, LayerItem) and it.block is None and it.op in CLASSIFIER_OUT:
            return it
        return None
    return None


def _block_def(v: Variant) -> BlockDef:
    slots = iter(v.slots)
    return BlockDef(name=v.name, params=tuple(Param(name=p, default=literal(v.defaults[p]) if p in v.defaults else None)
                                              for p in v.params),
                    body=_items(v.body, slots, literal_slots=False))


def _slot_values(args: dict[str, Any], slots: Iterator[tuple[str, Any]], literal_slots: bool) -> dict[str, Any]:
    """Argument → (expr, value or _PARAM), reading the block's slots in structure order."""
    out = {}
    for k, v in args.items():
        if literal_slots:
            out[k] = (literal(v), v)
            continue
        kind, x = next(slots)
        out[k] = (Name(x), _PARAM) if kind == "param" else (literal(x), x)
    return out


def _items(body: list[FlowItem], slots: Iterator[tuple[str, Any]], literal_slots: bool) -> tuple[Item, ...]:
    out: list[Item] = []
    for it in body:
        if isinstance(it, FromItem):
            out.append(From(ref=Ref(path=(it.ref,))))
        elif isinstance(it, MergeItem):
            out.append(Merge(name=it.name, merge=it.merge, refs=tuple(Ref(path=(r,)) for r in it.refs)))
        elif isinstance(it, GroupItem):
            out.append(Group(name=it.name, body=_items(it.body, slots, literal_slots)))
        elif isinstance(it, ResidualItem):
            main = _items(it.body, slots, literal_slots)
            short = None if it.shortcut is None else \
                Shortcut(name=it.shortcut_name, body=_items(it.shortcut, slots, literal_slots))
            out.append(Residual(body=main, shortcut=short))
        elif it.block is not None:
            values = _slot_values(it.block.args, slots, literal_slots)
            out.append(_call(it.block.variant or "", values, it.block.defaults, it.name))
        else:
            values = _slot_values(it.args, slots, literal_slots)
            if it.classifier:
                values["out"] = (Name("num_classes"), _PARAM)
            out.append(_op_layer(it.op, values, it.name))
    return _repeats(out)


def _call(op: str, values: dict[str, tuple[Expr, Any]], defaults: dict[str, Any], name: str | None) -> Layer:
    kept = {k: e for k, (e, v) in values.items()
            if v is _PARAM or k not in defaults or _hashable(v) != _hashable(defaults[k])}
    exprs, names = list(kept.values()), list(kept)
    if names and names[0] in defaults:   # the first parameter (required) was left out: all by keyword
        return Layer(name=name, op=op, kwargs=tuple(Kwarg(name=k, value=e) for k, e in kept.items()))
    return Layer(name=name, op=op, args=tuple(exprs[:1]),
                 kwargs=tuple(Kwarg(name=k, value=e) for k, e in zip(names[1:], exprs[1:])))


def _op_layer(op: str, values: dict[str, tuple[Expr, Any]], name: str | None) -> Layer:
    cls = REGISTRY[op]
    fields = cls.schema().model_fields
    kept = {k: e for k, (e, v) in values.items()
            if v is _PARAM or fields[k].is_required() or _hashable(v) != _hashable(fields[k].default)}
    short = {full: alias for alias, full in cls.aliases.items()}
    args: list[Expr] = []
    for k, field in enumerate(cls.positional):   # the first by position; the next ones too, unless
        if field not in kept or (k and field in short):   # they have a short name (conv(64, k=3))
            break
        value = kept.pop(field)
        spread = cls.variadic and field == cls.positional[-1] and isinstance(value, ListExpr)
        args += value.items if spread else [value]   # permute(0, 2, 3, 1)
    return Layer(name=name, op=op, args=tuple(args), kwargs=tuple(Kwarg(name=short.get(k, k), value=e)
                                                           for k, e in kept.items()))


def _hashable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        if len(v) == 2 and v[0] == v[1]:
            return _hashable(v[0])
        return tuple(_hashable(x) for x in v)
    return v


def _repeats(items: list[Item]) -> tuple[Item, ...]:
    """Runs of equal unnamed layers → one repeated layer; a named group of one repeat → a named repeat."""
    out: list[Item] = []
    for it in items:
        prev = out[-1] if out else None
        if (isinstance(it, Layer) and it.name is None and isinstance(prev, Layer) and prev.name is None
                and _bare(prev) == _bare(it)):
            count = prev.repeat.count.value if prev.repeat is not None else 1
            out[-1] = prev.model_copy(update={"repeat": Repeat(count=Num(count + 1))})
            continue
        if isinstance(it, Group) and len(it.body) == 1 and isinstance(it.body[0], Layer) \
                and it.body[0].repeat is not None and it.body[0].name is None:
            it = it.body[0].model_copy(update={"name": it.name})
        out.append(it)
    return _numbered(out)


_NUMBERED = re.compile(r"(.*?)(0|[1-9][0-9]*)")


def _numbered(items: list[Item]) -> tuple[Item, ...]:
    """Runs of equal layers named with consecutive numbers (RegNet's ``block4-1`` … ``block4-11``)
    → one repeat with a computed name, ``"block4-{i + 1}": ResBottleneckBlock_2(400) x11 as i``:
    the same sibling modules, so the same state_dict."""
    out: list[Item] = []
    k = 0
    while k < len(items):
        it = items[k]
        m = _NUMBERED.fullmatch(it.name or "") if isinstance(it, Layer) and it.repeat is None else None
        run = 1
        if m is not None and m.group(1):
            prefix, first = m.group(1), int(m.group(2))
            while k + run < len(items) and _same_call(items[k + run], it, f"{prefix}{first + run}"):
                run += 1
        if run > 1:
            used = {e.id for e in (*it.args, *(kw.value for kw in it.kwargs)) if isinstance(e, Name)}
            index = next(n for n in ("i", "j", "k", "index") if n not in used)
            name = f"{prefix}{{{index}}}" if first == 0 else f"{prefix}{{{index} + {first}}}"
            if spelling_problem(name, quoted=True, template=True) is None:
                out.append(it.model_copy(update={"name": name, "repeat": Repeat(count=Num(run), index=index)}))
                k += run
                continue
            run = 1
        out.append(it)
        k += 1
    return tuple(out)


def _same_call(item: Item, layer: Layer, name: str) -> bool:
    return isinstance(item, Layer) and item.repeat is None and item.name == name \
        and item.model_copy(update={"name": layer.name}) == layer


def _bare(layer: Layer) -> Layer:
    return layer.model_copy(update={"repeat": None})
