"""Capture the value of any layer during a forward pass, by name.

For a network cnndsl built, a name is any node of its graph (``conv1``, ``layer1.0.bn2``, the
implicit sum ``layer1.0.add``, ``input``) or any container (``layer1``, ``layer1.0``), whose value is
that of the node the container outputs (``graph.containers[path].output``). Capturing by graph node
works whether or not the container modules run their own ``forward``: a node with a module is hooked
on that module; a node without one (a residual's implicit sum) is read as the input of a module that
consumes it, or from the network's outputs. For any other ``nn.Module`` a name is a submodule path
(``model.named_modules()``) and its forward hook gives the value.

Hooks hand the network a copy of the captured tensor, so in-place layers downstream never change
what was captured; with ``keep_grad`` the captured tensor stays in the autograd graph (Grad-CAM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import torch
from torch import nn

from ..errors import did_you_mean, error

if TYPE_CHECKING:
    from ..analysis import Analysis


@dataclass(frozen=True)
class Site:
    """Where one requested name's value is read."""

    name: str                 # as requested
    how: str                  # "module" (forward hook), "input_of" (pre-hook on a consumer), "output", "model_input"
    module: str = ""          # submodule path of the hooked module
    index: int = 0            # argument index (input_of) or output index (output)
    node: int | None = None   # graph node id (cnndsl networks)


def layer_names(analysis: "Analysis") -> list[str]:
    """Every name :func:`features` accepts for a cnndsl network, in network order."""
    graph = analysis.graph
    first_node: dict[str, int] = {}
    for n in graph.nodes:  # a container is listed before its first node
        parts = n.path.split(".")
        for k in range(1, len(parts)):
            prefix = ".".join(parts[:k])
            if prefix in graph.containers:
                first_node.setdefault(prefix, n.id)
    order = [(n.id, 1, n.path) for n in graph.nodes] + [(i, 0, p) for p, i in first_node.items()]
    return [name for _, _, name in sorted(order)]


def resolve_node(analysis: "Analysis", name: str, flag: str = "--layer") -> int:
    """The graph node whose value ``name`` (a node or a container) stands for."""
    graph = analysis.graph
    for n in graph.nodes:
        if n.path == name:
            return n.id
    if name in graph.containers:
        return graph.containers[name].output
    raise unknown_layer(name, layer_names(analysis), analysis.name, flag)


def unknown_layer(name: str, valid: Sequence[str], network: str, flag: str = "--layer") -> Exception:
    """A CnnError for a layer name that does not exist, with did-you-mean and the valid names."""
    top = [v for v in valid if "." not in v]
    listing = ", ".join(top[:40]) + (f", ... ({len(top) - 40} more)" if len(top) > 40 else "")
    hint = did_you_mean(name, valid)
    hint = (hint + " " if hint else "") + f"top-level layers: {listing}"
    inner = [v for v in valid if "." in v]
    if inner:
        hint += f"; inside them: '{inner[0]}', ... ({len(inner)} names; `cnndsl compile SPEC --graph` lists every node)"
    return error(f"{flag}: {network} has no layer named '{name}'", None, hint)


def plan(model: nn.Module, names: Iterable[str], analysis: "Analysis | None" = None,
         flag: str = "--layer") -> list[Site]:
    """Decide how each name's value is captured (checks every name before anything runs). Without
    ``analysis``, a network :func:`cnndsl.build` made is looked up by its analysis."""
    if analysis is None:
        from ..api import analysis_of

        analysis = analysis_of(model)
    modules = dict(model.named_modules())
    sites = []
    for name in names:
        if analysis is None:
            if name not in modules or name == "":
                raise unknown_layer(name, [m for m in modules if m], type(model).__name__, flag)
            sites.append(Site(name, "module", name))
            continue
        nid = resolve_node(analysis, name, flag)
        sites.append(_graph_site(analysis, name, nid, modules))
    return sites


