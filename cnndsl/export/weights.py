"""Weights in and out of a built network: strict state-dict matching with a mismatch table,
safetensors files, and reading the weights a ``--checkpoint`` names.

Plain functions, so other readers of weights files (backbones) can reuse them:

    model = cnndsl.build("spec.cnn")
    save_safetensors(model, "model.safetensors", metadata={"spec": "spec.cnn"})
    load_safetensors(model, "model.safetensors")          # strict: a CnnError with a table on mismatch
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import CnnError, error

if TYPE_CHECKING:
    import torch
    from torch import nn

MAX_ROWS = 20  # rows of a mismatch table before "... and N more"


@dataclass(frozen=True)
class Mismatch:
    """One row of a state-dict comparison: a key the model has and the weights lack, the reverse,
    or a key present in both with different shapes."""

    kind: str                         # "missing" | "unexpected" | "shape"
    key: str
    expected: tuple[int, ...] | None  # the model's shape
    got: tuple[int, ...] | None       # the weights' shape


def compare_state(expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]]) -> list[Mismatch]:
    """Rows for every key missing from ``got``, unexpected in it, or of another shape (model order)."""
    rows = [Mismatch("missing", k, tuple(s), None) for k, s in expected.items() if k not in got]
    rows += [Mismatch("shape", k, tuple(s), tuple(got[k])) for k, s in expected.items()
             if k in got and tuple(got[k]) != tuple(s)]
    rows += [Mismatch("unexpected", k, None, tuple(s)) for k, s in got.items() if k not in expected]
    return rows


def mismatch_table(rows: list[Mismatch]) -> str:
    """An aligned text table: what, key, model shape, weights shape."""
    def shape(s: tuple[int, ...] | None) -> str:
        return "-" if s is None else "×".join(map(str, s)) or "scalar"

    shown = rows[:MAX_ROWS]
    cells = [("", "key", "model", "weights")] + [(r.kind, r.key, shape(r.expected), shape(r.got)) for r in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  " + "  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    if len(rows) > MAX_ROWS:
        lines.append(f"  ... and {len(rows) - MAX_ROWS} more")
    return "\n".join(lines)


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def check_state(model: "nn.Module", state: Mapping[str, "torch.Tensor"], source: str) -> None:
    """Raise a CnnError with a mismatch table unless ``state`` has exactly the model's keys and shapes."""
    rows = compare_state(_shapes(model.state_dict()), _shapes(state))
    if not rows:
        return
    counts = {k: sum(r.kind == k for r in rows) for k in ("missing", "unexpected", "shape")}
    summary = ", ".join(f"{n} {'mis-shaped' if k == 'shape' else k}" for k, n in counts.items() if n)
    raise error(f"the weights in {source} do not match the network ({summary}):\n{mismatch_table(rows)}",
                None, "were they written for another spec, or with other network parameters (--set)?")


def load_state(model: "nn.Module", state: Mapping[str, "torch.Tensor"], source: str) -> "nn.Module":
    """Strict ``load_state_dict``: keys and shapes are checked first and reported as a table."""
    check_state(model, state, source)
    model.load_state_dict(dict(state), strict=True)
    return model


# ----------------------------------------------------------------------------- safetensors


def _safetensors():
    try:
        import safetensors.torch as st
    except ImportError:
        raise error("safetensors is not installed", None,
                    "pip install 'cnndsl[export]' (or pip install safetensors)") from None
    return st


def save_safetensors(model: "nn.Module", path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write the model's state_dict (contiguous CPU copies) with text ``metadata`` in the header."""
    st = _safetensors()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    st.save_file(state, str(path), metadata=dict(metadata or {}))
    return Path(path)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, "torch.Tensor"], dict[str, str]]:
    """Tensors and header metadata of a safetensors file; a corrupt file is a CnnError naming it."""
    st = _safetensors()
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise error(f"weights file {p} does not exist" if not p.exists() else f"{p} is not a file", None,
                    "pass a .safetensors file")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
        return st.load_file(str(p)), meta
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"cannot read safetensors file {p}: {detail}", None,
                    "the file is truncated or not a safetensors file") from None


def load_safetensors(model: "nn.Module", path: str | os.PathLike) -> "nn.Module":
    """Load a safetensors file into ``model``, strictly (keys and shapes; a table on mismatch)."""
    state, _ = read_safetensors(path)
    return load_state(model, state, str(path))


# ----------------------------------------------------------------------------- --checkpoint


@dataclass
class Weights:
    """Weights read for a network: the state dict, where they came from, and what the source
    recorded about the run (network parameters, spec hash) when it did."""

    state: dict[str, "torch.Tensor"]
    source: str
    params: dict[str, Any]
    spec_hash: str | None = None


def read_weights(path: str | os.PathLike, ema: bool = False) -> Weights:
    """The weights a ``--checkpoint`` names: a cnndsl checkpoint, a run directory, a bare state_dict
    (``.pt``) or a ``.safetensors`` file. Errors are the checkpoint loader's diagnostics."""
    p = Path(path)
    if p.suffix == ".safetensors":
        state, meta = read_safetensors(p)
        params = json.loads(meta["params"]) if "params" in meta else {}
        return Weights(state, str(p), params if isinstance(params, dict) else {}, meta.get("spec_hash"))
    from ..train import checkpoint as ckpt

    obj = ckpt.load(p)
    state = ckpt.model_state(obj, p)
    if ema:
        if not obj.get("ema"):
            raise error(f"checkpoint {p} holds no EMA weights", None, "train with 'ema' in the train section, "
                        "or leave out --ema")
        state = {**state, **obj["ema"]}
    return Weights(dict(state), str(p), _run_params(p), obj.get("spec_hash"))


def _run_params(path: Path) -> dict[str, Any]:
    """The network parameters a run was trained with (``data.json`` of its run directory), or {}."""
    for folder in (path, path.parent, path.parent.parent) if path.is_dir() else (path.parent, path.parent.parent):
        meta = folder / "data.json"
        if meta.is_file():
            try:
                params = json.loads(meta.read_text(encoding="utf-8")).get("params") or {}
            except (OSError, ValueError, AttributeError):
                return {}
            return params if isinstance(params, dict) else {}
    return {}


__all__ = ["Mismatch", "compare_state", "mismatch_table", "check_state", "load_state", "save_safetensors",
           "read_safetensors", "load_safetensors", "Weights", "read_weights", "CnnError"]
