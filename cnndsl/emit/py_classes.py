"""Instances → classes with symbolic constructor arguments.

Instances of one block with the same structure (children, forward) become one class; a block whose
instances differ in structure (a ``when``) gives one class per structure (``BasicBlock``,
``BasicBlock2``). Each constructor value of a class is written as the expression, over the class's
parameters, that gives its value in *every* instance (``planes``, ``in_channels * expand``), as a
literal when it never changes, and as an extra keyword-only parameter when nothing explains it.
The network class is unified over the expansions of the spec at several parameter values, so a
network parameter it takes (``num_classes``) changes the model exactly as in cnndsl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from . import py_text as T
from .py_parts import EMPTY, Arg, Call, Instance, Leaf, Param, Part, Raw, Seq

_FACTORS = (2, 3, 4, 6, 8, 16)


class NoUnify(Exception):
    """The network's instances at several parameter values cannot share one class."""


def _kind(v: Any) -> str:
    return "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else type(v).__name__


def _similar(name: str, arg: str) -> bool:
    a, b = name.strip("_").lower(), arg.lower()
    return len(a) >= 2 and (a in b or b in a)


def memo_key(values: dict[str, Any]) -> tuple:
    """``values`` as a key that tells ``1`` from ``1.0`` and ``True``."""
    return tuple((n, _kind(v), v) for n, v in values.items())


def candidates(value: Any, names: dict[str, Any], arg: str, reads_input: bool = True,
               spec: dict[str, Any] | None = None, keys: tuple | None = None) -> list[str]:
    """:func:`_candidates`, remembered (the probes of py_probe ask the same questions many times);
    ``keys``: the :func:`memo_key` of ``names`` and ``spec``, where the caller has them."""
    try:
        keys = keys or (memo_key(names), memo_key(spec or {}))
        key = (_kind(value), value, arg, reads_input, *keys)
        hash(key)
    except TypeError:
        return _candidates(value, names, arg, reads_input, spec)
    found = _MEMO.get(key)
    if found is None:
        found = _MEMO[key] = _candidates(value, names, arg, reads_input, spec)
        if len(_MEMO) > 100_000:
            _MEMO.clear()
    return list(found)


_MEMO: dict[tuple, list[str]] = {}


