"""What the language server answers, as plain data: hover text, inlay hints, completions and
definitions for a buffer's :class:`~cnndsl.lsp.document.Result`. No pygls here (see server.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.report import human
from .document import Entry, Pos, Result, code_end, entry_at, is_yaml, outermost, word_at

if TYPE_CHECKING:
    from ..analysis import Analysis, LayerInfo
    from ..graph import Container

MAX_ROWS = 12
MAX_SHAPES = 3
KEYWORDS = ("network", "block", "import", "input", "output", "from", "residual", "shortcut", "concat", "add",
            "multiply", "when", "as", "freeze", "unfreeze", "train", "true", "false", "in")


def shape(s: tuple[int, ...]) -> str:
    return "×".join(map(str, s))


def _rf(info: "LayerInfo") -> str:
    if info.rf is None:
        return "-"
    if info.rf.lost:
        return f"n/a (spatial structure lost at '{info.rf.lost}')"
    if info.rf.global_:
        return "global"
    context = f", plus global context from '{info.rf.context}'" if info.rf.context else ""
    return f"{info.rf.text()} (stride {info.rf.text('stride')}{context})"


# ----------------------------------------------------------------------------- hover


def hover(result: Result, pos: Pos) -> tuple[str, Entry | None] | None:
    """Markdown for the layer (or block instance, or op name) under the cursor."""
    entry = entry_at(result, pos) if result.analysis else None
    if entry is not None and result.analysis is not None:
        if entry.containers:
            return _containers(result.analysis, outermost(entry.containers)), entry
        return _layers(result.analysis, entry.layers), entry
    word = word_at(result.text, pos)
    if word is not None:
        text = op_doc(word[0]) or _block_doc(result, word[0])
        if text:
            return text, None
    return None


def _layers(a: "Analysis", layers: list["LayerInfo"]) -> str:
    first = layers[0]
    name = first.name.rsplit(".", 1)[-1]
    name = first.op if name.isdigit() else name  # unnamed layers are numbered by position
    head = f"**{name}** · `{first.node.op.describe()}`"
    if len(layers) == 1:
        ins = " + ".join(shape(a.graph.nodes[i].shape) for i in first.node.inputs)
        return "\n\n".join([head, f"`{first.name}`: {ins} → **{shape(first.shape)}**",
                            f"params {first.cost.params:,} · MACs {human(first.cost.macs)} · "
                            f"receptive field {_rf(first)}"])
    rows = ["| layer | output | params | receptive field |", "|---|---|---:|---|"]
    rows += [f"| `{l.name}` | {shape(l.shape)} | {l.cost.params:,} | {_rf(l)} |" for l in layers[:MAX_ROWS]]
    more = [f"… and {len(layers) - MAX_ROWS} more"] if len(layers) > MAX_ROWS else []
    return "\n\n".join([head + f" — {len(layers)} instances", "\n".join(rows), *more])


def members(a: "Analysis", path: str) -> list["LayerInfo"]:
    return [l for l in a.layers if l.name.startswith(path + ".")]


def _container_row(a: "Analysis", c: "Container") -> tuple[str, str, int, str]:
    own = members(a, c.path)
    ids = {l.node.id for l in own}
    inputs = sorted({i for l in own for i in l.node.inputs if i not in ids})
    out = a.graph.nodes[c.output]
    info = next((l for l in a.layers if l.node.id == c.output), None)
    ins = " + ".join(shape(a.graph.nodes[i].shape) for i in inputs) or "-"
    return ins, shape(out.shape), sum(l.cost.params for l in own), _rf(info) if info else "-"


def _containers(a: "Analysis", containers: list["Container"]) -> str:
    first = containers[0]
    what = first.label if first.kind == "block" else first.kind
    name = first.path.rsplit(".", 1)[-1]
    name = what if name.isdigit() else name
    parts: list["Container"] = []
    if first.kind == "repeat":
        parts = [c for c in a.graph.containers.values() if c.path.startswith(first.path + ".")
                 and "." not in c.path[len(first.path) + 1:]]
        what = f"{len(parts)} × {parts[0].label}" if parts else what
    if len(containers) == 1:
        ins, out, params, rf = _container_row(a, first)
        text = [f"**{name}** · {what}", f"`{first.path}`: {ins} → **{out}**", f"params {params:,} · receptive field {rf}"]
        if len(parts) > 1:
            text.append(_container_table(a, parts))
        return "\n\n".join(text)
    return "\n\n".join([f"**{name}** · {what} — {len(containers)} instances", _container_table(a, containers)])


def _container_table(a: "Analysis", containers: list["Container"]) -> str:
    rows = ["| instance | input | output | params | receptive field |", "|---|---|---|---:|---|"]
    for c in containers[:MAX_ROWS]:
        ins, out, params, rf = _container_row(a, c)
        rows.append(f"| `{c.path}` | {ins} | {out} | {params:,} | {rf} |")
    if len(containers) > MAX_ROWS:
        rows.append(f"\n… and {len(containers) - MAX_ROWS} more")
    return "\n".join(rows)


def op_doc(name: str) -> str | None:
    """An op's summary and arguments (defaults, short names), as markdown."""
    from ..ops import REGISTRY

    cls = REGISTRY.get(name)
    if cls is None:
        return None
    alias = {v: k for k, v in cls.aliases.items()}
    args = []
    for f, info in cls.model_fields.items():
        text = f"`{f}`" + (f" ({alias[f]})" if f in alias else "")
        args.append(text if info.is_required() else f"{text} = {info.default!r}")
    return f"**{name}** — {cls.summary}" + ("\n\n" + ", ".join(args) if args else "")


