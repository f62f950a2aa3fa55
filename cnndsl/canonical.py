"""The canonical form of a spec: syntax-independent plain data, for equality and hashing.

Positional arguments become keyword arguments named after the op's fields or the block's
parameters, short aliases become full names (``k`` → ``kernel``), and source spans are dropped.
A spec written in ``.cnn`` and in YAML has one canonical form.
"""

from __future__ import annotations

from typing import Any

from .backbone.syntax import canonical_backbone, canonical_init
from .expr import format_expr
from .ops import REGISTRY


def canonical_spec(spec) -> dict[str, Any]:
    blocks = {b.name: b for b in spec.blocks}

    def layer(item) -> dict[str, Any]:
        cls = REGISTRY.get(item.op)
        block = blocks.get(item.op)
        if cls is not None:
            names, aliases = list(cls.positional), cls.aliases
        elif block is not None:
            names, aliases = [p.name for p in block.params], {}
        else:
            names, aliases = [], {}
        args: dict[str, str] = {}
        extra = []
        for i, a in enumerate(item.args):
            if i < len(names):
                args[names[i]] = format_expr(a)
            else:
                extra.append(format_expr(a))
        for kw in item.kwargs:
            args[aliases.get(kw.name, kw.name)] = format_expr(kw.value)
        out: dict[str, Any] = {"op": item.op, "args": dict(sorted(args.items()))}
        if extra:
            out["extra_args"] = extra
        return out

    def items(body) -> list[dict[str, Any]]:
        return [one(i) for i in body]

    def one(item) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": item.kind}
        if item.kind == "from":
            d["ref"] = list(item.ref.path)
            return d
        for key in ("name",):
            if getattr(item, key) is not None:
                d[key] = getattr(item, key)
        if item.when is not None:
            d["when"] = format_expr(item.when)
        if item.repeat is not None:
            d["repeat"] = {"count": format_expr(item.repeat.count), "index": item.repeat.index}
        if item.kind == "layer":
            d.update(layer(item))
        elif item.kind == "group":
            d["body"] = items(item.body)
        elif item.kind == "residual":
            d["body"] = items(item.body)
            sc = item.shortcut
            if sc is not None:
                d["shortcut"] = {"name": sc.name, "when": None if sc.when is None else format_expr(sc.when),
                                 "body": items(sc.body)}
        elif item.kind == "parallel":
            d["merge"] = item.merge
            d["branches"] = [items(b) for b in item.branches]
        elif item.kind == "merge":
            d["merge"] = item.merge
            d["refs"] = [list(r.path) for r in item.refs]
        elif item.kind == "backbone":
            d.update(canonical_backbone(item))
        return d

    def params(ps) -> list[list[Any]]:
        return [[p.name, None if p.default is None else format_expr(p.default)] for p in ps]

    out: dict[str, Any] = {
        "blocks": {b.name: {"params": params(b.params), "body": items(b.body)}
                   for b in sorted(spec.blocks, key=lambda b: b.name)},
        "train": spec.train,
    }
    net = spec.network
    if net is not None:
        out["network"] = {
            "name": net.name, "params": params(net.params), "input": [format_expr(e) for e in net.input],
            "body": items(net.body), "outputs": [list(r.path) for r in net.outputs],
            "freeze": [p.glob for p in net.freeze], "unfreeze": [p.glob for p in net.unfreeze],
        }
        if net.init is not None:  # only when present: the hashes of specs without it stay as they were
            out["network"]["init"] = canonical_init(net.init)
    return out