def _candidates(value: Any, names: dict[str, Any], arg: str, reads_input: bool = True,
                spec: dict[str, Any] | None = None) -> list[str]:
    """Expressions over ``names`` equal to ``value``: names first (those like ``arg`` before the
    others, the incoming size last, and like nothing for a layer not fed by the class's input),
    then the block's own expressions of that value (``spec``: text → value), then multiples,
    products and quotients."""
    kind = _kind(value)
    if kind not in ("bool", "int", "float", "str"):
        return []
    same = [n for n, v in names.items() if _kind(v) == kind and v == value]
    # names like the argument first, then the declared parameters, then the incoming size
    out = sorted(same, key=lambda n: (not _similar(n, arg) or (n.startswith("in_") and not reads_input),
                                      n.startswith("in_")))
    out += [t for t, v in (spec or {}).items() if _kind(v) == kind and v == value and T.names_in(t) <= set(names)]
    if kind != "int":
        return out
    ints = {n: v for n, v in names.items() if _kind(v) == "int"}
    for n, v in ints.items():
        out += [f"{k} * {n}" for k in _FACTORS if k * v == value]
        out += [f"{n} // {k}" for k in _FACTORS if v // k == value]
        out += [f"({n} - 1) // 2"] if (v - 1) // 2 == value else []
    for (a, va), (b, vb) in combinations(ints.items(), 2):
        if va * vb == value:
            out.append(f"{a} * {b}")
        if va + vb == value:
            out.append(f"{a} + {b}")
    if not reads_input:  # a layer not fed by the class's input: expressions of its size last
        out = sorted(out, key=lambda e: any(w.startswith("in_") for w in e.split()))
    return out


@dataclass(eq=False)
class ClassDef:
    """One emitted class: its instances and, once :meth:`Classes.finish` ran, its signature and the
    text of every value (slot) in traversal order."""

    name: str
    kind: str
    instances: list[Instance]
    params: list[tuple[str, Any]] = field(default_factory=list)   # (name, default or EMPTY)
    keyword_only: list[str] = field(default_factory=list)    # extras: values nothing explains
    late: list[str] = field(default_factory=list)            # declared, required, after a default
    slots: list[tuple[str, bool]] = field(default_factory=list)  # (text, refers to a parameter)
    done: bool = False

    @property
    def first(self) -> Instance:
        return self.instances[0]


class Classes:
    """All classes of a file, keyed by structure; built from the instances of every expansion."""

    def __init__(self, reserved: set[str], fixed: dict[tuple, set[str]] | None = None):
        self.fixed = fixed or {}                 # class signature → parameters it does not take
        self.by_sig: dict[tuple, ClassDef] = {}
        self.taken = set(reserved) | T.RESERVED
        self.order: list[ClassDef] = []          # dependencies first
        self.sigs: dict[int, tuple] = {}

    # ---- structure
    def sig(self, inst: Instance) -> tuple:
        s = self.sigs.get(id(inst))
        if s is None:
            if inst.loop is not None:  # a loop: its text and the classes it calls, not the count
                body: tuple = ("loop", inst.loop.sig(), self.sig(inst.children[-1][1].instance),
                               self.sig(inst.children[0][1].instance))
            else:
                body = (self._children_sig(inst.children), tuple(tuple(t.pieces) for t, _ in inst.forward))
            s = (inst.kind, inst.label, inst.sequential, body, inst.head[0], tuple(inst.names), inst.in_name)
            self.sigs[id(inst)] = s
        return s

    def _children_sig(self, children: list[tuple[str, Part]]) -> tuple:
        out = []
        for key, part in children:
            if isinstance(part, Leaf):
                out.append((key, "leaf", part.cls, tuple(a.name for a in part.args)))
            elif isinstance(part, Param):
                out.append((key, "param", tuple(part.pieces)))
            elif isinstance(part, Seq):
                out.append((key, "seq", self._children_sig(part.children)))
            elif isinstance(part, Raw):
                out.append((key, "raw", part.expr.flat()))
            else:
                out.append((key, "call", self.sig(part.instance)))
        return tuple(out)

    def add(self, inst: Instance) -> ClassDef:
        """The class of ``inst`` (creating it, and the classes of its children, on first sight)."""
        for part in _calls(inst.children):
            self.add(part.instance)
        sig = self.sig(inst)
        c = self.by_sig.get(sig)
        if c is None:
            fallback = {"network": "Network", "block": "Block", "stage": "Stage"}[inst.kind]
            base = T.class_name(inst.label, fallback)
            if inst.kind == "stage" and not base.endswith("Stage"):
                base += "Stage"
            name, k = base, 2
            while name in self.taken and inst.kind != "network":
                name, k = f"{base}{k}", k + 1
            self.taken.add(name)
            c = self.by_sig[sig] = ClassDef(name, inst.kind, [])
            self.order.append(c)
        c.instances.append(inst)
        return c

    def of(self, inst: Instance) -> ClassDef:
        return self.by_sig[self.sig(inst)]

    # ---- values
    def finish(self) -> None:
        for c in self.order:  # children were added (and so ordered) before their parents
            self._finish(c)

    def _finish(self, c: ClassDef) -> None:
        insts = c.instances
        fixed = self.fixed.get(self.sig(insts[0]), set())
        for inst in insts:
            inst.extras = {}
        columns = [list(_instance_slots(self, i)) for i in insts]
        defaults = [d for *_, d in _instance_slots(self, insts[0])]
        columns = [[c[:4] for c in col] for col in columns]
        used: set[str] = set()
        extras: dict[str, list[Any]] = {}
        slots: list[tuple[str, bool]] = []
        specs = [i.spec_values for i in insts]
        spec_keys = [memo_key(sp) for sp in specs]
        names: list[dict[str, Any]] = []
        keys: list[tuple] = []
        for j, (key, arg, _, reads) in enumerate(columns[0]):
            values = [col[j][2] for col in columns]
            if not names or extras:  # the parameters' values, and the extras' so far
                names = [{**{n: v for n, v in i.names.items() if n not in fixed},
                          **{e: v[k] for e, v in extras.items()}} for k, i in enumerate(insts)]
                keys = [(memo_key(ns), sk) for ns, sk in zip(names, spec_keys)]
            text = self._render(values, names, arg, reads, defaults[j], specs, keys)
            symbolic = text is not None and text not in ("",) and not _is_literal(text, values[0])
            if text is None:
                if c.kind == "network":
                    raise NoUnify(f"{key}.{arg}")
                unique = sum(a == arg for _, a, _, _ in columns[0]) == 1
                extra = T.identifier(arg if unique else f"{arg}_{key}" if key.isdigit() else f"{key}_{arg}", "arg")
                while extra in insts[0].names or extra in extras or extra in T.RESERVED:
                    extra += "_"
                extras[extra] = values
                text, symbolic = extra, True
            if symbolic:
                used |= T.names_in(text)
            slots.append((text, symbolic))
        first = insts[0]
        if first.loop is not None:
            used |= self._check_loop(c, fixed)
        params = [(n, d) for n, d in first.params if n not in fixed]
        if first.in_name is not None and first.in_name in used and first.in_name not in fixed:
            params.insert(0, (first.in_name, EMPTY))
        for e, values in extras.items():
            for inst, v in zip(insts, values):
                inst.extras[e] = v
        # a required parameter after one with a default (its default is an expression): by keyword
        late = [n for k, (n, d) in enumerate(params) if d is EMPTY and any(e is not EMPTY for _, e in params[:k])]
        c.params = [(n, d) for n, d in params if n not in late]
        c.late = late
        c.keyword_only, c.slots, c.done = list(extras), slots, True

    def _check_loop(self, c: ClassDef, fixed: set[str]) -> set[str]:
        """The names a loop's texts read; NoLoop where the class it repeats needs an argument the
        loop has no text for, or a fixed parameter the loop reads differs between instances."""
        from .py_loop import NoLoop

        first = c.first
        start = 0 if first.loop.head is None else 1   # the first repetition, written apart
        child = first.children[start][1].instance
        taken = {n for n, _, _ in call_args(self, child)}
        for inst in c.instances:
            calls = [p.instance for _, p in inst.children][start:]
            if len({self.sig(i) for i in calls}) > 1:   # repetitions of different structures
                raise NoLoop(first.label)
            for name in child.names:
                if name not in taken and len({repr(i.names.get(name)) for i in calls}) > 1:
                    raise NoLoop(first.label)
            head = inst.children[0][1].instance
            if start and not {n for n, _, _ in call_args(self, head)} <= set(first.loop.head):
                raise NoLoop(first.label)
        if not taken <= set(first.loop.args):
            raise NoLoop(first.label)
        used = {n for text in first.loop.texts for n in T.names_in(text)} - {first.loop.var}
        for name in used & fixed:
            if len({repr(i.names.get(name)) for i in c.instances}) > 1:
                raise NoLoop(first.label)
        return used - fixed

    def _render(self, values: list[Any], names: list[dict[str, Any]], arg: str, reads: bool,
                default: Any, specs: list[dict[str, Any]], keys: list[tuple]) -> str | None:
        first = values[0]
        if isinstance(first, tuple) and first and all(isinstance(v, tuple) and len(v) == len(first) for v in values):
            items = [self._render([v[k] for v in values], names, arg, reads, EMPTY, specs, keys)
                     for k in range(len(first))]
            if any(i is None for i in items):
                return None
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"   # (dim,): LayerNorm's shape
        common = candidates(values[0], names[0], arg, reads, specs[0], keys[0])
        for v, ns, sp, ks in zip(values[1:], names[1:], specs[1:], keys[1:]):
            here = set(candidates(v, ns, arg, reads, sp, ks))
            common = [c for c in common if c in here]
        constant = all(_kind(v) == _kind(values[0]) and v == values[0] for v in values)
        if constant:  # a name only where it is surely meant: like the argument, or a size
            v = values[0]
            liked = [c for c in common if c in names[0] and not (c.startswith("in_") and not reads)
                     and ((_similar(c, arg) and not _same(v, default)) or (_kind(v) == "int" and v >= 8))]
            return liked[0] if liked else T.literal(v)
        return common[0] if common else None


def _calls(children: list[tuple[str, Part]]):
    for _, part in children:
        if isinstance(part, Call):
            yield part
        elif isinstance(part, Seq):
            yield from _calls(part.children)


def call_args(classes: Classes, inst: Instance) -> list[tuple[str, Any, Any]]:
    """A child instance's constructor arguments: (parameter, value, default or EMPTY)."""
    c = classes.of(inst)
    out = [(n, inst.names[n], d) for n, d in c.params]
    out += [(n, inst.names[n], EMPTY) for n in c.late]
    out += [(e, inst.extras[e], EMPTY) for e in c.keyword_only]
    return out


def _instance_slots(classes: Classes, inst: Instance):
    """(key, argument, value, fed by the class input, default) for every value the class of
    ``inst`` writes, in order: its children's, then the numbers in its ``forward``."""
    if inst.loop is not None:  # its texts come from the spec (py_loop), the same in every instance
        return
    yield from _walk_slots(classes, inst.children)
    for stmt, _ in inst.forward:
        for a in stmt.args:
            yield "forward", a.name, a.value, False, EMPTY


def _walk_slots(classes: Classes, children: list[tuple[str, Part]]):
    """(child key, argument, value, fed by the class input, default) for every value, in order."""
    for key, part in children:
        if isinstance(part, (Leaf, Param)):
            for a in part.args:
                yield key, a.name, a.value, part.reads_input, a.default
        elif isinstance(part, Seq):
            yield from _walk_slots(classes, part.children)
        elif isinstance(part, Call):
            for name, value, default in call_args(classes, part.instance):
                yield key, name, value, part.reads_input, default


def _same(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def _is_literal(text: str, value: Any) -> bool:
    try:
        return text == T.literal(value)
    except NotImplementedError:
        return False


__all__ = ["Arg", "ClassDef", "Classes", "NoUnify", "call_args", "candidates"]
