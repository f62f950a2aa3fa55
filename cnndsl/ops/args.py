"""Op arguments: their declared types are the one source of two validators that agree.

An op's annotated class attributes (``out: PosInt``, ``padding: Padding = 0``) are its argument
schema. From them come

* the **pydantic model** (:meth:`cnndsl.ops.base.Op.schema`): ``model_fields``, the JSON schema of
  ``cnndsl schema``, ``cnndsl ops`` help — built on first use, with pydantic's model machinery;
* the **argument validator** (:func:`validator`) that binding uses: the same types written as a
  pydantic-core schema, validated by pydantic-core — the engine under every pydantic model — with
  the model's configuration (strict, unknown arguments refused). It needs neither ``pydantic.main``
  nor pydantic's schema generation, which were most of what ``cnndsl check`` paid at start-up.

Both read the same annotations, and tests/test_startup.py checks on every registered op that they
accept the same values and report the same errors (type, location, message, context). A type this
module does not know (a plugin op's own pydantic ``Field``, say) gives ``None``: that op is validated
by its pydantic model, as before.

Constraints are written with :class:`Bounds` (pydantic's ``Field(ge=..., allow_inf_nan=False)``
in the model), so that declaring an op imports nothing from pydantic.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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


def core_schema(hint: Any) -> dict[str, Any]:
    """The pydantic-core schema pydantic generates for ``hint`` (for the types ops use)."""
    from pydantic_core import core_schema as cs

    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        meta = hint.__metadata__
        if len(meta) != 1 or not isinstance(meta[0], Bounds) or args[0] not in (int, float):
            raise Unsupported(hint)
        return (cs.int_schema if args[0] is int else cs.float_schema)(**meta[0].options())
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


_MISSING: Any = object()


def validator(title: str, arguments: dict[str, tuple[Any, Any]]) -> Any | None:
    """A pydantic-core validator of ``{argument: value}`` dicts for arguments ``{name: (type,
    default or _MISSING)}``, configured like the op's pydantic model (strict, extra="forbid");
    ``validate_python(values)`` returns the values with defaults filled in, or raises
    ``pydantic_core.ValidationError``. None if a type is not supported here."""
    from pydantic_core import CoreConfig, SchemaValidator
    from pydantic_core import core_schema as cs

    try:
        fields = {}
        for name, (hint, default) in arguments.items():
            schema = core_schema(hint)
            if default is not _MISSING:
                schema = cs.with_default_schema(schema, default=default)
            fields[name] = cs.typed_dict_field(schema, required=default is _MISSING)
    except Unsupported:
        return None
    config = CoreConfig(title=title, strict=True, extra_fields_behavior="forbid")
    return SchemaValidator(cs.typed_dict_schema(fields, extra_behavior="forbid", config=config), config)
