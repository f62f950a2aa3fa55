"""Graph → standalone PyTorch source a person would keep (``cnndsl compile SPEC --emit python``).

``python_source(analysis, spec=spec)`` returns the text of a Python file that depends only on
torch, laid out like torchvision's ``models/resnet.py``:

* one class per block definition (``class BasicBlock(nn.Module)``, or an ``nn.Sequential``
  subclass for a plain chain), whose constructor takes the block's parameters — and
  ``in_channels`` where a value depends on the incoming channels — with every layer's
  arguments written as expressions of them (``nn.Conv2d(in_channels, planes, kernel_size=3,
  stride=stride, padding=1, bias=False)``), the block's own expressions first (``bn_size *
  growth``); a block whose instances differ in structure (a ``when``) gives one class per structure;
* no argument a class does not honour: each block parameter (and ``in_channels``) is proven by
  expanding the block at another value (:mod:`.py_probe`); others are fixed, named in its docstring;
* a block that is one repeat of another, as a loop registering the same names (:mod:`.py_loop`:
  ``self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth, growth))``);
* stages that are chains as ``nn.Sequential`` (``model.layer1[0]`` works), other named containers
  as small classes; each container runs its own ``forward`` with the rule of
  :mod:`cnndsl.emit.scopes` (inputs in first-read order; returns ``(output, *escaping values)``);
* the network class, taking the network's parameters with the spec's values as defaults
  (``ResNet18(num_classes=10)`` builds what ``cnndsl.build(spec, num_classes=10)`` builds) — a
  parameter becomes a constructor argument only when expanding the spec at another value changes
  nothing but values the class computes from it (checked here, by expanding it);
* short ``forward`` methods with the output shape as a comment on every line.

``state_dict`` keys and shapes equal ``cnndsl.build``'s, so ``load_state_dict(..., strict=True)``
works and outputs are equal. Text that comes from the spec reaches the file only through
:mod:`cnndsl.emit.py_text` (``repr`` literals, inert comments, one helper for module names), so no
spec can add a statement. Nothing here executes generated code.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any

from ..analysis import Analysis
from . import py_text as T
from .py_classes import ClassDef, Classes, NoUnify, call_args
from .py_layout import CallExpr, Expr, class_call, lay_out, with_comment
from .py_leaf import RUNTIME_NAMES, written_args
from .py_loop import NoLoop, loop_lines
from .py_parts import (EMPTY, Call, GraphParts, Instance, Leaf, Param, Part, Raw, Seq, forget_lowered, network_body,
                       python_name, shape_text)
from .py_probe import BlockClass, alternatives, fixed_block_params

__all__ = ["RUNTIME_NAMES", "BlockClass", "python_source"]


def python_source(analysis: Analysis, *, class_name: str | None = None, source: str | None = None,
                  spec: Any = None, blocks: dict[str, BlockClass] | None = None) -> str:
    """The source of a standalone PyTorch file defining the network of ``analysis``.

    ``spec`` (the :class:`cnndsl.ir.Spec` the analysis was expanded from) lets the network's
    parameters become constructor arguments; without it they are fixed at their values.
    ``class_name`` defaults to the network's name; ``source`` (for the header) to the spec's file.
    ``blocks``, when given, receives each block class's name → :class:`BlockClass` (where its first
    instance is and the arguments that build it).
    """
    from ..plugins import origin

    for node in analysis.graph.nodes[1:]:
        if node.op is not None and origin(node.op.name) is not None:
            from ..errors import error

            raise error(f"--emit python cannot write the plugin op '{node.op.name}' ({origin(node.op.name)})",
                        node.span, "build it with cnndsl.build(...), or export it")
    no_loops: frozenset[str] = frozenset()
    try:
        while True:
            try:
                fixed, probes = _block_params(analysis, spec, no_loops)
                free, others, idle = _free_params(analysis, spec, fixed, probes, no_loops)
                writer = _Writer(analysis, free, others, class_name, source, idle, fixed, probes,
                                 no_loops=no_loops, body=network_body(spec))
                text = writer.run()
                break
            except NoLoop as exc:  # a block written as a loop that its classes cannot take: unrolled
                no_loops |= {exc.args[0]}
    finally:
        forget_lowered()
    if blocks is not None:
        for c in writer.classes.order:
            if c.kind == "block":
                found = [BlockClass(i.path, tuple(i.in_shape), {n: v for n, v, _ in call_args(writer.classes, i)},
                                    tuple(c.keyword_only)) for i in c.instances if not i.probe][:3]
                blocks[c.name] = dataclasses.replace(found[0], others=tuple(found[1:]))
    return text


def _block_params(analysis: Analysis, spec: Any, no_loops: frozenset[str]) -> tuple[dict[tuple, set[str]], list]:
    """The block parameters each class cannot take, and the probes proving those it takes
    (:mod:`cnndsl.emit.py_probe`)."""
    base = _Writer(analysis, [], [], None, None, no_loops=no_loops)
    classes = base.classes_only()
    if spec is None:  # the blocks the network uses are all a probe needs
        from ..ir import Spec

        blocks = {c.block.name: c.block for c in analysis.graph.containers.values() if c.block is not None}
        spec = Spec(blocks=tuple(blocks.values()))

    def classes_of(fixed: dict[tuple, set[str]], probes: list) -> Classes:
        return _Writer(analysis, [], [], None, None, fixed=fixed, probes=probes, parts=base.parts).classes_only()

    return fixed_block_params(spec, base.main.graph, classes_of, classes, no_loops)


# ----------------------------------------------------------------------------- network parameters


def _perturbed(value: Any) -> Any:
    """The other value a numeric network parameter is tried at (py_probe's first alternative)."""
    return None if isinstance(value, bool) else next(iter(alternatives(value)), None)


def _free_params(analysis: Analysis, spec: Any, fixed: dict[tuple, set[str]], probes: list,
                 no_loops: frozenset[str]) -> tuple[list[str], list[Analysis], list[str]]:
    """Network parameters that can be constructor arguments, with the expansions that prove it, and
    those the classes do not depend on at all (``size`` of a fully convolutional network)."""
    g = analysis.graph
    if spec is None or spec.network is None or not g.params:
        return [], [], []
    from ..analysis import analyze_graph
    from ..errors import CnnError
    from ..expand import Expander, Limits

    others: dict[str, Analysis] = {}
    for name, value in g.params.items():
        new = _perturbed(value)
        if new is None:
            continue
        try:
            other = analyze_graph(Expander(spec, Limits()).run({**g.params, name: new}))
            _Writer(analysis, [name], [other], None, None, fixed=fixed, probes=probes, no_loops=no_loops,
                    body=network_body(spec)).classes_only()
        except (CnnError, NoUnify, NoLoop, NotImplementedError, ValueError, TypeError, RuntimeError):
            continue   # (NoLoop: a loop's fixed parameter would vary with it)
        others[name] = other
    names = list(others)
    while names:
        try:
            writer = _Writer(analysis, names, [others[n] for n in names], None, None, fixed=fixed, probes=probes,
                             no_loops=no_loops, body=network_body(spec))
            writer.classes_only()
            used = writer.used_params()
            idle = [n for n in names if python_name(n) not in used]
            names = [n for n in names if python_name(n) in used]
            return names, [others[n] for n in names], idle
        except (NoUnify, NoLoop):
            names.pop()
    return [], [], []


# ----------------------------------------------------------------------------- the writer


class _Writer:
    def __init__(self, analysis: Analysis, free: list[str], others: list[Analysis], class_name: str | None,
                 source: str | None, idle: list[str] = (), fixed: dict[tuple, set[str]] | None = None,
                 probes: list = (), parts: list[GraphParts] | None = None, no_loops: frozenset[str] = frozenset(),
                 body: Any = ()):
        self.analysis, self.graph = analysis, analysis.graph
        self.free = free
        self.idle = list(idle)           # parameters the classes do not depend on
        self.fixed, self.probes = fixed or {}, list(probes)   # block parameters: see py_probe
        self.parts = parts or [GraphParts(a, free, no_loops, body) for a in (analysis, *others)]
        self.main = self.parts[0]
        net = T.class_name(class_name or self.graph.name or "Network", "Network")
        if net in T.RESERVED or net in RUNTIME_NAMES:
            net += "Net"
        self.class_name = net
        span = self.graph.input.span
        self.source = source if source is not None else (span.file if span is not None else None)

    def classes_only(self) -> Classes:
        classes = Classes(set(RUNTIME_NAMES), self.fixed)
        classes.taken.add(self.class_name)
        for p in self.parts:
            p.root.label = self.class_name
            classes.add(p.root)
        for probe in self.probes:
            classes.add(probe)
        classes.finish()
        roots = {id(classes.of(p.root)) for p in self.parts}
        if len(roots) != 1:
            raise NoUnify("the network's structure depends on a parameter")
        self.classes = classes
        return classes

    def used_params(self) -> set[str]:
        root = self.classes.of(self.main.root)
        used: set[str] = set()
        for text, symbolic in root.slots:
            if symbolic:
                used |= T.names_in(text)
        return used

    def run(self) -> str:
        self.classes_only()
        from .py_backbone import imports

        sources = {p.source for c in self.classes.order for i in c.instances[:1] for _, p in _walk(i.children)
                   if isinstance(p, Raw)}
        self.needs = " and ".join(["torch", *sorted(sources)])
        plain, froms = imports(sources)
        out = self._header() + ["import torch", *plain, "from torch import nn", *froms, "", ""]
        for cls in self._copied():
            out += inspect.getsource(cls).splitlines() + ["", ""]
        for c in self.classes.order:
            out += self._class(c) + ["", ""]
        out += self._main()
        return "\n".join(out) + "\n"

    def _copied(self) -> list[type]:
        """The cnndsl.nn classes the file uses, in order of first use: their source goes in the file."""
        found = [p.copy for c in self.classes.order for i in c.instances[:1] for _, p in _walk(i.children)
                 if isinstance(p, Leaf) and p.copy is not None]
        return list(dict.fromkeys(found))

    # ---- header
    def _header(self) -> list[str]:
        a, g = self.analysis, self.graph
        name = T.inert(g.name)
        where = ""
        if self.source and not self.source.startswith("<"):
            where = f" from {T.inert(os.path.basename(self.source))}"
        lines = [f'"""{name}{where}, written by cnndsl as plain PyTorch (needs {self.needs}).', ""]
        outs = ", ".join(shape_text(s) for s in a.output_shapes)
        lines.append(f"Input {shape_text(a.input_shape)} -> output {outs}; {a.params:,} parameters"
                     + (f" ({a.params - a.trainable_params:,} frozen)." if a.params != a.trainable_params else "."))
        fixed = {k: v for k, v in g.params.items() if k not in self.free and k not in self.idle}
        idle = {k: v for k, v in g.params.items() if k in self.idle}
        if idle:
            lines.append("The shapes in comments are for "
                         + ", ".join(f"{T.inert(str(k))}={T.inert(repr(v))}" for k, v in idle.items())
                         + " (the classes do not depend on it).")
        if fixed:
            lines.append("Fixed when compiled (compile again with -p NAME=VALUE to change): "
                         + ", ".join(f"{T.inert(str(k))}={T.inert(repr(v))}" for k, v in fixed.items()) + ".")
        lines.append("The state_dict keys are those of cnndsl.build(...), so its weights load with strict=True.")
        lines.append('"""')
        return lines + [""]

    # ---- classes
    def _class(self, c: ClassDef) -> list[str]:
        first = c.first
        base = "nn.Sequential" if first.sequential else "nn.Module"
        lines = [f"class {c.name}({base}):", f'    """{self._doc(c)}"""', ""]
        sig = ["self"] + [self._param(n, d, first) for n, d in c.params]
        if c.keyword_only or c.late:
            sig += ["*"] + [f"{n}: {_annotation(first.names[n])}" for n in c.late]
            sig += [f"{n}: {_annotation(first.extras[n])}" for n in c.keyword_only]
        if c.kind == "network":
            sig = ["self"] + [f"{n}: {_annotation(first.names[n])} = {T.literal(first.names[n])}"
                              for n in (python_name(k) for k in self.free)]
        lines += lay_out(4, "def __init__", CallExpr("", sig), " -> None:")
        if first.loop is not None:
            return lines + loop_lines(self.classes, c, self.fixed.get(self.classes.sig(first), set()))
        slots = iter(c.slots)
        if first.sequential:
            args = [self._expr(p, slots) for _, p in first.children]
            call = CallExpr("super().__init__", args, [self._shape(p) for _, p in first.children])
            lines += lay_out(8, "", call)
            return lines
        lines.append("        super().__init__()")
        stored = self._stored(c)
        lines += [f"        self.{attr} = {name}" for name, attr in stored.items()]
        for key, part in first.children:
            e = self._expr(part, slots)
            if T.attribute_ok(key):
                lines += lay_out(8, f"self.{key} = ", e)
            else:
                register = "self.register_parameter" if isinstance(part, Param) else "self.add_module"
                lines += lay_out(8, register, CallExpr("", [T.string(key), e]))
        if c.kind == "network":
            lines += self._init_calls() + self._freeze()
        lines.append("")
        lines += self._forward(first, slots, stored)
        return lines

    def _stored(self, c: ClassDef) -> dict[str, str]:
        """Parameters ``forward`` computes with (``x.narrow(1, 0, self.out // 2)``): name → the
        attribute ``__init__`` keeps it in, clear of the class's submodules and nn.Module's names."""
        count = sum(len(stmt.args) for stmt, _ in c.first.forward)
        texts = [text for text, symbolic in c.slots[len(c.slots) - count:] if symbolic] if count else []
        keys = {k for k, _ in c.first.children}
        stored: dict[str, str] = {}
        for name in (n for text in texts for n in T.NAME.findall(text)):
            attr = name
            while not T.attribute_ok(attr) or attr in keys:
                attr += "_"
            stored.setdefault(name, attr)
        return stored

    def _doc(self, c: ClassDef) -> str:
        first = c.first
        if c.kind == "network":
            return f"The network {T.inert(self.graph.name)} of the spec."
        what = f"Block {T.inert(first.label)}" if c.kind == "block" else f"Stage {T.inert(first.path)}"
        more = f"; shapes as at {T.inert(first.path)}" if sum(not i.probe for i in c.instances) > 1 else ""
        fixed = [n for n in first.names if n in self.fixed.get(self.classes.sig(first), ())]
        if fixed:
            more += "; fixed: " + ", ".join(f"{T.inert(n)}={T.inert(repr(first.names[n]))}" for n in fixed)
        return f"{what} of the spec{more}."

    def _param(self, name: str, default: Any, inst: Instance) -> str:
        ann = _annotation(inst.names.get(name))
        if default is EMPTY:
            return f"{name}: {ann}"
        return f"{name}: {ann} = {T.literal(default)}"

    def _shape(self, part: Part) -> str:
        return shape_text(part.shape) if part.shape else ""

    def _expr(self, part: Part, slots) -> Expr:
        """The constructor expression of a child, consuming its values from ``slots``."""
        if isinstance(part, Leaf):
            texts = [next(slots) for _ in part.args]
            return CallExpr(part.cls, written_args(part.args, texts))
        if isinstance(part, Param):
            return part.render([next(slots)[0] for _ in part.args])
        if isinstance(part, Raw):
            return part.expr
        if isinstance(part, Seq):
            args = [self._expr(p, slots) for _, p in part.children]
            return CallExpr("nn.Sequential", args, [self._shape(p) for _, p in part.children])
        inst = part.instance
        cls = self.classes.of(inst)
        def written(value: Any, default: Any) -> Expr | None:
            text, symbolic = next(slots)
            return None if default is not EMPTY and not symbolic and T.same_value(value, default) else text

        return class_call(cls, ((name, written(value, default), default is EMPTY)
                                for name, value, default in call_args(self.classes, inst)))

    # ---- forward
    def _forward(self, inst: Instance, slots, stored: dict[str, str]) -> list[str]:
        """``forward``, the numbers of inline ops taken from ``slots``, a parameter read from its
        attribute (``x.narrow(1, 0, self.out // 2)``)."""
        def value(text: str, symbolic: bool) -> str:
            return T.NAME.sub(lambda m: "self." + stored[m.group()], text) if symbolic else text

        lines = [with_comment(4, inst.head[0], inst.head[1])]
        for stmt, shape in inst.forward:
            lines.append(with_comment(8, stmt.render([value(*next(slots)) for _ in stmt.args]), shape))
        return lines

    # ---- network-level extras: initialisation and frozen parameters
    def _access(self, path: str) -> str:
        out = "self"
        inst: Instance | None = self.main.root
        children = inst.children
        sequential = False
        for part_name in path.split("."):
            out = T.child(out, part_name, sequential)
            found = dict(children).get(part_name)
            if isinstance(found, Seq):
                children, sequential = found.children, True
            elif isinstance(found, Call):
                children, sequential = found.instance.children, found.instance.sequential
            else:
                children, sequential = [], False
        return out

    def _init_calls(self) -> list[str]:
        """The spec's ``init=`` choices, one loop per kind over the layers that ask for it."""
        groups: dict[str, list[str]] = {}
        for node in self.graph.layers():
            init = getattr(node.op, "init", "default")
            if not isinstance(init, str) or init == "default" or not node.registered:
                continue
            if init not in _INITS:
                raise NotImplementedError(f"{node.path}: init={init!r}")
            ref = self._access(node.path)
            groups.setdefault(init, []).append(ref)
            if getattr(self.main.modules[node.id], "bias", None) is not None:
                groups.setdefault(init + " bias", []).append(ref)
        lines: list[str] = []
        for kind, (comment, body) in _INITS.items():
            if kind not in groups:
                continue
            lines.append(f"        # init={kind}: {comment}")
            indent = 8
            if kind == "dirac":
                lines.append("        with torch.no_grad():")
                indent = 12
            for part, stmt in (("", body), (" bias", _INIT_BIAS.get(kind))):
                if stmt and kind + part in groups:
                    lines += lay_out(indent, "for conv in ", CallExpr("", groups[kind + part], brackets="[]"), ":")
                    lines.append(" " * (indent + 4) + stmt)
        return lines

    def _freeze(self) -> list[str]:
        # a bare parameter (layer_scale) is frozen under the layer's own path
        names = [T.string(f"{info.node.path}.{p}" if p else info.node.path)
                 for info in self.analysis.layers for p in info.cost.frozen]
        if not names:
            return []
        globs = ", ".join(f'"{T.inert(p)}"' for p, _ in self.graph.freeze)
        unglobs = ", ".join(f'"{T.inert(p)}"' for p, _ in self.graph.unfreeze)
        why = f"freeze {globs}" + (f", unfreeze {unglobs}" if unglobs else "") if globs else "frozen by the spec"
        return [f"        # {why}", *lay_out(8, "for name in ", CallExpr("", names, brackets="[]"), ":"),
                "            self.get_parameter(name).requires_grad_(False)"]

    # ---- a smoke test when the file is run
    def _main(self) -> list[str]:
        shape = ", ".join(map(str, self.graph.input.shape))
        return ['if __name__ == "__main__":',
                f"    model = {self.class_name}().eval()",
                f"    x = torch.randn(2, {shape})",
                "    with torch.no_grad():",
                "        out = model(x)",
                "    outs = out if isinstance(out, tuple) else (out,)",
                "    n = sum(p.numel() for p in model.parameters())",
                '    print(f"{n:,} parameters; output", ", ".join(str(tuple(o.shape)) for o in outs))']


_INITS = {
    "kaiming": ("torchvision's ResNet initialisation",
                'nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")'),
    "dirac": ("the first filters pass their input channel through",
              "nn.init.dirac_(conv.weight[: min(conv.weight.shape[:2])])"),
    "whiten": ("patch-whitening filters, computed from data by cnndsl's trainer", 'conv.cnndsl_init = "whiten"'),
}
_INIT_BIAS = {"kaiming": "nn.init.zeros_(conv.bias)", "dirac": "conv.bias.zero_()"}


def _walk(children: list[tuple[str, Part]]):
    for key, part in children:
        yield key, part
        if isinstance(part, Seq):
            yield from _walk(part.children)


def _annotation(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value), "object")
