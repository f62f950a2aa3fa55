"""A backbone item → nodes of the network's Graph, the same ops a hand-written spec would have.

A torchvision or timm model is translated once (:mod:`cnndsl.translate`, cached on disk); another
cnndsl spec is expanded by its own Expander. Either way the result is a list of (path, op,
inputs) that is spliced under the item's name — ``features.layer1.0.conv1`` — so the ordinary
passes compute shapes, receptive fields and costs, ``freeze``/``unfreeze`` see the backbone's
parameter names, and the cut's outputs (``until``, ``taps``) become names later items refer to
(``from features.layer2``). :class:`BackboneDesc` records what the builder needs
(:mod:`cnndsl.backbone.lower`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import expr as E
from ..errors import CnnError, Span, did_you_mean, error
from ..graph import Container, Graph
from ..ops.base import Op
from ..weights.refs import WeightsRef, file_ref, is_weights_name, named_ref
from .catalog import TIMM_PACKAGES, TORCHVISION_PACKAGES, check_model
from .syntax import is_spec_path

if TYPE_CHECKING:
    from ..expand import Expander, _Ctx
    from ..ir import Backbone
    from ..translate.records import Translation


@dataclass
class BackboneDesc:
    """What the builder needs to know about one backbone of a graph."""

    path: str                      # the item's module path ("features")
    source: str                    # "torchvision", "timm" or "spec"
    model: str                     # "resnet18", or the spec's path
    input: int                     # id of the node feeding the backbone
    first: int                     # ids first … last of its nodes
    last: int
    outputs: tuple[int, ...]       # the nodes it returns (the cut, or the taps in order)
    queries: tuple[str, ...]       # their names in the model (create_feature_extractor's return nodes)
    input_shape: tuple[int, ...]
    weights: WeightsRef | None = None
    strict: bool = True
    args: dict[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()  # state_dict keys the cut leaves out (ignored when weights load)
    cached: bool = False           # the translation came from the on-disk cache
    opaque: int = 0                # nodes without a cnndsl op
    span: Span | None = None
    inner: Graph | None = None     # a spec backbone: its own graph, cut

    @property
    def label(self) -> str:
        return f"{self.source} {self.model}" if self.source != "spec" else f"cnndsl {self.model}"

    def node_ids(self) -> range:
        return range(self.first, self.last + 1)


@dataclass
class _Splice:
    """A node to add: its name (what inputs refer to), op, inputs (names, or None for the
    backbone's input), whether it is a submodule, and its path inside the backbone when that is
    not its name."""

    name: str
    op: Op
    inputs: tuple[str | None, ...]
    registered: bool
    path: str | None = None


def expand_backbone(exp: "Expander", item: "Backbone", name: str | None, cur: int, ctx: "_Ctx") -> int:
    """Splice the backbone into the graph being expanded; returns the node the flow continues from.
    (A repeated backbone is refused when the item is made: see ``ir.Backbone``.)"""
    shape = exp.nodes[cur].shape
    source, model = _source(item.model)
    queries = list(item.taps) or ([item.until] if item.until else [])
    base = _base_dir(item.span)
    if source == "spec":
        splices, outputs, labels, desc = _spec(exp, item, model, shape, queries, base)
    else:
        splices, outputs, labels, desc = _traced(item, source, model, shape, queries, base)
    inner = exp.enter(name, "backbone", desc.label, item.span, cur, ctx)
    ids: dict[str, int] = {}
    first = len(exp.nodes)
    for s in splices:
        ins = tuple(cur if i is None else ids[i] for i in s.inputs)
        path = inner.scope.qualify(s.name if s.path is None else s.path) if s.path != "" else inner.scope.path
        ids[s.name] = exp.add_node(path, s.op, ins, item.span, registered=s.registered)
    for prefix, label in labels.items():
        under = [nid for p, nid in ids.items() if p.startswith(prefix + ".")]
        path = inner.scope.qualify(prefix)
        if under and path not in exp.containers:
            exp.containers[path] = Container(path, "group", label, item.span, max(under))
    out_ids = tuple(ids[o] for o in outputs)
    _bind_outputs(inner, queries or list(outputs), out_ids)
    exp.finish(inner, out_ids[-1], ctx)
    desc.path, desc.input, desc.first, desc.last, desc.outputs = inner.scope.path, cur, first, len(exp.nodes) - 1, out_ids
    exp.backbones[desc.path] = desc
    return out_ids[-1]


def _source(model: str) -> tuple[str, str]:
    if is_spec_path(model):
        return "spec", model
    if model.startswith("timm."):
        return "timm", model[len("timm."):]
    return "torchvision", model.removeprefix("torchvision.")


def _base_dir(span: Span | None) -> str | None:
    if span is None or span.file.startswith("<"):
        return None
    return os.path.dirname(span.file) or "."


def _bind_outputs(inner: "_Ctx", names: list[str], ids: tuple[int, ...]) -> None:
    """Make each tap (``layer2``, or a dotted ``layer4.1.relu_1``) a name inside the backbone's scope."""
    from ..expand import _Binding, _Namespace

    for text, nid in zip(names, ids):
        ns = inner.ns
        parts = text.split(".")
        for part in parts[:-1]:
            b = ns.names.get(part)
            if b is None:
                b = ns.names[part] = _Binding(nid, _Namespace())
            elif b.ns is None:
                b.ns = _Namespace()
            ns = b.ns
        old = ns.names.get(parts[-1])
        ns.names[parts[-1]] = _Binding(nid, old.ns if old is not None else None)


# ----------------------------------------------------------------------------- torchvision / timm


def _weights(item: "Backbone", source: str, model: str, base: str | None) -> WeightsRef | None:
    if item.weights is None:
        return None
    span = (item.spans or {}).get("weights", item.span)
    if is_weights_name(item.weights):
        if source != "torchvision":
            raise error(f"{source} weights are given as a file, not by name", span,
                        "download the checkpoint and write weights = \"path/to/file.pth\"" if source == "timm" else
                        "a cnndsl backbone loads a checkpoint of a run: weights = \"runs/NAME/TIME/best.pt\"")
        return named_ref(model, item.weights, span)
    return file_ref(item.weights, span, base)


def _traced(item: "Backbone", source: str, model: str, shape: tuple[int, ...], queries: list[str],
            base: str | None) -> tuple[list[_Splice], list[str], dict[str, str], BackboneDesc]:
    from ..translate.nodes import record_op
    from ..translate.records import INPUT

    spans = item.spans or {}
    if len(shape) != 3:
        raise error(f"a {source} backbone needs a C×H×W input, but its input here is a {E.format_shape(shape)}",
                    item.span, "put the backbone first, right after 'input'")
    weights = _weights(item, source, model, base)
    tr, cached = translation(source, model, dict(item.args), queries, shape, spans, item.span)
    splices: list[_Splice] = []
    seen: set[str] = set()
    for r in tr.records:
        first = r.module is None or r.kind != "call_module" or r.module not in seen
        if r.kind == "call_module" and r.module is not None:
            seen.add(r.module)
        # a module's (first) call sits at the module's path — its parameters' state_dict prefix; node
        # names can differ (torchvision names the node of a module `ln_1` "ln"); a parameter read
        # outside a module call (ConvNeXt's layer_scale) sits at its owner's path ("": the model)
        path = r.module if r.module is not None and (r.kind == "get_attr" or first) else None
        splices.append(_Splice(r.name, record_op(r, first), tuple(None if i == INPUT else i for i in r.inputs),
                               r.submodule, path))
    desc = BackboneDesc("", source, model, 0, 0, 0, (), tr.queries or tuple(tr.outputs), shape, weights,
                        item.strict, dict(item.args), tr.dropped, cached, sum(r.opaque for r in tr.records),
                        item.span)
    return splices, list(tr.outputs), tr.containers, desc


def translation(source: str, model: str, args: dict[str, Any], queries: list[str], shape: tuple[int, ...],
                spans: dict[str, Span | None], span: Span | None) -> tuple["Translation", bool]:
    """The model's translation for this input and cut: from the cache, or traced (importing torch)."""
    from ..translate import cache
    from ..translate.records import Translation

    versions = cache.library_versions(*(TIMM_PACKAGES if source == "timm" else TORCHVISION_PACKAGES))
    digest = cache.key({"source": source, "model": model, "args": sorted(args.items()), "cut": queries or None,
                        "input": list(shape), **versions})
    data = cache.load("translation", digest)
    if data is not None:
        try:
            return Translation.from_json(data), True
        except (ValueError, KeyError, TypeError):
            pass
    check_model(source, model, spans.get("model", span))
    tr = _trace(source, model, args, queries, shape, spans, span, versions)
    cache.store("translation", digest, tr.to_json())
    return tr, False


def instantiate(source: str, model: str, args: dict[str, Any], span: Span | None, meta: bool = True):
    """The model with random (or, on the meta device, no) weights; a bad argument is a diagnostic."""
    import torch

    def make():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if source == "timm":
                import timm
                return timm.create_model(model, pretrained=False, **args)
            import torchvision
            return torchvision.models.get_model(model, weights=None, **args)

    try:
        if meta:
            try:
                with torch.device("meta"):
                    return make()
            except (NotImplementedError, RuntimeError):
                pass   # a constructor that computes with tensors (RegNet): build it for real
        try:
            return make()
        except (NotImplementedError, RuntimeError):
            if torch.empty(()).device.type != "meta":
                raise
            with torch.device("cpu"):   # built under a meta device context: construct, then move
                return make().to("meta")
    except TypeError as exc:
        raise error(f"{model} does not take these arguments: {exc}", span,
                    "backbone arguments other than weights/until/taps/strict go to the model's constructor") from None


def _trace(source: str, model: str, args: dict[str, Any], queries: list[str], shape: tuple[int, ...],
           spans: dict[str, Span | None], span: Span | None, versions: dict[str, str]) -> "Translation":
    from ..translate.fx import CutError, translate

    m = instantiate(source, model, args, next((spans[k] for k in spans if k.startswith("args.")), span))
    tracer_kwargs = None
    if source == "timm":
        from timm.layers import get_notrace_functions, get_notrace_modules
        tracer_kwargs = {"leaf_modules": list(get_notrace_modules()),
                         "autowrap_functions": list(get_notrace_functions())}
    try:
        return translate(m, shape, queries or None, source=source, name=model, tracer_kwargs=tracer_kwargs,
                         versions=versions)
    except CutError as exc:
        err = cut_error(model, exc.query, exc.available[1:], _query_span(exc.query, queries, spans, span))
        stages = [f.get("module") for f in getattr(m, "feature_info", None) or [] if isinstance(f, dict)]
        if stages:   # timm names its feature stages: the usual taps
            d = err.diagnostics[0]
            err = error(d.message, d.span, f"{d.hint}; timm's feature stages (feature_info): {', '.join(stages)}")
        raise err from None
    except CnnError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model refuses this input: say which and why
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{model} cannot run on a {E.format_shape(shape)} input: {first}", span,
                    "torchvision's classification models take 3-channel images; check the input shape "
                    "(and that it is large enough for the model's downsampling)") from None


