"""Reading the backbone item and the ``init`` statement (both syntaxes).

Options are plain values, not expressions: a weights name or a path, node names, a boolean. In
``.cnn`` they are written as names or strings (``weights = IMAGENET1K_V1``,
``weights = "runs/x/best.pt"``, ``until = "layer3.1.relu_1"``); in YAML as plain scalars. Both
give the same IR, so a spec written either way has one canonical form. The writers are
``_item_backbone`` (:mod:`cnndsl.syntax.format_items`) and ``_yitem_backbone``
(:mod:`cnndsl.syntax.format_yaml_items`); both write the options :func:`options` lists.
"""

from __future__ import annotations

from typing import Any

from .. import expr as E
from ..errors import Span, did_you_mean, error
from ..files import SPEC_SUFFIXES
from ..ir import Backbone, Init

OPTIONS = ("weights", "until", "taps", "strict")
INIT_OPTIONS = ("strict",)


def is_spec_path(model: str) -> bool:
    """A backbone model that is another cnndsl spec (by its file suffix)."""
    return model.endswith(SPEC_SUFFIXES)


def plain(e: E.Expr) -> Any:
    """A literal option value: names and strings → str, ``none`` → None, numbers, booleans, lists."""
    kind = type(e)
    if kind is E.Name:
        return None if e.id == "none" else e.id
    if kind in (E.Str, E.Num, E.Bool):
        return e.value
    if kind is E.Unary and e.op == "-" and type(e.operand) is E.Num:
        return -e.operand.value
    if kind is E.ListExpr:
        return [plain(i) for i in e.items]
    raise error("backbone and init options take plain values (a name, a string, a number, true/false or "
                "a list of them), not expressions", e.span,
                "to choose between two backbones, write both with 'when' conditions")


def backbone_item(model: str, model_span: Span | None, arglist: tuple | None, span: Span | None) -> dict[str, Any]:
    """The fields of a :class:`Backbone` from ``.cnn`` call arguments."""
    args, kwargs = arglist if arglist is not None else ((), ())
    if args:
        raise error("backbone options are given by name", args[0].span or span,
                    "e.g. backbone resnet18(weights = IMAGENET1K_V1, until = layer3)")
    values = {kw.name: (plain(kw.value), kw.value.span or kw.span, kw.span) for kw in kwargs}
    fields = backbone_fields(model, model_span, values, span)
    for kw in kwargs:   # each tap's own position, for "no node 'layr3'"
        if kw.name == "taps" and isinstance(kw.value, E.ListExpr):
            fields["spans"].update({f"taps.{i}": e.span for i, e in enumerate(kw.value.items) if e.span})
    return fields


def backbone_fields(model: str, model_span: Span | None, values: dict[str, tuple[Any, Span | None, Span | None]],
                    span: Span | None) -> dict[str, Any]:
    """Check option values (``{name: (value, value span, key span)}``) and build Backbone fields."""
    spans: dict[str, Span | None] = {"model": model_span or span}
    fields: dict[str, Any] = {"model": model}
    extra: list[tuple[str, Any]] = []
    for key, (value, vspan, kspan) in values.items():
        spans[key] = vspan
        if key == "weights":
            if value is not None and not isinstance(value, str):
                raise error("weights must be a weights name (DEFAULT, IMAGENET1K_V1), a file or a run directory",
                            vspan, 'e.g. weights = DEFAULT or weights = "runs/pretrain/best.pt"')
            fields["weights"] = value
        elif key == "until":
            if not isinstance(value, str):
                raise error("until names one node of the model", vspan, 'e.g. until = layer3 or until = "layer3.1.relu_1"')
            fields["until"] = value
        elif key == "taps":
            taps = [value] if isinstance(value, str) else value
            if not isinstance(taps, list) or not taps or not all(isinstance(t, str) for t in taps):
                raise error("taps is a list of node names", vspan, "e.g. taps = [layer2, layer3, layer4]")
            fields["taps"] = tuple(taps)
            spans.update({f"taps.{i}": vspan for i in range(len(taps))})
        elif key == "strict":
            if not isinstance(value, bool):
                raise error("strict is true or false", vspan, "strict = false loads the weights that match by name")
            fields["strict"] = value
        else:
            if not isinstance(value, (int, float, str, bool)):
                raise error(f"argument '{key}' of the backbone must be a number, a name, a string or true/false",
                            vspan)
            extra.append((key, value))
            spans[f"args.{key}"] = kspan
    if "until" in fields and "taps" in fields:
        raise error("a backbone is cut at one node (until) or tapped at several (taps), not both",
                    spans["taps"], "the last tap is where the flow continues; drop 'until'")
    fields["args"] = tuple(extra)
    fields["spans"] = spans
    return fields


