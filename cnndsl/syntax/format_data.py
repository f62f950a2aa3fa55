"""Plain data (the train section's values) as ``.cnn`` expressions that evaluate back to it."""

from __future__ import annotations

from typing import Any

from .. import expr as E
from .spelling import IDENT, KEYWORDS, expr_text, key, quote

INDENT = "    "
DATA_WIDTH = 100  # a value longer than this (with its key) is broken over lines


def format_value(v: Any) -> str:
    """A plain value (train section data) as a .cnn expression that evaluates back to it."""
    if v is None:
        raise ValueError("null has no spelling in .cnn (leave the key out)")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return expr_text(E.Num(v))
    if isinstance(v, str):
        return v if IDENT.match(v) and v not in KEYWORDS else quote(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        call = as_call(v)
        if call is not None:
            return call
        return "{" + ", ".join(f"{data_key(k)}: {format_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write a {type(v).__name__} in a spec")


def data_key(k: Any) -> str:
    if not isinstance(k, str):
        raise ValueError(f"train keys must be names, got {k!r}")  # noqa: TRY004 - unwritable: ValueError
    return key(k)


def as_call(v: dict) -> str | None:
    """``{type: sgd, lr: 0.1}`` → ``sgd(lr = 0.1)`` when the call reads back as that mapping."""
    t = v.get("type")
    if not isinstance(t, str) or not IDENT.match(t) or t in KEYWORDS or t in E.FUNCTIONS:
        return None
    args = v.get("args", None)
    if "args" in v and (not isinstance(args, list) or not args):
        return None  # a call writes "args" only for a non-empty positional list
    kwargs = [(k, x) for k, x in v.items() if k not in ("type", "args")]
    if not all(isinstance(k, str) and IDENT.match(k) for k, _ in kwargs):
        return None
    parts = [format_value(a) for a in (args or [])] + [f"{k} = {format_value(x)}" for k, x in kwargs]
    return f"{t}(" + ", ".join(parts) + ")"


def entry_lines(d: dict, indent: str) -> list[str]:
    """``key: value`` lines of a mapping (no braces); a comma ends an entry whose next key is a
    keyword (``if``, ``network``), which could otherwise continue or end the value."""
    keys = list(d)
    lines = []
    for i, (k, x) in enumerate(d.items()):
        line = f"{indent}{data_key(k)}: {data(x, indent, len(indent) + len(str(k)) + 2)}"
        lines.append(line + "," if i + 1 < len(keys) and keys[i + 1] in KEYWORDS else line)
    return lines


def data_block(d: dict, indent: str) -> str:
    """A mapping as a ``{ ... }`` block, one key per line."""
    if not d:
        return "{}"
    return "{\n" + "\n".join(entry_lines(d, indent + INDENT)) + "\n" + indent + "}"


def data(v: Any, indent: str, used: int) -> str:
    """A value on one line when it fits (``used`` columns are taken before it), else broken over
    lines: a mapping one key per line, a list or a call's arguments one per line."""
    text = format_value(v)
    if used + len(text) <= DATA_WIDTH or not isinstance(v, (dict, list)) or not v:
        return text
    if isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v):
        return text  # a list of plain values stays on its line
    inner = indent + INDENT
    if isinstance(v, list):
        return "[\n" + "".join(f"{inner}{data(x, inner, len(inner))},\n" for x in v) + indent + "]"
    call = as_call(v)
    if call is None:
        return data_block(v, indent)
    parts = [data(a, inner, len(inner)) for a in v.get("args") or []]
    parts += [f"{k} = {data(x, inner, len(inner) + len(k) + 3)}" for k, x in v.items() if k not in ("type", "args")]
    return f"{v['type']}(\n" + "".join(f"{inner}{p},\n" for p in parts) + indent + ")"
