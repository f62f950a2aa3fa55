"""Binding call arguments: evaluated values → an op's validated arguments, or a block's parameters.

Validation errors (pydantic's, from pydantic-core) are translated into diagnostics that point at the offending argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import expr as E
from .errors import CnnError, Span, did_you_mean, error
from .ir import BlockDef, Layer, NetworkDef
from .ops.base import Op

if TYPE_CHECKING:
    from pydantic_core import ValidationError


def _plain(v: Any) -> Any:
    """Values as pydantic's strict mode wants them: lists → tuples, symbols → str."""
    if isinstance(v, list):
        return tuple(_plain(x) for x in v)
    if isinstance(v, E.Symbol):
        return str(v)
    return v


def bind_op(cls: type[Op], layer: Layer, env: E.Env) -> Op:
    """Evaluate a layer's arguments and validate them against the op's schema."""
    values: dict[str, Any] = {}
    spans: dict[str, Span | None] = {}
    raw: dict[str, Any] = {}
    if len(layer.args) > len(cls.positional) and not cls.variadic:
        extra = layer.args[len(cls.positional)]
        takes = (f"takes {len(cls.positional)} positional argument(s): " + ", ".join(cls.positional)
                 if cls.positional else "takes no positional arguments")
        raise error(f"{cls.name} {takes}", extra.span or layer.span,
                    "pass the others by name, e.g. " + _example(cls))
    for field_name, arg in zip(cls.positional, layer.args):
        raw[field_name] = E.evaluate(arg, env)
        spans[field_name] = arg.span or layer.span
    rest = layer.args[len(cls.positional) - 1:] if cls.variadic else ()
    if len(rest) > 1 or (rest and not isinstance(raw[cls.positional[-1]], list)):
        # permute(0, 2, 3, 1): the last positional argument collects the rest (a list also works)
        # (its first value is evaluated above already)
        raw[cls.positional[-1]] = [raw[cls.positional[-1]], *(E.evaluate(arg, env) for arg in rest[1:])]
    arguments = cls.arguments()
    for kw in layer.kwargs:
        field_name = cls.aliases.get(kw.name, kw.name)
        if field_name not in arguments:
            names = list(arguments) + list(cls.aliases)
            hint = did_you_mean(kw.name, names) or ("arguments: " + ", ".join(arguments)
                                                     if arguments else f"{cls.name} takes no arguments")
            raise error(f"{cls.name} has no argument '{kw.name}'", kw.span, hint)
        if field_name in raw:
            raise error(f"argument '{field_name}' of {cls.name} is given twice", kw.span,
                        f"'{kw.name}' is another name for '{field_name}'" if kw.name != field_name else None)
        raw[field_name] = E.evaluate(kw.value, env)
        spans[field_name] = kw.value.span or kw.span
    exprs = dict(zip(cls.positional, layer.args if not rest else layer.args[:len(cls.positional) - 1]))
    exprs.update({cls.aliases.get(kw.name, kw.name): kw.value for kw in layer.kwargs})
    for k, v in raw.items():
        values[k] = _plain(v)
    try:
        return cls.model_validate(values)
    except Exception as exc:
        from pydantic_core import ValidationError  # pydantic's; imported only when an argument is wrong

        if not isinstance(exc, ValidationError):
            raise
        raise _translate(exc, cls, raw, spans, layer, env, exprs) from None


def _example(cls: type[Op]) -> str:
    return f"{cls.name}(" + ", ".join(f"{n}=..." for n in list(cls.arguments())[:2]) + ")"


CNN_SPELLING = {"True": "true", "False": "false", "TRUE": "true", "FALSE": "false"}  # Python / YAML habits

_TYPE_WORDS = {
    "int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
    "tuple_type": "a pair [h, w]", "string_type": "a name", "none_type": "none",
    "finite_number": "a finite number",
}


