"""The base of the Spec IR's nodes: frozen records with pydantic's model API, without pydantic.

The IR is built by our own front ends, which check every value as they read it, and its rules are
the nodes' ``@after`` validators; a pydantic model per node only cost start-up time (importing
pydantic's model machinery and building 20 schemas is most of what ``cnndsl check`` paid over
``import pydantic, lark``). A node keeps the part of pydantic's API the code uses — keyword
construction that refuses unknown fields, ``model_fields`` (name → :class:`FieldSpec`, in
declaration order, bases first), ``model_copy(update=...)`` (no re-validation, like pydantic's) and
``model_dump(mode="json")`` — with the same output: tuples become lists, expression fields their
source text (``format_expr``), excluded fields (spans) are left out, and any other value goes
through ``pydantic_core.to_jsonable_python``, the serializer pydantic itself uses for ``Any``.
Fields are declared as annotations (``name: str | None = None``); tuple-typed fields accept lists
(as pydantic's lax mode did), nested ones level by level.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

_MISSING: Any = object()


class FieldSpec:
    """One field: its default (``is_required()`` when none), whether dumps leave it out (always,
    or when ``exclude_if(value)``), whether ``repr`` shows it, and how its value is dumped."""

    __slots__ = ("default", "exclude", "exclude_if", "repr", "annotation", "expr", "tuple_depth")

    def __init__(self, default: Any = _MISSING, *, exclude: bool = False,
                 exclude_if: Callable[[Any], bool] | None = None, repr: bool = True):
        self.default, self.exclude, self.exclude_if, self.repr = default, exclude, exclude_if, repr
        self.annotation, self.expr, self.tuple_depth = "", False, 0

    def is_required(self) -> bool:
        return self.default is _MISSING

    def declared(self, annotation: str) -> "FieldSpec":
        """Complete the spec from the field's annotation (a string: the IR modules use postponed
        annotations): ``ExprField`` values dump as source text, ``SpanField`` is an excluded
        optional field, ``tuple[tuple[...]]`` accepts nested lists."""
        self.annotation = annotation
        self.expr = "ExprField" in annotation
        if annotation == "SpanField":
            self.exclude, self.repr = True, False
            if self.default is _MISSING:
                self.default = None
        depth, rest = 0, annotation
        while rest.startswith("tuple["):
            depth, rest = depth + 1, rest[len("tuple["):]
        self.tuple_depth = depth
        return self


def field(default: Any = _MISSING, *, exclude: bool = False, exclude_if: Callable[[Any], bool] | None = None,
          repr: bool = True) -> Any:
    """A field's default with options (pydantic's ``Field(default=..., exclude=...)``)."""
    return FieldSpec(default, exclude=exclude, exclude_if=exclude_if, repr=repr)


def after(method: Callable) -> Callable:
    """Mark a method as a validator run on every new node (pydantic's ``model_validator(mode="after")``):
    a base class's run first; a subclass's method of the same name replaces it."""
    method.__ir_validator__ = True  # type: ignore[attr-defined]
    return method


def _tuples(value: Any, depth: int) -> Any:
    if depth and isinstance(value, (list, tuple)):
        return tuple(_tuples(v, depth - 1) for v in value)
    return value


class Node:
    """A frozen record: fields from annotations; equality is the subclass's business."""

    model_fields: ClassVar[dict[str, FieldSpec]] = {}
    _validators: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = dict(cls.model_fields)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            annotation = annotation if isinstance(annotation, str) else repr(annotation)
            if annotation.startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = cls.__dict__.get(name, fields[name].default if name in fields else _MISSING)
            spec = value if isinstance(value, FieldSpec) else FieldSpec(value)
            fields[name] = spec.declared(annotation)
            if name in cls.__dict__:
                delattr(cls, name)
        cls.model_fields = fields
        names = list(cls._validators)
        names += [n for n, v in cls.__dict__.items() if getattr(v, "__ir_validator__", False) and n not in names]
        cls._validators = tuple(names)

    def __init__(self, **values: Any) -> None:
        fields = type(self).model_fields
        unknown = [k for k in values if k not in fields]
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(map(repr, unknown))}")
        data = self.__dict__
        for name, spec in fields.items():
            if name in values:
                data[name] = _tuples(values[name], spec.tuple_depth)
            elif spec.default is _MISSING:
                raise TypeError(f"{type(self).__name__} needs the field '{name}'")
            else:
                data[name] = spec.default
        self.model_post_init(None)
        for name in type(self)._validators:
            getattr(self, name)()

    def model_post_init(self, _context: Any) -> None:
        """Run once fields are set, before the validators (as in pydantic)."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: use model_copy(update={{{name!r}: ...}})")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is frozen")

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n, f in type(self).model_fields.items() if f.repr)
        return f"{type(self).__name__}({shown})"

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> "Node":
        """A shallow copy with ``update`` applied, not validated (like pydantic's)."""
        if deep:
            import copy

            return copy.deepcopy(self).model_copy(update=update)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(update or {})
        return new

    def model_dump(self, *, mode: str = "json", exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
        """The node as JSON-compatible data (pydantic's ``model_dump(mode="json")``)."""
        if mode != "json":
            raise ValueError("IR nodes dump in mode='json' only")
        return _dump(self, exclude)


def _dump(node: Node, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in type(node).model_fields.items():
        value = node.__dict__[name]
        if spec.exclude or name in exclude or (spec.exclude_if is not None and spec.exclude_if(value)):
            continue
        out[name] = _value(value, spec.expr)
    return out


def _value(value: Any, expr: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, Node):
        return _dump(value)
    if isinstance(value, tuple):
        return [_value(v, expr) for v in value]
    if expr:
        from .expr import format_expr

        return format_expr(value)
    if type(value) in (str, int, bool):
        return value
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, inf_nan_mode="null")   # pydantic's JSON dump: inf and nan → null
