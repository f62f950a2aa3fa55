"""The rows of a summary: one per layer, except inside a traced backbone, where one row stands for
a stage (``features.layer1``) unless ``depth`` asks for more.

``depth`` N folds every layer deeper than N path components into its ancestor at depth N (the
whole summary); without it, a spec's own layers get one row each and a backbone's layers one row
per child of the backbone. A folded row sums parameters and MACs, and shows the output shape and
receptive field of its last layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..translate.nodes import Opaque
from . import Analysis, LayerInfo
from .receptive_field import RF


@dataclass
class Row:
    name: str
    op: str
    shape: tuple[int, ...]
    params: int
    trainable: int
    macs: int
    rf: RF | None
    traced: bool            # the row comes from a traced model (a torchvision / timm backbone)
    layers: int = 1         # how many layers it stands for
    opaque: bool = False    # it holds a layer with no cnndsl op (receptive field unknown)


def _backbone_of(a: Analysis) -> dict[int, tuple[int, bool]]:
    """node id → (the path depth of its backbone item, whether the backbone was traced)."""
    out: dict[int, tuple[int, bool]] = {}
    for desc in a.graph.backbones.values():
        depth = desc.path.count(".") + 1
        for nid in desc.node_ids():
            out[nid] = (depth, desc.source != "spec")
    return out


def summary_rows(a: Analysis, depth: int | None = None) -> list[Row]:
    owners = _backbone_of(a)
    rows: list[Row] = []
    keys: list[str | None] = []
    for info in a.layers:
        nid = info.node.id
        owner = owners.get(nid)
        limit = depth if depth is not None else (owner[0] + 1 if owner else None)
        parts = info.name.split(".")
        key = ".".join(parts[:limit]) if limit is not None and len(parts) > limit else None
        traced = bool(owner and owner[1])
        if key is not None and keys and keys[-1] == key:
            _fold(rows[-1], info)
            continue
        keys.append(key)
        rows.append(_single(info, traced) if key is None else _group(a, key, info, traced))
    return rows


def _opaque(info: LayerInfo) -> bool:
    return isinstance(info.node.op, Opaque)


def _single(info: LayerInfo, traced: bool) -> Row:
    return Row(info.name, info.op, info.shape, info.cost.params, info.cost.trainable, info.cost.macs, info.rf,
               traced, 1, _opaque(info))


def _group(a: Analysis, key: str, info: LayerInfo, traced: bool) -> Row:
    container = a.graph.containers.get(key)
    label = container.label if container is not None else "group"
    row = Row(key, label, info.shape, 0, 0, 0, info.rf, traced, 0)
    _fold(row, info)
    return row


def _fold(row: Row, info: LayerInfo) -> None:
    row.params += info.cost.params
    row.trainable += info.cost.trainable
    row.macs += info.cost.macs
    row.shape, row.rf = info.shape, info.rf
    row.layers += 1
    row.opaque = row.opaque or _opaque(info)
