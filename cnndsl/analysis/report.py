"""The summary of an Analysis: a text table, Markdown, or one JSON object."""

from __future__ import annotations

import json
from typing import Any

from ..errors import printable
from ..layout import axes_of, is_standard
from . import Analysis, LayerInfo


def human(n: float) -> str:
    """1234567 → '1.23M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def _shape(s: tuple[int, ...]) -> str:
    """``16×8×8``; a permuted or reshaped layout is named: ``8×8×16 (HWC)``."""
    return "×".join(map(str, s)) + ("" if is_standard(s) else f" ({axes_of(s)})")


def _row(l: LayerInfo) -> list[str]:
    params = f"{l.cost.params:,}" + ("*" if l.cost.trainable < l.cost.params else "")
    rf = l.rf
    return [printable(l.name, False), l.op, _shape(l.shape), params if l.cost.params else "-",
            human(l.cost.macs) if l.cost.macs else "-",
            rf.text("size") if rf else "-", rf.text("stride") if rf else "-", _global(rf)]


def _global(rf) -> str:
    """'yes': each value sees the whole input; 'context': a local field plus a summary of the whole
    input (through a gate or a normalisation over the map)."""
    if rf is None:
        return "-"
    return "yes" if rf.global_ else "context" if rf.context else "-"


HEADER = ["name", "op", "output", "params", "MACs", "RF", "RF stride", "global"]


def _totals_lines(a: Analysis) -> list[str]:
    frozen = a.params - a.trainable_params
    lines = [f"params: {a.params:,} (trainable {a.trainable_params:,}, frozen {frozen:,})",
             f"MACs: {human(a.macs)} per sample ({a.macs:,})",
             f"activations: {human(a.activations)} values per sample (~{human(a.activations * 4)}B in fp32)"]
    if a.final_rf is not None and a.final_rf.lost:
        lost = a.graph_node(a.final_rf.lost)
        lines.append(f"receptive field: n/a: spatial structure lost at '{printable(lost.path, False)}' ({lost.kind}), "
                     "which mixes positions in a way no window describes")
    elif a.final_rf is not None:
        ctx = f", plus global context from '{printable(a.final_rf.context, False)}'" if a.final_rf.context else ""
        lines.append(f"receptive field: {a.final_rf.text('size')} (stride {a.final_rf.text('stride')}) "
                     f"at '{printable(a.final_rf_node, False)}'{ctx}")
    return lines


def to_text(a: Analysis) -> str:
    rows = [HEADER] + [_row(l) for l in a.layers]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    right = {3, 4, 5, 6}      # the numbers

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    rule = "-" * len(fmt(HEADER))
    outs = ", ".join(_shape(s) for s in a.output_shapes)
    lines = [f"{printable(a.name, False)}: input {_shape(a.input_shape)} -> output {outs}", rule, fmt(HEADER), rule]
    lines += [fmt(r) for r in rows[1:]]
    lines += [rule] + _totals_lines(a)
    if any(l.cost.trainable < l.cost.params for l in a.layers):
        lines.append("* frozen parameters (not trained)")
    return "\n".join(lines)


def to_markdown(a: Analysis) -> str:
    lines = [f"### {printable(a.name, False)}", "", f"Input `{_shape(a.input_shape)}`, output "
             + ", ".join(f"`{_shape(s)}`" for s in a.output_shapes), "",
             "| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---:" if 3 <= i < 7 else "---" for i in range(len(HEADER))) + "|"]
    for l in a.layers:
        r = _row(l)
        r[0] = f"`{r[0]}`"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    lines += [""] + [f"- {t}" for t in _totals_lines(a)]
    return "\n".join(lines)


def to_dict(a: Analysis) -> dict[str, Any]:
    return {
        "network": a.name,
        "input": list(a.input_shape),
        "outputs": [list(s) for s in a.output_shapes],
        "layers": [{
            "name": l.name, "op": l.op, "output_shape": list(l.shape), "params": l.cost.params,
            "trainable_params": l.cost.trainable, "macs": l.cost.macs,
            "rf": l.rf.as_json() if l.rf else None,
        } for l in a.layers],
        "totals": {"params": a.params, "trainable_params": a.trainable_params, "macs": a.macs,
                   "activations": a.activations,
                   "receptive_field": a.final_rf.as_json() if a.final_rf else None},
        "warnings": [_one_line(w) for w in a.warnings],
    }


def _one_line(d) -> str:
    where = f"{d.span}: " if d.span else ""
    return f"{where}{d.severity}: {d.message}" + (f" (hint: {d.hint})" if d.hint else "")


def to_json(a: Analysis) -> str:
    return json.dumps(to_dict(a), indent=2)


FORMATS = {"text": to_text, "markdown": to_markdown, "json": to_json}