def _block_doc(result: Result, name: str) -> str | None:
    block = result.blocks().get(name)
    if block is None:
        return None
    from ..expr import format_expr

    params = ", ".join(p.name if p.default is None else f"{p.name} = {format_expr(p.default)}" for p in block.params)
    where = f" ({Path(block.span.file).name}:{block.span.line})" if block.span else ""
    return f"**block {name}**({params}){where}"


# ----------------------------------------------------------------------------- inlay hints


@dataclass(frozen=True)
class Hint:
    line: int
    col: int
    label: str
    tooltip: str


def inlay_hints(result: Result, first: int = 0, last: int | None = None) -> list[Hint]:
    """The output shape at the end of every layer line (several instances: their distinct shapes)."""
    if result.analysis is None:
        return []
    lines = result.text.splitlines()
    hints = []
    for line, entries in sorted(result.entries.items()):
        if line < first or (last is not None and line > last) or line >= len(lines):
            continue
        entry = entries[-1]
        if entry.containers:
            outs = [result.analysis.graph.nodes[c.output] for c in outermost(entry.containers)]
            names = [c.path for c in outermost(entry.containers)]
        else:
            outs = [l.node for l in entry.layers]
            names = [l.name for l in entry.layers]
        shapes: list[str] = []
        for n in outs:
            if shape(n.shape) not in shapes:
                shapes.append(shape(n.shape))
        label = " | ".join(shapes[:MAX_SHAPES]) + (f" | +{len(shapes) - MAX_SHAPES}" if len(shapes) > MAX_SHAPES else "")
        tip = "\n".join(f"{p}: {shape(n.shape)}" for p, n in list(zip(names, outs))[:MAX_ROWS])
        hints.append(Hint(line, code_end(lines[line]), f"→ {label}", tip))
    return hints


# ----------------------------------------------------------------------------- completion


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str          # "op" | "block" | "argument" | "keyword"
    detail: str
    insert: str


