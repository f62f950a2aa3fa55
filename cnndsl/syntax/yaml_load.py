"""YAML text → Spec IR, through a guarded loader.

Before anything is built: size cap, a bracket-depth pre-scan, then an event scan (libyaml when
available) that refuses anchors/aliases, several documents and deep nesting. The document is then
composed into nodes (which keep their line/column marks) and converted by hand, so duplicate keys,
non-standard tags and misplaced keys are reported at the YAML line they come from.
"""

from __future__ import annotations

from typing import Any

import yaml

import math
import re

from .. import expr as E
from ..backbone.syntax import read_yaml_backbone, read_yaml_init
from ..errors import Source, Span, did_you_mean, error
from ..ir import (Backbone, BlockDef, From, Group, Import, Kwarg, Layer, Merge, NetworkDef, Parallel, Param,
                  Pattern, Ref, Repeat, Residual, Shortcut, Spec)
from ..names import check_module_name, check_name
from .limits import MAX_NESTING, MAX_TOKENS, check_text, number_literal
from .parse import parse_expr
from .trivia_yaml import extent, yaml_trivia

MAX_YAML_DEPTH = 2 * MAX_NESTING  # each structural level of a spec is two YAML levels
MAX_YAML_NODES = MAX_TOKENS       # scalars, lists and mappings in one document
YAML_NEWLINES = "\r\n|[\n\r\x85\u2028\u2029]"  # the line breaks PyYAML counts (its marks' lines)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STD_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_SCALARS = yaml.SafeLoader("")  # used only to construct plain scalars (int, float, bool, null, str)


def parse_yaml(text: str, filename: str = "<string>") -> Spec:
    source = Source(filename, text, YAML_NEWLINES)
    check_text(text, source)
    _prescan(source)
    _scan_events(source)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    if root is None:
        raise error("the YAML document is empty", source.span(1, 1))
    spec = _SpecBuilder(source).spec(root)
    return spec.model_copy(update={"trivia": yaml_trivia(text, filename, root)})


# ----------------------------------------------------------------------------- guards


# a comment, a quoted string (to its closing quote, lines included) or one flow bracket
_FLOW_SCAN = re.compile(r"#[^\n]*|\"[^\"]*\"?|'[^']*'?|[\[\]{}]")


def _prescan(source: Source) -> None:
    """Cheap flow-bracket depth check, so no parser ever sees absurd nesting (one regex pass)."""
    depth, text = 0, source.text
    for m in _FLOW_SCAN.finditer(text):
        ch = m.group()
        if ch in ("[", "{"):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                at = m.start()
                raise error(f"YAML nesting depth > {MAX_YAML_DEPTH}",
                            source.span(text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)),
                            "specs never need this much nesting")
        elif ch in ("]", "}"):
            depth -= 1


def _scan_events(source: Source) -> None:
    """Refuse tags, anchors, several documents, deep nesting and too many nodes, event by event
    (before any node tree is composed)."""
    depth, docs, nodes = 0, 0, 0
    try:
        for ev in yaml.parse(source.text, Loader=_Loader):
            if isinstance(ev, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise error(f"spec too long: more than {MAX_YAML_NODES:,} YAML values",
                                _mark(ev.start_mark, source),
                                "a network this size is written with blocks and repeats, not item by item")
            tag = getattr(ev, "tag", None)
            if tag is not None and tag not in _STD_TAGS and tag != "!":
                raise error(f"YAML tag {_short_tag(tag)} is not allowed", _mark(ev.start_mark, source),
                            "cnndsl specs hold plain data (mappings, lists, numbers, strings); remove the tag")
            if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None):
                raise error("YAML anchors/aliases are not allowed in cnndsl specs", _mark(ev.start_mark, source),
                            "write the repeated part out, or define a block and call it")
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise error(f"YAML nesting depth > {MAX_YAML_DEPTH}", _mark(ev.start_mark, source))
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(ev, yaml.DocumentStartEvent):
                docs += 1
                if docs > 1:
                    raise error("the YAML stream holds more than one document", _mark(ev.start_mark, source),
                                "a spec is a single YAML document")
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None