def _translate(exc: "ValidationError", cls: type[Op], raw: dict[str, Any], spans: dict[str, Span | None],
               layer: Layer, env: E.Env, exprs: dict[str, E.Expr]) -> CnnError:
    errors = exc.errors()
    field_name = str(errors[0]["loc"][0]) if errors[0]["loc"] else ""
    same = [e for e in errors if e["loc"] and str(e["loc"][0]) == field_name]
    span = spans.get(field_name, layer.span)
    if errors[0]["type"] == "missing":
        pos = f" (argument {cls.positional.index(field_name) + 1})" if field_name in cls.positional else ""
        return error(f"{cls.name} needs '{field_name}'{pos}", layer.span, "e.g. " + _example(cls))
    value = raw.get(field_name)
    if isinstance(value, E.Symbol) and not any(e["type"] == "literal_error" and
                                               str(value) in str(e.get("ctx", {}).get("expected", ""))
                                               for e in same):
        choices = [c.strip("' ") for e in same if e["type"] == "literal_error"
                   for c in str(e["ctx"]["expected"]).replace(" or ", ",").split(",")]
        hint = did_you_mean(str(value), list(env.names) + choices)
        if str(value) in CNN_SPELLING and not any(e["type"] == "literal_error" for e in same):
            hint = f"write {field_name}={CNN_SPELLING[str(value)]}: the .cnn language spells booleans in lower case"
        if hint is None and choices:
            hint = "choices: " + ", ".join(choices)
        if hint is None:
            hint = ("names available here: " + ", ".join(sorted(env.names)) if env.names else
                    f"'{value}' is not defined; declare it as a parameter, e.g. network Name({value} = ...)")
        return error(f"unknown name '{value}' for argument '{field_name}' of {cls.name}", span, hint)
    wants = []
    for e in same:
        t = e["type"]
        if t in _TYPE_WORDS:
            wants.append(_TYPE_WORDS[t])
        elif t == "literal_error":
            wants.append("one of " + str(e["ctx"]["expected"]))
        elif t in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            sym = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}[t]
            bound = next(iter(e["ctx"].values()))
            wants.append(f"{sym} {bound}")
        else:
            wants.append(e["msg"].lower())
    wants = list(dict.fromkeys(wants))
    shown = E.describe(value) if field_name in raw else "nothing"
    hint = f"see 'cnndsl ops' for the arguments of {cls.name} and their ranges"
    written = exprs.get(field_name)
    if isinstance(written, E.Name) and written.id in env.names and any(
            e["type"] == "literal_error" and f"'{written.id}'" in str(e["ctx"]["expected"]) for e in same):
        hint = (f"'{written.id}' is also the name of a parameter here (= {E.describe(value)}), which takes "
                f"precedence over the option; rename the parameter, or write the option as a string: "
                f"{field_name}=\"{written.id}\"")
    elif isinstance(value, float) and "a whole number" in wants:
        hint = ("use a whole number; in an expression, '//' divides to a whole number and round(...) "
                "rounds")
    return error(f"argument '{field_name}' of {cls.name} must be " + " or ".join(wants) + f", got {shown}",
                 span, hint)


def bind_block(block: BlockDef, layer: Layer, caller_env: E.Env) -> dict[str, Any]:
    """Evaluate a block call's arguments (in the caller's scope) and apply the block's defaults."""
    params = block.params
    given = call_arguments(block, layer, caller_env)
    bound: dict[str, Any] = {}
    for p in params:
        if p.name in given:
            bound[p.name] = given[p.name]
        elif p.default is not None:  # defaults may use earlier parameters and the incoming shape
            bound[p.name] = E.evaluate(p.default, E.Env(bound, caller_env.in_shape))
        else:
            raise error(f"block {block.name} needs a value for '{p.name}'", layer.span,
                        f"e.g. {block.name}({p.name}=...)", notes=[(p.span, "declared here")])
        if isinstance(bound[p.name], E.Symbol):
            v = bound[p.name]
            hint = did_you_mean(str(v), caller_env.names)
            if hint:  # a misspelt parameter name, most likely; plain symbols stay allowed
                raise error(f"unknown name '{v}'", v.span, hint)
    return bound


def call_arguments(block: BlockDef | NetworkDef, layer: Layer, caller_env: E.Env) -> dict[str, Any]:
    """The values a call gives (positional ones in parameter order, then keywords), evaluated in
    the caller's scope; no defaults. Too many, unknown or repeated arguments are errors."""
    params = block.params
    if len(layer.args) > len(params):
        raise error(f"block {block.name} takes {len(params)} argument(s), got {len(layer.args)}",
                    layer.args[len(params)].span or layer.span,
                    f"{block.name}(" + ", ".join(p.name for p in params) + ")",
                    notes=[(block.span, f"{block.name} is defined here")])
    given: dict[str, Any] = {}
    for p, arg in zip(params, layer.args):
        given[p.name] = E.evaluate(arg, caller_env)
    names = {p.name for p in params}
    for kw in layer.kwargs:
        if kw.name not in names:
            raise error(f"block {block.name} has no parameter '{kw.name}'", kw.span,
                        did_you_mean(kw.name, names) or "parameters: " + ", ".join(p.name for p in params),
                        notes=[(block.span, f"{block.name} is defined here")])
        if kw.name in given:
            raise error(f"parameter '{kw.name}' of {block.name} is given twice", kw.span)
        given[kw.name] = E.evaluate(kw.value, caller_env)
    return given


def bind_network_params(net: NetworkDef, overrides: dict[str, Any]) -> dict[str, Any]:
    """Network parameters: defaults in order, replaced by overrides (--set, build(**params))."""
    known = {p.name for p in net.params}
    for name in overrides:
        if name not in known:
            hint = did_you_mean(name, known) or ("parameters: " + ", ".join(sorted(known)) if known
                                                 else f"network {net.name} declares no parameters")
            raise error(f"network {net.name} has no parameter '{name}'", None, hint,
                        notes=[(net.span, f"network {net.name} is declared here")])
    bound: dict[str, Any] = {}
    for p in net.params:
        if p.name in overrides:
            try:
                bound[p.name] = E.check_value(overrides[p.name])
            except CnnError as exc:
                d = exc.diagnostics[0]
                raise error(f"the value given for parameter '{p.name}': {d.message}", None, d.hint,
                            notes=[(p.span, f"'{p.name}' is declared here")]) from None
        elif p.default is not None:
            bound[p.name] = E.evaluate(p.default, E.Env(bound))
        else:
            raise error(f"network {net.name} needs a value for parameter '{p.name}'", p.span,
                        f"pass it with --set {p.name}=VALUE or build(spec, {p.name}=...)")
    return bound
