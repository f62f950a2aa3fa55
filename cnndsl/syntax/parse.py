""".cnn text → Spec IR: parse with the LALR grammar, then a bottom-up transformer builds the IR."""

from __future__ import annotations

import re
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedInput

from .. import expr as E
from ..backbone.syntax import backbone_item, init_item
from ..errors import Source, Span, error
from ..ir import (Backbone, BlockDef, From, Group, Import, Kwarg, Layer, Merge, NetworkDef, Parallel, Param,
                  Pattern, Ref, Repeat, Residual, Shortcut, Spec, Split, SPLITS)
from ..names import check_module_name, is_template, template_pieces
from .diagnose import check_brackets, check_depth, syntax_error
from .grammar import COMMENTS, parser
from .limits import check_text, check_tokens, number_literal
from .parse_exprs import ExprRules, unquote
from .trivia import cnn_trivia


def parse_cnn(text: str, filename: str = "<string>") -> Spec:
    """Parse ``.cnn`` source into a Spec (imports are not resolved here; see :mod:`cnndsl.load`)."""
    source = Source(filename, text)
    check_text(text, source)
    check_brackets(text, source)
    check_tokens(text, source)
    comments: list = []
    token = COMMENTS.set(comments)
    try:
        tree = parser().parse(text, start="start")
    except UnexpectedInput as exc:
        raise syntax_error(exc, source) from None
    finally:
        COMMENTS.reset(token)
    check_depth(tree, source)
    spec = _ToSpec(source).transform(tree)
    return spec.model_copy(update={"trivia": cnn_trivia(text, filename, comments, tree)})


def parse_expr(text: str, filename: str, offset: tuple[int, int] = (0, 0), source: Source | None = None
               ) -> "E.Expr":
    """Parse one expression: a YAML value (``source`` is the YAML file; spans are shifted by
    ``offset``, lines and columns) or a ``--set`` value (its own source, named ``filename``)."""
    if source is None:
        source, offset = Source(filename, text), (0, 0)
    check_brackets(text, source, offset)
    check_tokens(text, source, offset, "expression")
    try:
        tree = parser().parse(text, start="expr")
    except UnexpectedInput as exc:
        d = syntax_error(exc, Source("<expr>", text), expression=True).diagnostics[0]
        span = source.span(d.span.line, d.span.col, offset=offset) if d.span else None
        raise error(f"in the expression {text!r}: {d.message}", span, d.hint) from None
    check_depth(tree, source, offset)
    return _ToSpec(source, offset).transform(tree)


# ----------------------------------------------------------------------------- tree → IR


