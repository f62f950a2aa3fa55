"""Op arguments: their declared types are the one source of two validators that agree.

An op's annotated class attributes (``out: PosInt``, ``padding: Padding = 0``) are its argument
schema. From them come

* the **pydantic model** (:meth:`cnndsl.ops.base.Op.schema`): ``model_fields``, the JSON schema of
  ``cnndsl schema``, ``cnndsl ops`` help — built on first use, with pydantic's model machinery;
* the **argument validator** (:func:`validator`) that binding uses: the same types written as a
  pydantic-core schema, validated by pydantic-core — the engine under every pydantic model — with
  the model's configuration (strict, unknown arguments refused). It needs neither ``pydantic.main``
  nor pydantic's schema generation, which were most of what ``cnndsl check`` paid at start-up.

* the **quick check** (:func:`quick_check`), tried first: plain Python that accepts only values of
  exactly the declared types within their bounds — what a correct spec passes — and returns them as
  pydantic's strict mode would; for anything else it has no opinion, and the argument validator
  decides and words the error. A check of a correct spec so never imports pydantic-core either.

All read the same annotations, and tests/test_op_args.py checks on every registered op that the
model and the validator accept the same values and report the same errors (type, location,
message, context), and that whatever the quick check accepts the model accepts, with the same
values. A type this module does not know (a plugin op's own pydantic ``Field``, say) gives ``None``:
that op is validated by its pydantic model, as before.

Constraints are written with :class:`Bounds` (pydantic's ``Field(ge=..., allow_inf_nan=False)``
in the model), so that declaring an op imports nothing from pydantic.
"""

from __future__ import annotations

import math
import operator
import types
from typing import Annotated, Any, Callable, Literal, Union, get_args, get_origin

_NONE = type(None)


class Bounds:
    """Constraints on a number: ``ge``/``gt``/``le``/``lt``, and ``finite`` (no inf or nan)."""

    __slots__ = ("limits", "finite")

    def __init__(self, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
                 lt: float | None = None, finite: bool = False):
        self.limits = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
        self.finite = finite

    def options(self) -> dict[str, Any]:
        """As keyword arguments of pydantic's ``Field`` and pydantic-core's number schemas."""
        return {**self.limits, **({"allow_inf_nan": False} if self.finite else {})}

    def __repr__(self) -> str:
        return "Bounds(" + ", ".join(f"{k}={v!r}" for k, v in self.options().items()) + ")"


