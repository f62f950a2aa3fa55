"""``cnndsl graph``: an architecture diagram from the expanded graph.

Each layer is a box with its name, op and output shape; edges follow the graph, so branches and
merges show; blocks and stages are clusters, and ``depth`` collapses the ones nested deeper than
N levels into single boxes. Written as Graphviz DOT or Mermaid text (no dependencies), or drawn
to SVG/PNG/PDF by Graphviz's ``dot`` when it is installed, else by matplotlib (:mod:`.layout`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import error

# fill and border colour per op family (the ops/ module an op lives in)
COLOURS: dict[str, tuple[str, str]] = {
    "conv": ("#dbe9f6", "#4a7ab0"), "norm": ("#fdebd0", "#c48a1c"), "act": ("#e2f0d9", "#5b9a3c"),
    "pool": ("#eadcf2", "#8052a3"), "linear": ("#f8d7d7", "#b04a4a"), "merge": ("#fff5b8", "#a89020"),
    "reshape": ("#eeeeee", "#888888"), "input": ("#ffffff", "#333333"), "block": ("#e4e4f2", "#55557a"),
}
DEFAULT_COLOUR = ("#f4f4f4", "#666666")
GRAPHVIZ_INSTALL = ("install Graphviz's `dot` program (apt install graphviz | brew install graphviz | "
                    "conda install -c conda-forge graphviz)")
TEXT_FORMATS = (".dot", ".gv", ".mmd")
IMAGE_FORMATS = (".svg", ".png", ".pdf")


@dataclass
class Box:
    id: str
    title: str          # the layer's own name ("" for unnamed layers)
    detail: str         # op with its arguments, or the block name of a collapsed block
    shape: str
    family: str
    cluster: str        # innermost expanded container holding it ("" = top level)
    output: bool = False

    def lines(self) -> list[str]:
        return [t for t in (self.title, self.detail, self.shape) if t]


@dataclass
class Cluster:
    path: str
    label: str
    parent: str         # "" for top level


@dataclass
class Diagram:
    name: str
    boxes: list[Box]
    edges: list[tuple[str, str]]
    clusters: dict[str, Cluster] = field(default_factory=dict)


def _family(op: Any) -> str:
    return "input" if op is None else type(op).__module__.rsplit(".", 1)[-1]


def build(analysis: Any, depth: int | None = None) -> Diagram:
    """The diagram of an analysed network; containers nested deeper than ``depth`` collapse."""
    graph = analysis.graph
    containers = graph.containers

    def ancestors(path: str) -> list[str]:
        parts = path.split(".")
        return [p for p in (".".join(parts[:k]) for k in range(1, len(parts))) if p in containers]

    nesting = {c: len(ancestors(c)) + 1 for c in containers}
    outputs = set(graph.outputs)
    boxes: dict[str, Box] = {}
    owner: dict[int, str] = {}
    clusters: dict[str, Cluster] = {}
    for node in graph.nodes:
        anc = ancestors(node.path)
        shown = [c for c in anc if depth is None or nesting[c] <= depth]
        collapsed = next((c for c in anc if depth is not None and nesting[c] > depth), None)
        for c in shown:
            if c not in clusters:
                parent = ([p for p in ancestors(c) if p in clusters] or [""])[-1]
                clusters[c] = Cluster(c, f"{c} · {_block_detail(c, containers)}", parent)
        inner = shown[-1] if shown else ""
        if collapsed is not None:
            bid = "c_" + collapsed.replace(".", "_")
            owner[node.id] = bid
            if bid not in boxes:
                out = graph.nodes[containers[collapsed].output]
                boxes[bid] = Box(bid, _relative(collapsed, inner), _block_detail(collapsed, containers),
                                 _shape(out.shape), "block", inner)
            if node.id in outputs:
                boxes[bid].output = True
            continue
        bid = f"n{node.id}"
        owner[node.id] = bid
        last = node.path.rsplit(".", 1)[-1]
        title = "input" if node.op is None else ("" if last.isdigit() else last)
        detail = "" if node.op is None else node.op.describe().removesuffix("()")
        boxes[bid] = Box(bid, title, "" if detail == title else detail, _shape(node.shape),
                         _family(node.op), inner, node.id in outputs)
    edges: list[tuple[str, str]] = []
    seen = set()
    for node in graph.nodes:
        for i in node.inputs:
            e = (owner[i], owner[node.id])
            if e[0] != e[1] and e not in seen:
                seen.add(e)
                edges.append(e)
    return Diagram(graph.name, list(boxes.values()), edges, clusters)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _relative(path: str, within: str) -> str:
    return path[len(within) + 1:] if within and path.startswith(within + ".") else path


def _block_detail(path: str, containers: dict[str, Any]) -> str:
    """``BasicBlock``; ``2 × BasicBlock`` for a repeat of blocks; else the container's kind."""
    c = containers[path]
    if c.kind == "repeat":
        children = [k for k in containers if k.startswith(path + ".") and "." not in k[len(path) + 1:]]
        labels = {containers[k].label for k in children}
        if children and len(labels) == 1:
            return f"{len(children)} × {labels.pop()}"
    return c.label


# ----------------------------------------------------------------------------- text formats


