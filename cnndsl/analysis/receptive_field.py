"""Receptive fields by the standard recurrences (Araujo, Norris & Sim, Distill 2019).

Per node and per axis (H, W): ``size`` r, effective stride (``jump``) j and ``start`` — the centre
of the first output's field in input pixel coordinates (pixel i spans [i, i+1], so the input starts
at 0.5). A window of kernel k, stride s, padding p and dilation d gives

    k' = d(k-1)+1,   r' = r + (k'-1)·j,   j' = j·s,   start' = start + ((k'-1)/2 - p)·j

Transposed convolutions and upsampling divide the jump (fractions are kept exact). Where local
paths merge the largest field wins, and branches whose jump or start differ are reported as
misaligned. Nodes after a dense layer or a global pool see the whole input (``global_``).

The fields follow the H and W axes wherever ``permute`` moves them (a per-position ``linear`` on a
channels-last map is pointwise). A ``reshape`` to a vector keeps each value's field (as ``flatten``
does), and so does reshaping such a vector back to the C×H×W map it came from; any other reshape,
or a linear along H or W, mixes positions in a way no window describes: from that node on the
field is *lost* (``n/a`` in the summary, with the node named) until a dense layer or a global pool
makes it global again.

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
from ..layout import axes_of, is_standard, spatial_extent
from ..ops.base import Adaptive, Dense, Lost, Merge, Pointwise, Reshape, Transposed, Unknown, Upsample, Window

Pair = tuple[Fraction, Fraction]


@dataclass(frozen=True, slots=True)
class RF:
    size: Pair
    jump: Pair
    start: Pair
    extent: tuple[int, int]   # H×W of the feature map this field belongs to (kept through flatten)
    global_: bool = False     # every output sees the whole input
    context: str | None = None  # where whole-input context joined a local field (a gate, a norm)
    lost: str | None = None   # the node whose reshape / mixing lost the spatial structure: no field
    flat: str | None = None   # for a vector: the axes of the map its values were flattened from

    def as_json(self) -> dict:
        def num(pair: Pair):
            vals = [int(v) if v.denominator == 1 else round(float(v), 4) for v in pair]
            return vals[0] if vals[0] == vals[1] else vals
        if self.lost:
            return {"size": None, "stride": None, "start": None, "global": False, "global_context": self.context,
                    "spatial_structure_lost": self.lost}
        return {"size": num(self.size), "stride": num(self.jump), "start": num(self.start),
                "global": self.global_, "global_context": self.context}

    def text(self, what: str = "size") -> str:
        if self.lost:
            return "n/a"
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
        shapes = [graph.nodes[i].shape for i in node.inputs]
        rule = node.op.rf(shapes)
        if isinstance(rule, Unknown) or any(rf is None for rf in ins):
            out.append(None)   # an opaque node of a traced backbone: unknown from here on, not guessed
            continue
        extent = spatial_extent(node.shape) or ins[0].extent
        if isinstance(rule, Merge):
            out.append(_merge(node, ins, graph, warnings))
            continue
        src = ins[0]
        if src.global_:
            out.append(replace(src, extent=extent))
            continue
        rf = _RULES[type(rule)](rule, src, _Step(node, shapes[0], extent))
        if rf.context is None and getattr(rule, "context", False) and not rf.global_:
            rf = replace(rf, context=node.path)
        if src.lost and not rf.global_:
            rf = replace(rf, lost=src.lost)
        out.append(rf)
    return out, warnings


@dataclass(frozen=True, slots=True)
class _Step:
    """Where a rule applies: the node, the shape of its (first) input, the H×W of its output."""

    node: Node
    in_shape: tuple[int, ...]
    extent: tuple[int, int]


def _pointwise(rule: Pointwise, src: RF, at: _Step) -> RF:
    return replace(src, extent=at.extent)


def _reshape(rule: Reshape, src: RF, at: _Step) -> RF:
    """To a vector: each value keeps its field. Back to the C×H×W map a vector was flattened from
    (or to the same map): so does each position. Anything else: the spatial structure is lost."""
    out, inp = at.node.shape, at.in_shape
    if len(out) == 1:
        return replace(src, extent=at.extent, flat=src.flat if len(inp) == 1 else axes_of(inp))
    restored = (src.flat == "CHW") if len(inp) == 1 else (inp == out and is_standard(inp))
    if len(out) == 3 and is_standard(out) and restored and tuple(out[1:]) == tuple(src.extent):
        return replace(src, extent=at.extent, flat=None)
    return _lost(Lost(), src, at)


def _lost(rule: Lost, src: RF, at: _Step) -> RF:
    return replace(src, extent=at.extent, lost=src.lost or at.node.path, flat=None)


def _window(rule: Window, src: RF, at: _Step) -> RF:
    extent = at.extent
    k = _map(lambda k, d: Fraction(d * (k - 1) + 1), rule.kernel, rule.dilation)
    return replace(src, size=_map(lambda r, k, j: r + (k - 1) * j, src.size, k, src.jump),
                   jump=_map(lambda j, s: j * s, src.jump, rule.stride),
                   start=_map(lambda st, k, p, j: st + ((k - 1) / 2 - p) * j, src.start, k, rule.padding, src.jump),
                   extent=extent)


def _transposed(rule: Transposed, src: RF, at: _Step) -> RF:
    extent = at.extent
    k = _map(lambda k, d: d * (k - 1) + 1, rule.kernel, rule.dilation)
    return replace(src, size=_map(lambda r, k, s, j: r + (math.ceil(k / s) - 1) * j, src.size, k, rule.stride,
                                  src.jump),
                   jump=_map(lambda j, s: j / s, src.jump, rule.stride),
                   start=_map(lambda st, k, p, s, j: st + (p - Fraction(k - 1, 2)) / s * j, src.start, k,
                              rule.padding, rule.stride, src.jump),
                   extent=extent)


def _upsample(rule: Upsample, src: RF, at: _Step) -> RF:
    extent = at.extent
    f = _map(lambda o, i: Fraction(o, i), rule.out, rule.inp)
    grow = _map(lambda j: j if rule.smooth else Fraction(0), src.jump)
    return replace(src, size=_map(lambda r, g: r + g, src.size, grow), jump=_map(lambda j, f: j / f, src.jump, f),
                   start=_map(lambda st, f, j: st + (1 / (2 * f) - Fraction(1, 2)) * j, src.start, f, src.jump),
                   extent=extent)


def _adaptive(rule: Adaptive, src: RF, at: _Step) -> RF:
    extent = at.extent
    if rule.out == (1, 1):
        return _whole(src, extent)
    size, jump, start = [], [], []
    for r, j, st, n, o in zip(src.size, src.jump, src.start, src.extent, rule.out):
        lengths = [-(-((i + 1) * n) // o) - (i * n) // o for i in range(o)]
        size.append(r + (max(lengths) - 1) * j)
        jump.append(j * Fraction(n, o))
        start.append(st + Fraction(lengths[0] - 1, 2) * j)
    return replace(src, size=tuple(size), jump=tuple(jump), start=tuple(start), extent=extent)


def _dense(rule: Dense, src: RF, at: _Step) -> RF:
    return _whole(src, at.extent)


def _whole(src: RF, extent) -> RF:
    """A field covering every position of the source map."""
    n = src.extent
    return RF(_map(lambda r, j, n: r + (n - 1) * j, src.size, src.jump, n),
              _map(lambda j, n: j * n, src.jump, n),
              _map(lambda st, j, n: st + Fraction(n - 1, 2) * j, src.start, src.jump, n), extent, True)


_RULES: dict[type, Callable[..., RF]] = {Pointwise: _pointwise, Window: _window, Transposed: _transposed,
                                         Upsample: _upsample, Adaptive: _adaptive, Dense: _dense,
                                         Reshape: _reshape, Lost: _lost}


def _merge(node: Node, ins: list[RF], graph: Graph, warnings: list[Diagnostic]) -> RF:
    """Local inputs decide the geometry (the largest field); a global input — a gate broadcast over
    the map — adds context, never its own stride."""
    local = [(i, rf) for i, rf in zip(node.inputs, ins) if not rf.global_]
    extent = spatial_extent(node.shape)
    lost = next((rf.lost for _, rf in local if rf.lost), None)
    if lost:
        return replace(next(rf for _, rf in local if rf.lost), extent=extent or local[0][1].extent)
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