def cut_error(model: str, query: str, available: list[str], where: Span | None) -> CnnError:
    """A cut or tap that names no node: did-you-mean over the nodes and their module prefixes, and
    the top-level names (``get_graph_node_names``' list, which is long, is summarised)."""
    names = list(dict.fromkeys(".".join(n.split(".")[:k]) for n in available for k in range(1, n.count(".") + 2)))
    close = did_you_mean(query, names)
    tops = list(dict.fromkeys(n.split(".")[0] for n in available))
    inner = [n for n in available if "." in n][:3]
    listing = f"nodes of {model}: " + ", ".join(tops) + (
        f", and the nodes inside them ({', '.join(inner)}, …)" if inner else "")
    return error(f"{model} has no node '{query}'", where, f"{close} {listing}" if close else listing)


def _query_span(query: str, queries: list[str], spans: dict[str, Span | None], span: Span | None) -> Span | None:
    if query in queries:
        i = queries.index(query)
        return spans.get(f"taps.{i}") or spans.get("until") or span
    return span


# ----------------------------------------------------------------------------- cnndsl specs


def _spec(exp: "Expander", item: "Backbone", model: str, shape: tuple[int, ...], queries: list[str],
          base: str | None) -> tuple[list[_Splice], list[str], dict[str, str], BackboneDesc]:
    from ..expand import Expander
    from ..syntax.source import load_spec

    spans = item.spans or {}
    mspan = spans.get("model", item.span)
    path = Path(model) if base is None or os.path.isabs(model) else Path(base) / model
    stack: tuple[str, ...] = getattr(exp, "spec_stack", ())
    if str(path.resolve()) in stack:
        raise error("a spec cannot be its own backbone: " + " → ".join([*stack, str(path)]), mspan)
    if not path.exists():
        raise error(f"backbone spec {model} does not exist ({path})", mspan,
                    "a spec backbone's path is relative to this spec's file, like import")
    spec = load_spec(path)
    sub = Expander(spec, exp.limits)
    sub.spec_stack = (*stack, str(path.resolve()))
    graph = sub.run(dict(item.args))
    if graph.backbones:
        inner = next(iter(graph.backbones.values()))
        raise error(f"backbone {model} has a backbone of its own ({inner.label}), which cnndsl cannot nest yet",
                    mspan, "use that model directly as the backbone, with weights from the run's checkpoint")
    if graph.input.shape != shape:
        raise error(f"backbone {model} takes a {E.format_shape(graph.input.shape)} input, but gets "
                    f"{E.format_shape(shape)} here", item.span,
                    f"its network {graph.name} declares 'input {'x'.join(map(str, graph.input.shape))}'")
    paths = [n.path for n in graph.nodes[1:]]
    if queries:
        from ..translate.records import resolve_node

        outputs = []
        for i, q in enumerate(queries):
            hit = resolve_node(q, paths)
            if hit is None:
                where = spans.get(f"taps.{i}") or spans.get("until") or item.span
                raise cut_error(graph.name, q, paths, where)
            outputs.append(hit)
    else:
        outputs = [_spec_classifier_cut(graph)]
    keep = _ancestors(graph, [paths.index(o) + 1 for o in outputs])
    splices = [_Splice(n.path, n.op, tuple(None if i == 0 else graph.nodes[i].path for i in n.inputs), n.registered)
               for n in graph.nodes[1:] if n.id in keep]
    weights = None
    if item.weights is not None:
        wspan = spans.get("weights", item.span)
        if is_weights_name(item.weights) and not os.path.exists(item.weights):
            raise error("a cnndsl backbone loads a checkpoint of a run, not named weights", wspan,
                        'e.g. weights = "runs/pretrain/20250101-120000" (a run directory) or its best.pt')
        weights = file_ref(item.weights, wspan, base)
    cut = _cut_graph(graph, keep, [paths.index(o) + 1 for o in outputs])
    labels = {p: c.label for p, c in graph.containers.items()}
    from ..analysis import analyze_graph

    kept = analyze_graph(cut).state_dict_shapes()
    dropped = tuple(k for k in analyze_graph(graph).state_dict_shapes() if k not in kept)  # the classifier's
    desc = BackboneDesc("", "spec", model, 0, 0, 0, (), tuple(outputs), shape, weights, item.strict,
                        dict(item.args), dropped, False, 0, item.span, cut)
    return splices, outputs, labels, desc