def init_item(source: str, arglist: tuple | None, span: Span | None) -> Init:
    """``init "PATH" (strict = false)``."""
    args, kwargs = arglist if arglist is not None else ((), ())
    if args:
        raise error("init options are given by name", args[0].span or span, 'e.g. init "best.pt" (strict = false)')
    strict = True
    for kw in kwargs:
        if kw.name not in INIT_OPTIONS:
            raise error(f"init has no option '{kw.name}'", kw.span, did_you_mean(kw.name, INIT_OPTIONS)
                        or "the only option is strict = false (load what matches by name)")
        value = plain(kw.value)
        if not isinstance(value, bool):
            raise error("strict is true or false", kw.value.span or kw.span)
        strict = value
    return Init(source=source, strict=strict, span=span)


# ----------------------------------------------------------------------------- writing


def options(it: Backbone) -> list[tuple[str, Any]]:
    """The options to write, in the documented order (``weights``, ``until``, ``taps``, ``strict``),
    defaults left out; the model's own arguments (``it.args``) follow them in ``.cnn`` and go under
    ``args`` in YAML."""
    out: list[tuple[str, Any]] = []
    if it.weights is not None:
        out.append(("weights", it.weights))
    if it.until is not None:
        out.append(("until", it.until))
    if it.taps:
        out.append(("taps", list(it.taps)))
    if not it.strict:
        out.append(("strict", False))
    return out


# ----------------------------------------------------------------------------- YAML


def read_yaml_backbone(b: Any, value: Any, key_span: Span) -> dict[str, Any]:
    """``backbone: resnet18`` or ``backbone: {model: resnet18, weights: ..., taps: [...]}`` (``b``:
    the YAML spec builder, for its checked scalar / mapping readers)."""
    import yaml

    if not isinstance(value, yaml.MappingNode):
        model = b.scalar(value)
        if not isinstance(model, str):
            raise error(f"backbone names a model, got {model!r}", b.sp(value),
                        "e.g. backbone: resnet18, or backbone: {model: resnet18, weights: DEFAULT}")
        return backbone_fields(model, b.sp(value), {}, key_span)
    m = b.mapping(value, "backbone", ("model", *OPTIONS, "args"))
    if "model" not in m:
        raise error("the backbone needs a model", b.sp(value), "e.g. backbone: {model: resnet18, weights: DEFAULT}")
    model = b.scalar(m["model"][1])
    values: dict[str, tuple[Any, Span | None, Span | None]] = {}
    for k, (kn, vn) in m.items():
        if k == "model":
            continue
        if k == "args":
            for ak, (akn, avn) in b.mapping(vn, "args").items():
                if ak in OPTIONS:  # the IR (and .cnn) has one namespace: it would replace the option
                    raise error(f"'{ak}' is an option of the backbone, not an argument of its model", b.sp(akn),
                                f"write it next to model: backbone: {{model: ..., {ak}: ...}}")
                values[ak] = (b.scalar(avn), b.sp(avn), b.sp(akn))
            continue
        v = [b.scalar(x) for x in b.sequence(vn, k)] if isinstance(vn, yaml.SequenceNode) else b.scalar(vn)
        values[k] = (v, b.sp(vn), b.sp(kn))
    if not isinstance(model, str):
        raise error(f"backbone names a model, got {model!r}", b.sp(m["model"][1]))
    fields = backbone_fields(model, b.sp(m["model"][1]), values, key_span)
    if "taps" in m and isinstance(m["taps"][1], yaml.SequenceNode):
        fields["spans"].update({f"taps.{i}": b.sp(x) for i, x in enumerate(m["taps"][1].value)})
    return fields


def read_yaml_init(b: Any, value: Any, extent: Span) -> Init:
    """``init: PATH`` or ``init: {source: PATH, strict: false}`` (``extent``: from the key to the
    value's end, for the formatter's comments)."""
    import yaml

    if not isinstance(value, yaml.MappingNode):
        return Init(source=str(b.scalar(value)), span=b.sp(value), extent=extent)
    m = b.mapping(value, "init", ("source", "strict"))
    if "source" not in m:
        raise error("init needs a source", b.sp(value), "e.g. init: {source: runs/x/best.pt, strict: false}")
    strict = b.scalar(m["strict"][1]) if "strict" in m else True
    if not isinstance(strict, bool):
        raise error("strict is true or false", b.sp(m["strict"][1]))
    return Init(source=str(b.scalar(m["source"][1])), strict=strict, span=b.sp(m["source"][1]), extent=extent)
