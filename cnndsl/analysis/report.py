"""The summary of an Analysis: a text table, Markdown, or one JSON object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import printable
from ..layout import axes_of, is_standard
from . import Analysis
from .rows import Row, summary_rows


def human(n: float) -> str:
    """1234567 → '1.23M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def _shape(s: tuple[int, ...]) -> str:
    """``16×8×8``; a permuted or reshaped layout is named: ``8×8×16 (HWC)``."""
    return "×".join(map(str, s)) + ("" if is_standard(s) else f" ({axes_of(s)})")


TRACED = "†"   # marks rows that come from a traced model


def _row(r: Row) -> list[str]:
    unknown = "?" if r.unknown_rf else None
    rf = r.rf
    return [printable(r.name, False), r.op + (TRACED if r.traced else ""), _shape(r.shape),
            f"{r.params:,}" if r.params else "-", f"{r.trainable:,}" if r.params else "-",
            human(r.macs) if r.macs else "-", unknown or (rf.text("size") if rf else "-"),
            unknown or (rf.text("stride") if rf else "-"), unknown or _global(rf)]


def _global(rf) -> str:
    """'yes': each value sees the whole input; 'context': a local field plus a summary of the whole
    input (through a gate or a normalisation over the map)."""
    if rf is None:
        return "-"
    return "yes" if rf.global_ else "context" if rf.context else "-"


HEADER = ["name", "op", "output", "params", "trainable", "MACs", "RF", "RF stride", "global"]
NUMBERS = range(3, 8)   # right-aligned columns


def _totals_lines(a: Analysis, stages: Sequence[Any] = ()) -> list[str]:
    """The totals under the table; ``stages``: the train section's stages (``StageTrainable``), each
    with the trainable parameters from its epoch on."""
    frozen = a.params - a.trainable_params
    lines = [f"params: {a.params:,} (trainable {a.trainable_params:,}, frozen {frozen:,})"]
    lines += [f"  {s.text()}" for s in stages]
    lines += [f"MACs: {human(a.macs)} per sample ({a.macs:,})",
              f"activations: {human(a.activations)} values per sample (~{human(a.activations * 4)}B in fp32)"]
    if a.final_rf is not None and a.final_rf.lost:
        lost = a.graph_node(a.final_rf.lost)
        lines.append(f"receptive field: n/a: spatial structure lost at '{printable(lost.path, False)}' ({lost.kind}), "
                     "which mixes positions in a way no window describes")
    elif a.final_rf is not None:
        ctx = f", plus global context from '{printable(a.final_rf.context, False)}'" if a.final_rf.context else ""
        lines.append(f"receptive field: {a.final_rf.text('size')} (stride {a.final_rf.text('stride')}) "
                     f"at '{printable(a.final_rf_node, False)}'{ctx}")
    elif len(a.input_shape) == 3:
        lines.append("receptive field: unknown (a layer before the output has no cnndsl op)")
    return lines + backbone_lines(a)


def backbone_lines(a: Analysis) -> list[str]:
    """One line per backbone: what it is, how it was analysed, which weights it starts from."""
    lines = []
    for d in a.graph.backbones.values():
        how = ("expanded from its spec" if d.source == "spec" else
               f"traced at {_shape(d.input_shape)} ({'cached' if d.cached else 'traced now; cached'})")
        cut = "taps " + ", ".join(d.queries) if len(d.queries) > 1 else f"output at {d.queries[0]}"
        weights = "random initialisation" if d.weights is None else \
            f"weights {d.weights.describe()} ({'strict' if d.strict else 'partial'}, loaded when built)"
        lines.append(f"backbone '{d.path}': {d.label}, {how}, {cut}; {weights}")
        if d.opaque:
            lines.append(f"  {d.opaque} of its layers have no cnndsl op: their MACs are not counted and the "
                         f"receptive field after them is unknown (?)")
    if a.graph.init is not None:
        init = a.graph.init
        lines.append(f"init: weights {init.source} ({'strict' if init.strict else 'partial'}, loaded when built)")
    return lines


def _notes(rows: list[Row], a: Analysis) -> list[str]:
    if not any(r.traced for r in rows):
        return []
    return [f"{TRACED} traced from the model (shapes from torch.fx on the meta device); a row per stage: "
            "--depth N shows N levels of names"]


def to_text(a: Analysis, depth: int | None = None, stages: Sequence[Any] = ()) -> str:
    summary = summary_rows(a, depth)
    rows = [HEADER] + [_row(r) for r in summary]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    right = set(NUMBERS)

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    rule = "-" * len(fmt(HEADER))
    outs = ", ".join(_shape(s) for s in a.output_shapes)
    lines = [f"{printable(a.name, False)}: input {_shape(a.input_shape)} -> output {outs}", rule, fmt(HEADER), rule]
    lines += [fmt(r) for r in rows[1:]]
    lines += [rule] + _totals_lines(a, stages) + _notes(summary, a)
    return "\n".join(lines)


def to_markdown(a: Analysis, depth: int | None = None, stages: Sequence[Any] = ()) -> str:
    summary = summary_rows(a, depth)
    lines = [f"### {printable(a.name, False)}", "", f"Input `{_shape(a.input_shape)}`, output "
             + ", ".join(f"`{_shape(s)}`" for s in a.output_shapes), "",
             "| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---:" if i in NUMBERS else "---" for i in range(len(HEADER))) + "|"]
    for row in summary:
        r = _row(row)
        r[0] = f"`{r[0]}`"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    lines += [""] + [f"- {t}" for t in _totals_lines(a, stages) + _notes(summary, a)]
    return "\n".join(lines)


def to_dict(a: Analysis, depth: int | None = None, stages: Sequence[Any] = ()) -> dict[str, Any]:
    traced = {i for d in a.graph.backbones.values() if d.source != "spec" for i in d.node_ids()}
    return {
        "network": a.name,
        "input": list(a.input_shape),
        "outputs": [list(s) for s in a.output_shapes],
        "layers": [{
            "name": l.name, "op": l.op, "output_shape": list(l.shape), "params": l.cost.params,
            "trainable_params": l.cost.trainable, "macs": l.cost.macs,
            "rf": l.rf.as_json() if l.rf else None, "traced": l.node.id in traced,
        } for l in a.layers],
        "backbones": [{"path": d.path, "source": d.source, "model": d.model, "outputs": list(d.queries),
                       "weights": d.weights.describe() if d.weights else None, "strict": d.strict,
                       "cached": d.cached, "opaque_layers": d.opaque} for d in a.graph.backbones.values()],
        "totals": {"params": a.params, "trainable_params": a.trainable_params, "macs": a.macs,
                   "activations": a.activations,
                   "receptive_field": a.final_rf.as_json() if a.final_rf else None},
        "stages": [s.as_json() for s in stages],
        "warnings": [_one_line(w) for w in a.warnings],
    }


def _one_line(d) -> str:
    where = f"{d.span}: " if d.span else ""
    return f"{where}{d.severity}: {d.message}" + (f" (hint: {d.hint})" if d.hint else "")


def to_json(a: Analysis, depth: int | None = None, stages: Sequence[Any] = ()) -> str:
    """Every layer (``depth`` does not fold JSON rows: it is for tools)."""
    import json

    return json.dumps(to_dict(a, stages=stages), indent=2)


FORMATS = {"text": to_text, "markdown": to_markdown, "json": to_json}
