"""What a translation produces: plain records, free of torch, that serialise to JSON.

A :class:`Translation` is a traced model as a list of :class:`Record` — one per tensor-valued node
of the torch.fx graph, in topological order, each naming a cnndsl op and its arguments (or
``opaque`` with the traced shape and the module's parameters), its inputs by node name, and the
module path that holds its parameters. The expander splices records into a Graph
(:mod:`cnndsl.backbone.expand`); an importer can write the same records as spec items.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = 4   # bump when records change meaning: cached translations of another format are ignored

OPAQUE = "opaque"      # op name of a node the translator could not express as a cnndsl op
INPUT = "input"        # input name of records fed by the model's input


@dataclass(frozen=True)
class Record:
    """One node of a traced model."""

    name: str                     # qualified node name ("layer1.0.conv1", "layer1.0.add", "layer1.0.relu_1")
    op: str                       # a cnndsl op name ("conv", "add", ...) or OPAQUE
    args: dict[str, Any]          # the op's arguments by field name (JSON values: lists for pairs);
                                  # opaque: {"rf": "pointwise"} when it works position by position
    inputs: tuple[str, ...]       # names of the records it reads, in order (INPUT: the model's input)
    shape: tuple[int, ...]        # traced output shape without the batch dimension
    kind: str                     # torch.fx opcode: call_module, call_function, call_method, get_attr
    target: str                   # what was called: "Conv2d", "torch.flatten", "Tensor.mean", "layer_scale"
    module: str | None = None     # the module owning the parameters (state_dict prefix); None for functions
    submodule: bool = False       # the node is the only call of its module: it is a submodule of the model
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)    # opaque nodes: parameter shapes
    buffers: dict[str, tuple[int, ...]] = field(default_factory=dict)   # opaque nodes: buffer shapes
    reason: str | None = None     # why the node is opaque

    @property
    def opaque(self) -> bool:
        return self.op == OPAQUE

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"], d["shape"] = list(self.inputs), list(self.shape)
        d["params"] = {k: list(v) for k, v in self.params.items()}
        d["buffers"] = {k: list(v) for k, v in self.buffers.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Record":
        d = dict(d)
        d["inputs"], d["shape"] = tuple(d["inputs"]), tuple(d["shape"])
        d["params"] = {k: tuple(v) for k, v in d.get("params", {}).items()}
        d["buffers"] = {k: tuple(v) for k, v in d.get("buffers", {}).items()}
        return cls(**d)


@dataclass(frozen=True)
class Translation:
    """A model traced at one input size and cut at some nodes."""

    source: str                   # "torchvision" or "timm"
    model: str                    # the model's name ("resnet18")
    input_shape: tuple[int, ...]  # C×H×W it was traced with
    records: tuple[Record, ...]
    outputs: tuple[str, ...]      # the records the cut returns, in the order asked for
    containers: dict[str, str]    # module path → module class ("layer1" → "Sequential", "layer1.0" → "BasicBlock")
    dropped: tuple[str, ...] = () # state_dict keys of the model that the cut leaves out (the classifier)
    versions: dict[str, str] = field(default_factory=dict)
    queries: tuple[str, ...] = ()  # the cut as asked, in the model's public node names (for create_feature_extractor)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "source": self.source, "model": self.model,
                "input_shape": list(self.input_shape), "records": [r.to_json() for r in self.records],
                "outputs": list(self.outputs), "containers": self.containers, "dropped": list(self.dropped),
                "versions": self.versions, "queries": list(self.queries)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Translation":
        if d.get("format") != FORMAT:
            raise ValueError(f"translation format {d.get('format')!r}, expected {FORMAT}")
        return cls(d["source"], d["model"], tuple(d["input_shape"]),
                   tuple(Record.from_json(r) for r in d["records"]), tuple(d["outputs"]),
                   dict(d["containers"]), tuple(d.get("dropped", ())), dict(d.get("versions", {})),
                   tuple(d.get("queries", ())))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def record(self, name: str) -> Record:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(name)


def resolve_node(query: str, available: list[str]) -> str | None:
    """The node a cut/tap names: the node itself, or the last node under a module prefix
    (``layer3`` → ``layer3.1.relu_1``) — the rule of torchvision's ``create_feature_extractor``."""
    pattern = re.compile(rf"^{re.escape(query)}(\.|$)")
    hits = [n for n in available if pattern.match(n)]
    return hits[-1] if hits else None
