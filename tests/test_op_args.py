"""An op's arguments have three checks built from its one set of annotations (cnndsl.ops.args):
the pydantic model (help, JSON schema), the pydantic-core validator binding uses (it keeps
pydantic's model machinery out of ``cnndsl check``), and the quick check tried before it (plainly
valid values: no pydantic-core at all). On every registered op the model and the validator must
accept the same values, fill in the same defaults and report the same errors — type, location,
message and context, hence the same diagnostics — and whatever the quick check accepts, the model
accepts with the same values (types included)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

import pytest
from pydantic import Field, ValidationError

from cnndsl.ops import REGISTRY
from cnndsl.ops.args import REQUIRED
from cnndsl.ops.args import Bounds, core_schema, quick_check, validator
from cnndsl.ops.base import Op

OPS = sorted(dict(REGISTRY).items())

POOL: list[Any] = [0, 1, 2, 3, -1, -2, 7, 10_001, 10**7, 0.0, 0.5, 1.0, -0.5, 1e-7, 1e-13, 1.5, 11.0, 1e5, 1e7,
                   math.inf, -math.inf, math.nan, True, False, None, "", "x", "same", "valid", "zeros", "nearest",
                   (), (1,), (1, 2), (0, 0), (3, 3), (2, 0), (-1, 2), (1, 2, 3), (1, 1.5), ("a", 1), (True, 1),
                   (0, 2, 3, 1), (1, -1), [1, 2], {"a": 1}, 10**400, -0.0, (1.0, 2)]


def _literals(hint: Any) -> list[Any]:
    """Every Literal choice inside ``hint`` (so each option and each near miss is tried)."""
    if get_origin(hint) is Literal:
        return list(get_args(hint))
    return [x for a in get_args(hint) for x in _literals(a)]


def _outcome(run, values: dict[str, Any]) -> tuple[str, str]:
    try:
        return "ok", repr(sorted(dict(run(values)).items()))
    except ValidationError as exc:
        return "error", repr((exc.title, exc.errors())) + str(exc)


def _pydantic(cls):
    return lambda values: cls.schema().model_validate(values)


def _fast(cls):
    return cls.validate_arguments


def _base(cls) -> dict[str, Any]:
    """Values for the required arguments that the pydantic model accepts."""
    base: dict[str, Any] = {}
    for name, (hint, default) in cls.arguments().items():
        if default is REQUIRED:
            base[name] = next(v for v in _literals(hint) + POOL if not _errors_at(cls, {**base, name: v}, name))
    return base


def _errors_at(cls, values: dict[str, Any], name: str) -> list[dict]:
    try:
        cls.schema().model_validate(values)
        return []
    except ValidationError as exc:
        return [e for e in exc.errors() if e["loc"][:1] == (name,)]


@pytest.mark.parametrize("name,cls", OPS, ids=[n for n, _ in OPS])
def test_both_validators_agree_on_every_argument(name, cls):
    assert validator(cls.__name__, cls.arguments()) is not None, f"{name}: a type the fast validator lacks"
    base = _base(cls)
    cases = [{}, base, {**base, "no_such_argument": 1}]
    for arg, (hint, _) in cls.arguments().items():
        for value in _literals(hint) + [c + "x" for c in _literals(hint) if isinstance(c, str)] + POOL:
            cases.append({**base, arg: value})
    args = list(cls.arguments())
    for a, b in zip(args, args[1:]):                    # two wrong arguments: errors in the same order
        cases.append({**base, a: "wrong", b: -(10**9)})
    quick = quick_check(cls.arguments())
    assert quick is not None and quick(base) is not None, f"{name}: the quick check refuses a valid call"
    accepted = 0
    for values in cases:
        expected = _outcome(_pydantic(cls), values)
        assert _outcome(_fast(cls), values) == expected, (name, values)
        if quick(values) is not None:
            accepted += 1
            assert expected == ("ok", repr(sorted(quick(values).items()))), (name, values)
    assert accepted > 1


def test_the_fast_schema_is_the_types_pydantic_generates():
    """Spot check of the translation itself (the agreement test above is the real proof)."""
    pos = Annotated[int, Bounds(ge=1)]
    assert core_schema(pos) == {"type": "int", "ge": 1}
    assert core_schema(Optional[Annotated[float, Bounds(ge=0.0, le=1.0, finite=True)]]) == {
        "type": "nullable", "schema": {"type": "float", "ge": 0.0, "le": 1.0, "allow_inf_nan": False}}
    schema = core_schema(Union[pos, tuple[pos, pos], Literal["same"]])
    assert schema["type"] == "union" and [c["type"] for c in schema["choices"]] == ["int", "tuple", "literal"]


class Odd(Op):
    """Not registered: an op as a plugin might write it, with pydantic's own Field."""

    name = "odd_test_op"
    width: Annotated[int, Field(multiple_of=2)] = 2


def test_an_op_with_a_type_only_pydantic_knows_falls_back_to_its_model():
    """A plugin op may annotate with pydantic's own Field: it is validated by its pydantic model."""
    assert validator("Odd", Odd.arguments()) is None
    assert Odd(width=4).width == 4
    with pytest.raises(ValidationError, match="multiple of 2"):
        Odd(width=3)
