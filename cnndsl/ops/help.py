"""``cnndsl ops [NAME]``: the built-in ops, or one op's arguments with types, ranges, defaults,
short names, what each means and an example — all read from the op's own class."""

from __future__ import annotations

import inspect
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from .base import REGISTRY, Op

HIDDEN = ("add", "concat", "multiply")  # made by residual / parallel / merge syntax, not called
_SYMBOLS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
_SAMPLES = {"out": 64, "kernel": 3, "features": 256, "size": 7, "groups": 32, "scale": 2}


def _bounds(metadata: Any) -> list[str]:
    out = []
    for m in metadata or ():
        for key, sym in _SYMBOLS.items():
            if getattr(m, key, None) is not None:
                out.append(f"{sym} {getattr(m, key)}")
        out += _bounds(getattr(m, "metadata", None))
    return out


def type_text(annotation: Any, metadata: Any = ()) -> str:
    """A field's type in the words of the language: ``int ≥ 1 or [h, w]``, ``one of zeros, reflect``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        return type_text(base, [*meta, *(metadata or ())])
    if origin in (Union, types.UnionType):
        parts = [type_text(a) for a in get_args(annotation) if a is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return text + (" or none" if type(None) in get_args(annotation) else "")
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(annotation)))
    if origin is tuple and len(get_args(annotation)) == 2 and get_args(annotation)[1] is Ellipsis:
        return "numbers (" + type_text(get_args(annotation)[0]) + ") or a list of them"
    if origin is tuple:
        inner = dict.fromkeys(type_text(a) for a in get_args(annotation))
        return "[h, w] of " + " / ".join(inner) if len(inner) == 1 else "[" + ", ".join(inner) + "]"
    name = {int: "int", float: "number", bool: "true or false", str: "name"}.get(annotation, str(annotation))
    bounds = _bounds(metadata)
    if len(bounds) == 2 and bounds[0][0] in "≥>" and bounds[1][0] in "≤<":  # a range: [0, 1], (0, 1]
        lo, hi = bounds
        return f"{name} in {'[' if lo[0] == '≥' else '('}{lo[2:]}, {hi[2:]}{']' if hi[0] == '≤' else ')'}"
    return f"{name} {' and '.join(bounds)}" if bounds else name


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def field_docs(cls: type[Op]) -> dict[str, str]:
    """The comment after each argument in the op's class body (``out: PosInt  # output channels``)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, Op)):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+)\s*:\s*[^#\n]+#\s*(.+)$", source, re.MULTILINE):
            docs[m.group(1)] = m.group(2).strip()
    return docs


def examples(cls: type[Op]) -> list[str]:
    """The op's ``example`` and the calls quoted in its docstring, else one made from its required
    arguments."""
    doc = cls.__doc__ or ""
    found = [e for e in re.findall(r"``([^`]+)``", doc) if e.startswith(cls.name + "(") or e == cls.name]
    if cls.example:
        found = list(dict.fromkeys([cls.example.split("  ")[-1], *found]))
    if found:
        return found
    fields = cls.model_fields
    required = [f for f in cls.positional if fields[f].is_required()]
    if required:
        return [f"{cls.name}(" + ", ".join(str(_SAMPLES.get(f, 2)) for f in required) + ")"]
    if cls.positional:
        return [cls.name, f"{cls.name}({_shown(fields[cls.positional[0]].default)})"]
    return [cls.name]


def describe(cls: type[Op]) -> str:
    """The full help text of one op."""
    fields, docs = cls.model_fields, field_docs(cls)
    short = {v: k for k, v in cls.aliases.items()}
    doc = " ".join((cls.__doc__ or "").split()).replace("``", "`")
    lines = [f"{cls.name} — {cls.summary}" if cls.summary else cls.name]
    if doc and doc.lower().rstrip(".") not in (cls.summary or "").lower():
        lines.append(f"  {doc}")
    if not fields:
        lines.append("  takes no arguments")
    else:
        rows = []
        for name, info in fields.items():
            label = name + (f" ({short[name]})" if name in short else "")
            if name in cls.positional:
                label += f" #{cls.positional.index(name) + 1}"
            default = "required" if info.is_required() else f"= {_shown(info.default)}"
            rows.append((label, type_text(info.annotation, info.metadata), default, docs.get(name, "")))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines.append("arguments (#N: may be given by position N; short names in parentheses):")
        for r in rows:
            lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else ""))
    lines.append("example" + ("s" if len(examples(cls)) > 1 else "") + ":")
    lines += [f"  {e}" for e in examples(cls)]
    return "\n".join(l.rstrip() for l in lines)


def listing() -> str:
    """One entry per op: its summary and its arguments with defaults (``cnndsl ops``)."""
    out = []
    for name, cls in sorted(REGISTRY.items()):
        if name in HIDDEN:
            continue
        alias = {v: k for k, v in cls.aliases.items()}
        shown = []
        for f, info in cls.model_fields.items():
            text = f if info.is_required() else f"{f}={info.default!r}"
            shown.append(text + (f" ({alias[f]})" if f in alias else ""))
        from ..plugins import origin

        where = origin(name)
        out.append(f"{name:18s} {cls.summary}" + (f"  [plugin: {where}]" if where else ""))
        if shown:
            out.append(f"{'':18s}   {', '.join(shown)}")
    return "\n".join(out)


MERGES_ROW = ("| `add`, `concat`, `multiply` | merges: see [§12](#12-parallel-branches-concat--add--multiply) and "
              "[§13](#13-skip-merges-by-name) | — | — |")


def _md_value(value: Any) -> str:
    return _shown(value) if not isinstance(value, str) else value


def _md_argument(cls: type[Op], name: str, info: Any, short: dict[str, str], doc: str) -> str:
    label = name + (f" ({short[name]})" if name in short else "")
    if info.is_required():
        return f"**{label}**"
    if info.default is None and doc:
        return f"{label} ({doc})"
    text = f"{label}={_md_value(info.default)}"
    inner = get_args(info.annotation) if get_origin(info.annotation) in (Union, types.UnionType) else (info.annotation,)
    choices = [str(c) for a in inner if get_origin(a) is Literal for c in get_args(a) if c != info.default]
    return text + (f" (or {', '.join(f'`{c}`' for c in choices)})" if choices else "")


def markdown() -> str:
    """The op table of docs/language.md (``cnndsl ops --markdown``): one row per op."""
    rows = ["| op | what | positional | arguments (alias) = default |", "|---|---|---|---|"]
    for name, cls in sorted(REGISTRY.items()):
        if name in HIDDEN:
            continue
        short, docs = {v: k for k, v in cls.aliases.items()}, field_docs(cls)
        args = [_md_argument(cls, f, info, short, docs.get(f, "")) for f, info in cls.model_fields.items()
                if not docs.get(f, "").startswith("ignored")]
        positional = ", ".join(cls.positional) + (", …" if cls.variadic else "") or "—"
        summary = re.sub(r"\b((?:torchvision|torch|nn)\.[\w.]*\w(?:\(\d\))?)", r"`\1`", cls.summary)
        rows.append(f"| `{name}` | {summary} | {positional} | {', '.join(args) or '—'} |")
    return "\n".join(rows + [MERGES_ROW])


def lookup(name: str) -> type[Op]:
    """The op called ``name``; a CnnError with a did-you-mean otherwise."""
    from ..errors import did_you_mean, error

    cls = REGISTRY.get(name)
    if cls is None:
        raise error(f"unknown op '{name}'", None, did_you_mean(name, [n for n in REGISTRY if n not in HIDDEN])
                    or "run 'cnndsl ops' for the list of ops")
    return cls