_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\($")
_YAML_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*[\[{]$")


def _open_call(prefix: str, pattern: re.Pattern) -> tuple[str, str] | None:
    """The name before the innermost unclosed bracket of ``prefix`` (``conv(64, k=`` → conv), and
    the arguments typed so far."""
    depth = 0
    for i in range(len(prefix) - 1, -1, -1):
        ch = prefix[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                m = pattern.search(prefix[:i + 1])
                if m:
                    return m.group(1), prefix[i + 1:]
                if ch == "[" or ch == "{":
                    continue  # a list or mapping inside the call: look further out
                return None
            depth -= 1
    return None


def _yaml_parent_key(lines: list[str], pos: Pos) -> tuple[str, str] | None:
    """In block-style YAML, the key a line is nested under (``conv:`` above ``  k: 3``), and the
    text of the lines between (the arguments already given)."""
    current = lines[pos[0]] if pos[0] < len(lines) else ""
    indent = len(current) - len(current.lstrip(" -"))
    for i in range(pos[0] - 1, -1, -1):
        text = lines[i]
        stripped = text.lstrip(" -")
        if not stripped.strip() or stripped.startswith("#"):
            continue
        if len(text) - len(stripped) < indent:
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(#.*)?$", stripped)
            return (m.group(1), "\n".join(lines[i + 1:pos[0]])) if m else None
    return None


def _positional_count(typed: str) -> int:
    """How many complete positional arguments precede the cursor (``8, 3, k=`` → 2)."""
    depth, count, current = 0, 0, ""
    for ch in typed:
        if ch in "([{":
            depth += 1
            if depth == 1 and ch == "{":
                break  # YAML: the keyword mapping starts
        elif ch in ")]}":
            depth -= 1
        if depth == 0 and ch == ",":
            count += 0 if re.match(r"\s*[A-Za-z_]\w*\s*=[^=]", current) else 1
            current = ""
        else:
            current += ch
    return count


def completions(result: Result, pos: Pos, blocks: dict[str, Any] | None = None) -> list[Completion]:
    """Op arguments inside an op's (or block's) brackets; otherwise op names, block names and keywords."""
    from ..ops import REGISTRY

    lines = result.text.splitlines()
    prefix = lines[pos[0]][:pos[1]] if pos[0] < len(lines) else ""
    yaml = is_yaml(result.path, result.text)
    blocks = blocks if blocks is not None else result.blocks()
    call, typed = _open_call(prefix, _YAML_CALL if yaml else _CALL) or (None, "")
    if yaml and call is None:
        call, above = _yaml_parent_key(lines, pos) or (None, "")
        typed = above + "\n" + prefix
    sep = ": " if yaml else "="
    if call in REGISTRY:
        cls = REGISTRY[call]
        given = set(re.findall(r"([A-Za-z_]\w*)\s*" + (":" if yaml else "="), typed))
        given.update(cls.positional[:_positional_count(typed)])
        alias = {v: k for k, v in cls.aliases.items()}
        out = []
        for f, info in cls.model_fields.items():
            if f in given or alias.get(f) in given:
                continue
            detail = "required" if info.is_required() else f"default {info.default!r}"
            out.append(Completion(f, "argument", detail + (f"; short: {alias[f]}" if f in alias else ""), f + sep))
            if f in alias:
                out.append(Completion(alias[f], "argument", f"short for {f}", alias[f] + sep))
        return out
    if call in blocks:
        from ..expr import format_expr

        return [Completion(p.name, "argument", "required" if p.default is None else f"default {format_expr(p.default)}",
                           p.name + sep) for p in blocks[call].params]
    items = [Completion(n, "op", cls.summary, n) for n, cls in sorted(REGISTRY.items())
             if n not in ("add", "concat", "multiply")]
    items += [Completion(n, "block", f"block {n}", n) for n in sorted(blocks)]
    if not yaml:
        items += [Completion(k, "keyword", "keyword", k) for k in KEYWORDS]
    return items


# ----------------------------------------------------------------------------- definition


@dataclass(frozen=True)
class Location:
    path: str
    line: int        # 0-based
    col: int
    end_col: int


_IMPORT_CNN = re.compile(r'import\s+"([^"]+)"')


def definition(result: Result, pos: Pos, blocks: dict[str, Any] | None = None) -> list[Location]:
    """Where the block, import or layer name under the cursor is defined."""
    lines = result.text.splitlines()
    line = lines[pos[0]] if pos[0] < len(lines) else ""
    target = _import_at(result, line, pos[1])
    if target is not None:
        return [Location(str(target), 0, 0, 0)] if target.exists() else []
    word = word_at(result.text, pos)
    if word is None:
        return []
    blocks = blocks if blocks is not None else result.blocks()
    block = blocks.get(word[0])
    if block is not None and block.span is not None:
        s = block.span
        return [Location(s.file, s.line - 1, s.col - 1, (s.end_col or s.col + len(word[0])) - 1)]
    return _layer_named(result, word[0])


def _import_at(result: Result, line: str, col: int) -> Path | None:
    base = Path(result.path).parent
    for m in _IMPORT_CNN.finditer(line):
        if m.start() <= col <= m.end():
            return base / m.group(1)
    if is_yaml(result.path, result.text) and result.spec is not None:
        for imp in result.spec.imports:
            if imp.path in line and line.find(imp.path) <= col <= line.find(imp.path) + len(imp.path):
                return base / imp.path
    return None


def _layer_named(result: Result, name: str) -> list[Location]:
    """A reference (``concat(enc2)``, ``from stem``, ``output a``) → where that name is defined."""
    if result.analysis is None:
        return []
    for entries in result.entries.values():
        for e in entries:
            paths = [l.name for l in e.layers] + [c.path for c in e.containers]
            if name in paths:
                return [Location(result.path, e.line, e.col, e.end_col)]
    return []
