"""Hints for unknown keys in a train section: say where a key belongs, not only what it resembles.

``lr: 0.01`` at the top of ``train`` is not a typo of ``lr``: it is an optimizer argument, so the
hint shows ``optimizer: sgd(lr = 0.01)``. ``adam(momentum = 0.9)`` is answered with adam's own
arguments and its counterpart (``betas``). Pure schema introspection; no torch.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from cnndsl.errors import CnnError, did_you_mean, error

from . import config as C

# (kind, key) → what that kind has instead
COUNTERPARTS: dict[tuple[str, str], str] = {
    ("adam", "momentum"): "adam's momentum is its first beta: adam(betas = [0.9, 0.999])",
    ("adamw", "momentum"): "adamw's momentum is its first beta: adamw(betas = [0.9, 0.999])",
    ("adam", "nesterov"): "adam has no Nesterov variant here; use sgd(momentum = 0.9, nesterov = true)",
    ("sgd", "betas"): "betas belong to adam / adamw; sgd's counterpart is momentum = 0.9",
}


def models_of(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field can hold (through Annotated, unions, lists, optionals)."""
    out: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        a = stack.pop(0)
        origin = get_origin(a)
        if origin is Annotated:
            stack.append(get_args(a)[0])
        elif origin in (Union, types.UnionType, list, tuple):
            stack.extend(get_args(a))
        elif isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
    return out


def tags(model: type[BaseModel]) -> tuple[str, ...]:
    """The kind names (``type`` literals) of a call model: ``("adam", "adamw")``."""
    f = model.model_fields.get("type")
    return tuple(get_args(f.annotation)) if f is not None else ()


def _is_list(field: str) -> bool:
    """Whether a train key holds a list (``augment``, ``param_groups``)."""
    a = C.TrainConfig.model_fields[field].annotation
    while get_origin(a) is Annotated:
        a = get_args(a)[0]
    return get_origin(a) is list


def resolve(loc: tuple) -> tuple[type[BaseModel], list[type[BaseModel]], str | None, tuple]:
    """For a pydantic error location: the model that holds its last key, the kinds of the same
    union (its siblings), the chosen kind's name, and the location without union tags."""
    model: type[BaseModel] = C.TrainConfig
    kinds: list[type[BaseModel]] = [model]
    kind: str | None = None
    rest, plain = list(loc[:-1]), []
    while rest:
        key = rest.pop(0)
        plain.append(key)
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            break
        kinds = models_of(field.annotation)
        while rest and isinstance(rest[0], int):  # list index
            plain.append(rest.pop(0))
        if rest and any(rest[0] in tags(m) for m in kinds):
            kind = rest.pop(0)
            model = next(m for m in kinds if kind in tags(m))
        elif len(kinds) == 1:
            model, kind = kinds[0], (tags(kinds[0]) or (None,))[0]
        else:
            break
    return model, kinds, kind, (*plain, *rest, *loc[-1:])


_WANTS = {"int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
          "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
          "bool_type": "true or false", "string_type": "a string", "list_type": "a list [...]",
          "tuple_type": "a list [...]", "dict_type": "a mapping {...}", "model_type": "a mapping {...}",
          "finite_number": "a finite number"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}


def explain(err: dict[str, Any], path: tuple, raw: Any = None, yaml: bool = False) -> tuple[str, str | None]:
    """A pydantic error → (message, hint) in the words of the train section."""
    kind, ctx = err["type"], err.get("ctx") or {}
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        return unknown_key(loc, path, raw, yaml)
    _, _, call, plain = resolve(loc) if loc else (None, None, None, ())
    where = "train" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in plain)
    if kind == "union_tag_invalid":
        tag, expected = ctx.get("tag"), str(ctx.get("expected_tags", ""))
        choices = [t.strip(" '") for t in expected.split(",")]
        return (f"{where}: unknown kind '{tag}'",
                did_you_mean(str(tag), choices) or f"choices: {', '.join(choices)}")
    if kind == "missing":
        key = str(loc[-1]) if loc else ""
        if len(plain) == 1:
            return f"{where} is required", f"e.g. {key}: mnist5k" if key == "data" else "see docs/training.md"
        example = f"{{type: {call}, {key}: ...}}" if yaml else f"{call}({key} = ...)"
        return f"{where} is required", f"{call} needs '{key}', e.g. {example}" if call else "see docs/training.md"
    got = err.get("input")
    shown = f'"{got}"' if isinstance(got, str) else _show(got) if not isinstance(got, dict) else "a mapping"
    if kind in _WANTS:
        return f"{where} must be {_WANTS[kind]}, got {shown}", None
    if kind in _BOUNDS:
        return f"{where} must be {_BOUNDS[kind]} {_show(next(iter(ctx.values())))}, got {shown}", None
    if kind == "literal_error":
        return f"{where} must be one of {ctx.get('expected')}, got {shown}", did_you_mean(
            str(got), [c.strip(" '") for c in str(ctx.get("expected", "")).replace(" or ", ",").split(",")])
    return f"{where}: {err['msg'].removeprefix('Value error, ')}", None