def _dot_text(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(d: Diagram) -> str:
    """Graphviz DOT: boxes coloured by op family, clusters for blocks, outputs in bold."""
    lines = [f'digraph "{_dot_text(d.name)}" {{',
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, nodesep=0.25, ranksep=0.3, '
             'labeljust=l];',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=9, margin="0.08,0.03"];',
             '  edge [arrowsize=0.6, color="#555555"];']

    def box_line(b: Box, indent: str) -> str:
        fill, border = COLOURS.get(b.family, DEFAULT_COLOUR)
        label = "\\n".join(_dot_text(t) for t in b.lines())
        extra = ', penwidth=2.2' if b.output else ""
        return f'{indent}{b.id} [label="{label}", fillcolor="{fill}", color="{border}"{extra}];'

    _nest(d, lines, box_line,
          lambda c, ind: [f'{ind}subgraph "cluster_{_dot_text(c.path)}" {{',
                          f'{ind}  label="{_dot_text(c.label)}"; style="rounded,dashed"; color="#8888aa"; '
                          'fontsize=9;'],
          lambda ind: [f"{ind}}}"])
    lines += [f"  {a} -> {b};" for a, b in d.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(s: str) -> str:
    return s.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(d: Diagram) -> str:
    """A Mermaid flowchart (renders in GitHub Markdown inside a ```mermaid block)."""
    lines = ["flowchart TB"]

    def box_line(b: Box, indent: str) -> str:
        label = "<br/>".join(("<b>" + _mermaid_text(t) + "</b>") if i == 0 and b.title else _mermaid_text(t)
                             for i, t in enumerate(b.lines()))
        return f'{indent}{b.id}["{label}"]'

    _nest(d, lines, box_line,
          lambda c, ind: [f'{ind}subgraph {_mermaid_id(c.path)}["{_mermaid_text(c.label)}"]', f"{ind}  direction TB"],
          lambda ind: [f"{ind}end"])
    lines += [f"  {a} --> {b}" for a, b in d.edges]
    families: dict[str, list[str]] = {}
    for b in d.boxes:
        families.setdefault(b.family, []).append(b.id)
    for fam, ids in families.items():
        fill, border = COLOURS.get(fam, DEFAULT_COLOUR)
        lines.append(f"  classDef {fam} fill:{fill},stroke:{border},color:#222")
        lines.append(f"  class {','.join(ids)} {fam}")
    outs = [b.id for b in d.boxes if b.output]
    if outs:
        lines.append("  classDef output stroke-width:3px")
        lines.append(f"  class {','.join(outs)} output")
    return "\n".join(lines) + "\n"


def _mermaid_id(path: str) -> str:
    return "c_" + "".join(ch if ch.isalnum() else "_" for ch in path)


def _nest(d: Diagram, lines: list[str], box_line: Callable[[Box, str], str],
          open_: Callable[[Cluster, str], list[str]], close: Callable[[str], list[str]]) -> None:
    """Boxes and clusters in order, each cluster written once with its members inside."""
    children: dict[str, list[str]] = {}
    for c in d.clusters.values():
        children.setdefault(c.parent, []).append(c.path)
    members: dict[str, list[Box]] = {}
    for b in d.boxes:
        members.setdefault(b.cluster, []).append(b)

    def emit(path: str, indent: str) -> None:
        for b in members.get(path, []):
            lines.append(box_line(b, indent))
        for sub in children.get(path, []):
            lines.extend(open_(d.clusters[sub], indent))
            emit(sub, indent + "  ")
            lines.extend(close(indent))

    emit("", "  ")


# ----------------------------------------------------------------------------- rendering


def render_graphviz(dot: str, fmt: str, dpi: int) -> bytes | None:
    """Graphviz's rendering, or None when the ``dot`` program is not installed."""
    if shutil.which("dot") is None:
        return None
    try:
        import graphviz
    except ImportError:
        proc = subprocess.run(["dot", f"-T{fmt}", f"-Gdpi={dpi}"], input=dot.encode(), capture_output=True,
                              check=False)
        if proc.returncode != 0:
            raise error(f"Graphviz failed: {proc.stderr.decode(errors='replace').strip()}", None,
                        "write .dot instead and render it yourself") from None
        return proc.stdout
    try:
        return graphviz.Source(dot, graph_attr={"dpi": str(dpi)} if fmt == "png" else None).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        return None


def write(d: Diagram, path: Path, dpi: int = 100) -> str:
    """Write the diagram to ``path`` (format from the suffix); returns how it was drawn."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in TEXT_FORMATS:
        _atomic(path, (to_mermaid(d) if suffix == ".mmd" else to_dot(d)).encode())
        return "text"
    data = render_graphviz(to_dot(d), suffix.lstrip("."), dpi)
    if data is not None:
        _atomic(path, data)
        return "graphviz"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise error(f"cannot draw {path.name}: neither Graphviz's `dot` program nor matplotlib is installed", None,
                    f"{GRAPHVIZ_INSTALL}, or pip install 'cnndsl[viz]' for matplotlib; "
                    "-o net.dot or -o net.mmd need neither") from None
    from . import layout, viz

    viz.save(layout.draw(d, dpi), path)
    return "matplotlib"


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(f"cannot write {path}: {exc.strerror or exc}", None, "check the directory and permissions") from None


def run(args: Any) -> int:
    from . import viz

    out = viz.check_output(args.output, "-o", TEXT_FORMATS + IMAGE_FORMATS)
    import cnndsl

    analysis = cnndsl.analyze(cnndsl.load(args.spec), limits=args.limits, **args.params)
    how = write(build(analysis, args.depth), out, args.dpi)
    if how == "matplotlib":
        print(f"note: drew {out.name} with matplotlib's simple layout; for Graphviz's layout, {GRAPHVIZ_INSTALL}",
              file=sys.stderr)
    print(f"wrote {out}")
    return 0
