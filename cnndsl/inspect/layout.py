"""Draw a :class:`~cnndsl.inspect.diagram.Diagram` with matplotlib when Graphviz is not installed.

A layered layout: each box sits one row below its deepest input (longest path from the input);
within a row a box goes under the mean position of its inputs, and boxes that would overlap are
pushed apart, so a chain stays straight, branches spread and merges come back to the middle.
Edges that skip rows are drawn as arcs; clusters are rounded frames around their members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import viz
from .diagram import COLOURS, DEFAULT_COLOUR, Diagram

BOX_W, LINE_H, ROW_STEP, COL_STEP, MARGIN, LANE_STEP = 2.5, 0.15, 0.95, 2.75, 0.35, 0.12   # inches
FONT = 6.5
MAX_CHARS = 52


@dataclass
class Placed:
    x: float            # centre, inches from the left
    y: float            # centre, inches from the top
    h: float


def _ranks(d: Diagram) -> dict[str, int]:
    preds: dict[str, list[str]] = {b.id: [] for b in d.boxes}
    for a, b in d.edges:
        preds[b].append(a)
    succs: dict[str, list[str]] = {b.id: [] for b in d.boxes}
    for a, b in d.edges:
        succs[a].append(b)
    rank: dict[str, int] = {}
    for b in d.boxes:  # boxes come in graph order, which is topological
        rank[b.id] = max((rank[p] + 1 for p in preds[b.id] if p in rank), default=0)
    for b in reversed(d.boxes):  # then as late as possible: a short branch ends next to its merge
        later = [rank[s] for s in succs[b.id] if rank[s] > rank[b.id]]
        if later:
            rank[b.id] = max(rank[b.id], min(later) - 1)
    return rank


def place(d: Diagram) -> dict[str, Placed]:
    """Box centres (inches) for the diagram."""
    rank = _ranks(d)
    preds: dict[str, list[str]] = {b.id: [] for b in d.boxes}
    for a, b in d.edges:
        preds[b].append(a)
    rows: dict[int, list[str]] = {}
    for b in d.boxes:
        rows.setdefault(rank[b.id], []).append(b.id)
    x: dict[str, float] = {}
    for r in sorted(rows):
        want = {bid: (sum(x[p] for p in preds[bid] if p in x) / max(1, sum(p in x for p in preds[bid])))
                if any(p in x for p in preds[bid]) else 0.0 for bid in rows[r]}
        order = sorted(rows[r], key=lambda bid: want[bid])
        placed: list[float] = []
        for bid in order:
            placed.append(max(want[bid], placed[-1] + COL_STEP) if placed else want[bid])
        shift = sum(want[b] - p for b, p in zip(order, placed)) / len(order)
        for bid, p in zip(order, placed):
            x[bid] = p + shift
    heights = {b.id: LINE_H * len(b.lines()) + 0.12 for b in d.boxes}
    depth = _cluster_depths(d)
    top = MARGIN + 0.25 * max(depth.values(), default=0)
    return {bid: Placed(x[bid], top + rank[bid] * ROW_STEP, heights[bid]) for bid in x}


def _cluster_depths(d: Diagram) -> dict[str, int]:
    """How many clusters are nested inside each cluster, plus one (frame padding grows with it)."""
    depth = {c: 1 for c in d.clusters}
    for c in sorted(d.clusters, key=lambda p: -p.count(".")):
        parent = d.clusters[c].parent
        if parent:
            depth[parent] = max(depth[parent], depth[c] + 1)
    return depth


def lanes(d: Diagram, pos: dict[str, Placed]) -> dict[tuple[str, str], float]:
    """The x of the vertical run of every edge that skips rows: beside the column it leaves (right
    of it, or left when it goes left); edges whose runs overlap get separate lanes, shortest inside."""
    skips = [(a, b) for a, b in d.edges if pos[b].y - pos[a].y > ROW_STEP * 1.5]
    skips.sort(key=lambda e: pos[e[1]].y - pos[e[0]].y)
    taken: list[tuple[int, float, float, float]] = []   # (side, x, y0, y1)
    out = {}
    for a, b in skips:
        pa, pb = pos[a], pos[b]
        side = 1 if pb.x >= pa.x - 1e-6 else -1
        base = (max(pa.x, pb.x) if side > 0 else min(pa.x, pb.x)) + side * (BOX_W / 2 + 0.1)
        k = 0
        while any(s == side and abs(x - (base + side * LANE_STEP * k)) < 1e-6 and y0 < pb.y and pa.y < y1
                  for s, x, y0, y1 in taken):
            k += 1
        x = base + side * LANE_STEP * k
        taken.append((side, x, pa.y, pb.y))
        out[(a, b)] = x
    return out


def _extent(d: Diagram, pos: dict[str, Placed]) -> tuple[float, float, float]:
    """(left, right) of what is drawn, in inches, and the padding around it."""
    runs = list(lanes(d, pos).values())
    lo = min([p.x - BOX_W / 2 for p in pos.values()] + runs)
    hi = max([p.x + BOX_W / 2 for p in pos.values()] + runs)
    return lo, hi, MARGIN + 0.14 * max(_cluster_depths(d).values(), default=0)


def size(d: Diagram) -> tuple[float, float]:
    """Figure size in inches."""
    pos = place(d)
    lo, hi, pad = _extent(d, pos)
    h = max(p.y + p.h / 2 for p in pos.values()) + pad
    return max(hi - lo + 2 * pad, 3.0), h


def _route(pa: Placed, pb: Placed, lane: float | None) -> Any:
    """A straight edge between neighbouring rows; an edge that skips rows runs down its lane."""
    from matplotlib.path import Path

    start, end = (pa.x, pa.y + pa.h / 2), (pb.x, pb.y - pb.h / 2)
    if lane is None:
        return Path([start, end])
    side = 1 if lane > pa.x else -1
    x_a, x_b = pa.x + side * BOX_W * 0.35, pb.x + side * BOX_W * 0.35
    gap = (ROW_STEP - pa.h) / 2
    return Path([(x_a, start[1]), (lane, start[1] + gap), (lane, end[1] - gap * 0.8), (x_b, end[1])])


def draw(d: Diagram, dpi: int = viz.DPI) -> Any:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    pos = place(d)
    w, h = size(d)
    lo, hi, _ = _extent(d, pos)
    left = lo - (w - (hi - lo)) / 2
    fig = viz.figure(w, h, dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, left + w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    depth = _cluster_depths(d)
    for path in sorted(d.clusters, key=lambda p: p.count(".")):
        members = [pos[b.id] for b in d.boxes if b.cluster == path or b.cluster.startswith(path + ".")]
        if not members:
            continue
        pad = 0.07 + 0.14 * (depth[path] - 1)
        x0 = min(p.x for p in members) - BOX_W / 2 - pad
        x1 = max(p.x for p in members) + BOX_W / 2 + pad
        y0 = min(p.y - p.h / 2 for p in members) - pad - 0.16
        y1 = max(p.y + p.h / 2 for p in members) + pad
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.08",
                                    fill=False, linestyle="--", linewidth=0.7, edgecolor="#8888aa"))
        ax.text(x0 + 0.06, y0 + 0.04, d.clusters[path].label, fontsize=FONT, va="top", ha="left", color="#44446a")
    runs = lanes(d, pos)
    for a, b in d.edges:
        ax.add_patch(FancyArrowPatch(path=_route(pos[a], pos[b], runs.get((a, b))), arrowstyle="-|>", mutation_scale=7,
                                     linewidth=0.7, color="#555555", shrinkA=0, shrinkB=1))
    for box in d.boxes:
        p = pos[box.id]
        fill, border = COLOURS.get(box.family, DEFAULT_COLOUR)
        ax.add_patch(FancyBboxPatch((p.x - BOX_W / 2, p.y - p.h / 2), BOX_W, p.h,
                                    boxstyle="round,pad=0,rounding_size=0.06", facecolor=fill, edgecolor=border,
                                    linewidth=2.0 if box.output else 0.8))
        lines = box.lines()
        for i, text in enumerate(lines):
            text = text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
            ax.text(p.x, p.y + (i - (len(lines) - 1) / 2) * LINE_H, text, ha="center", va="center",
                    fontsize=FONT, fontweight="bold" if i == 0 and box.title else "normal", color="#222222")
    return fig
