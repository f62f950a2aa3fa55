"""The Spec IR: the frozen records both front ends (``.cnn`` and YAML) produce.

A Spec holds block definitions, at most one network and the raw ``train`` section. Items of a body
form a discriminated union on ``kind``. Values are unevaluated expressions (:mod:`cnndsl.expr`);
they are evaluated when the network is expanded into a graph (:mod:`cnndsl.expand`).

Every node checks its names against :mod:`cnndsl.names` as it is built, so both front ends (and
any code that builds IR) meet one rule. Source spans ride along on every node but never take part
in equality: two nodes are equal when all their fields (the item ``kind`` included) are equal.
Syntax-independent equality (``conv(64, 3)`` vs ``conv(64, k=3)``) and the spec hash live in
:mod:`cnndsl.canonical`, which knows the ops' argument names; this module does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from .errors import Span, error
from .names import check_module_name, check_name, check_path_part
from .node import Node, after, field

MERGE_OPS = ("concat", "add", "multiply")

# Field types, read by cnndsl.node from the (postponed) annotations: an expression (dumped as its
# source text) and a source span (optional, never dumped, compared or shown).
ExprField = Any
SpanField = Any


class _Node(Node):

    # where the whole construct sits in its source (label to condition, `block` to `}`), for the
    # formatter's comment placement and layout; excluded like spans
    extent: SpanField

    def __eq__(self, other: object) -> bool:  # spans never take part in equality
        return type(self) is type(other) and self._fields() == other._fields()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def _fields(self) -> dict[str, Any]:
        """Every field but the spans (``kind`` included), as plain data."""
        return self.model_dump(mode="json")


class Repeat(_Node):
    """``x N as i``: repeat an item N times, binding the index (from 0) to ``index``."""

    count: ExprField
    index: str | None = None
    span: SpanField

    @after
    def _names(self) -> "Repeat":
        if self.index is not None:
            check_name(self.index, self.span, "repeat index name")
        return self


class Ref(_Node):
    """A reference to a named output: ``enc1`` or a path into a named scope, ``layer1.0.conv1``."""

    path: tuple[str, ...]
    span: SpanField

    def __str__(self) -> str:
        return ".".join(self.path)

    @after
    def _names(self) -> "Ref":
        if not self.path:
            raise error("a reference needs a name", self.span)
        if self.path[0].isascii() and self.path[0].isdigit():
            raise error(f"'{self.path[0]}' is a position: items are referred to by name", self.span,
                        "name the item you mean (skip: conv(64, k=3)) and refer to that name (concat(skip))")
        check_name(self.path[0], self.span, "reference", quoted=True)
        for part in self.path[1:]:
            check_path_part(part, self.span)
        return self


class _Item(_Node):
    # becomes the module attribute / state_dict prefix; may be quoted ("block1-0") or computed
    # (a template, "denselayer{i + 1}": see cnndsl.names)
    name: str | None = None
    repeat: Repeat | None = None   # x N
    when: ExprField | None = None  # present only if the condition holds
    span: SpanField

    @after
    def _names(self) -> "_Item":
        if self.name is not None:
            check_module_name(self.name, self.span, template=True)
        return self


class Kwarg(_Node):
    name: str
    value: ExprField
    span: SpanField

    @after
    def _names(self) -> "Kwarg":
        check_name(self.name, self.span, "argument name")
        return self


class Layer(_Item):
    """A call of an op (``conv(64, k=3)``) or of a block (``BasicBlock(64, stride=2)``)."""

    kind: Literal["layer"] = "layer"
    op: str
    args: tuple[ExprField, ...] = ()
    kwargs: tuple[Kwarg, ...] = ()

    @after
    def _op_name(self) -> "Layer":
        check_name(self.op, self.span, "op or block name")
        if self.op in MERGE_OPS:
            raise error(f"'{self.op}' merges several inputs; it is not a layer on its own", self.span,
                        f"merge branches with '{self.op} {{ a | b }}', or earlier outputs with "
                        f"'{self.op}(name)'")
        return self


class Group(_Item):
    """``{ ... }``: a sequence; named, it becomes a submodule (a stage)."""

    kind: Literal["group"] = "group"
    body: tuple["Item", ...]


class Shortcut(_Node):
    name: str | None = None
    when: ExprField | None = None
    body: tuple["Item", ...] = ()
    span: SpanField

    @after
    def _names(self) -> "Shortcut":
        if self.name is not None:
            check_module_name(self.name, self.span, "shortcut name")
        return self


class Residual(_Item):
    """``residual { main } shortcut NAME when COND { projection }``: out = main(x) + shortcut(x)."""

    kind: Literal["residual"] = "residual"
    body: tuple["Item", ...]
    shortcut: Shortcut | None = None


class Parallel(_Item):
    """``concat { a | b | c }`` or ``add { ... }``: branches from one input, merged."""

    kind: Literal["parallel"] = "parallel"
    merge: Literal["concat", "add", "multiply"]
    branches: tuple[tuple["Item", ...], ...]


class Merge(_Item):
    """``concat(enc2)`` / ``add(x)``: merge the current flow with named earlier outputs."""

    kind: Literal["merge"] = "merge"
    merge: Literal["concat", "add", "multiply"]
    refs: tuple[Ref, ...]


class From(_Node):
    """``from NAME``: continue the flow from a named earlier output."""

    kind: Literal["from"] = "from"
    ref: Ref
    span: SpanField


SPLITS = ("chunk", "split")


class Split(_Item):
    """``x1, x2: chunk(2)`` / ``a, b: split(16, 48)``: the channels cut into named parts, in order
    (ShuffleNetV2's ``x1, x2 = x.chunk(2, dim=1)``); the flow continues from the last part."""

    kind: Literal["split"] = "split"
    names: tuple[str, ...]
    how: Literal["chunk", "split"]
    args: tuple[ExprField, ...] = ()

    @after
    def _parts(self) -> "Split":
        if self.name is not None:
            raise error("the parts of a split are named, not the split itself", self.span,
                        "write the names before ':': x1, x2: chunk(2)")
        if len(self.names) < 2:
            raise error(f"{self.how} needs two or more names, one per part", self.span, "e.g. x1, x2: chunk(2)")
        seen: set[str] = set()
        for n in self.names:
            check_module_name(n, self.span)
            if n in seen:
                raise error(f"the part name '{n}' is given twice", self.span)
            seen.add(n)
        if self.repeat is not None:
            raise error(f"a {self.how} cannot be repeated", self.repeat.span or self.span,
                        "its parts have fixed names; split again where needed")
        return self


class Backbone(_Item):
    """``backbone resnet18(weights = IMAGENET1K_V1, taps = [layer2, layer3])``: an existing model —
    torchvision, timm (``timm.NAME``) or another cnndsl spec (a path) — cut at a node or tapped at
    several. Options are plain values (see cnndsl.backbone); ``spans`` locates each for diagnostics."""

    kind: Literal["backbone"] = "backbone"
    model: str                              # "resnet18", "timm.convnext_tiny" or "pretrain.cnn"
    weights: str | None = None              # a weights name (DEFAULT, IMAGENET1K_V1) or a file / run directory
    until: str | None = None                # cut after this node (default: drop the final classifier)
    taps: tuple[str, ...] = ()              # or: several outputs, by node name
    strict: bool = True                     # weights must match key for key
    args: tuple[tuple[str, Any], ...] = ()  # model factory arguments / the spec's network parameters
    spans: SpanField                        # {"model" | "weights" | "until" | "taps.N" | "args.NAME": Span}

    def model_post_init(self, _context: Any) -> None:
        if self.repeat is not None:   # both front ends build the item through here
            from .errors import error

            raise error("a backbone cannot be repeated", self.repeat.span or self.span,
                        "a model is used once; write a second backbone item for a second copy")


Item = Annotated[Union[Layer, Group, Residual, Parallel, Merge, From, Backbone, Split], "discriminator: kind"]


ITEM_KINDS: tuple[str, ...] = tuple(t.model_fields["kind"].default for t in Item.__args__[0].__args__)  # type: ignore[attr-defined]


def iter_items(items: Any) -> Iterator[Any]:
    """Every item in ``items`` (an item, or a body) and every item nested in them, in source order:
    the generic walk for pure traversals (it knows no construct: it follows every field that holds
    IR nodes, so a new construct's bodies are walked without a change here). Iterative."""
    stack = [items]
    while stack:
        x = stack.pop()
        if isinstance(x, tuple):
            stack.extend(reversed(x))
            continue
        if not isinstance(x, _Node):
            continue
        if getattr(x, "kind", None) in ITEM_KINDS:
            yield x
        stack.extend(reversed([v for f in type(x).model_fields if isinstance(v := getattr(x, f), (tuple, _Node))]))


class Param(_Node):
    name: str
    default: ExprField | None = None  # None: required
    span: SpanField

    @after
    def _names(self) -> "Param":
        check_name(self.name, self.span, "parameter name")
        return self


class Pattern(_Node):
    """A glob over parameter names (``freeze "layer1.*"``)."""

    glob: str
    span: SpanField


class Init(_Node):
    """``init "runs/x/best.pt"``: weights the built network starts from, matched by name."""

    source: str          # a file, a run directory, or torchvision:MODEL[.WEIGHTS]
    strict: bool = True  # false: load the keys that match and report the others
    span: SpanField


class BlockDef(_Node):
    name: str
    params: tuple[Param, ...] = ()
    body: tuple[Item, ...] = ()
    span: SpanField

    @after
    def _names(self) -> "BlockDef":
        check_name(self.name, self.span, "block name")
        return self


class NetworkDef(_Node):
    """A network. ``extends``: another network (imported) whose layers come first, with the same
    names; its parameters, input, outputs, freeze patterns and init are inherited (see
    :mod:`cnndsl.extend`). ``input`` is empty only when it is inherited."""

    name: str
    params: tuple[Param, ...] = ()
    extends: Layer | None = field(None, exclude_if=lambda v: v is None)  # no trace in older hashes
    input: tuple[ExprField, ...] = ()
    body: tuple[Item, ...] = ()
    outputs: tuple[Ref, ...] = ()
    freeze: tuple[Pattern, ...] = ()
    unfreeze: tuple[Pattern, ...] = ()
    init: Init | None = field(None, exclude_if=lambda v: v is None)  # no trace in older specs' hash
    span: SpanField
    input_span: SpanField

    @after
    def _names(self) -> "NetworkDef":
        check_name(self.name, self.span, "network name")
        return self


class Import(_Node):
    path: str
    span: SpanField


class Spec(_Node):
    """A parsed spec: imports, blocks (imported ones merged in), a network and a train section."""

    imports: tuple[Import, ...] = ()
    blocks: tuple[BlockDef, ...] = ()
    network: NetworkDef | None = None
    # the networks of imported files: usable as blocks (``ResNet18(num_classes = 10)``) and as bases
    # (``network Mine extends ResNet18``); merged in by the import resolver like imported blocks
    networks: tuple[NetworkDef, ...] = field((), exclude_if=lambda v: not v)
    train: Any = None  # raw plain data (dict); validated by cnndsl.train.config
    path: str | None = field(None, exclude=True)
    train_spans: Any = field(None, exclude=True, repr=False)  # {key path: Span}
    # comments and layout the IR does not hold (cnndsl.syntax.trivia.Trivia); excluded like spans
    trivia: Any = field(None, exclude=True, repr=False)

    def block(self, name: str) -> BlockDef | None:
        for b in self.blocks:
            if b.name == name:
                return b
        return None

    def imported_network(self, name: str) -> NetworkDef | None:
        for n in self.networks:
            if n.name == name:
                return n
        return None

    def train_span(self, path: tuple[str | int, ...] | str) -> Span | None:
        """Source position of a value in the train section (``("optimizer", "lr")``)."""
        if isinstance(path, str):
            path = tuple(path.split("."))
        spans = self.train_spans or {}
        path = tuple(path)
        while path:  # fall back to the nearest enclosing key
            if path in spans:
                return spans[path]
            path = path[:-1]
        return spans.get(())

