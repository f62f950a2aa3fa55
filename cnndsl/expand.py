"""Expansion: a Spec plus parameter values → a flat Graph of named nodes with shapes.

Parameters are bound, expressions evaluated, block calls instantiated, repeats unrolled and names
resolved. Shapes are inferred node by node as the graph grows (``in.channels`` and ``when``
conditions need them), so every shape error is found here, before any torch object exists.
Limits (layer count, parameter budget, repeat counts, block recursion) are checked by arithmetic
before the work they bound is done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from . import expr as E
from .bind import bind_block, bind_op
from .errors import CnnError, Span, did_you_mean, error, warning
from .estimate import SizeEstimate
from .extend import bind_chain, call_network, expand_chain, input_of, statements
from .graph import Container, Graph, Node
from .names import check_module_name, is_template, template_pieces
from .ir import (Backbone, BlockDef, From, Group, Item, Layer, Merge, Parallel, Ref, Residual, Spec, Split,
                 iter_items)
from .ops import REGISTRY, ShapeError
from .ops.split import Narrow, split_sizes


@dataclass(frozen=True)
class Limits:
    """Bounds on what a spec may expand to; all checked before the bounded work happens."""

    max_layers: int = 10_000            # nodes after expansion
    max_params: int = 1_000_000_000     # parameter budget (--max-params)
    max_repeat: int = 1_000             # a single repeat count
    max_block_depth: int = 64           # nested block calls


@dataclass
class _Binding:
    node: int
    ns: "_Namespace | None" = None


@dataclass
class _Namespace:
    """Names visible to references (``concat(enc1)``); lexical, closed at block boundaries."""

    names: dict[str, _Binding] = field(default_factory=dict)
    parent: "_Namespace | None" = None

    def lookup(self, name: str) -> _Binding | None:
        ns: _Namespace | None = self
        while ns is not None:
            if name in ns.names:
                return ns.names[name]
            ns = ns.parent
        return None

    def visible(self) -> list[str]:
        out, ns = [], self
        while ns is not None:
            out += [n for n in ns.names if not n[0].isdigit()]
            ns = ns.parent
        return out


@dataclass
class _Scope:
    """A module scope: children get their name or their position (like nn.Sequential)."""

    path: str
    counter: int = 0
    children: dict[str, Span | None] = field(default_factory=dict)

    def child(self, name: str | None, span: Span | None, counted: bool = True) -> str:
        """The key of a new child; ``counted``: it takes a position (unnamed siblings are numbered
        like nn.Sequential's; the parts of a split, which are not modules, take none)."""
        key = name if name is not None else str(self.counter)
        self.counter += counted
        if key in self.children:
            where = f" in '{self.path}'" if self.path else ""
            raise error(f"name '{key}' is used twice{where}", span,
                        "names must be unique within a scope; name the repeat (stage: ... x N) to give "
                        "each repetition its own scope",
                        notes=[(self.children[key], "first used here")])
        self.children[key] = span
        return key

    def qualify(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


@dataclass
class _Ctx:
    scope: _Scope
    ns: _Namespace
    names: dict[str, Any]          # parameter and index values visible to expressions
    blocks: tuple[str, ...] = ()   # block call stack


class Expander(SizeEstimate):
    def __init__(self, spec: Spec, limits: Limits):
        self.spec = spec
        self.limits = limits
        self.blocks: dict[str, BlockDef] = {b.name: b for b in spec.blocks}
        self.nodes: list[Node] = []
        self.containers: dict[str, Container] = {}
        self.param_total = 0
        self.implicit: dict[str, int] = {}
        self.estimates: dict[tuple[str, bool], int] = {}
        self.backbones: dict[str, Any] = {}   # filled by cnndsl.backbone.expand

    # ------------------------------------------------------------------ entry
    def run(self, params: dict[str, Any]) -> Graph:
        net = self.spec.network
        if net is None:
            raise error("the spec defines no network", Span(self.spec.path or "<string>", 1, 1),
                        "add 'network Name { input 3x32x32 ... }' (block-only files are imported by others)")
        for b in self.spec.blocks:
            if b.name in REGISTRY:
                raise error(f"block '{b.name}' has the name of a built-in op", b.span, "rename the block")
        check_block_cycles(self.spec)
        chain = bind_chain(self.spec, net, params)   # [(net, its parameters)], the networks it extends first
        bound = chain[-1][1]
        dims, input_span = input_of(chain)   # checked: C×H×W or a vector, whole numbers ≥ 1
        self.check_size(net.body, bound)
        self.nodes.append(Node(0, "input", None, (), tuple(dims), input_span))
        root = _Ctx(_Scope(""), _Namespace(), dict(bound))
        root.ns.names["input"] = _Binding(0)
        _, outputs = expand_chain(self, chain, 0, root)
        freeze, unfreeze, init = statements(chain)
        graph = Graph(net.name, self.nodes, outputs, self.containers, bound,
                      [(p.glob, p.span) for p in freeze], [(p.glob, p.span) for p in unfreeze])
        graph.backbones = self.backbones
        if init is not None:
            from .weights.init import resolve_init  # checks the spec's `init` weights exist (no torch)

            graph.init = resolve_init(init)
        graph.warnings += unused_outputs(graph)
        return graph

    # ------------------------------------------------------------------ items
    def seq(self, items: tuple[Item, ...], cur: int, ctx: _Ctx) -> int:
        for item in items:
            cur = self.item(item, cur, ctx)
        return cur

    def item(self, item: Item, cur: int, ctx: _Ctx) -> int:
        if item.kind == "from":  # a statement: no name, repeat or condition
            return self.expand_from(item, None, cur, ctx)
        env = E.Env(ctx.names, self.nodes[cur].shape)
        if item.when is not None and not _truthy(E.evaluate(item.when, env), item.when):
            return cur
        computed = item.name is not None and is_template(item.name)
        if item.repeat is None:
            return self.core(item, self.computed_name(item, env) if computed else item.name, cur, ctx)
        rep = item.repeat
        count = E.evaluate(rep.count, env)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= self.limits.max_repeat:
            raise error(f"repeat count must be a whole number from 1 to {self.limits.max_repeat}, "
                        f"got {E.describe(count)}", rep.count.span or rep.span,
                        "to leave an item out, use 'when COND' instead of a repeat count of 0"
                        if count == 0 else "x3 repeats an item three times; x(n) takes an expression")
        estimate = self.estimate(item, ctx.names)  # includes this repeat count
        before = len(self.nodes) - 1  # layers expanded so far (not the input)
        if len(self.nodes) + estimate > self.limits.max_layers:
            total = f"about {estimate:,} layers" if before == 0 else \
                f"about {estimate:,} more layers, {before + estimate:,} in all"
            raise error(f"this repeat expands to {total}, above the limit of {self.limits.max_layers:,}",
                        rep.span or item.span, "reduce the repeat counts (nested repeats multiply)")
        body = item.model_copy(update={"name": None, "repeat": None, "when": None})
        inner = ctx
        if item.name is not None and not computed:
            inner = self.enter(item.name, "repeat", "repeat", item.span, cur, ctx)
        for i in range(count):
            names = ctx.names if rep.index is None else {**ctx.names, rep.index: i}
            # a computed name names each repetition, in the enclosing scope (denselayer1, denselayer2, ...)
            name = self.computed_name(item, E.Env(names, self.nodes[cur].shape)) if computed else None
            cur = self.core(body, name, cur, _Ctx(inner.scope, inner.ns, names, ctx.blocks))
        if item.name is not None and not computed:
            self.finish(inner, cur, ctx)
        return cur

    def computed_name(self, item: Item, env: E.Env) -> str:
        """The name a template (``denselayer{i + 1}``) gives in ``env``; it meets the name rule."""
        from .syntax.parse import parse_expr

        text = ""
        for piece, is_expr in template_pieces(item.name):
            if not is_expr:
                text += piece
                continue
            value = E.evaluate(parse_expr(piece, "<name>"), env)
            if isinstance(value, E.Symbol):
                raise error(f"unknown name '{value}' in the computed name '{item.name}'", item.span,
                            did_you_mean(str(value), list(env.names)) or "use a parameter or a repeat index (x N as i)")
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise error(f"a computed name's parts must be whole numbers or text, '{{{piece}}}' gives "
                            f"{E.describe(value)}", item.span)
            text += str(value)
        return check_module_name(text, item.span, f"layer name (computed from '{item.name}')")

    def enter(self, name: str | None, kind: str, label: str, span: Span | None, cur: int, ctx: _Ctx,
              closed: bool = False) -> _Ctx:
        """Open a named child scope (a submodule) and bind its name for references."""
        key = ctx.scope.child(name, span)
        path = ctx.scope.qualify(key)
        self.containers[path] = Container(path, kind, label, span)
        ns = _Namespace(parent=None if closed else ctx.ns)
        ctx.ns.names[key] = _Binding(cur, ns)
        return _Ctx(_Scope(path), ns, ctx.names, ctx.blocks)

    def finish(self, inner: _Ctx, out: int, ctx: _Ctx) -> None:
        """Record what a named scope produces (for references and for the container's forward)."""
        key = inner.scope.path.rsplit(".", 1)[-1]
        ctx.ns.names[key].node = out
        self.containers[inner.scope.path].output = out

    # One ``expand_<kind>`` per construct (an IR item kind), found by name: the item once (a repeat
    # calls it per repetition), under ``name`` (None: positional) from node ``cur``; returns the
    # node the flow continues from. ``estimate_<kind>`` below counts its nodes without expanding.
    def core(self, item: Item, name: str | None, cur: int, ctx: _Ctx) -> int:
        return getattr(self, f"expand_{item.kind}")(item, name, cur, ctx)

    def expand_from(self, item: From, name: str | None, cur: int, ctx: _Ctx) -> int:
        return self.resolve(item.ref, ctx.ns).node

    def expand_backbone(self, item: Backbone, name: str | None, cur: int, ctx: _Ctx) -> int:
        from .backbone.expand import expand_backbone

        return expand_backbone(self, item, name, cur, ctx)

    def expand_group(self, item: Group, name: str | None, cur: int, ctx: _Ctx) -> int:
        return self.scoped(item, name, cur, ctx, lambda inner: self.seq(item.body, cur, inner))

    def expand_parallel(self, item: Parallel | Residual, name: str | None, cur: int, ctx: _Ctx) -> int:
        return self.scoped(item, name, cur, ctx, lambda inner: self.parallel(item, cur, inner))

    expand_residual = expand_parallel  # a residual is a parallel of its body and its shortcut (self.parallel)

    def scoped(self, item: Item, name: str | None, cur: int, ctx: _Ctx, body: Callable[[_Ctx], int]) -> int:
        """``body`` in the scope ``name`` opens (a submodule), or in ``ctx``'s when unnamed."""
        inner = ctx if name is None else self.enter(name, item.kind, item.kind, item.span, cur, ctx)
        out = body(inner)
        if name is not None:
            self.finish(inner, out, ctx)
        return out

    def expand_layer(self, item: Layer, name: str | None, cur: int, ctx: _Ctx) -> int:
        env = E.Env(ctx.names, self.nodes[cur].shape)
        block = self.blocks.get(item.op)
        if block is not None:
            return self.call_block(block, item, name, cur, ctx, env)
        network = self.spec.imported_network(item.op)
        if network is not None:
            return call_network(self, network, item, name, cur, ctx, env)
        cls = REGISTRY.get(item.op)
        if cls is None:
            from .plugins import NOT_ENABLED_HINT
            from .syntax.import_hint import import_hint

            choices = list(REGISTRY) + list(self.blocks) + [n.name for n in self.spec.networks]
            hint = (import_hint(item.op, self.spec.path) or did_you_mean(item.op, choices)
                    or NOT_ENABLED_HINT)
            if item.op == "x":
                hint = "to repeat the previous item, put the count right after 'x': x3, or x(n) for an expression"
            raise error(f"unknown op or block '{item.op}'", item.span, hint)
        op = bind_op(cls, item, env)
        key = ctx.scope.child(name, item.span)
        node = self.add_node(ctx.scope.qualify(key), op, (cur,), item.span)
        ctx.ns.names[key] = _Binding(node)
        return node

    def call_block(self, block: BlockDef, item: Layer, name: str | None, cur: int, ctx: _Ctx,
                   env: E.Env) -> int:
        if len(ctx.blocks) >= self.limits.max_block_depth:
            raise error(f"blocks nested deeper than {self.limits.max_block_depth} levels", item.span)
        bound = bind_block(block, item, env)
        inner = self.enter(name, "block", block.name, item.span, cur, ctx, closed=True)
        self.containers[inner.scope.path].args, self.containers[inner.scope.path].block = dict(bound), block
        inner.names = bound
        inner.blocks = ctx.blocks + (block.name,)
        inner.ns.names["input"] = _Binding(cur)
        out = self.seq(block.body, cur, inner)
        self.finish(inner, out, ctx)
        return out

    def expand_merge(self, item: Merge, name: str | None, cur: int, ctx: _Ctx) -> int:
        inputs = (cur, *(self.resolve(r, ctx.ns).node for r in item.refs))
        key = ctx.scope.child(name, item.span)
        node = self.add_node(ctx.scope.qualify(key), REGISTRY[item.merge](), inputs, item.span)
        ctx.ns.names[key] = _Binding(node)
        return node

    def expand_split(self, item: Split, name: str | None, cur: int, ctx: _Ctx) -> int:
        """``x1, x2: chunk(2)``: a ``narrow`` node per named part; the flow goes on from the last."""
        env = E.Env(ctx.names, self.nodes[cur].shape)
        args = [E.evaluate(a, env) for a in item.args]
        try:
            sizes = split_sizes(item.how, args, self.nodes[cur].shape[0], len(item.names))
        except ShapeError as exc:
            raise self.shape_error(exc, ", ".join(item.names), _Named(item.how), (cur,), item.span) from None
        start = node = 0
        for name, size in zip(item.names, sizes):
            key = ctx.scope.child(name, item.span, counted=False)
            node = self.add_node(ctx.scope.qualify(key), Narrow(start=start, length=size), (cur,), item.span,
                                 registered=False)
            ctx.ns.names[key] = _Binding(node)
            start += size
        return node

    def parallel(self, item: Parallel | Residual, cur: int, ctx: _Ctx) -> int:
        if isinstance(item, Residual):
            kind, outs = "add", [self.seq(item.body, cur, ctx)]
            sc = item.shortcut
            env = E.Env(ctx.names, self.nodes[cur].shape)
            if sc is None or (sc.when is not None and not _truthy(E.evaluate(sc.when, env), sc.when)):
                outs.append(cur)
            else:
                inner = ctx if sc.name is None else self.enter(sc.name, "shortcut", "shortcut", sc.span, cur, ctx)
                outs.append(self.seq(sc.body, cur, inner))
                if sc.name is not None:
                    self.finish(inner, outs[-1], ctx)
        else:
            kind = item.merge
            outs = [self.seq(branch, cur, ctx) if branch else cur for branch in item.branches]
        if len(outs) < 2:
            raise error(f"{kind} needs at least two branches", item.span, "separate branches with '|'")
        if isinstance(item, Residual) and self.nodes[outs[0]].shape != self.nodes[outs[1]].shape:
            main, short = self.nodes[outs[0]], self.nodes[outs[1]]
            what = "the identity shortcut passes" if outs[1] == cur else "the shortcut gives"
            raise error(f"residual: the main path gives {E.format_shape(main.shape)} but {what} "
                        f"{E.format_shape(short.shape)}", item.span,
                        "add a projection: shortcut NAME when stride != 1 or in.channels != C "
                        "{ conv(C, k=1, s=stride) batchnorm }",
                        notes=[(main.span, f"the main path ends at '{main.path}'"),
                               (short.span, f"the shortcut ends at '{short.path}'")])
        return self.add_node(self.implicit_path(ctx.scope, kind), REGISTRY[kind](), tuple(outs), item.span,
                             registered=False)

    def implicit_path(self, scope: _Scope, kind: str) -> str:
        base = scope.qualify(kind)
        n = self.implicit.get(base, 0)
        self.implicit[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    # ------------------------------------------------------------------ nodes
    def add_node(self, path: str, op, inputs: tuple[int, ...], span: Span | None,
                 registered: bool = True) -> int:
        if len(self.nodes) >= self.limits.max_layers:
            raise error(f"the network expands to more than {self.limits.max_layers:,} layers", span,
                        "reduce repeat counts or raise the limit (--max-layers)")
        ins = [self.nodes[i].shape for i in inputs]
        try:
            shape = op.infer(ins)
        except ShapeError as exc:
            raise self.shape_error(exc, path, op, inputs, span) from None
        if any(d > E.MAX_INT for d in shape):
            raise error(f"{op.name} '{path}' would output {'×'.join(map(E.magnitude, shape))}: a dimension "
                        f"above {E.MAX_INT:.0e}", span, "check the sizes and scale factors before this layer")
        params = sum(math.prod(s) for s in op.param_shapes(ins, shape).values())
        self.param_total += params
        if self.param_total > self.limits.max_params:
            raise error(f"the network exceeds the parameter budget: {self.param_total:.3g} parameters after "
                        f"'{path}' ({params:.3g} in this layer); the budget is {self.limits.max_params:.3g}",
                        span, "check the layer sizes (a linear after a large flatten?), or raise the budget "
                              "with --max-params")
        node = Node(len(self.nodes), path, op, inputs, shape, span, registered)
        self.nodes.append(node)
        return node.id

    def shape_error(self, exc: ShapeError, path: str, op, inputs: tuple[int, ...], span) -> CnnError:
        feeding = [self.nodes[i] for i in inputs]
        notes = [(n.span, f"'{n.path}' ({n.kind}) produces {E.format_shape(n.shape)}") for n in feeding]
        return error(f"{op.name} '{path}': {exc.message}", span, exc.hint, notes)

    def resolve(self, ref: Ref, ns: _Namespace) -> _Binding:
        head, *rest = ref.path
        b = ns.lookup(head)
        if b is None:
            hint = did_you_mean(head, ns.visible()) or "only names defined earlier in this scope can be used"
            raise error(f"unknown name '{head}'", ref.span, hint)
        walked = head
        for part in rest:
            if b.ns is None or part not in b.ns.names:
                inside = [] if b.ns is None else [n for n in b.ns.names]
                raise error(f"'{walked}' has no member '{part}'", ref.span,
                            did_you_mean(part, inside) or ("members: " + ", ".join(inside) if inside
                                                           else f"'{walked}' is a single layer"))
            b, walked = b.ns.names[part], f"{walked}.{part}"
        return b


@dataclass(frozen=True)
class _Named:
    """What a shape error names when no op object exists (a split)."""

    name: str


def _truthy(value: Any, e: E.Expr) -> bool:
    if isinstance(value, E.Symbol):
        raise error(f"unknown name '{value}' in condition", value.span or e.span)
    return bool(value)


def check_block_cycles(spec: Spec) -> None:
    """Refuse recursive block definitions, showing the cycle (iterative DFS, no recursion)."""
    blocks = {b.name: b for b in spec.blocks}
    calls = {b.name: [(it.op, it.span) for it in iter_items(b.body) if it.kind == "layer" and it.op in blocks]
             for b in spec.blocks}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in blocks:
        if state.get(root):
            continue
        path: list[tuple[str, Span | None]] = [(root, blocks[root].span)]
        iters = [iter(calls[root])]
        state[root] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path[-1][0]] = 2
                path.pop()
                iters.pop()
                continue
            name, span = nxt
            if state.get(name) == 1:
                start = [p[0] for p in path].index(name)
                cycle = [p[0] for p in path[start:]] + [name]
                chain = [(s, f"'{n}' calls '{m}'") for (n, _), (m, s) in
                         zip(path[start:], path[start + 1:] + [(name, span)])]
                raise error("recursive block definition: " + " → ".join(cycle), blocks[name].span,
                            "a block cannot contain itself; use a repeat (x N) instead", notes=chain)
            if not state.get(name):
                state[name] = 1
                path.append((name, span))
                iters.append(iter(calls[name]))


def unused_outputs(graph: Graph) -> list:
    """Warn about layers whose output nothing uses (usually a misplaced 'from')."""
    users = graph.consumers()
    outs = set(graph.outputs)
    dead = [n for n in graph.nodes[1:] if not users[n.id] and n.id not in outs]
    return [warning(f"the output of '{n.path}' is never used", n.span,
                    "add it to 'output', or remove it") for n in dead[:5]]
