"""Receptive fields by the standard recurrences (Araujo, Norris & Sim, Distill 2019).

Per node and per axis (H, W): ``size`` r, effective stride (``jump``) j and ``start`` — the centre
of the first output's field in input pixel coordinates (pixel i spans [i, i+1], so the input starts
at 0.5). A window of kernel k, stride s, padding p and dilation d gives

    k' = d(k-1)+1,   r' = r + (k'-1)·j,   j' = j·s,   start' = start + ((k'-1)/2 - p)·j

Transposed convolutions and upsampling divide the jump (fractions are kept exact). Where local
paths merge the largest field wins, and branches whose jump or start differ are reported as
misaligned. Nodes after a dense layer or a global pool see the whole input (``global_``).

A global path merged into a spatial one (a squeeze-and-excitation gate, ``multiply { | global_avgpool
… sigmoid }``), or a normalisation with statistics over the whole map, does not change the spatial
path's geometry: the field keeps its size, stride and start, and is marked ``context`` — each
position also sees a summary of the whole input — naming the node where that context entered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable

from ..errors import Diagnostic, warning
from ..graph import Graph, Node
from ..ops.base import Adaptive, Dense, Merge, Pointwise, Transposed, Unknown, Upsample, Window

Pair = tuple[Fraction, Fraction]


@dataclass(frozen=True, slots=True)
class RF:
    size: Pair
    jump: Pair
    start: Pair
    extent: tuple[int, int]   # H×W of the feature map this field belongs to (kept through flatten)
    global_: bool = False     # every output sees the whole input
    context: str | None = None  # where whole-input context joined a local field (a gate, a norm)

    def as_json(self) -> dict:
        def num(pair: Pair):
            vals = [int(v) if v.denominator == 1 else round(float(v), 4) for v in pair]
            return vals[0] if vals[0] == vals[1] else vals
        return {"size": num(self.size), "stride": num(self.jump), "start": num(self.start),
                "global": self.global_, "global_context": self.context}

    def text(self, what: str = "size") -> str:
        pair = getattr(self, what if what != "stride" else "jump")
        vals = [str(int(v)) if v.denominator == 1 else f"{float(v):.3g}" for v in pair]
        return vals[0] if vals[0] == vals[1] else "×".join(vals)

    @property
    def sees_all(self) -> bool:
        """Every output depends on every input position (globally, or through context)."""
        return self.global_ or self.context is not None


def _map(fn, *pairs):
    return tuple(fn(*vals) for vals in zip(*pairs))


def receptive_fields(graph: Graph) -> tuple[list[RF | None], list[Diagnostic]]:
    """The receptive field of every node (None everywhere for vector inputs), and warnings."""
    inp = graph.input.shape
    if len(inp) != 3:
        return [None] * len(graph.nodes), []
    one, half = Fraction(1), Fraction(1, 2)
    out: list[RF | None] = [RF((one, one), (one, one), (half, half), (inp[1], inp[2]))]
    warnings: list[Diagnostic] = []
    for node in graph.layers():
        ins = [out[i] for i in node.inputs]
        rule = node.op.rf([graph.nodes[i].shape for i in node.inputs])
        if isinstance(rule, Unknown) or any(rf is None for rf in ins):
            out.append(None)   # an opaque node of a traced backbone: unknown from here on, not guessed
            continue
        extent = tuple(node.shape[1:]) if len(node.shape) == 3 else ins[0].extent
        if isinstance(rule, Merge):
            out.append(_merge(node, ins, graph, warnings))
            continue
        src = ins[0]
        if src.global_:
            out.append(replace(src, extent=extent))
            continue
        rf = _RULES[type(rule)](rule, src, extent)
        if rf.context is None and getattr(rule, "context", False) and not rf.global_:
            rf = replace(rf, context=node.path)
        out.append(rf)
    return out, warnings


def _pointwise(rule: Pointwise, src: RF, extent) -> RF:
    return replace(src, extent=extent)


def _window(rule: Window, src: RF, extent) -> RF:
    k = _map(lambda k, d: Fraction(d * (k - 1) + 1), rule.kernel, rule.dilation)
    return replace(src, size=_map(lambda r, k, j: r + (k - 1) * j, src.size, k, src.jump),
                   jump=_map(lambda j, s: j * s, src.jump, rule.stride),
                   start=_map(lambda st, k, p, j: st + ((k - 1) / 2 - p) * j, src.start, k, rule.padding, src.jump),
                   extent=extent)


def _transposed(rule: Transposed, src: RF, extent) -> RF:
    k = _map(lambda k, d: d * (k - 1) + 1, rule.kernel, rule.dilation)
    return replace(src, size=_map(lambda r, k, s, j: r + (math.ceil(k / s) - 1) * j, src.size, k, rule.stride,
                                  src.jump),
                   jump=_map(lambda j, s: j / s, src.jump, rule.stride),
                   start=_map(lambda st, k, p, s, j: st + (p - Fraction(k - 1, 2)) / s * j, src.start, k,
                              rule.padding, rule.stride, src.jump),
                   extent=extent)


def _upsample(rule: Upsample, src: RF, extent) -> RF:
    f = _map(lambda o, i: Fraction(o, i), rule.out, rule.inp)
    grow = _map(lambda j: j if rule.smooth else Fraction(0), src.jump)
    return replace(src, size=_map(lambda r, g: r + g, src.size, grow), jump=_map(lambda j, f: j / f, src.jump, f),
                   start=_map(lambda st, f, j: st + (1 / (2 * f) - Fraction(1, 2)) * j, src.start, f, src.jump),
                   extent=extent)


def _adaptive(rule: Adaptive, src: RF, extent) -> RF:
    if rule.out == (1, 1):
        return _whole(src, extent)
    size, jump, start = [], [], []
    for r, j, st, n, o in zip(src.size, src.jump, src.start, src.extent, rule.out):
        lengths = [-(-((i + 1) * n) // o) - (i * n) // o for i in range(o)]
        size.append(r + (max(lengths) - 1) * j)
        jump.append(j * Fraction(n, o))
        start.append(st + Fraction(lengths[0] - 1, 2) * j)
    return replace(src, size=tuple(size), jump=tuple(jump), start=tuple(start), extent=extent)


def _dense(rule: Dense, src: RF, extent) -> RF:
    return _whole(src, extent)


def _whole(src: RF, extent) -> RF:
    """A field covering every position of the source map."""
    n = src.extent
    return RF(_map(lambda r, j, n: r + (n - 1) * j, src.size, src.jump, n),
              _map(lambda j, n: j * n, src.jump, n),
              _map(lambda st, j, n: st + Fraction(n - 1, 2) * j, src.start, src.jump, n), extent, True)


_RULES: dict[type, Callable[..., RF]] = {Pointwise: _pointwise, Window: _window, Transposed: _transposed,
                                         Upsample: _upsample, Adaptive: _adaptive, Dense: _dense}


def _merge(node: Node, ins: list[RF], graph: Graph, warnings: list[Diagnostic]) -> RF:
    """Local inputs decide the geometry (the largest field); a global input — a gate broadcast over
    the map — adds context, never its own stride."""
    local = [(i, rf) for i, rf in zip(node.inputs, ins) if not rf.global_]
    extent = tuple(node.shape[1:]) if len(node.shape) == 3 else None
    if not local:
        best = max(ins, key=lambda rf: rf.size)
        return replace(best, size=_map(lambda *v: max(v), *[rf.size for rf in ins]), extent=extent or best.extent)
    (first, ref), others = local[0], local[1:]
    best = max((rf for _, rf in local), key=lambda rf: rf.size)
    for i, rf in others:
        if rf.jump != ref.jump or rf.start != ref.start:
            a, b = graph.nodes[first], graph.nodes[i]
            warnings.append(warning(
                f"branches merged by '{node.path}' are misaligned: '{a.path}' has receptive-field "
                f"stride {ref.text('stride')} and start {ref.text('start')}, '{b.path}' has "
                f"stride {rf.text('stride')} and start {rf.text('start')}", node.span,
                "their pixels do not correspond to the same input positions; check strides and padding"))
            break
    context = next((rf.context for _, rf in local if rf.context), None)
    if context is None and len(local) < len(ins):
        context = node.path
    return replace(best, size=_map(lambda *v: max(v), *[rf.size for _, rf in local]), extent=extent or best.extent,
                   context=context)


def final_receptive_field(graph: Graph, rfs: list[RF | None]) -> tuple[int, RF | None]:
    """The field of the deepest local feature map on the way to the first output (before any
    flatten, dense layer or global pool)."""
    nid = graph.outputs[0]
    while rfs[nid] is not None and (rfs[nid].global_ or len(graph.nodes[nid].shape) != 3) \
            and graph.nodes[nid].inputs:
        nid = graph.nodes[nid].inputs[0]
    return nid, rfs[nid]