def _show(value: Any) -> str:
    """A value as written in a spec."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.isidentifier() else f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))   # a bound of a float field: "> 0", not "> 0.0"
    return repr(value) if value is not None else "..."


def _example(field: str, kind: str, key: str, value: Any, yaml: bool) -> str:
    """``optimizer: sgd(lr = 0.01)`` (or its YAML form)."""
    call = f"{{type: {kind}, {key}: {_show(value)}}}" if yaml else f"{kind}({key} = {_show(value)})"
    return f"{field}: [{call}]" if _is_list(field) else f"{field}: {call}"


def _home(key: str, raw: dict) -> tuple[str, str] | None:
    """(train key, kind) of the first call value that takes ``key`` — the raw section's own kind
    when it takes it (``optimizer: adam`` → adam), else the first kind that does."""
    for field, info in C.TrainConfig.model_fields.items():
        for m in models_of(info.annotation):
            if key in m.model_fields and tags(m):
                current = raw.get(field) if isinstance(raw, dict) else None
                current = current.get("type") if isinstance(current, dict) else current
                for other in models_of(info.annotation):
                    if isinstance(current, str) and current in tags(other) and key in other.model_fields:
                        return field, current
                return field, tags(m)[0]
    return None


def unknown_key(loc: tuple, path: tuple, raw: Any, yaml: bool = False) -> tuple[str, str]:
    """(message, hint) for an ``extra_forbidden`` error at ``loc`` (raw key path ``path``)."""
    key = str(loc[-1])
    inside = ".".join(["train", *map(str, path[:-1])])
    message = f"unknown key '{key}' in {inside}"
    model, kinds, kind, _ = resolve(loc)
    own = [f for f in model.model_fields if f != "type"]
    close = did_you_mean(key, own)
    if close:
        return message, close
    if model is C.TrainConfig:
        home = _home(key, raw if isinstance(raw, dict) else {})
        if home:
            field, call = home
            value = raw.get(key) if isinstance(raw, dict) else None
            current = raw.get(field) if isinstance(raw, dict) else None
            current = current.get("type") if isinstance(current, dict) else current
            extra = COUNTERPARTS.get((current, key)) if isinstance(current, str) else None
            return message, (f"'{key}' is not a key of train; it is an argument of {field}: "
                             f"{_example(field, call, key, value, yaml)}" + (f" ({extra})" if extra else ""))
        return message, "see docs/training.md for the keys of the train section"
    holders = [t for m in kinds if m is not model and key in m.model_fields for t in tags(m)]
    name = kind or inside
    counterpart = COUNTERPARTS.get((kind or "", key))
    takes = f"{name} takes " + ", ".join(own) if own else f"{name} takes no arguments"
    if holders:
        have = f"{' and '.join(holders)} {'has' if len(holders) == 1 else 'have'} it"
        return message, f"{name} has no '{key}' ({have}); " + (counterpart or takes)
    return message, counterpart or takes


def _span_path(raw: Any, loc: tuple) -> tuple:
    """Map a pydantic error location onto keys of the raw dict (dropping union tags)."""
    path: list = []
    node = raw
    for key in loc:
        if isinstance(node, dict):
            if key in node:
                path.append(key)
                node = node[key]
            elif node.get("type") == key:
                continue  # discriminator tag inserted by pydantic
            else:
                break
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            path.append(key)
            node = node[key]
        elif isinstance(node, str) and key == node:
            continue
        else:
            break
    return tuple(path)


def diagnose(exc: Any, raw: dict, spec: Any = None, overrides: dict[str, Any] | None = None) -> CnnError:
    """A pydantic ValidationError of the train section → one diagnostic per problem (at most 5),
    each at the spec's value or naming the ``--set`` flag that gave it."""
    diags = []
    yaml = str(getattr(spec, "path", None) or "").endswith((".yaml", ".yml"))
    for err in exc.errors()[:5]:
        path = _span_path(raw, tuple(err["loc"]))
        span = None
        if spec is not None:
            for cut in range(len(path), -1, -1):  # the closest key that has a position
                span = spec.train_span(path[:cut]) if cut else None
                if span is not None:
                    break
        msg, hint = explain(err, path, raw, yaml)
        flag = C.override_flag(".".join(str(p) for p in path), overrides)
        if flag:  # the value comes from the command line: name the flag; point at the spec's
            msg, span = f"{msg} (from {flag})", C.written_span(spec, path)  # value only if it has one
        diags.append(error(msg, span, hint).diagnostics[0])
    return CnnError(diags)