def _mark(mark: Any, source: Source) -> Span:
    return source.span(mark.line + 1, mark.column + 1)


def _yaml_error(exc: yaml.YAMLError, source: Source):
    text = source.text
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    lines = source.lines
    span = _mark(mark, source) if mark else source.span(1, 1)
    if text.splitlines() and span.line > len(text.splitlines()):  # at the end of the stream: after the last text
        last = len(text.rstrip().splitlines()) or 1
        span = source.span(last, len(lines[last - 1].rstrip()) + 1)
    line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    if line[span.col - 1:span.col] == "\t" or (problem and "tab" in problem.lower()):
        hint = "YAML indentation must use spaces, not tabs"
    elif _misindented(lines, span.line):
        hint = _misindented(lines, span.line)
    else:
        hint = "check the indentation, the ':' after each key and the closing brackets and quotes"
    notes = []
    if context_mark is not None and context and _mark(context_mark, source) != span:
        notes.append((_mark(context_mark, source), f"{context}: it starts here"))
    return error(f"invalid YAML: {problem}", span, hint, notes)


def _misindented(lines: list[str], lineno: int) -> str | None:
    """A hint naming the indentation when line ``lineno`` starts at a column no open block allows."""
    def indent(text: str) -> int:
        return len(text) - len(text.lstrip(" "))

    if not 0 < lineno <= len(lines) or not lines[lineno - 1].strip():
        return None
    me, allowed, floor, prev = indent(lines[lineno - 1]), set(), None, None
    for text in reversed(lines[:lineno - 1]):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        ind = indent(text)
        if prev is None:
            prev = text
        if floor is None or ind < floor:  # an enclosing line (or the one just before)
            floor = ind
            allowed.add(ind)
            if text.lstrip().startswith("- "):
                allowed.add(ind + 2)
    if prev is None or me in allowed or (prev.rstrip().endswith(":") and me > indent(prev)):
        return None
    levels = ", ".join(str(i) for i in sorted(allowed))
    spaces = f"{me} space" + ("" if me == 1 else "s")
    return (f"indentation: line {lineno} starts at column {me + 1} ({spaces}), but the lines above open "
            f"blocks at {levels} spaces; indent it like the key or list item it belongs to")


# ----------------------------------------------------------------------------- node → IR

_TOP = ("imports", "blocks", "network", "train")
_NET = ("name", "params", "extends", "input", "layers", "outputs", "freeze", "unfreeze", "init")
_META = ("name", "repeat", "as", "when")
_COMPOUND = ("group", "residual", "parallel", "from", "concat", "add", "multiply")


