"""When an exporter fails: find the spec layer it failed on and say so in the spec's words.

Two ways, cheapest first. The exporter's message usually names an aten op or a graph node; the
exported program's ``nn_module_stack`` maps that node to a module path, which is a layer path of
the spec. Otherwise each layer is exported on its own until one fails (only after a failure).
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any, Callable

from ..errors import CnnError, error

if TYPE_CHECKING:
    from ..analysis import Analysis
    from ..graph import Node
    from .formats import Format, Job

_ATEN = re.compile(r"(?:op='|ops\.)(aten\.[A-Za-z0-9_]+)")
_NODE = re.compile(r"translating node %([A-Za-z0-9_]+)")
MAX_PROBES = 64


def first_line(exc: BaseException) -> str:
    """The innermost cause's first line (the exporters wrap the real reason several times)."""
    inner = exc
    seen = set()
    while (inner.__cause__ or inner.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    text = str(inner).strip()
    line = text.splitlines()[0] if text else type(inner).__name__
    return re.sub(r"<OpOverload\(op='([^']+)', overload='[^']+'\)>", r"\1", line)


def _chain_text(exc: BaseException) -> str:
    parts, cur, seen = [], exc, set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def _node_for_module(analysis: "Analysis", module_path: str) -> "Node | None":
    """The spec layer that owns ``module_path`` (the layer itself or the deepest enclosing one)."""
    best = None
    for info in analysis.layers:
        path = info.node.path
        if module_path == path or module_path.startswith(path + "."):
            if best is None or len(path) > len(best.path):
                best = info.node
    return best


def from_program(exc: BaseException, program: Any, analysis: "Analysis") -> tuple["Node | None", str | None]:
    """Use the failing node/op named in the message and the program's module stack."""
    text = _chain_text(exc)
    op = (_ATEN.search(text) or [None, None])[1]
    node_name = (_NODE.search(text) or [None, None])[1]
    if program is None or (op is None and node_name is None):
        return None, op
    for gnode in program.graph.nodes:
        target = str(getattr(gnode, "target", ""))
        if gnode.name == node_name or (op is not None and target.startswith(op)):
            stack = gnode.meta.get("nn_module_stack") or {}
            if stack:
                module_path = list(stack.values())[-1][0]
                found = _node_for_module(analysis, module_path)
                if found is not None:
                    return found, op
    return None, op


def probe_layers(analysis: "Analysis", model: Any, try_export: Callable[["Job"], None],
                 make_job: Callable[[Any, Any, list[str]], "Job"], only: int | None = None) -> "Node | None":
    """Export the network's layers one at a time (distinct op and input shapes only; ``only``: the
    layer with this node id) until one fails; that layer, or None. With ``only``, a layer that
    cannot be exported alone (several inputs) counts as failing."""
    import torch
    from torch import nn

    class One(nn.Module):
        def __init__(self, inner: nn.Module, n: int):
            super().__init__()
            self.inner, self.n = inner, n

        def forward(self, x):
            return self.inner(*([x] * self.n))

    seen: set[tuple] = set()
    for info in analysis.layers:
        node = info.node
        ins = [analysis.graph.nodes[i].shape for i in node.inputs]
        key = (node.op.describe(), tuple(ins))
        if only is not None and node.id != only:
            continue
        if not node.registered or len(set(ins)) != 1:
            if only is not None:
                return node  # cannot be exported alone: not known to work
            continue
        if key in seen or len(seen) >= MAX_PROBES:
            continue
        seen.add(key)
        module = model.get_submodule(node.path)
        example = torch.randn(2, *ins[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try_export(make_job(One(module, len(ins)).eval(), example, ["output"]))
        except Exception:  # noqa: BLE001 - any failure names this layer
            return node
    return None


def export_error(exc: BaseException, fmt: "Format", analysis: "Analysis", node: "Node | None", op: str | None,
                 works_in: list[str]) -> CnnError:
    """The diagnostic: layer and op in the spec's words, the format, the exporter's reason, a hint."""
    reason = first_line(exc)
    if node is None:
        return error(f"cannot export {analysis.name} to {fmt.name}: {reason}", None,
                     "run with --debug for the exporter's full report, or try another --format")
    layer = f"layer '{node.path}' ({node.op.describe()})"
    if op:
        message = f"cannot export to {fmt.name}: {layer} uses {op}, which the {fmt.title} exporter cannot express"
    else:
        message = f"cannot export to {fmt.name}: the {fmt.title} exporter fails on {layer}"
    other = [f for f in works_in if f != fmt.name]
    hint = (f"this layer exports as {' and '.join(other)}; or change its arguments" if other
            else "change this layer's arguments, or replace it")
    return error(message, node.span, hint, notes=[(None, f"the exporter says: {reason}")])
