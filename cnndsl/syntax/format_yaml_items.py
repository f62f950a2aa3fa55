"""The YAML writer's items: ``_yitem_<kind>`` per construct.

``_yitem_<kind>(self, it, ind)`` returns the item's lines (``ind``: where its ``-`` goes) or, for
an item that is one flow value, that value; called with ``ind=None`` it returns its value (inside
a flow collection). A new construct adds one such method here and ``_item_<kind>`` in
:mod:`cnndsl.syntax.format_items`.
"""

from __future__ import annotations

from typing import Any

from ..backbone.syntax import options
from .spelling import located, module_name, name, ref_path
from .yaml_text import flow, yargs, yexpr

_YAML_RESERVED = frozenset({"name", "repeat", "as", "when", "shortcut", "merge", "group", "residual", "parallel",
                            "from", "concat", "add", "multiply", "backbone", "names"})


class YamlItems:
    """Bodies and items; :class:`cnndsl.syntax.format_yaml._YamlWriter` adds the file and comments."""

    def items(self, body: tuple, ind: str) -> list[str]:
        """The entries of a body, their ``-`` at ``ind``."""
        out = []
        for it in body:
            lines = self.item(it, ind)
            if len(lines) == 1:
                out += self.entry(it, lines[0], ind, getattr(it, "extent", None), len(ind) + 2)
            else:
                out += self.marks(self.notes.of(it).leading, ind) + lines
        return out

    def item(self, it: Any, ind: str) -> list[str]:
        """``_yitem_<kind>(it, ind)`` gives the item's lines, or its value (a leaf: one flow line);
        ``_yitem_<kind>(it, None)`` gives its value, for a flow collection."""
        with located(getattr(it, "span", None)):
            out = getattr(self, f"_yitem_{it.kind}")(it, ind)
            if isinstance(out, list) and len(out) == 1:
                out = self.value(it)  # a construct that fits one line reads back as a flow collection
            lines = out if isinstance(out, list) else [ind + "- " + flow(out)]
        return lines

    def value(self, it: Any) -> Any:
        with located(getattr(it, "span", None)):
            out = getattr(self, f"_yitem_{it.kind}")(it, None)
        return out

    def flat(self, it: Any) -> bool:
        """Whether a construct stays a flow collection on one line: it was one in the YAML source and
        holds no comments."""
        ext = getattr(it, "extent", None)
        return (self.layout and ext is not None and ext.file == self.file and ext.line == ext.end_line
                and not self.notes.any_inside(it))

    def meta(self, it: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if it.name is not None:
            meta["name"] = module_name(it.name, "item")
        if it.repeat is not None:
            meta["repeat"] = yexpr(it.repeat.count)
            if it.repeat.index is not None:
                meta["as"] = name(it.repeat.index, "repeat index")
        if it.when is not None:
            meta["when"] = yexpr(it.when)
        return meta

    def _yitem_from(self, it: Any, ind: str | None) -> Any:
        return {"from": ref_path(it.ref.path)}

    def _yitem_layer(self, it: Any, ind: str | None) -> Any:
        meta, args = self.meta(it), yargs(it)
        op = name(it.op, "layer")
        if args is None and not meta:
            return op  # a bare name is a layer, whatever the name
        if op in _YAML_RESERVED:
            raise ValueError(f"a layer named {op!r} with arguments, a name, repeat or condition cannot be "
                             "written in YAML (as a key it means something else)")
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[op] = args
        return {**d, **meta}

    def _yitem_merge(self, it: Any, ind: str | None) -> Any:
        meta = self.meta(it)
        if not it.refs:
            raise ValueError(f"a {it.merge}(...) merge with no references")
        refs = [ref_path(r.path) for r in it.refs]
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[it.merge] = refs[0] if len(refs) == 1 else refs
        return {**d, **meta}

    def _yitem_split(self, it: Any, ind: str | None) -> Any:
        """``{names: [x1, x2], chunk: 2}`` / ``{names: [a, b], split: [16, 48]}``."""
        meta = self.meta(it)
        args = [yexpr(a) for a in it.args]
        return {"names": [module_name(n, "part") for n in it.names],
                it.how: args[0] if len(args) == 1 and not isinstance(args[0], list) else args, **meta}

    def _yitem_backbone(self, it: Any, ind: str | None) -> Any:
        """``{name: features, backbone: resnet18}``, or the options in a mapping: ``backbone: {model:
        resnet18, weights: DEFAULT, taps: [layer2, layer3], args: {width_per_group: 32}}``."""
        meta = self.meta(it)
        value: Any = dict(options(it))
        if it.args:
            value["args"] = {name(k, "argument"): v for k, v in it.args}
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d["backbone"] = {"model": it.model, **value} if value else it.model
        return {**d, **meta}

    def compound(self, it: Any, ind: str, fields: list[str], body_at: int | None, inner: str = "    ",
                 end: bool = True) -> list[str]:
        """A construct with a body as a list entry: its meta keys, then ``fields`` (whole lines at
        ``ind + '  '``; its first item is ``fields[body_at]``, its items' ``-`` at ``ind + inner``)."""
        lines = [f"{ind}  {k}: {flow(v)}" for k, v in self.meta(it).items()] + fields
        at = None if body_at is None else body_at + len(lines) - len(fields) - 1
        return self.opened(it, ind + "- " + lines[0][len(ind) + 2:], lines[1:], ind + inner, at, it.extent,
                           len(ind) + 2, end)

    def sub(self, key: str, body: tuple, ind: str) -> list[str]:
        """``key:`` and the entries of ``body`` under it (``ind``: where ``key`` goes)."""
        if not body:
            return [f"{ind}{key}: []"]
        return [f"{ind}{key}:", *self.items(body, ind + "  ")]

    def _yitem_group(self, it: Any, ind: str | None) -> Any:
        if ind is None or self.flat(it):
            return {**self.meta(it), "group": [self.value(x) for x in it.body]}
        return self.compound(it, ind, self.sub("group", it.body, ind + "  "), 1 if it.body else None)

    def _yitem_residual(self, it: Any, ind: str | None) -> Any:
        if ind is None or self.flat(it):
            sc = it.shortcut
            value = {**self.meta(it), "residual": [self.value(x) for x in it.body]}
            if sc is not None:
                value["shortcut"] = {**({} if sc.name is None else {"name": module_name(sc.name, "shortcut")}),
                                     **({} if sc.when is None else {"when": yexpr(sc.when)}),
                                     **({"layers": [self.value(x) for x in sc.body]} if sc.body else {})}
            return value
        n = self.notes.of(it)
        lines = self.sub("residual", it.body, ind + "  ") + self.marks(n.end, ind + "    ")
        sc = it.shortcut
        if sc is not None:
            fields = []
            if sc.name is not None:
                fields.append(f"{ind}    name: " + flow(module_name(sc.name, "shortcut")))
            if sc.when is not None:
                fields.append(f"{ind}    when: " + flow(yexpr(sc.when)))
            at = None
            if sc.body:
                at = len(fields) + 1
                fields += self.sub("layers", sc.body, ind + "    ")
            head = f"{ind}  shortcut:" if fields else f"{ind}  shortcut: {{}}"
            lines += self.opened(sc, head, fields, ind + ("      " if sc.body else "    "), at, sc.extent,
                                 len(ind) + 2, after=n.trailing)  # the residual's trailing ones end it
        else:
            lines += self.marks(n.trailing, ind + "    ")
        # its end comments (written above) and its header ones go before the shortcut
        return self.compound(it, ind, lines, 1, end=False)

    def _yitem_parallel(self, it: Any, ind: str | None) -> Any:
        if ind is None or self.flat(it):
            return {**self.meta(it), "merge": it.merge,
                    "parallel": [[self.value(x) for x in b] for b in it.branches]}
        lines = [f"{ind}  merge: {it.merge}", f"{ind}  parallel:"]
        first, carry = None, []
        for b in it.branches:
            if not b:
                lines.append(f"{ind}    - []")
                continue
            sub = carry + self.items(b, ind + "      ")
            # comments after a branch's last entry belong before the next entry, which may come
            # after empty branches: they are carried over those
            last = self.notes.of(b[-1])
            extras = max(len(last.header + last.trailing) - 1, 0) if len(self.item(b[-1], ind)) == 1 else 0
            sub, carry = sub[:len(sub) - extras], sub[len(sub) - extras:]
            at = next(j for j, l in enumerate(sub) if l.startswith(ind + "      - "))
            first = len(lines) + at if first is None else first
            sub[at] = f"{ind}    - " + sub[at][len(ind) + 6:]
            lines += sub
        if not it.branches:
            lines[-1] += " []"
        return self.compound(it, ind, lines + carry, first, "      ")
