"""Receptive fields by the standard recurrences (Araujo, Norris & Sim, Distill 2019).

Per node and per axis (H, W): ``size`` r, effective stride (``jump``) j and ``start`` — the centre
of the first output's field in input pixel coordinates (pixel i spans [i, i+1], so the input starts
at 0.5). A window of kernel k, stride s, padding p and dilation d gives

    k' = d(k-1)+1,   r' = r + (k'-1)·j,   j' = j·s,   start' = start + ((k'-1)/2 - p)·j

Transposed convolutions and upsampling divide the jump (fractions are kept exact). Where paths
merge the largest field wins, and branches whose jump or start differ are reported as misaligned.
Nodes after a dense layer or a global pool see the whole input ("global").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction as F

from ..errors import Diagnostic, warning
from ..graph import Graph
from ..ops.base import Adaptive, Dense, Merge, Pointwise, Transposed, Unknown, Upsample, Window

Pair = tuple[F, F]


@dataclass(frozen=True, slots=True)
class RF:
    size: Pair
    jump: Pair
    start: Pair
    extent: tuple[int, int]   # H×W of the feature map this field belongs to (kept through flatten)
    global_: bool = False     # every output sees the whole input

    def as_json(self) -> dict:
        def num(pair: Pair):
            vals = [int(v) if v.denominator == 1 else round(float(v), 4) for v in pair]
            return vals[0] if vals[0] == vals[1] else vals
        return {"size": num(self.size), "stride": num(self.jump), "start": num(self.start)}

    def text(self, what: str = "size") -> str:
        pair = getattr(self, what if what != "stride" else "jump")
        vals = [str(int(v)) if v.denominator == 1 else f"{float(v):.3g}" for v in pair]
        return vals[0] if vals[0] == vals[1] else "×".join(vals)


def _map(fn, *pairs):
    return tuple(fn(*vals) for vals in zip(*pairs))


def receptive_fields(graph: Graph) -> tuple[list[RF | None], list[Diagnostic]]:
    """The receptive field of every node (None everywhere for vector inputs), and warnings."""
    inp = graph.input.shape
    if len(inp) != 3:
        return [None] * len(graph.nodes), []
    one, half = F(1), F(1, 2)
    out: list[RF | None] = [RF((one, one), (one, one), (half, half), (inp[1], inp[2]))]
    warnings: list[Diagnostic] = []
    for node in graph.layers():
        ins = [out[i] for i in node.inputs]
        src = ins[0]
        rule = node.op.rf([graph.nodes[i].shape for i in node.inputs])
        if isinstance(rule, Unknown) or any(rf is None for rf in ins):
            out.append(None)   # an opaque node of a traced backbone: unknown from here on, not guessed
            continue
        extent = tuple(node.shape[1:]) if len(node.shape) == 3 else src.extent
        if isinstance(rule, Merge):
            rf = _merge(node, ins, graph, warnings)
        elif src.global_ or isinstance(rule, Pointwise):
            rf = RF(src.size, src.jump, src.start, extent, src.global_)
        elif isinstance(rule, Window):
            k = _map(lambda k, d: F(d * (k - 1) + 1), rule.kernel, rule.dilation)
            rf = RF(_map(lambda r, k, j: r + (k - 1) * j, src.size, k, src.jump),
                    _map(lambda j, s: j * s, src.jump, rule.stride),
                    _map(lambda st, k, p, j: st + ((k - 1) / 2 - p) * j, src.start, k, rule.padding, src.jump),
                    extent)
        elif isinstance(rule, Transposed):
            k = _map(lambda k, d: d * (k - 1) + 1, rule.kernel, rule.dilation)
            rf = RF(_map(lambda r, k, s, j: r + (math.ceil(k / s) - 1) * j, src.size, k, rule.stride, src.jump),
                    _map(lambda j, s: j / s, src.jump, rule.stride),
                    _map(lambda st, k, p, s, j: st + (p - F(k - 1, 2)) / s * j, src.start, k, rule.padding,
                         rule.stride, src.jump),
                    extent)
        elif isinstance(rule, Upsample):
            f = _map(lambda o, i: F(o, i), rule.out, rule.inp)
            grow = _map(lambda j: j if rule.smooth else F(0), src.jump)
            rf = RF(_map(lambda r, g: r + g, src.size, grow), _map(lambda j, f: j / f, src.jump, f),
                    _map(lambda st, f, j: st + (1 / (2 * f) - half) * j, src.start, f, src.jump), extent)
        elif isinstance(rule, Adaptive):
            rf = _adaptive(src, rule.out, extent)
        elif isinstance(rule, Dense):
            rf = _whole(src, extent)
        else:  # pragma: no cover - every rule is handled above
            raise TypeError(rule)
        out.append(rf)
    return out, warnings


def _whole(src: RF, extent) -> RF:
    """A field covering every position of the source map."""
    n = src.extent
    return RF(_map(lambda r, j, n: r + (n - 1) * j, src.size, src.jump, n),
              _map(lambda j, n: j * n, src.jump, n),
              _map(lambda st, j, n: st + F(n - 1, 2) * j, src.start, src.jump, n), extent, True)


def _adaptive(src: RF, bins: tuple[int, int], extent) -> RF:
    if bins == (1, 1):
        return _whole(src, extent)
    size, jump, start = [], [], []
    for r, j, st, n, o in zip(src.size, src.jump, src.start, src.extent, bins):
        lengths = [-(-((i + 1) * n) // o) - (i * n) // o for i in range(o)]
        size.append(r + (max(lengths) - 1) * j)
        jump.append(j * F(n, o))
        start.append(st + F(lengths[0] - 1, 2) * j)
    return RF(tuple(size), tuple(jump), tuple(start), extent)


def _merge(node, ins: list[RF], graph: Graph, warnings: list[Diagnostic]) -> RF:
    local = [rf for rf in ins if not rf.global_]
    best = max(ins, key=lambda rf: (rf.global_, rf.size))
    if len(local) > 1:
        ref = local[0]
        for i, rf in zip(node.inputs[1:], local[1:]):
            if rf.jump != ref.jump or rf.start != ref.start:
                a, b = graph.nodes[node.inputs[0]], graph.nodes[i]
                warnings.append(warning(
                    f"branches merged by '{node.path}' are misaligned: '{a.path}' has receptive-field "
                    f"stride {RF.text(ref, 'stride')} and start {RF.text(ref, 'start')}, '{b.path}' has "
                    f"stride {RF.text(rf, 'stride')} and start {RF.text(rf, 'start')}", node.span,
                    "their pixels do not correspond to the same input positions; check strides and padding"))
                break
    size = _map(max, *[rf.size for rf in ins])
    return RF(size, best.jump, best.start, best.extent if len(node.shape) != 3 else tuple(node.shape[1:]),
              any(rf.global_ for rf in ins))


def final_receptive_field(graph: Graph, rfs: list[RF | None]) -> tuple[int, RF | None]:
    """The field of the deepest local feature map on the way to the first output (before any
    flatten, dense layer or global pool)."""
    nid = graph.outputs[0]
    while rfs[nid] is not None and (rfs[nid].global_ or len(graph.nodes[nid].shape) != 3) \
            and graph.nodes[nid].inputs:
        nid = graph.nodes[nid].inputs[0]
    return nid, rfs[nid]
