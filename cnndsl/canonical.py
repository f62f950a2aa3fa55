"""The canonical form of a spec and its hash: syntax-independent plain data.

Positional arguments become keyword arguments named after the op's fields or the block's
parameters, short aliases become full names (``k`` → ``kernel``), imported blocks count as if
written in the file, and source spans and formatting are gone. A spec written in ``.cnn`` and in
YAML has one canonical form, hence one hash.

The form depends on the ops' argument names (through the op REGISTRY), so it sits above
:mod:`cnndsl.ops`; :mod:`cnndsl.ir` does not import it. :data:`HASH_VERSION` is part of the hashed
data: bump it whenever the canonical form changes on purpose (a renamed op argument, a new field),
so old checkpoints are refused with a clear "the spec changed" instead of matching by accident.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .ir import ITEM_KINDS, Spec
from .ops import REGISTRY

HASH_VERSION = 2  # 1: the hash before versioning (Spec.hash(), positional names only)


def canonical_spec(spec: Spec) -> dict[str, Any]:
    """The spec as plain data: blocks by name, layers with keyword arguments, no spans."""
    networks = getattr(spec, "networks", ())  # tests/train's FakeSpec has none
    params = {b.name: [p.name for p in b.params] for b in (*spec.blocks, *networks)}
    data = spec.model_dump(mode="json", exclude={"imports"})
    data["blocks"] = {b.pop("name"): b for b in sorted(data["blocks"], key=lambda b: b["name"])}
    if "networks" in data:  # imported networks (blocks and bases), by name
        data["networks"] = {n.pop("name"): n for n in sorted(data["networks"], key=lambda n: n["name"])}
    _keywords([data["blocks"], data["network"], data.get("networks")], params)  # not train: plain data
    return data


def spec_hash(spec: Spec) -> str:
    """sha256 of the versioned canonical form: equal for equal specs, whatever their syntax or layout."""
    text = json.dumps({"version": HASH_VERSION, "spec": canonical_spec(spec)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _keywords(value: Any, block_params: dict[str, list[str]]) -> None:
    """Walk dumped IR (iteratively: specs can nest 64 levels) and give every item its canonical
    form with ``canonical_<kind>`` (found by name: one per construct)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            kind = v.get("kind")
            if isinstance(kind, str) and kind in ITEM_KINDS:
                globals()[f"canonical_{kind}"](v, block_params)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def canonical_same(d: dict[str, Any], block_params: dict[str, list[str]]) -> None:
    """Constructs whose dumped form is already syntax-independent (their nested items are walked)."""


canonical_group = canonical_residual = canonical_parallel = canonical_merge = canonical_from = canonical_same
canonical_backbone = canonical_same  # options are plain values, the same in both syntaxes
canonical_split = canonical_same     # its arguments are sizes, by position in both syntaxes


def canonical_layer(d: dict[str, Any], block_params: dict[str, list[str]]) -> None:
    """Positional arguments → keywords named after the op's fields or the block's parameters."""
    cls = None if d["op"] in block_params else REGISTRY.get(d["op"])  # blocks first: no plugin lookup
    if cls is not None:
        names, aliases = list(cls.positional), dict(cls.aliases)
    else:
        names, aliases = block_params.get(d["op"], []), {}
    args = {names[i]: a for i, a in enumerate(d["args"]) if i < len(names)}
    extra = d["args"][len(names):]
    for kw in d.pop("kwargs"):
        args[aliases.get(kw["name"], kw["name"])] = kw["value"]
    d["args"] = dict(sorted(args.items()))
    if extra:
        d["extra_args"] = extra
