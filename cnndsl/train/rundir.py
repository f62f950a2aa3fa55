"""What a run directory recorded, so ``eval`` and ``predict`` can reuse it.

``cnndsl train`` writes, next to its checkpoints, a copy of the spec (``spec.cnn``), ``run.json``
(the spec's original path, the ``--set`` network parameters and train overrides, the spec hash),
``data.json`` (class names, normalization statistics, image shape) and ``config.json`` (the resolved
train config). ``cnndsl eval RUN_DIR`` and ``cnndsl eval SPEC --checkpoint RUN_DIR`` read them back;
values given on the command line win over recorded ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl.errors import error
from cnndsl.files import SPEC_SUFFIXES
from cnndsl.ir import Spec

CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass
class Recorded:
    """A spec and checkpoint to evaluate, with what the run recorded about them."""

    checkpoint: str  # a checkpoint file, or a run directory (its last.pt)
    spec: Spec  # the Spec to build
    params: dict[str, Any] = field(default_factory=dict)  # network parameters: recorded, then --set
    train: dict[str, Any] | None = None  # the train config the run resolved (config.json)
    run_dir: Path | None = None


def write_run_json(run_dir: Path, spec: Spec, params: dict[str, Any], overrides: dict[str, Any] | None,
                   spec_hash: str) -> None:
    """Record how the run was started (not rewritten when a run is resumed)."""
    path = run_dir / "run.json"
    if path.exists():
        return
    src = spec.path
    record = {"spec": os.path.abspath(src) if src else None,
              "spec_copy": ("spec" + Path(src).suffix) if src else None,
              "params": params, "train_overrides": overrides or {}, "spec_hash": spec_hash}
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_run(path: Path) -> bool:
    return path.is_dir() or path.suffix in CHECKPOINT_SUFFIXES


def recorded_spec(run_dir: Path, run: dict[str, Any] | None) -> Spec:
    """The spec a run trained: its copy in the run directory, with imports resolved from where the
    original lived (else the original file)."""
    from cnndsl.syntax.source import parse_text, read_file, resolve_imports

    original = (run or {}).get("spec")
    copies = sorted(p for p in run_dir.glob("spec.*") if p.suffix in SPEC_SUFFIXES)
    if copies:
        base = Path(original).parent if original else run_dir
        return resolve_imports(parse_text(read_file(copies[0]), str(copies[0])), base)
    if original and Path(original).is_file():
        import cnndsl
        return cnndsl.load(original)
    raise error(f"{run_dir} holds no copy of the spec it was trained with",
                hint="name the spec as well: cnndsl eval SPEC --checkpoint RUN_DIR")


def resolve(target: str | os.PathLike | Spec, checkpoint: str | os.PathLike | None = None,
            params_given: dict[str, Any] | None = None, command: str = "eval") -> Recorded:
    """The spec, checkpoint, parameters and train config for ``eval`` / ``predict``.

    ``target`` may be a spec (file or :class:`Spec`), a run directory or a checkpoint file;
    ``checkpoint`` a run directory or a checkpoint file. ``params_given`` (``--set``) win over
    recorded parameters."""
    spec = target if isinstance(target, Spec) else None
    ckpt = checkpoint
    spec_path = None if spec is not None or _is_run(Path(target)) else target
    if spec is None and spec_path is None and ckpt is None:
        ckpt = target
    if spec_path is not None:
        import cnndsl
        spec = cnndsl.load(spec_path)  # a missing path is reported as such first
    if ckpt is None:
        raise error(f"{command} needs a checkpoint", None,
                    f"pass --checkpoint RUN_DIR (or a .pt file), or give the run directory instead of the spec: "
                    f"cnndsl {command} runs/<spec>/<time>")
    if not Path(ckpt).exists():
        raise error(f"checkpoint {ckpt} does not exist", None, "pass a run directory or a .pt file")
    run_dir = Path(ckpt) if Path(ckpt).is_dir() else Path(ckpt).parent
    run = _json(run_dir / "run.json")
    data = _json(run_dir / "data.json") or {}
    if spec is None:
        spec = recorded_spec(run_dir, run)
    params = dict((run or {}).get("params") or data.get("params") or {})
    params.update(params_given or {})
    config = _json(run_dir / "config.json") or {}
    return Recorded(str(ckpt), spec, params, config.get("train"), run_dir)


def recorded_config(train: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """A recorded train config with the command line's overrides on top; its device is not reused
    (the run may have had a GPU this machine lacks): ``auto`` unless ``--device`` says otherwise."""
    from . import config as C

    raw = dict(train, device="auto")
    return C.validate(C.apply_overrides(raw, overrides), None, overrides)