def pydantic_hint(hint: Any) -> Any:
    """``hint`` with each :class:`Bounds` replaced by the equivalent pydantic ``Field``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        from pydantic import Field

        return Annotated[(pydantic_hint(args[0]),
                          *(Field(**m.options()) if isinstance(m, Bounds) else m for m in hint.__metadata__))]
    if origin in (Union, types.UnionType):
        return Union[tuple(pydantic_hint(a) for a in args)]
    if origin is tuple:
        return tuple[tuple(a if a is Ellipsis else pydantic_hint(a) for a in args)]
    return hint


class Unsupported(Exception):
    """A type the argument validator does not translate: the op falls back to its pydantic model."""


def _bounded(hint: Any) -> tuple[type, Bounds]:
    """``Annotated[int or float, Bounds(...)]`` → the number type and its bounds (the one annotated
    form both validators translate); :class:`Unsupported` for any other metadata."""
    kind, meta = get_args(hint)[0], hint.__metadata__
    if len(meta) != 1 or not isinstance(meta[0], Bounds) or kind not in (int, float):
        raise Unsupported(hint)
    return kind, meta[0]


def core_schema(hint: Any) -> dict[str, Any]:
    """The pydantic-core schema pydantic generates for ``hint`` (for the types ops use)."""
    from pydantic_core import core_schema as cs

    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        kind, bounds = _bounded(hint)
        return (cs.int_schema if kind is int else cs.float_schema)(**bounds.options())
    if origin in (Union, types.UnionType):
        choices = [core_schema(a) for a in args if a is not _NONE]
        inner = choices[0] if len(choices) == 1 else cs.union_schema(choices)
        return cs.nullable_schema(inner) if _NONE in args else inner
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return cs.tuple_schema([core_schema(args[0])], variadic_item_index=0)
        return cs.tuple_schema([core_schema(a) for a in args])
    if origin is Literal:
        return cs.literal_schema(list(args))
    plain = {int: cs.int_schema, float: cs.float_schema, bool: cs.bool_schema, str: cs.str_schema,
             _NONE: cs.none_schema}
    if hint in plain:
        return plain[hint]()
    raise Unsupported(hint)


REQUIRED: Any = object()   # the "default" of a required argument


def validator(title: str, arguments: dict[str, tuple[Any, Any]]) -> Any | None:
    """A pydantic-core validator of ``{argument: value}`` dicts for arguments ``{name: (type,
    default or REQUIRED)}``, configured like the op's pydantic model (strict, extra="forbid");
    ``validate_python(values)`` returns the values with defaults filled in, or raises
    ``pydantic_core.ValidationError``. None if a type is not supported here."""
    from pydantic_core import CoreConfig, SchemaValidator
    from pydantic_core import core_schema as cs

    try:
        fields = {}
        for name, (hint, default) in arguments.items():
            schema = core_schema(hint)
            if default is not REQUIRED:
                schema = cs.with_default_schema(schema, default=default)
            fields[name] = cs.typed_dict_field(schema, required=default is REQUIRED)
    except Unsupported:
        return None
    config = CoreConfig(title=title, strict=True, extra_fields_behavior="forbid")
    return SchemaValidator(cs.typed_dict_schema(fields, extra_behavior="forbid", config=config), config)


_NO: Any = object()     # the quick check has no opinion: ask the validator
_LIMITS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def _acceptor(hint: Any) -> Callable[[Any], Any]:
    """value → the value pydantic's strict mode returns for it, or _NO when not plainly valid."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        kind, bounds = _bounded(hint)
        finite, limits = bounds.finite, [(_LIMITS[k], v) for k, v in bounds.limits.items()]

        number = _number(kind)

        def bounded(v: Any) -> Any:
            v = number(v)
            if v is _NO or (finite and not math.isfinite(v)):
                return _NO
            return v if all(test(v, bound) for test, bound in limits) else _NO
        return bounded
    if origin in (Union, types.UnionType):
        choices = [_acceptor(a) for a in args]

        def one_of(v: Any) -> Any:       # pydantic's smart union: the one choice that fits exactly
            fits = [r for r in (c(v) for c in choices) if r is not _NO]
            return fits[0] if len(fits) == 1 else _NO
        return one_of
    if origin is tuple:
        variadic = len(args) == 2 and args[1] is Ellipsis
        items = [_acceptor(a) for a in (args[:1] if variadic else args)]

        def sequence(v: Any) -> Any:
            if type(v) is not tuple or (not variadic and len(v) != len(items)):
                return _NO
            out = tuple(check(x) for check, x in zip(items * len(v) if variadic else items, v))
            return _NO if any(x is _NO for x in out) else out
        return sequence
    if origin is Literal:
        if not all(type(a) is str for a in args):
            raise Unsupported(hint)
        names = frozenset(args)
        return lambda v: v if type(v) is str and v in names else _NO
    if hint is _NONE:
        return lambda v: v if v is None else _NO
    if hint in (int, float):
        return _number(hint)
    if hint in (bool, str):
        return lambda v: v if type(v) is hint else _NO
    raise Unsupported(hint)


def _number(kind: type) -> Callable[[Any], Any]:
    """An int for an int; a float, or an int made a float, for a float (pydantic's strict mode)."""
    if kind is int:
        return lambda v: v if type(v) is int else _NO

    def real(v: Any) -> Any:
        if type(v) is int:
            try:
                return float(v)
            except OverflowError:
                return _NO
        return v if type(v) is float else _NO
    return real


def quick_check(arguments: dict[str, tuple[Any, Any]]) -> Callable[[dict[str, Any]], dict[str, Any] | None] | None:
    """A function ``{argument: value}`` → every argument's value (defaults filled in) when all are
    plainly valid, else None (the validator decides); None if a type is not supported here."""
    try:
        accept = {name: _acceptor(hint) for name, (hint, _) in arguments.items()}
    except Unsupported:
        return None
    defaults = {name: default for name, (_, default) in arguments.items()}

    def check(values: dict[str, Any]) -> dict[str, Any] | None:
        if any(k not in accept for k in values):
            return None
        out = {}
        for name, test in accept.items():
            if name in values:
                value = test(values[name])
                if value is _NO:
                    return None
            elif defaults[name] is REQUIRED:
                return None
            else:
                value = defaults[name]
            out[name] = value
        return out
    return check
