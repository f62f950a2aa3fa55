"""Frozen value classes without dataclass code generation.

``@dataclass`` writes and compiles each generated method when the class is created — ≈ 0.5–1 ms a
class, paid by every process that imports it. The expression AST and the receptive-field rules (21
classes on ``cnndsl check``'s path, ≈ 12 ms of it) are plain frozen values, so they are records:

    class Num(Record):
        value: int | float
        span: Span | None = hidden()        # not compared, hashed nor shown (like field(compare=False, repr=False))

A record class gets what ``@dataclass(frozen=True, slots=True)`` gave them: ``__init__`` taking the
fields by position or name (defaults from the class body), ``__eq__`` and ``__hash__`` over the
compared fields, ``__repr__`` (``Num(value=3)``), ``__match_args__``, ``__slots__``, immutability
(``dataclasses.FrozenInstanceError``) and pickling. Nothing is compiled: the methods are shared and
read the class's field tables.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, ClassVar

_MISSING: Any = object()


class _Hidden:
    __slots__ = ("default",)

    def __init__(self, default: Any):
        self.default = default


def hidden(default: Any = None) -> Any:
    """A field's default, for a field left out of equality, hashing and repr (a source span)."""
    return _Hidden(default)


class _RecordMeta(type):
    """Turns the annotated fields of a record class into ``__slots__`` and field tables."""

    def __new__(mcls, name: str, bases: tuple, ns: dict[str, Any]) -> type:
        if any(getattr(b, "_fields", ()) for b in bases):
            raise TypeError(f"{name}: records do not inherit fields")
        fields, defaults, compared, shown = [], {}, [], []
        for field, annotation in ns.get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = ns.pop(field, _MISSING)
            fields.append(field)
            if isinstance(value, _Hidden):
                value = value.default
            else:
                compared.append(field)
                shown.append(field)
            if value is not _MISSING:
                defaults[field] = value
            elif defaults:
                raise TypeError(f"{name}: non-default field '{field}' follows a default one")
        ns.update(__slots__=tuple(fields), __match_args__=tuple(fields), _fields=tuple(fields),
                  _defaults=defaults, _compared=tuple(compared), _shown=tuple(shown))
        return super().__new__(mcls, name, bases, ns)


class Record(metaclass=_RecordMeta):
    """Base of the frozen value classes (see the module docstring)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _compared: ClassVar[tuple[str, ...]] = ()
    _shown: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__qualname__}() takes {len(fields)} arguments, {len(args)} given")
        for field, value in zip(fields, args):
            object.__setattr__(self, field, value)
        for field in fields[len(args):]:
            if field in kwargs:
                value = kwargs.pop(field)
            elif field in cls._defaults:
                value = cls._defaults[field]
            else:
                raise TypeError(f"{cls.__qualname__}() missing required argument: '{field}'")
            object.__setattr__(self, field, value)
        if kwargs:
            extra = next(iter(kwargs))
            raise TypeError(f"{cls.__qualname__}() got an unexpected or repeated argument '{extra}'")

    def _key(self) -> tuple:
        return tuple(getattr(self, f) for f in self._compared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._shown)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> list[Any]:
        return [getattr(self, f) for f in self._fields]

    def __setstate__(self, state: list[Any]) -> None:
        for field, value in zip(self._fields, state):
            object.__setattr__(self, field, value)
