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

from .. import expr as E
from ..backbone.syntax import read_yaml_backbone, read_yaml_init
from ..errors import Source, Span, did_you_mean, error
from ..ir import (Backbone, BlockDef, From, Group, Import, Kwarg, Layer, Merge, NetworkDef, Parallel, Param,
                  Pattern, Ref, Repeat, Residual, Shortcut, Spec, Split)
from ..names import check_module_name, check_name, is_template
from .limits import check_text, number_literal
from .yaml_guard import STD_TAGS, LOADER, mark_span, prescan, scan_events, short_tag, yaml_error
from .parse import normal_template, parse_expr
from .trivia_yaml import extent, yaml_trivia

YAML_NEWLINES = "\r\n|[\n\r\x85\u2028\u2029]"  # the line breaks PyYAML counts (its marks' lines)
_SCALARS = yaml.SafeLoader("")  # used only to construct plain scalars (int, float, bool, null, str)


def parse_yaml(text: str, filename: str = "<string>") -> Spec:
    source = Source(filename, text, YAML_NEWLINES)
    check_text(text, source)
    prescan(source)
    scan_events(source)
    try:
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None
    if root is None:
        raise error("the YAML document is empty", source.span(1, 1))
    spec = _SpecBuilder(source).spec(root)
    return spec.model_copy(update={"trivia": yaml_trivia(text, filename, root)})


# ----------------------------------------------------------------------------- node → IR

_TOP = ("imports", "blocks", "network", "train")
_NET = ("name", "params", "extends", "input", "layers", "outputs", "freeze", "unfreeze", "init")
_META = ("name", "repeat", "as", "when")

# the construct a head key reads as (any other key: a layer, op or block call; `names`: a split)
_HEAD_KINDS = {"group": "group", "residual": "residual", "parallel": "parallel", "from": "from",
               "backbone": "backbone", "concat": "merge", "add": "merge", "multiply": "merge"}


class _SpecBuilder:
    def __init__(self, source: Source):
        self.source = source

    def sp(self, node: yaml.Node) -> Span:
        return mark_span(node.start_mark, self.source)

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
        if node.tag not in STD_TAGS:
            raise error(f"YAML tag {short_tag(node.tag)} is not allowed", self.sp(node),
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
        if module and isinstance(node, yaml.MappingNode) and node.flow_style:
            raise error(f"invalid {what}: expected a name, got a mapping", self.sp(node),
                        "YAML reads '{...}' as a mapping: quote a computed name, e.g. name: '{i}_conv'")
        value = self.scalar(node)
        if not isinstance(value, str):
            raise error(f"invalid {what}: expected a name, got {value!r}", self.sp(node),
                        "names are letters, digits and '_' (quote a name YAML would read as a number)")
        if not module:
            return check_name(value, self.sp(node), what)
        if is_template(value):
            shift = 1 if node.style in ("'", '"') else 0
            value = normal_template(value, self.source, (node.start_mark.line, node.start_mark.column + shift))
        return check_module_name(value, self.sp(node), what, template=what == "layer name")

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
        heads = [k for k in m if k not in _META and k not in ("shortcut", "merge", "names")]
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
        for extra in ("shortcut", "merge", "names"):
            if extra in m and (head, extra) not in (("residual", "shortcut"), ("parallel", "merge"),
                                                    ("chunk", "names"), ("split", "names")):
                raise error(f"'{extra}' does not belong to '{head}'", self.sp(m[extra][0]),
                            "'names' labels the parts of a chunk or split: {names: [x1, x2], chunk: 2}"
                            if extra == "names" else None)
        kind = "split" if "names" in m else _HEAD_KINDS.get(head, "layer")
        return getattr(self, f"yaml_{kind}")(m, head, value, meta)

    # One ``yaml_<kind>`` per construct (an IR item kind), found by name: ``m`` is the item's
    # mapping, ``head`` its construct key (``group``, ``conv``, ...) with ``value``; ``meta`` holds
    # the name, repeat and condition already read (and the spans).
    def yaml_group(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Group:
        return Group(body=self.items(value), **meta)

    def yaml_residual(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Residual:
        shortcut = self.shortcut(*m["shortcut"][::-1]) if "shortcut" in m else None
        return Residual(body=self.items(value), shortcut=shortcut, **meta)

    def yaml_parallel(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Parallel:
        key = m[head][0]
        if "merge" not in m:
            raise error("parallel needs 'merge: concat' (or add, multiply)", self.sp(key))
        merge = self.scalar(m["merge"][1])
        if merge not in ("concat", "add", "multiply"):
            raise error(f"merge must be concat, add or multiply, got {merge!r}", self.sp(m["merge"][1]))
        branches = tuple(self.items(b) if not _is_null(b) else () for b in self.sequence(value, "parallel"))
        return Parallel(merge=merge, branches=branches, **meta)

    def yaml_from(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> From:
        if len(m) > 1:
            raise error("'from' stands alone in its item", meta["span"])
        return From(ref=self.ref(value), span=meta["span"], extent=meta["extent"])

    def yaml_backbone(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Backbone:
        return Backbone(**read_yaml_backbone(self, value, meta["span"]), **meta)

    def yaml_merge(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Merge:
        refs = self.sequence(value, head) if isinstance(value, yaml.SequenceNode) else [value]
        return Merge(merge=head, refs=tuple(self.ref(r) for r in refs), **meta)

    def yaml_layer(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Layer:
        args, kwargs = self.call_args(value)
        return Layer(op=head, args=args, kwargs=kwargs, **meta)

    def yaml_split(self, m: dict, head: str, value: yaml.Node, meta: dict[str, Any]) -> Split:
        """``{names: [x1, x2], chunk: 2}``: the parts of a chunk or split, named."""
        if "name" in m:
            raise error("the parts of a split are named with 'names', not the split with 'name'", self.sp(m["name"][0]))
        names = tuple(self.name(n, "part name", module=True) for n in self.sequence(m["names"][1], "names"))
        args = self.sequence(value, head) if isinstance(value, yaml.SequenceNode) else [value]
        return Split(names=names, how=head, args=tuple(self.expr(a) for a in args), **meta)

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


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}.get(type(node), "single value")
