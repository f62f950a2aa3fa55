"""Spec IR → YAML text: the YAML twin of :func:`cnndsl.syntax.format.format_cnn`."""

from __future__ import annotations

from typing import Any

from .. import expr as E
from ..backbone.syntax import yaml_backbone, yaml_init
from ..ir import Backbone, BlockDef, From, Group, Layer, Merge, NetworkDef, Parallel, Param, Residual, Spec
from .format import _expr, _keep_imports

_YAML_RESERVED = frozenset({"name", "repeat", "as", "when", "shortcut", "merge", "group", "residual", "parallel",
                            "from", "concat", "add", "multiply", "backbone"})


def format_yaml(spec: Spec, *, imports: bool | None = None) -> str:
    """The YAML twin of :func:`format_cnn` (keys ``imports``, ``blocks``, ``network``, ``train``)."""
    out: list[str] = []
    if _keep_imports(spec, imports) and spec.imports:
        out.append("imports: " + _flow([i.path for i in spec.imports]))
    if spec.blocks:
        lines = ["blocks:"]
        for b in spec.blocks:
            if len(lines) > 1:
                lines.append("")
            lines.append(f"  {_flow(b.name)}:")
            body = _yblock_fields(b)
            lines += ["    " + l for l in body] if body else []
            if not body:
                lines[-1] += " {}"
        out.append("\n".join(lines))
    if spec.network is not None:
        out.append("\n".join(["network:", *("  " + l for l in _ynetwork(spec.network))]))
    if spec.train is not None:
        if not isinstance(spec.train, dict):
            raise ValueError("the train section must be a mapping")
        out.append("\n".join(_ydata("train", spec.train)))
    return "\n\n".join(out) + "\n"


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
            style = '"' if any(c in s for c in "\n\r\x85\u2028\u2029") else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)

        Dumper.add_representer(str, represent_str)
        _DUMPER = Dumper
    return _DUMPER


def _flow(v: Any) -> str:
    """One value in YAML flow style, on one line."""
    import yaml

    text = yaml.dump(v, Dumper=_dumper(), default_flow_style=True, width=1 << 30, sort_keys=False,
                     allow_unicode=True)
    text = text.removesuffix("\n...\n")
    return text.rstrip("\n")


def _ydata(key: str | None, v: Any, width: int = 100) -> list[str]:
    """Plain data: ``key: value`` on one line when it fits, else a block mapping / list."""
    head = "- " if key is None else _flow(key) + ": "
    text = _flow(v)
    if not isinstance(v, (dict, list)) or not v or len(head) + len(text) <= width:
        return [head + text]
    if isinstance(v, dict):
        sub = [l for k, x in v.items() for l in _ydata(k, x, width - 2)]
    else:
        sub = [l for x in v for l in _ydata(None, x, width - 2)]
    if key is None:  # a collection inside a list: its first line shares the '- '
        return ["- " + sub[0], *("  " + l for l in sub[1:])]
    return [head.rstrip(), *("  " + l for l in sub)]


def _yexpr(e: E.Expr) -> Any:
    """An expression as a YAML value: numbers and booleans as scalars, lists and mappings as YAML
    collections, anything else as its expression text (a YAML string is parsed as an expression)."""
    kind = type(e)
    if kind is E.Num:
        return e.value
    if kind is E.Bool:
        return e.value
    if kind is E.ListExpr:
        return [_yexpr(i) for i in e.items]
    if kind is E.MapExpr:
        return {k: _yexpr(v) for k, v in e.items}
    return _expr(e)


def _ypositional(e: E.Expr) -> Any:
    # a mapping among positional arguments would read as the keyword arguments: write it as text
    return _expr(e) if type(e) is E.MapExpr else _yexpr(e)


def _yparams(params: tuple[Param, ...]) -> str:
    return _flow({p.name: None if p.default is None else _yexpr(p.default) for p in params})


def _yblock_fields(b: BlockDef) -> list[str]:
    lines = []
    if b.params:
        lines.append("params: " + _yparams(b.params))
    if b.body:
        lines += ["layers:", *("  " + l for l in _yitems(b.body))]
    return lines


