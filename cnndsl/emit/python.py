"""Graph → standalone PyTorch source code.

``python_source(analysis)`` returns the text of a Python file that depends only on torch: one
``nn.Module`` class named after the network, whose ``__init__`` builds the same module tree as
``cnndsl.build`` (stages and blocks become ``nn.ModuleDict`` containers, so every ``state_dict`` key
is identical and weights load with ``load_state_dict(..., strict=True)``) and whose ``forward`` is
straight-line code, one statement per layer, each with its output shape as a comment::

    def forward(self, x):                                       # (B, 3, 224, 224)
        conv1 = self.conv1(x)                                   # (B, 64, 112, 112)
        ...
        layer1_0_add = layer1_0_bn2 + maxpool                   # (B, 64, 56, 56)

Constructor calls are rendered generically from the modules the ops build (their ``__init__``
signature, read back from the module's attributes, arguments at their defaults left out). Stateless
ops that say how (``Op.source``: merges, the constant scale, permute, reshape) become inline
expressions (``a + b``, ``torch.cat([a, b], dim=1)``, ``x * 0.125``, ``x.permute(0, 2, 3, 1)``);
they hold no state, so the ``state_dict`` is unaffected (they are missing from ``named_modules()``
only). The few modules of cnndsl's own that hold state or behave differently in training
(``LayerNorm2d``, ``StochasticDepth``, ``PadChannels``) are copied into the file from
:mod:`cnndsl.nn`, and a bare parameter (``layer_scale``) is registered on its container. Activations run in place exactly
where ``cnndsl.build`` runs them in place; residual sums are not in place. Initialisations the spec
asks for (``init=kaiming``, ``init=dirac``, the ``whiten`` marker) and frozen parameters are
reproduced in ``__init__``. Nothing here executes generated code.

Text that comes from the spec (names, the network name, freeze globs, parameter values, the spec's
path) is written only through :func:`_str` (a Python string literal, via ``repr``) or, in comments
and docstrings, through :func:`_inert` (escaped, on one line), so no spec can add a statement.
"""

from __future__ import annotations

import inspect
import keyword
import re
from typing import Any

import torch
from torch import nn

from ..analysis import Analysis
from ..graph import Graph, Node
from .py_literals import RUNTIME_NAMES, _inert, _is_runtime, _shape, _str, constructor
from .scopes import inplace_nodes, module_scopes

__all__ = ["python_source"]

_RESERVED = {"self", "x", "torch", "nn"}
_COMMENT_COLUMN = 60                     # shape comments align here (or after the longest shorter line)


def python_source(analysis: Analysis, *, class_name: str | None = None, source: str | None = None) -> str:
    """The source of a standalone PyTorch file defining the network of ``analysis``.

    ``class_name`` defaults to the network's name; ``source`` (the spec's path, for the header)
    defaults to the file the spec was read from. The class's ``state_dict`` keys and shapes equal
    those of ``cnndsl.build(analysis)``.
    """
    if analysis.graph.backbones:
        from ..errors import error

        path = next(iter(analysis.graph.backbones.values()))
        raise error("--emit python cannot write a network with a backbone yet (it runs torchvision's "
                    "create_feature_extractor)", path.span, "build it with cnndsl.build(...), or export it")
    from ..plugins import origin

    for node in analysis.graph.nodes[1:]:
        if node.op is not None and origin(node.op.name) is not None:
            from ..errors import error

            raise error(f"--emit python cannot write the plugin op '{node.op.name}' ({origin(node.op.name)})",
                        node.span, "build it with cnndsl.build(...), or export it")
    return _Emitter(analysis, class_name, source).run()


# ----------------------------------------------------------------------------- the emitter


