"""The Spec IR: pydantic models both front ends (``.cnn`` and YAML) produce.

A Spec holds block definitions, at most one network and the raw ``train`` section. Items of a body
form a discriminated union on ``kind``. Values are unevaluated expressions (:mod:`cnndsl.expr`);
they are evaluated when the network is expanded into a graph (:mod:`cnndsl.expand`).

Source spans ride along on every node but are excluded from comparisons and from the canonical
form, so a spec written in ``.cnn`` and in YAML compare equal and hash the same.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from .errors import Span
from .expr import format_expr

ExprField = Annotated[Any, PlainSerializer(lambda e: format_expr(e), return_type=str)]
SpanField = Annotated[Any, Field(default=None, exclude=True, repr=False)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True)

    def __eq__(self, other: object) -> bool:  # spans never take part in equality
        return type(self) is type(other) and self.canonical() == other.canonical()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


class Repeat(_Node):
    """``x N as i``: repeat an item N times, binding the index (from 0) to ``index``."""

    count: ExprField
    index: str | None = None
    span: SpanField


class Ref(_Node):
    """A reference to a named output: ``enc1`` or a path into a named scope, ``layer1.0.conv1``."""

    path: tuple[str, ...]
    span: SpanField

    def __str__(self) -> str:
        return ".".join(self.path)


class _Item(_Node):
    name: str | None = None        # becomes the module attribute / state_dict prefix
    repeat: Repeat | None = None   # x N
    when: ExprField | None = None  # present only if the condition holds
    span: SpanField


class Kwarg(_Node):
    name: str
    value: ExprField
    span: SpanField


class Layer(_Item):
    """A call of an op (``conv(64, k=3)``) or of a block (``BasicBlock(64, stride=2)``)."""

    kind: Literal["layer"] = "layer"
    op: str
    args: tuple[ExprField, ...] = ()
    kwargs: tuple[Kwarg, ...] = ()


class Group(_Item):
    """``{ ... }``: a sequence; named, it becomes a submodule (a stage)."""

    kind: Literal["group"] = "group"
    body: tuple["Item", ...]


class Shortcut(_Node):
    name: str | None = None
    when: ExprField | None = None
    body: tuple["Item", ...] = ()
    span: SpanField


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


Item = Annotated[Union[Layer, Group, Residual, Parallel, Merge, From, Backbone], Field(discriminator="kind")]


class Param(_Node):
    name: str
    default: ExprField | None = None  # None: required
    span: SpanField


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


class NetworkDef(_Node):
    name: str
    params: tuple[Param, ...] = ()
    input: tuple[ExprField, ...]
    body: tuple[Item, ...] = ()
    outputs: tuple[Ref, ...] = ()
    freeze: tuple[Pattern, ...] = ()
    unfreeze: tuple[Pattern, ...] = ()
    init: Init | None = None
    span: SpanField
    input_span: SpanField


class Import(_Node):
    path: str
    span: SpanField


class Spec(_Node):
    """A parsed spec: imports, blocks (imported ones merged in), a network and a train section."""

    imports: tuple[Import, ...] = ()
    blocks: tuple[BlockDef, ...] = ()
    network: NetworkDef | None = None
    train: Any = None  # raw plain data (dict); validated by cnndsl.train.config
    path: str | None = Field(default=None, exclude=True)
    train_spans: Any = Field(default=None, exclude=True, repr=False)  # {key path: Span}

    def block(self, name: str) -> BlockDef | None:
        for b in self.blocks:
            if b.name == name:
                return b
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

    def canonical(self) -> dict[str, Any]:
        from .canonical import canonical_spec

        return canonical_spec(self)

    def hash(self) -> str:
        """sha256 of the canonical form: equal for equal specs, whatever their syntax."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