def _spec_classifier_cut(graph: Graph) -> str:
    """The node feeding the last linear layer (the classifier), or the output when there is none."""
    for n in reversed(graph.nodes[1:]):
        if n.kind == "linear":
            return graph.nodes[n.inputs[0]].path if n.inputs[0] != 0 else n.path
    return graph.nodes[graph.outputs[0]].path


def _ancestors(graph: Graph, outputs: list[int]) -> set[int]:
    keep, stack = set(), list(outputs)
    while stack:
        i = stack.pop()
        if i in keep or i == 0:
            continue
        keep.add(i)
        stack.extend(graph.nodes[i].inputs)
    return keep


def _cut_graph(graph: Graph, keep: set[int], outputs: list[int]) -> Graph:
    """The spec's graph reduced to what the outputs need (ids renumbered), for building it alone."""
    from ..graph import Node

    order = [0] + [n.id for n in graph.nodes[1:] if n.id in keep]
    new = {old: i for i, old in enumerate(order)}
    nodes = [Node(new[o], graph.nodes[o].path, graph.nodes[o].op, tuple(new[i] for i in graph.nodes[o].inputs),
                  graph.nodes[o].shape, graph.nodes[o].span, graph.nodes[o].registered) for o in order]
    containers = {}
    for p, c in graph.containers.items():
        if any(n.path.startswith(p + ".") for n in nodes[1:]):
            containers[p] = Container(c.path, c.kind, c.label, c.span, new.get(c.output, -1))
    return Graph(graph.name, nodes, [new[o] for o in outputs], containers, graph.params)
