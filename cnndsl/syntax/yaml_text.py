"""Spelling values in YAML: flow text, keys, comments, expressions and call arguments."""

from __future__ import annotations

from typing import Any

from .. import expr as E
from ..ir import Param
from .spelling import check_text, expr_text, name
from .trivia import Comment

SIMPLE_KEY = 128   # longer keys are written as explicit keys (`? key`)
DATA_WIDTH = 100   # a train value longer than this is written as a block collection

_DUMPER = None


def _dumper():
    """A SafeDumper that writes strings holding line breaks double-quoted (one line, escaped)."""
    global _DUMPER
    if _DUMPER is None:
        import yaml  # PyYAML is imported only when YAML is written

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data):  # the loader refuses anchors: write shared values out
                return True

        def represent_str(dumper, s):
            check_text(s.replace("\x00", ""))  # a NUL is escaped; a lone surrogate cannot be written
            style = '"' if any(c in s for c in "\n\r\x85\u2028\u2029") else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)

        Dumper.add_representer(str, represent_str)
        _DUMPER = Dumper
    return _DUMPER


def flow(v: Any) -> str:
    """One value in YAML flow style, on one line."""
    import yaml

    text = yaml.dump(v, Dumper=_dumper(), default_flow_style=True, width=1 << 30, sort_keys=False,
                     allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def keyed(key: Any, value: str | None, nested: list[str] = ()) -> list[str]:
    """``key: value`` (or ``key:`` and the nested lines); an explicit ``? key`` when it is long."""
    k = flow(key)
    tail = [] if value is None else [value]
    if len(k) <= SIMPLE_KEY:
        return [" ".join([k + ":", *tail]), *nested]
    return [f"? {k}", " ".join([":", *tail]), *nested]


def comment_text(c: Comment) -> str:
    """A comment as YAML can hold it: characters YAML reads as line breaks or refuses are escaped."""
    return "".join(ch if ch == "\t" or (" " <= ch <= "~") or ("\xa0" <= ch <= "\ud7ff")
                   or ("\ue000" <= ch <= "\ufffd") or ch >= "\U00010000" else f"\\u{ord(ch):04x}" for ch in c.text)


def yaml_data(key: Any, v: Any, width: int = DATA_WIDTH) -> list[str]:
    """Plain data: ``key: value`` on one line when it fits, else a block mapping / list."""
    text = flow(v)
    if key is None:
        head = "- "
    else:
        head = flow(key) + ": "
        if len(head) - 2 > SIMPLE_KEY:
            head = "? " + head[:-2] + "\n: "
    if not isinstance(v, (dict, list)) or not v or len(head) + len(text) <= width:
        return (head + text).split("\n")
    if isinstance(v, dict):
        sub = [l for k, x in v.items() for l in yaml_data(k, x, width - 2)]
    else:
        sub = [l for x in v for l in yaml_data(None, x, width - 2)]
    if key is None:  # a collection inside a list: its first line shares the '- '
        return ["- " + sub[0], *("  " + l for l in sub[1:])]
    return [*head.rstrip().split("\n"), *("  " + l for l in sub)]


def yexpr(e: E.Expr) -> Any:
    """An expression as a YAML value: numbers and booleans as scalars, lists and mappings as YAML
    collections, anything else as its expression text (a YAML string is parsed as an expression)."""
    kind = type(e)
    if kind is E.Num or kind is E.Bool:
        return e.value
    if kind is E.ListExpr:
        return [yexpr(i) for i in e.items]
    if kind is E.MapExpr:
        return {k: yexpr(v) for k, v in e.items}
    return expr_text(e)


def ypositional(e: E.Expr) -> Any:
    # a mapping among positional arguments would read as the keyword arguments: write it as text
    return expr_text(e) if type(e) is E.MapExpr else yexpr(e)


def yparams(params: tuple[Param, ...]) -> str:
    return flow({name(p.name, "parameter"): None if p.default is None else yexpr(p.default) for p in params})


def yargs(it: Any) -> Any:
    """``null`` → none; a value → one positional; a list → positionals (+ a final keyword mapping);
    a mapping → keywords (the forms yaml_load.call_args reads)."""
    kwargs = {name(k.name, "argument"): yexpr(k.value) for k in it.kwargs}
    if not it.args:
        return kwargs or None
    if len(it.args) == 1 and not kwargs and type(it.args[0]) not in (E.ListExpr, E.MapExpr):
        return yexpr(it.args[0])
    values = [ypositional(a) for a in it.args]
    return values + [kwargs] if kwargs else values
