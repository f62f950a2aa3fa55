"""Rewrites of a traced graph before translation: several nodes that together are one cnndsl op.

torch.fx records what a forward does call by call, so an operation written as a few tensor calls
arrives as a few nodes, none of which is a cnndsl op on its own. Each pattern here finds such a
run in the shape-propagated graph and replaces it by the one call it computes, keeping the last
node's qualified name (so cuts and taps at it still resolve) and its traced shape:

- ShuffleNet's channel shuffle, ``x.view(b, g, c // g, h, w)``, ``torch.transpose(x, 1, 2)``,
  ``.contiguous()``, ``x.view(b, c, h, w)`` → ``torch.channel_shuffle(x, g)`` (op
  ``channel_shuffle``): the same permutation of the channels, exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from .tables import node_target

_RESHAPES = frozenset({"Tensor.view", "Tensor.reshape", "torch.reshape"})
_TRANSPOSES = frozenset({"Tensor.transpose", "torch.transpose"})
_NO_OPS = frozenset({"Tensor.contiguous"})


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(int(s) for s in meta.shape) if hasattr(meta, "shape") else None


def _single_input(node: fx.Node) -> fx.Node | None:
    """The tensor a call reads (its first argument) when it is only read there."""
    src = node.args[0] if node.args else None
    return src if isinstance(src, fx.Node) and len(src.users) == 1 else None


def _shuffle_groups(last: fx.Node) -> tuple[fx.Node, int, list[fx.Node]] | None:
    """``(x, groups, nodes to remove)`` when ``last`` ends a channel shuffle of ``x``."""
    if node_target(last) not in _RESHAPES:
        return None
    out, chain = _shape(last), [last]
    node = _single_input(last)
    while node is not None and node_target(node) in _NO_OPS:
        chain.append(node)
        node = _single_input(node)
    if node is None or node_target(node) not in _TRANSPOSES or sorted(node.args[1:3]) != [1, 2] or node.kwargs:
        return None
    chain.append(node)
    split = _single_input(node)
    if split is None or node_target(split) not in _RESHAPES:
        return None
    chain.append(split)
    x = split.args[0]
    grouped, whole = _shape(split), _shape(x)
    if out is None or whole is None or grouped is None or out != whole or len(whole) != 4 or len(grouped) != 5:
        return None
    b, c, h, w = whole
    g = grouped[1]
    if grouped != (b, g, c // g, h, w) or g * (c // g) != c:
        return None
    return x, g, chain


def fuse_channel_shuffles(gm: fx.GraphModule, names: dict[str, str]) -> None:
    """Replace every channel shuffle of ``gm`` (shapes propagated) by ``torch.channel_shuffle``;
    ``names`` (fx node name → qualified name) gets the new nodes' names."""
    graph = gm.graph
    for last in list(graph.nodes):
        if last.op not in ("call_method", "call_function"):
            continue
        found = _shuffle_groups(last)
        if found is None:
            continue
        x, groups, chain = found
        with graph.inserting_before(last):
            fused = graph.call_function(torch.channel_shuffle, (x, groups))
        fused.meta = dict(last.meta)
        if last.name in names:
            names[fused.name] = names[last.name]
        last.replace_all_uses_with(fused)
        for node in chain:           # last first: each node's only user is already gone
            graph.erase_node(node)
    graph.eliminate_dead_code()
    gm.recompile()