class _ToSpec(ExprRules):
    """Bottom-up: each method, named after its rule, gets the meta (positions) and the transformed
    children. The walk is iterative (deep trees cannot overflow the stack) and calls the methods
    directly: lark's Transformer with ``v_args`` costs several times more per node, which is most of
    the parse time of a long spec."""

    def __init__(self, source: Source, offset: tuple[int, int] = (0, 0)):
        self.source = source
        self.offset = offset

    def transform(self, root: Tree) -> Any:
        done: list[Any] = []                       # results, children before their parent
        todo: list[tuple[Any, bool]] = [(root, False)]
        while todo:
            node, ready = todo.pop()
            if not isinstance(node, Tree):        # a token, or None for an absent [optional]
                done.append(node)
            elif ready:
                n = len(node.children)
                children = done[len(done) - n:] if n else []
                del done[len(done) - n:]
                method = getattr(self, node.data, None)  # a rule without a method stays a Tree, as in lark
                done.append(Tree(node.data, children, node.meta) if method is None else method(node.meta, children))
            else:
                todo.append((node, True))
                todo.extend((child, False) for child in reversed(node.children))
        return done[0]

    def sp(self, meta: Any) -> Span | None:
        if getattr(meta, "empty", True):
            return None
        return self.source.span(meta.line, meta.column, meta.end_line, meta.end_column, self.offset)

    def tsp(self, tok: Token) -> Span:
        return self.source.span(tok.line, tok.column, tok.end_line, tok.end_column, self.offset)

    # ---- top level
    def start(self, meta, children):
        imports, blocks, network, train, train_spans = [], {}, None, None, None
        for kind, value in children:
            if kind == "import":
                imports.append(value)
            elif kind == "block":
                other = blocks.get(value.name)
                if other is not None:
                    raise error(f"block '{value.name}' is defined twice", value.span,
                                notes=[(other.span, "first defined here")])
                blocks[value.name] = value
            elif kind == "network":
                if network is not None:
                    raise error("only one network per file", value.span,
                                "put each network in its own file; share blocks with 'import'",
                                notes=[(network.span, "the first network")])
                network = value
            else:
                if train is not None:
                    raise error("only one train section per file", value[1].get(()))
                train, train_spans = value
        return Spec(imports=tuple(imports), blocks=tuple(blocks.values()), network=network, train=train,
                    path=self.source.name, train_spans=train_spans)

    def import_stmt(self, meta, children):
        return "import", Import(path=unquote(children[0]), span=self.sp(meta))

    def params(self, meta, children):
        params = [c for c in children if c is not None]
        seen: dict[str, Param] = {}
        for p in params:
            if p.name in seen:
                raise error(f"parameter '{p.name}' is declared twice", p.span)
            seen[p.name] = p
        return tuple(params)

    def param(self, meta, children):
        name, default = children
        return Param(name=str(name), default=default, span=self.tsp(name))

    def block_def(self, meta, children):
        name, params, body = _split_def(children)
        for stmt in body:
            if isinstance(stmt, tuple):
                raise error(f"'{stmt[0]}' is only allowed in a network, not in block '{name}'", stmt[2])
        return "block", BlockDef(name=str(name), params=params or (), body=tuple(body),
                                 span=self.tsp(name), extent=self.sp(meta))

    def extends(self, meta, children):
        name, arglist = children
        args, kwargs = arglist if arglist is not None else ((), ())
        return Layer(op=str(name), args=args, kwargs=kwargs, span=self.tsp(name), extent=self.sp(meta))

    def network_def(self, meta, children):
        base = next((c for c in children if isinstance(c, Layer)), None)
        name, params, body = _split_def([c for c in children if not isinstance(c, Layer)])
        inputs, outputs, freeze, unfreeze, items = [], [], [], [], []
        input_span, init = None, None
        for stmt in body:
            if not isinstance(stmt, tuple):
                items.append(stmt)
                continue
            kind, value, span = stmt
            if kind == "input":
                if input_span is not None:
                    raise error("the network input is declared twice", span,
                                notes=[(input_span, "first declared here")])
                if items:
                    raise error("'input' must come before the first layer", span)
                inputs, input_span = value, span
            elif kind == "output":
                outputs.extend(value)
            elif kind == "freeze":
                freeze.extend(value)
            elif kind == "init":
                if init is not None:
                    raise error("the network's initial weights are given twice", span,
                                notes=[(init.span, "first given here")])
                init = value
            else:
                unfreeze.extend(value)
        net_span = self.tsp(name)
        if len(inputs) == 1 and items and isinstance(items[0], Layer) and not items[0].args \
                and not items[0].kwargs and re.fullmatch(r"x\d+(?:x\d+)*", items[0].op):
            raise error(f"'{items[0].op}' after 'input' reads as a layer", items[0].span,
                        "write the input shape without spaces, e.g. input 3x32x32")
        if input_span is None and base is None:
            raise error(f"network '{name}' has no input", net_span,
                        "declare the input shape first, e.g. 'input 3x32x32' (channels × height × width)")
        return "network", NetworkDef(name=str(name), params=params or (), extends=base, input=tuple(inputs),
                                     body=tuple(items), outputs=tuple(outputs), freeze=tuple(freeze),
                                     unfreeze=tuple(unfreeze), init=init, span=net_span, input_span=input_span,
                                     extent=self.sp(meta))

    def train_def(self, meta, children):
        (mapping,) = children
        env = E.Env({}, None, allow_calls=True)
        value = _plain_data(E.evaluate(mapping, env))
        spans: dict[tuple, Span | None] = {(): mapping.span}
        _collect_spans(mapping, (), spans)
        return "train", (value, spans)

    def body(self, meta, children):
        return list(children)

    # ---- network statements: (kind, value, span) tuples, sorted out by network_def
    def input_shape(self, meta, children):
        tok = children[1]
        span = self.tsp(tok)
        dims = tuple(E.Num(number_literal(d, span), span) for d in str(tok).split("x"))
        return "input", dims, self.sp(meta)

    def input_exprs(self, meta, children):
        return "input", tuple(c for c in children[1:] if c is not None), self.sp(meta)

    def output_stmt(self, meta, children):
        return "output", list(children), self.sp(meta)

    def freeze_stmt(self, meta, children):
        return "freeze", [Pattern(glob=unquote(t), span=self.tsp(t)) for t in children], self.sp(meta)

    def unfreeze_stmt(self, meta, children):
        return "unfreeze", [Pattern(glob=unquote(t), span=self.tsp(t)) for t in children], self.sp(meta)

    def init_stmt(self, meta, children):
        _, source, arglist = children
        return "init", init_item(unquote(source), arglist, self.sp(meta)), self.sp(meta)

    def from_stmt(self, meta, children):
        return From(ref=children[0], span=self.sp(meta))

    def ref(self, meta, children):
        return Ref(path=tuple(unquote(c) for c in children), span=self.sp(meta))

    # ---- items
    def item(self, meta, children):
        label, (cls, fields, span), repeat, when = children
        if label is not None and len(label) > 1:
            return self.split_item(label, cls, fields, span, repeat, when, meta)
        if label is not None:
            fields["name"] = self.label_name(label[0])
        return cls(**fields, repeat=repeat, when=when, span=span, extent=self.sp(meta))

    def split_item(self, label, cls, fields, span, repeat, when, meta) -> Split:
        """``x1, x2: chunk(2)``: several names label the parts of a chunk or split."""
        if cls is not Layer or fields["op"] not in SPLITS:
            raise error("several names label the parts of a chunk or split", self.tsp(label[1]),
                        "e.g. x1, x2: chunk(2) or a, b: split(16, 48); other items take one name")
        if fields["kwargs"]:
            raise error(f"{fields['op']} takes no keyword arguments", fields["kwargs"][0].span,
                        "e.g. x1, x2: chunk(2) or a, b: split(16, 48)")
        names = tuple(self.label_name(t, "part name", template=False) for t in label)
        return Split(names=names, how=fields["op"], args=fields["args"], repeat=repeat, when=when, span=span,
                     extent=self.sp(meta))

    def label(self, meta, children):
        return children

    def label_name(self, tok: Token, what: str = "layer name", template: bool = True) -> str:
        """A label's name: plain, quoted (``"block1-0"``) or a template (``denselayer{i + 1}``,
        its expressions checked now and written in their normal form)."""
        text = unquote(tok)
        quote = 1 if tok.type == "STRING" else 0
        if template and is_template(text):
            text = normal_template(text, self.source, (tok.line - 1, tok.column - 1 + quote), self.offset)
        return check_module_name(text, self.tsp(tok), what, template=template)

    def sc_name(self, meta, children):
        return children[0]

    def repeat(self, meta, children):
        _, count, index = children
        if isinstance(count, Token):
            count = E.Num(number_literal(str(count), self.tsp(count)), self.tsp(count))
        return Repeat(count=count, index=None if index is None else str(index), span=self.sp(meta))

    def when(self, meta, children):
        return children[0]

    def call(self, meta, children):
        name, arglist = children
        args, kwargs = arglist if arglist is not None else ((), ())
        return Layer, {"op": str(name), "args": args, "kwargs": kwargs}, self.tsp(name)

    def arglist(self, meta, children):
        args, kwargs, seen = [], [], {}
        for c in children:
            if c is None:
                continue
            if isinstance(c, Kwarg):
                if c.name in seen:
                    raise error(f"argument '{c.name}' is given twice", c.span,
                                notes=[(seen[c.name].span, "first given here")])
                seen[c.name] = c
                kwargs.append(c)
            else:
                if kwargs:
                    raise error("positional argument after a keyword argument", c.span,
                                "put positional arguments first, e.g. conv(64, k=3)")
                args.append(c)
        return tuple(args), tuple(kwargs)

    def posarg(self, meta, children):
        return children[0]

    def kwarg(self, meta, children):
        name, value = children
        return Kwarg(name=str(name), value=value, span=self.tsp(name))

    def group(self, meta, children):
        return Group, {"body": tuple(children)}, self.sp(meta)

    def residual(self, meta, children):
        (_, group_fields, _), shortcut = children
        return Residual, {"body": group_fields["body"], "shortcut": shortcut}, self.sp(meta)

    def shortcut(self, meta, children):
        name, when, (_, group_fields, _) = children
        if name is not None:
            name = check_module_name(unquote(name), self.tsp(name), "shortcut name")
        return Shortcut(name=name, when=when, body=group_fields["body"], span=self.sp(meta), extent=self.sp(meta))

    def parallel(self, meta, children):
        kind, *branches = children
        return Parallel, {"merge": str(kind), "branches": tuple(branches)}, self.sp(meta)

    def branch(self, meta, children):
        return tuple(children)

    def merge(self, meta, children):
        kind, *refs = children
        return Merge, {"merge": str(kind), "refs": tuple(r for r in refs if r is not None)}, self.sp(meta)

    def backbone(self, meta, children):
        keyword, model, arglist = children
        if isinstance(model, Token):
            model = (unquote(model), self.tsp(model))
        return Backbone, backbone_item(*model, arglist, self.tsp(keyword)), self.tsp(keyword)

    def bb_name(self, meta, children):
        return ".".join(str(c) for c in children), self.sp(meta)