class _SpecBuilder:
    def __init__(self, source: Source):
        self.source = source

    def sp(self, node: yaml.Node) -> Span:
        return _mark(node.start_mark, self.source)

    def ext(self, node: yaml.Node, key: yaml.Node | None = None) -> Span:
        """Where the construct sits (from its key), for the formatter (cnndsl.syntax.trivia)."""
        return extent(node, self.source.name, key)

    # ---- plain values
    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise error(f"expected a single value here, got a {_kind(node)}", self.sp(node))
        if node.tag == "tag:yaml.org,2002:timestamp":  # an unquoted date: keep the text
            return node.value
        if node.tag == "tag:yaml.org,2002:merge":
            raise error("YAML merge keys ('<<') are not allowed in cnndsl specs", self.sp(node),
                        "write the keys out, or define a block and call it")
        if node.tag not in _STD_TAGS:
            raise error(f"YAML tag {_short_tag(node.tag)} is not allowed", self.sp(node),
                        "cnndsl specs hold plain data (mappings, lists, numbers, strings); remove the tag")
        try:
            value = _SCALARS.construct_object(node)
        except ValueError:  # an integer of 4,300+ digits
            raise error(f"number {node.value[:10]}… is too large (limit {E.MAX_INT:.0e})", self.sp(node)) from None
        finally:
            _SCALARS.constructed_objects.clear()
        if isinstance(value, float) and not math.isfinite(value):
            raise error(f"{node.value} is not a finite number", self.sp(node),
                        "numbers in a spec must be finite; write a large finite value if one is meant")
        if isinstance(value, int) and not isinstance(value, bool):
            E.check_number(value, self.sp(node))
        return value

    def name(self, node: yaml.Node, what: str, module: bool = False) -> str:
        """A name written as a YAML value (``name: conv1``), checked against the name rule here,
        so the error points at the value."""
        value = self.scalar(node)
        if not isinstance(value, str):
            raise error(f"invalid {what}: expected a name, got {value!r}", self.sp(node),
                        "names are letters, digits and '_' (quote a name YAML would read as a number)")
        return (check_module_name if module else check_name)(value, self.sp(node), what)

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None = None
                ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            hint = ("a spec is a mapping with the keys " + ", ".join(_TOP) if what == "the spec" and allowed
                    else "write it as 'key: value' lines" + (" with the keys " + ", ".join(allowed) if allowed else ""))
            raise error(f"{what} must be a mapping (key: value), got a {_kind(node)}", self.sp(node), hint)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = self.scalar(k)
            if not isinstance(key, str):
                raise error(f"keys must be names, got {key!r}", self.sp(k))
            if key in out:
                first = out[key][0]
                raise error(f"duplicate key '{key}' (first at line {first.start_mark.line + 1})", self.sp(k),
                            "YAML would silently keep only the last one", notes=[(self.sp(first), "first here")])
            if allowed is not None and key not in allowed:
                raise error(f"unknown key '{key}' in {what}", self.sp(k),
                            did_you_mean(key, allowed) or "allowed keys: " + ", ".join(allowed))
            out[key] = (k, v)
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise error(f"{what} must be a list, got a {_kind(node)}", self.sp(node))
        return list(node.value)

    def plain(self, node: yaml.Node, path: tuple, spans: dict) -> Any:
        """Plain data (the train section), recording each value's span by key path."""
        spans[path] = self.sp(node)
        if isinstance(node, yaml.MappingNode):
            return {k: self.plain(v, path + (k,), spans) for k, (_, v) in self.mapping(node, "this").items()}
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(v, path + (i,), spans) for i, v in enumerate(node.value)]
        return self.scalar(node)

    def expr(self, node: yaml.Node) -> E.Expr:
        """A value: numbers and booleans as they are; strings are parsed as expressions."""
        span = self.sp(node)
        if isinstance(node, yaml.SequenceNode):
            return E.ListExpr(tuple(self.expr(v) for v in node.value), span)
        if isinstance(node, yaml.MappingNode):
            items = self.mapping(node, "this value")
            return E.MapExpr(tuple((k, self.expr(v)) for k, (_, v) in items.items()), span)
        value = self.scalar(node)
        if value is None:
            raise error("a value is missing here", span)
        if isinstance(value, str):
            shift = 1 if node.style in ("'", '"') else 0
            return parse_expr(value, self.source.name, (node.start_mark.line, node.start_mark.column + shift),
                              self.source)
        return E.literal(value, span)

    def ref(self, node: yaml.Node) -> Ref:
        value = self.scalar(node)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise error(f"expected a layer name, got {value!r}", self.sp(node))
        return Ref(path=tuple(str(value).split(".")), span=self.sp(node), extent=self.ext(node))

    # ---- structure
    def spec(self, root: yaml.Node) -> Spec:
        top = self.mapping(root, "the spec", _TOP)
        imports = tuple(Import(path=str(self.scalar(n)), span=self.sp(n), extent=self.ext(n))
                        for n in self.sequence(top["imports"][1], "imports")) if "imports" in top else ()
        blocks = ()
        if "blocks" in top:
            blocks = tuple(self.block(name, k, v)
                           for name, (k, v) in self.mapping(top["blocks"][1], "blocks").items())
        network = self.network(*top["network"]) if "network" in top else None
        train, spans = None, None
        if "train" in top:
            spans = {}
            train = self.plain(top["train"][1], (), spans)
            if not isinstance(train, dict):
                raise error("train must be a mapping", self.sp(top["train"][1]))
        return Spec(imports=imports, blocks=blocks, network=network, train=train, path=self.source.name,
                    train_spans=spans)

    def params(self, node: yaml.Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        out = []
        for name, (k, v) in self.mapping(node, "params").items():
            is_null = isinstance(v, yaml.ScalarNode) and v.tag.endswith(":null")
            out.append(Param(name=name, default=None if is_null else self.expr(v), span=self.sp(k)))
        return tuple(out)

    def block(self, name: str, key: yaml.Node, node: yaml.Node) -> BlockDef:
        m = self.mapping(node, f"block {name}", ("params", "layers"))
        return BlockDef(name=name, params=self.params(m.get("params", (None, None))[1]),
                        body=self.items(m["layers"][1]) if "layers" in m else (), span=self.sp(key),
                        extent=self.ext(node, key))

    def network(self, key: yaml.Node, node: yaml.Node) -> NetworkDef:
        m = self.mapping(node, "network", _NET)
        base = self.extends(m["extends"][1]) if "extends" in m else None
        if "input" not in m and base is None:
            raise error("the network has no input", self.sp(key), "add e.g. 'input: [3, 32, 32]'")
        in_node = m["input"][1] if "input" in m else None
        if in_node is None:
            dims: tuple = ()
        elif isinstance(in_node, yaml.ScalarNode) and isinstance(self.scalar(in_node), str):
            text = self.scalar(in_node)
            try:
                dims = tuple(E.Num(number_literal(d, self.sp(in_node)), self.sp(in_node)) for d in text.split("x"))
            except ValueError:
                raise error(f"input shape '{text}' is not of the form CxHxW", self.sp(in_node)) from None
        elif isinstance(in_node, yaml.ScalarNode):
            dims = (self.expr(in_node),)
        else:
            dims = tuple(self.expr(n) for n in self.sequence(in_node, "input"))
        name = self.name(m["name"][1], "network name") if "name" in m else "Network"

        def patterns(k: str) -> tuple[Pattern, ...]:
            if k not in m:
                return ()
            return tuple(Pattern(glob=str(self.scalar(n)), span=self.sp(n), extent=self.ext(n))
                         for n in self.sequence(m[k][1], k))

        outputs = ()
        if "outputs" in m:
            outputs = tuple(self.ref(n) for n in self.sequence(m["outputs"][1], "outputs"))
        return NetworkDef(name=str(name), params=self.params(m.get("params", (None, None))[1]), input=dims,
                          extends=base,
                          body=self.items(m["layers"][1]) if "layers" in m else (), outputs=outputs,
                          freeze=patterns("freeze"), unfreeze=patterns("unfreeze"), span=self.sp(key),
                          input_span=self.sp(m["input"][0]) if "input" in m else None, extent=self.ext(node, key),
                          init=read_yaml_init(self, m["init"][1], self.ext(m["init"][1], m["init"][0]))
                          if "init" in m else None)

    def items(self, node: yaml.Node) -> tuple:
        return tuple(self.item(n) for n in self.sequence(node, "layers"))

    def extends(self, node: yaml.Node) -> Layer:
        """``extends: ResNet18`` or ``extends: {ResNet18: {num_classes: 10}}`` (arguments as for a layer)."""
        if isinstance(node, yaml.ScalarNode) and isinstance(self.scalar(node), str):
            return Layer(op=self.name(node, "network name"), span=self.sp(node), extent=self.ext(node))
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            raise error("extends names one network: 'extends: ResNet18' or 'extends: {ResNet18: {num_classes: 10}}'",
                        self.sp(node))
        (k, v), = node.value
        args, kwargs = self.call_args(v)
        return Layer(op=self.name(k, "network name"), args=args, kwargs=kwargs, span=self.sp(k), extent=self.ext(node))

    def item(self, node: yaml.Node):
        if isinstance(node, yaml.ScalarNode):
            op = self.scalar(node)
            if not isinstance(op, str) or not op.isidentifier():
                raise error(f"expected a layer, got {op!r}", self.sp(node),
                            "a layer is an op name ('relu') or a mapping ('conv: {out: 64, k: 3}')")
            return Layer(op=op, span=self.sp(node), extent=self.ext(node))
        m = self.mapping(node, "a layer item")
        heads = [k for k in m if k not in _META and k != "shortcut" and k != "merge"]
        if len(heads) != 1:
            raise error("a layer item needs exactly one op key" + (f"; found {', '.join(heads)}" if heads else ""),
                        self.sp(node), "use one list item per layer, e.g. '- conv: {out: 64, k: 3}'")
        head = heads[0]
        key, value = m[head]
        meta: dict[str, Any] = {"span": self.sp(key), "extent": self.ext(node)}
        if "name" in m:
            meta["name"] = self.name(m["name"][1], "layer name", module=True)
        if "when" in m:
            meta["when"] = self.expr(m["when"][1])
        if "repeat" in m:
            index = self.name(m["as"][1], "repeat index name") if "as" in m else None
            meta["repeat"] = Repeat(count=self.expr(m["repeat"][1]), index=index, span=self.sp(m["repeat"][0]))
        elif "as" in m:
            raise error("'as' names the index of a repeat; add 'repeat: N'", self.sp(m["as"][0]))
        for extra in ("shortcut", "merge"):
            if extra in m and not (head, extra) in (("residual", "shortcut"), ("parallel", "merge")):
                raise error(f"'{extra}' does not belong to '{head}'", self.sp(m[extra][0]))
        if head == "group":
            return Group(body=self.items(value), **meta)
        if head == "residual":
            shortcut = self.shortcut(*m["shortcut"][::-1]) if "shortcut" in m else None
            return Residual(body=self.items(value), shortcut=shortcut, **meta)
        if head == "parallel":
            if "merge" not in m:
                raise error("parallel needs 'merge: concat' (or add, multiply)", self.sp(key))
            merge = self.scalar(m["merge"][1])
            if merge not in ("concat", "add", "multiply"):
                raise error(f"merge must be concat, add or multiply, got {merge!r}", self.sp(m["merge"][1]))
            branches = tuple(self.items(b) if not _is_null(b) else () for b in self.sequence(value, "parallel"))
            return Parallel(merge=merge, branches=branches, **meta)
        if head == "from":
            if len(m) > 1:
                raise error("'from' stands alone in its item", self.sp(key))
            return From(ref=self.ref(value), span=self.sp(key), extent=meta["extent"])
        if head == "backbone":
            return Backbone(**read_yaml_backbone(self, value, self.sp(key)), **meta)
        if head in ("concat", "add", "multiply"):
            refs = self.sequence(value, head) if isinstance(value, yaml.SequenceNode) else [value]
            return Merge(merge=head, refs=tuple(self.ref(r) for r in refs), **meta)
        args, kwargs = self.call_args(value)
        return Layer(op=head, args=args, kwargs=kwargs, **meta)

    def shortcut(self, node: yaml.Node, key: yaml.Node | None = None) -> Shortcut:
        m = self.mapping(node, "shortcut", ("name", "when", "layers"))
        return Shortcut(name=self.name(m["name"][1], "shortcut name", module=True) if "name" in m else None,
                        when=self.expr(m["when"][1]) if "when" in m else None,
                        body=self.items(m["layers"][1]) if "layers" in m else (), span=self.sp(node),
                        extent=self.ext(node, key))

    def call_args(self, node: yaml.Node) -> tuple[tuple, tuple]:
        """``null`` → no arguments; a value → one positional; a list → positional (a final mapping
        → keywords); a mapping → keywords."""
        if _is_null(node):
            return (), ()
        if isinstance(node, yaml.MappingNode):
            return (), self.kwargs(node)
        if isinstance(node, yaml.SequenceNode):
            values = list(node.value)
            kwargs: tuple = ()
            if values and isinstance(values[-1], yaml.MappingNode):
                kwargs = self.kwargs(values.pop())
            return tuple(self.expr(v) for v in values), kwargs
        return (self.expr(node),), ()

    def kwargs(self, node: yaml.Node) -> tuple:
        return tuple(Kwarg(name=k, value=self.expr(v), span=self.sp(kn))
                     for k, (kn, v) in self.mapping(node, "arguments").items())


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}.get(type(node), "single value")
