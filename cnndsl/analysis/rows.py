"""The rows of a summary: one per layer, except inside a traced backbone, where one row stands for
a stage (``features.layer1``) unless ``depth`` asks for more.

``depth`` N folds every layer deeper than N path components into its ancestor at depth N (the
whole summary); without it, a spec's own layers get one row each and a backbone's layers one row
per child of the backbone. A folded row sums parameters and MACs, and shows the output shape and
receptive field of its last layer.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    unknown_rf: bool = False  # the receptive field is unknown (a layer with no cnndsl op comes before)


def _stages(a: Analysis) -> dict[int, tuple[str | None, bool]]:
    """node id → (the row it folds into by default, whether its backbone was traced). A backbone's
    stages are its children — or, where one child holds most of the model (VGG's and MobileNet's
    ``features``), that child's children."""
    out: dict[int, tuple[str | None, bool]] = {}
    for desc in a.graph.backbones.values():
        ids = list(desc.node_ids())
        paths = {nid: a.graph.nodes[nid].path.split(".") for nid in ids}
        counts: dict[tuple[str, ...], int] = {}
        for parts in paths.values():
            for k in range(1, len(parts)):
                counts[tuple(parts[:k])] = counts.get(tuple(parts[:k]), 0) + 1
        base = desc.path.count(".") + 1
        for nid, parts in paths.items():
            k = base + 1
            while k < len(parts) and counts.get(tuple(parts[:k]), 0) * 2 > len(ids):
                k += 1
            out[nid] = (".".join(parts[:k]) if len(parts) > k else None, desc.source != "spec")
    return out


def summary_rows(a: Analysis, depth: int | None = None) -> list[Row]:
    stages = _stages(a)
    fields = len(a.graph.input.shape) == 3   # networks on vectors have no receptive fields at all
    rows: list[Row] = []
    keys: list[str | None] = []
    for info in a.layers:
        stage = stages.get(info.node.id)
        parts = info.name.split(".")
        if depth is not None:
            key = ".".join(parts[:depth]) if len(parts) > depth else None
        else:
            key = stage[0] if stage else None
        traced = bool(stage and stage[1])
        if key is not None and keys and keys[-1] == key:
            _fold(rows[-1], info, fields)
            continue
        keys.append(key)
        label = info.op
        if key is not None:
            container = a.graph.containers.get(key)
            label = container.label if container is not None else "group"
        row = Row(key or info.name, label, info.shape, 0, 0, 0, info.rf, traced, 0)
        _fold(row, info, fields)
        rows.append(row)
    return rows


def _fold(row: Row, info: LayerInfo, fields: bool) -> None:
    row.params += info.cost.params
    row.trainable += info.cost.trainable
    row.macs += info.cost.macs
    row.shape, row.rf = info.shape, info.rf
    row.layers += 1
    row.unknown_rf = fields and info.rf is None