class _Emitter:
    def __init__(self, analysis: Analysis, class_name: str | None, source: str | None):
        self.analysis = analysis
        self.graph: Graph = analysis.graph
        self.class_name = _identifier(class_name or self.graph.name or "Network", "Network")
        span = self.graph.input.span
        self.source = source if source is not None else (span.file if span is not None else None)
        self.modules: dict[int, nn.Module] = {}
        self.inplace: set[int] = set()
        self.scopes: set[str] = set()            # containers written as the Scope class, not ModuleDict
        self.classes: dict[str, type] = {}       # cnndsl.nn classes the file defines
        if self.class_name in ("Scope", *_RESERVED, *RUNTIME_NAMES):  # names the file itself uses
            self.class_name += "Net"

    # ---- building the modules (on the meta device: only their attributes are read)
    def _build(self) -> None:
        g = self.graph
        reusable = inplace_nodes(g, module_scopes(g))   # the in-place rule of cnndsl.build
        for node in g.layers():
            ins = [g.nodes[i].shape for i in node.inputs]
            try:
                with torch.device("meta"):
                    module = node.op.build(ins, node.shape)
            except Exception:  # noqa: BLE001  an op whose construction needs real tensors
                module = node.op.build(ins, node.shape)
            # the rule emit.module uses: activations overwrite a tensor nothing else reads
            if node.id in reusable and getattr(node.op, "can_inplace", False) and hasattr(module, "inplace"):
                module.inplace = True
                self.inplace.add(node.id)
            self.modules[node.id] = module

    def run(self) -> str:
        self._build()
        self.names = self._variable_names()
        init = self._init_body()
        fwd = self._forward_body()
        out: list[str] = self._header()
        out += ["import torch", "from torch import nn", "", ""]
        for cls in self.classes.values():
            out += inspect.getsource(cls).splitlines() + ["", ""]
        if self.scopes:
            out += _SCOPE.splitlines() + ["", ""]
        out.append(f"class {self.class_name}(nn.Module):")
        doc = f"{_inert(self.graph.name)}, generated by cnndsl (see the header)."
        out.append(f'    """{doc}"""')
        out.append("")
        out.append("    def __init__(self):")
        out.append("        super().__init__()")
        out += ["        " + line if line else "" for line in init]
        out.append("")
        out += fwd
        out += ["", ""] + self._main()
        return "\n".join(out) + "\n"

    # ---- header
    def _header(self) -> list[str]:
        a, g = self.analysis, self.graph
        name = _inert(g.name)
        src = f" from {_inert(self.source)}" if self.source and not self.source.startswith("<") else ""
        lines = [f"# {name}: generated by cnndsl{src}. Standalone: needs only torch."]
        if g.params:
            lines.append("# Network parameters: " + ", ".join(f"{_inert(str(k))}={_inert(repr(v))}"
                                                              for k, v in g.params.items()))
        outs = ", ".join(_shape(s) for s in a.output_shapes)
        lines.append(f"# Input: {_shape(a.input_shape)}  ->  output: {outs}")
        frozen = a.params - a.trainable_params
        lines.append(f"# Parameters: {a.params:,}" + (f" ({frozen:,} frozen)" if frozen else ""))
        lines.append("# state_dict keys equal those of cnndsl.build(...): "
                     "model.load_state_dict(cnndsl_model.state_dict()) works.")
        if self.inplace:
            lines.append("# Activations marked inplace=True overwrite a tensor that nothing else reads "
                         "(as in cnndsl.build).")
        return ['"""' + f"{name} in plain PyTorch, generated by cnndsl." + '"""', ""] + lines + [""]

    # ---- names
    def _variable_names(self) -> dict[int, str]:
        names: dict[int, str] = {0: "x"}
        used = set(_RESERVED)
        for node in self.graph.layers():
            base = re.sub(r"[^A-Za-z0-9_]", "_", node.path.replace(".", "_"))
            if not base or base[0].isdigit():
                base = re.sub(r"[^A-Za-z0-9_]", "_", node.op.name) + "_" + base
            if keyword.iskeyword(base) or base in _RESERVED:
                base += "_"
            name, k = base, 2
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            names[node.id] = name
        return names

    def _inline(self, node: Node) -> bool:
        """Layers written as expressions in ``forward`` (``Op.source``), not constructed."""
        return node.op.source(["x"] * max(1, len(node.inputs)), "m") is not None

    # ---- __init__
    def _init_body(self) -> list[str]:
        g = self.graph
        # the module tree, children in the order cnndsl registers them (first use, node order)
        tree: dict[str, Any] = {}
        for node in g.layers():
            bare = node.op.bare_parameter
            if not node.registered or (self._inline(node) and not bare):
                continue
            parts = node.path.split(".")
            level = tree
            for k in range(1, len(parts)):
                level = level.setdefault(parts[k - 1], {})
                assert isinstance(level, dict), node.path
            if not bare:
                level[parts[-1]] = node
        # a container holding a layer named like a method of nn.ModuleDict (keys, update, ...) is a Scope
        self.scopes = {node.path.rpartition(".")[0] for node in g.layers()
                       if node.registered and "." in node.path
                       and hasattr(nn.ModuleDict, node.path.rpartition(".")[2])}
        lines: list[str] = []
        for name, entry in tree.items():
            lines += self._emit_root(name, entry)
        lines += self._bare_parameters()
        lines += self._init_calls()
        lines += self._freeze()
        return lines

    def _label(self, path: str) -> str:
        c = self.graph.containers.get(path)
        if c is None:
            return ""
        return f"  # {_inert(c.label)}" if c.kind == "block" else ""

    def _emit_root(self, name: str, entry: Any) -> list[str]:
        value = self._value(name, entry, name, 0)
        target = f"self.{name} = " if _attr_ok(name, nn.Module) else None
        if target:
            return [target + value[0]] + value[1:]
        first = f"self.add_module({_str(name)}, {value[0]}"
        if len(value) == 1:
            return [_close_call(first)]
        return [first] + value[1:-1] + [_close_call(value[-1])]

    def _value(self, name: str, entry: Any, path: str, depth: int) -> list[str]:
        """Source lines for one module or container (the first without indentation)."""
        if isinstance(entry, Node):
            cls = type(self.modules[entry.id])
            if _is_runtime(cls):
                self.classes.setdefault(cls.__name__, cls)
            return [constructor(self.modules[entry.id])]
        holder = "Scope" if path in self.scopes else "nn.ModuleDict"
        lines = [f"{holder}({{" + self._label(path)]
        for child, sub in entry.items():
            v = self._value(child, sub, f"{path}.{child}", depth + 1)
            v[-1] += ","
            lines.append("    " + f"{_str(child)}: " + v[0])
            lines += ["    " + l for l in v[1:]]
        lines.append("})")
        return lines

    def _access(self, path: str) -> str:
        parts = path.split(".")
        out = f"self.{parts[0]}" if _attr_ok(parts[0], nn.Module) else f"getattr(self, {_str(parts[0])})"
        for k, p in enumerate(parts[1:], 1):
            owner = nn.Module if ".".join(parts[:k]) in self.scopes else nn.ModuleDict
            out += f".{p}" if _attr_ok(p, owner) else f"[{_str(p)}]"
        return out

    def _parameter(self, path: str) -> str:
        """The expression for a bare parameter (one registered on its container)."""
        parent, _, attr = path.rpartition(".")
        owner = self._access(parent) if parent else "self"
        kind = nn.Module if not parent or parent in self.scopes else nn.ModuleDict
        return f"{owner}.{attr}" if _attr_ok(attr, kind) else f"getattr({owner}, {_str(attr)})"

    def _bare_parameters(self) -> list[str]:
        lines = []
        for node in self.graph.layers():
            if node.op.bare_parameter:
                parent, _, attr = node.path.rpartition(".")
                owner = self._access(parent) if parent else "self"
                value = node.op.parameter_source([self.graph.nodes[i].shape for i in node.inputs])
                lines.append(f"{owner}.register_parameter({_str(attr)}, {value})")
        return (["", "# parameters registered on their container, under the layer's name"] + lines) if lines else []

    def _init_calls(self) -> list[str]:
        kaiming, dirac, whiten = [], [], []
        for node in self.graph.layers():
            init = getattr(node.op, "init", "default")
            if not isinstance(init, str) or init == "default" or not node.registered:
                continue
            m, ref = self.modules[node.id], self._access(node.path)
            has_bias = getattr(m, "bias", None) is not None
            if init == "kaiming":
                kaiming.append(f'nn.init.kaiming_normal_({ref}.weight, mode="fan_out", nonlinearity="relu")')
                if has_bias:
                    kaiming.append(f"nn.init.zeros_({ref}.bias)")
            elif init == "dirac":
                n = min(m.weight.size(0), m.weight.size(1))
                dirac.append(f"nn.init.dirac_({ref}.weight[:{n}])")
                if has_bias:
                    dirac.append(f"{ref}.bias.zero_()")
            elif init == "whiten":
                whiten.append(f'{ref}.cnndsl_init = "whiten"')
            else:
                raise NotImplementedError(f"{node.path}: init={init!r}")
        lines: list[str] = []
        if kaiming:
            lines += ["", "# init=kaiming: torchvision's ResNet initialisation"] + kaiming
        if dirac:
            lines += ["", "# init=dirac: the first filters pass their input channel through (partial identity)",
                      "with torch.no_grad():"] + ["    " + l for l in dirac]
        if whiten:
            lines += ["", "# init=whiten: patch-whitening filters, computed from training data by cnndsl's trainer",
                      *whiten]
        return lines

    def _freeze(self) -> list[str]:
        lines = []
        for info in self.analysis.layers:
            for pname in info.cost.frozen:
                ref = self._parameter(info.node.path) if not pname else f"{self._access(info.node.path)}.{pname}"
                lines.append(f"{ref}.requires_grad_(False)")
        if not lines:
            return []
        globs = ", ".join(f"\"{_inert(p)}\"" for p, _ in self.graph.freeze)
        unglobs = ", ".join(f"\"{_inert(p)}\"" for p, _ in self.graph.unfreeze)
        why = f"freeze {globs}" + (f", unfreeze {unglobs}" if unglobs else "") if globs else "frozen by the spec"
        return ["", f"# {why}"] + lines

    # ---- forward
    def _forward_body(self) -> list[str]:
        g, names = self.graph, self.names
        stmts: list[tuple[str, str]] = []
        for node in g.layers():
            ins = [names[i] for i in node.inputs]
            ref = (self._parameter(node.path) if node.op.bare_parameter
                   else self._access(node.path) if node.registered else "")
            expr = node.op.source(ins, ref)
            if expr is None and node.registered:
                expr = f"{ref}({', '.join(ins)})"
            elif expr is None:  # pragma: no cover - implicit nodes are merges
                raise NotImplementedError(f"{node.path}: implicit {node.kind}")
            stmts.append((f"{names[node.id]} = {expr}", _shape(node.shape)))
        outs = [names[i] for i in g.outputs]
        ret = "return " + ", ".join(outs) if len(outs) > 1 else f"return {outs[0]}"
        head = ("def forward(self, x):", _shape(g.input.shape))
        body = [("    " + s, c) for s, c in stmts] + [("    " + ret, "")]
        fitting = [len(s) for s, _ in [head] + body if len(s) + 2 <= _COMMENT_COLUMN]
        col = max(fitting, default=0) + 2
        lines = []
        for s, c in [head] + body:
            lines.append("    " + (s + " " * max(2, col - len(s)) + "# " + c if c else s))
        return lines

    # ---- a smoke test when the file is run
    def _main(self) -> list[str]:
        shape = ", ".join(map(str, self.graph.input.shape))
        return ['if __name__ == "__main__":',
                f"    model = {self.class_name}().eval()",
                f"    x = torch.randn(2, {shape})",
                "    with torch.no_grad():",
                "        out = model(x)",
                "    outs = out if isinstance(out, tuple) else (out,)",
                '    print(f"{sum(p.numel() for p in model.parameters()):,} parameters;",',
                '          "output", ", ".join(str(tuple(o.shape)) for o in outs))']


_SCOPE = '''class Scope(nn.Module):
    """Layers under the spec's names, where a name clashes with a method of nn.ModuleDict."""

    def __init__(self, layers):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)

    def __getitem__(self, name):
        return self._modules[name]'''


def _close_call(line: str) -> str:
    """``self.add_module("0", nn.X(...)`` + ``)``; for a multi-line container the last line ``})``."""
    return line + ")"


def _attr_ok(name: str, owner: type) -> bool:
    """``name`` can be written as an attribute of an ``owner`` instance without clashing."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name) and not hasattr(owner, name)


def _identifier(name: str, fallback: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = fallback + "_" + name if name else fallback
    return name
