"""Networks used from other specs: extended, or called as a block.

``network Taps extends ResNet18(num_classes = 10) { output fc, layer1.0 }`` expands the imported
network ResNet18 first — its layers keep their names (``conv1``, ``layer1.0.conv1``: torchvision's
weights still load) and are visible to the items that follow — then its own items. What it does not
write, it inherits:

- **parameters**: its own, plus every parameter of the base that the ``extends`` call does not
  give (``size``, here): ``--set size=64`` reaches the base. An own parameter named like a base
  parameter the call leaves out is passed to it (``network Mine(num_classes = 5) extends ResNet18``);
- **input**: the base's, when it declares none;
- **outputs**: its ``output`` statement; else its last item when it adds items; else the base's;
- **freeze / unfreeze** patterns add to the base's; ``init`` replaces the base's.

A network called like a block (``backbone: ResNet18(num_classes = 10)``) is expanded the same way
inside the block's scope (``backbone.conv1``); its ``input`` is not used — it takes what flows in
— and it must have a single output; its freeze patterns and init stay with it as a network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import expr as E
from .bind import bind_network_params, call_arguments
from .errors import did_you_mean, error
from .ir import Layer, NetworkDef, Param, Spec

if TYPE_CHECKING:
    from .expand import Expander, _Ctx

Chain = list[tuple[NetworkDef, dict[str, Any]]]


def base_of(spec: Spec, net: NetworkDef) -> NetworkDef | None:
    """The network ``net`` extends (imported), or None; an unknown name is an error."""
    call = net.extends
    if call is None:
        return None
    base = spec.imported_network(call.op)
    if base is not None:
        return base
    if spec.block(call.op) is not None:
        raise error(f"'{call.op}' is a block, not a network: only a network can be extended", call.span,
                    f"use the block as a layer, {call.op}(...), in the network's body")
    names = [n.name for n in spec.networks]
    hint = did_you_mean(call.op, names) or (
        "imported networks: " + ", ".join(names) if names else
        "import the file that defines it: e.g. import \"resnet18\" (a shipped spec) or import \"base.cnn\"")
    raise error(f"no imported network is called '{call.op}'", call.span, hint)


def parameters(spec: Spec, net: NetworkDef, _depth: int = 0) -> tuple[Param, ...]:
    """Every parameter ``net`` takes: its own, then those it inherits (see the module docstring)."""
    base = base_of(spec, net)
    if base is None:
        return net.params
    if _depth > 64:
        raise error("networks extend each other in a cycle", net.span)
    inherited = parameters(spec, base, _depth + 1)
    call = net.extends
    given = {p.name for p in inherited[:len(call.args)]} | {k.name for k in call.kwargs}
    own = {p.name for p in net.params}
    return net.params + tuple(p for p in inherited if p.name not in given | own)


def with_all_parameters(spec: Spec, net: NetworkDef) -> NetworkDef:
    """``net`` declaring every parameter it takes (:func:`parameters`), for binding a call to it."""
    return net.model_copy(update={"params": parameters(spec, net)})


def bind_chain(spec: Spec, net: NetworkDef, values: dict[str, Any]) -> Chain:
    """``[(network, its parameter values)]``, the deepest base first, ``net`` last; ``values`` are
    given parameters (``--set``, ``build(**params)``, a call's arguments) of ``net``."""
    whole_net = with_all_parameters(spec, net)
    everything = whole_net.params
    known = {p.name for p in everything}
    unknown = [k for k in values if k not in known]
    if unknown:  # the message names this network, whatever the depth of the parameter
        bind_network_params(whole_net, values)
    own_names = {p.name for p in net.params}
    own = bind_network_params(net, {k: v for k, v in values.items() if k in own_names})
    base = base_of(spec, net)
    if base is None:
        return [(net, own)]
    whole = with_all_parameters(spec, base)
    given = call_arguments(whole, net.extends, E.Env(own))
    passed = {p.name: own[p.name] for p in whole.params if p.name in own and p.name not in given}
    through = {k: v for k, v in values.items() if k not in own_names}
    chain = bind_chain(spec, base, {**given, **passed, **through})
    base_env = chain[-1][1]
    inherited = {p.name: base_env[p.name] for p in everything[len(net.params):] if p.name in base_env}
    return chain + [(net, {**inherited, **own})]


def input_of(chain: Chain) -> tuple[list[int], Any]:
    """The input dimensions (evaluated and checked) and the statement's span: the nearest declaration."""
    net, env = next(((n, e) for n, e in reversed(chain) if n.input), (None, None))
    if net is None:
        raise error(f"network '{chain[-1][0].name}' has no input", chain[-1][0].span, "declare one: input 3x32x32")
    dims = [E.evaluate(e, E.Env(env)) for e in net.input]
    for d, e in zip(dims, net.input):
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise error(f"input dimensions must be whole numbers ≥ 1, got {E.describe(d)}", e.span)
    if len(dims) not in (1, 3):
        raise error(f"the input must be C×H×W (or a vector of features), got {len(dims)} dimensions",
                    net.input_span, "e.g. input 3x32x32")
    return dims, net.input_span


def expand_chain(exp: "Expander", chain: Chain, cur: int, ctx: "_Ctx") -> tuple[int, list[int]]:
    """Expand each network's items in ``ctx``'s scope, base first; (last node, output nodes)."""
    from .expand import _Ctx

    ends = []
    for net, env in chain:
        cur = exp.seq(net.body, cur, _Ctx(ctx.scope, ctx.ns, env, ctx.blocks))
        ends.append(cur)
    for (net, _), end in zip(reversed(chain), reversed(ends)):
        if net.outputs:
            return cur, [exp.resolve(r, ctx.ns).node for r in net.outputs]
        if net.body:
            return cur, [end]
    return cur, [cur]


def statements(chain: Chain) -> tuple[list, list, Any]:
    """(freeze patterns, unfreeze patterns, init) of the whole chain."""
    freeze = [p for net, _ in chain for p in net.freeze]
    unfreeze = [p for net, _ in chain for p in net.unfreeze]
    init = next((net.init for net, _ in reversed(chain) if net.init is not None), None)
    return freeze, unfreeze, init


def call_network(exp: "Expander", net: NetworkDef, item: Layer, name: str | None, cur: int, ctx: "_Ctx",
                 env: E.Env) -> int:
    """An imported network called like a block: a submodule ``name`` holding its layers."""
    from .expand import _Binding

    if len(ctx.blocks) >= exp.limits.max_block_depth:
        raise error(f"blocks nested deeper than {exp.limits.max_block_depth} levels", item.span)
    chain = bind_chain(exp.spec, net, call_arguments(with_all_parameters(exp.spec, net), item, env))
    inner = exp.enter(name, "block", net.name, item.span, cur, ctx, closed=True)
    inner.blocks = ctx.blocks + (net.name,)
    inner.ns.names["input"] = _Binding(cur)
    _, outputs = expand_chain(exp, chain, cur, inner)
    if len(outputs) != 1:
        names = ", ".join(str(r) for n, _ in reversed(chain) if n.outputs for r in n.outputs)
        raise error(f"network {net.name} has {len(outputs)} outputs ({names}); called as a block, a network "
                    "must have one", item.span,
                    f"keep its outputs with 'network Mine extends {net.name}', or refer to them after the "
                    f"call ({'NAME' if name is None else name}.{names.split(', ')[0]})")
    exp.finish(inner, outputs[0], ctx)
    return outputs[0]