def _graph_site(analysis: "Analysis", name: str, nid: int, modules: dict[str, nn.Module]) -> Site:
    graph = analysis.graph
    node = graph.nodes[nid]
    if nid == 0:
        return Site(name, "model_input", node=nid)
    if node.path in modules:
        return Site(name, "module", node.path, node=nid)
    for user in graph.consumers()[nid]:
        upath = graph.nodes[user].path
        if upath in modules:
            return Site(name, "input_of", upath, graph.nodes[user].inputs.index(nid), node=nid)
    if nid in graph.outputs:
        return Site(name, "output", index=graph.outputs.index(nid), node=nid)
    raise error(f"cannot capture '{name}': no module computes or reads it", None,
                "ask for the layer that consumes it instead")


class Capture:
    """Context manager: hooks that record each site's value during ``model(x)``.

    ``with Capture(model, sites) as cap: out = model(x)``; then ``cap.values(out)`` maps names to
    tensors. Without ``keep_grad`` the values are detached copies.
    """

    def __init__(self, model: nn.Module, sites: Sequence[Site], keep_grad: bool = False):
        self.model, self.sites, self.keep_grad = model, list(sites), keep_grad
        self.seen: dict[str, torch.Tensor] = {}
        self.handles: list[Any] = []

    def _keep(self, name: str, value: Any) -> Any:
        """Record ``value``; return the copy the network continues with (or None to keep it)."""
        if not isinstance(value, torch.Tensor):
            raise error(f"layer '{name}' produces a {type(value).__name__}, not a tensor", None,
                        "ask for one of the tensors it is made of")
        if self.keep_grad:
            self.seen[name] = value
            return value.clone()
        self.seen[name] = value.detach().clone()
        return None

    def __enter__(self) -> "Capture":
        mods = dict(self.model.named_modules())
        for s in self.sites:
            if s.how == "module":
                self.handles.append(mods[s.module].register_forward_hook(self._out_hook(s.name)))
            elif s.how == "input_of":
                self.handles.append(mods[s.module].register_forward_pre_hook(self._in_hook(s.name, s.index)))
            elif s.how == "model_input":
                self.handles.append(self.model.register_forward_pre_hook(self._in_hook(s.name, 0)))
        return self

    def _out_hook(self, name: str):
        def hook(module: nn.Module, args: Any, out: Any) -> Any:
            return self._keep(name, out)
        return hook

    def _in_hook(self, name: str, index: int):
        def hook(module: nn.Module, args: tuple) -> Any:
            copy = self._keep(name, args[index])
            if copy is None:
                return None
            return args[:index] + (copy,) + args[index + 1:]
        return hook

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def values(self, output: Any) -> dict[str, torch.Tensor]:
        """The captured values in the requested order (``output`` is what ``model(x)`` returned)."""
        outs = list(output) if isinstance(output, (tuple, list)) else [output]
        result = {}
        for s in self.sites:
            if s.how == "output":
                value = outs[s.index]
                result[s.name] = value if self.keep_grad else value.detach().clone()
            elif s.name in self.seen:
                result[s.name] = self.seen[s.name]
            else:
                raise error(f"layer '{s.name}' did not run during the forward pass", None,
                            "its module is not called by the network's forward; pick a layer that runs"
                            + ("" if s.node is not None else
                               " (for a network built by cnndsl, pass analysis=cnndsl.analyze(spec))"))
        return result


def features(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | str, *,
             analysis: "Analysis | None" = None) -> dict[str, torch.Tensor]:
    """Run ``model(x)`` once and return the values of ``layers`` (name → tensor, batch first).

    For a network built by :func:`cnndsl.build` the names are those of the spec: any layer or
    container (``"conv1"``, ``"layer1"``, ``"layer1.0"``, ``"layer1.0.add"``, ``"input"``);
    for any other module, submodule paths. The model's train/eval mode is left as it is, and no
    gradients are recorded.
    """
    if isinstance(layers, str):
        layers = [layers]
    sites = plan(model, layers, analysis, flag="layers")
    with torch.no_grad(), Capture(model, sites) as cap:
        out = model(x)
    return cap.values(out)