def normal_template(text: str, source: Source, at: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> str:
    """A name template with each ``{expr}`` parsed (errors point into it) and written normally
    (``{i+1}`` → ``{i + 1}``); ``at``: where ``text`` starts (0-based line and column in the source)."""
    out, col = [], at[1]
    for piece, is_expr in template_pieces(text):
        if is_expr:
            e = parse_expr(piece, source.name, (at[0] + offset[0], col + 1 + (offset[1] if at[0] == 0 else 0)),
                           source)
            out.append("{" + E.format_expr(e) + "}")
            col += len(piece) + 2
        else:
            out.append(piece)
            col += len(piece)
    return "".join(out)


def _split_def(children: list) -> tuple[Any, Any, Any]:
    """``NAME params? body``: lark leaves out (no placeholder for ``?``) a missing parameter list."""
    if len(children) == 2:
        return children[0], None, children[1]
    return children[0], children[1], children[2]


def _plain_data(v: Any) -> Any:
    """Symbols → plain str, recursively (train sections are stored as plain data)."""
    if isinstance(v, dict):
        return {k: _plain_data(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain_data(x) for x in v]
    if isinstance(v, E.Symbol):
        return str(v)
    return v


def _collect_spans(e: Any, path: tuple, out: dict) -> None:
    """Record the span of every value in a train-section mapping, by key path."""
    if isinstance(e, E.MapExpr):
        for i, (k, v) in enumerate(e.items):
            out[path + (k,)] = v.span or (e.key_spans[i] if i < len(e.key_spans) else None)
            _collect_spans(v, path + (k,), out)
    elif isinstance(e, E.ListExpr):
        for i, v in enumerate(e.items):
            out[path + (i,)] = v.span
            _collect_spans(v, path + (i,), out)
    elif isinstance(e, E.Call):
        for i, v in enumerate(e.args):
            out[path + ("args", i)] = v.span
            _collect_spans(v, path + ("args", i), out)
        for k, v in e.kwargs:
            out[path + (k,)] = v.span
            _collect_spans(v, path + (k,), out)