def _ynetwork(net: NetworkDef) -> list[str]:
    lines = ["name: " + _flow(net.name)]
    if net.params:
        lines.append("params: " + _yparams(net.params))
    lines.append("input: " + _flow([_yexpr(d) for d in net.input]))
    if net.body:
        lines += ["layers:", *("  " + l for l in _yitems(net.body))]
    if net.outputs:
        lines.append("outputs: " + _flow([".".join(r.path) for r in net.outputs]))
    if net.freeze:
        lines.append("freeze: " + _flow([p.glob for p in net.freeze]))
    if net.unfreeze:
        lines.append("unfreeze: " + _flow([p.glob for p in net.unfreeze]))
    if net.init is not None:
        lines.append("init: " + _flow(yaml_init(net.init)))
    return lines


def _yitems(body: tuple) -> list[str]:
    return [l for it in body for l in _yitem(it)]


def _ymeta(it: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if it.name is not None:
        meta["name"] = it.name
    if it.repeat is not None:
        meta["repeat"] = _yexpr(it.repeat.count)
        if it.repeat.index is not None:
            meta["as"] = it.repeat.index
    if it.when is not None:
        meta["when"] = _yexpr(it.when)
    return meta


def _yitem(it: Any) -> list[str]:
    """A list entry: the first line starts with '- ', the rest with two spaces."""
    if isinstance(it, From):
        return ["- " + _flow({"from": ".".join(it.ref.path)})]
    meta = _ymeta(it)
    if isinstance(it, Layer):
        args = _yargs(it)
        if args is None and not meta:
            return ["- " + _flow(it.op)]  # a bare name is a layer, whatever the name
        if it.op in _YAML_RESERVED:
            raise ValueError(f"a layer named {it.op!r} with arguments, a name, repeat or condition cannot be "
                             "written in YAML (as a key it means something else)")
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[it.op] = args
        d.update(meta)
        return ["- " + _flow(d)]
    if isinstance(it, Backbone):
        return ["- " + _flow(_ybackbone(it, meta))]
    if isinstance(it, Merge):
        refs = [".".join(r.path) for r in it.refs]
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[it.merge] = refs[0] if len(refs) == 1 else refs
        d.update(meta)
        return ["- " + _flow(d)]
    lines = [f"{k}: {_flow(v)}" for k, v in meta.items()]
    if isinstance(it, Group):
        lines += _ysub("group", it.body)
    elif isinstance(it, Residual):
        lines += _ysub("residual", it.body)
        sc = it.shortcut
        if sc is not None:
            fields = []
            if sc.name is not None:
                fields.append("name: " + _flow(sc.name))
            if sc.when is not None:
                fields.append("when: " + _flow(_yexpr(sc.when)))
            if sc.body:
                fields += _ysub("layers", sc.body)
            lines += ["shortcut:", *("  " + l for l in fields)] if fields else ["shortcut: {}"]
    elif isinstance(it, Parallel):
        lines.append("merge: " + it.merge)
        branches = []
        for b in it.branches:
            sub = _yitems(b)
            branches += ["- " + sub[0], *("  " + l for l in sub[1:])] if sub else ["- []"]
        lines += ["parallel:", *("  " + l for l in branches)] if branches else ["parallel: []"]
    else:  # pragma: no cover
        raise TypeError(f"not an item: {it!r}")
    return ["- " + lines[0], *("  " + l for l in lines[1:])]


def _ysub(key: str, body: tuple) -> list[str]:
    if not body:
        return [f"{key}: []"]
    return [f"{key}:", *("  " + l for l in _yitems(body))]


def _yargs(it: Layer) -> Any:
    """``null`` → none; a value → one positional; a list → positionals (+ a final keyword mapping);
    a mapping → keywords (the forms yaml_load.call_args reads)."""
    kwargs = {k.name: _yexpr(k.value) for k in it.kwargs}
    if not it.args:
        return kwargs or None
    if len(it.args) == 1 and not kwargs and type(it.args[0]) not in (E.ListExpr, E.MapExpr):
        return _yexpr(it.args[0])
    values = [_ypositional(a) for a in it.args]
    return values + [kwargs] if kwargs else values


def _ybackbone(it: Backbone, meta: dict[str, Any]) -> dict[str, Any]:
    """``{name: features, backbone: {model: resnet18, weights: DEFAULT}}`` (the item's flow mapping)."""
    d = {"name": meta.pop("name")} if "name" in meta else {}
    d["backbone"] = yaml_backbone(it)
    d.update(meta)
    return d
