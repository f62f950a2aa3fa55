"""Resuming a run: find its checkpoint, check that it is a whole cnndsl training state written for
this spec — all before anything is written — then restore the training objects from it.

Every problem is a diagnostic naming the checkpoint file and what is missing or wrong with it.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import torch

from cnndsl.errors import error
from cnndsl.files import file_span
from . import checkpoint as ckpt

# key: (what it must be, a check)
_IS_INT = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
_SCHEMA: dict[str, tuple[str, Any]] = {
    "model": ("a state_dict of tensors", lambda v: isinstance(v, dict) and v and
              all(isinstance(t, torch.Tensor) for t in v.values())),
    "optimizer": ("an optimizer state_dict (state, param_groups)", lambda v: isinstance(v, dict) and
                  isinstance(v.get("state"), dict) and isinstance(v.get("param_groups"), list)),
    "scheduler": ("a scheduler state_dict", lambda v: isinstance(v, dict)),
    "rng": ("RNG states (python, numpy, torch)", lambda v: isinstance(v, dict) and
            {"python", "numpy", "torch"} <= set(v) and isinstance(v["torch"], torch.Tensor)),
    "epoch": ("a whole number ≥ 0", _IS_INT),
    "global_step": ("a whole number ≥ 0", _IS_INT),
    "batch_idx": ("a whole number ≥ 0", _IS_INT),
    "accum": ("running sums (loss, correct, count)", lambda v: isinstance(v, dict) and
              all(isinstance(v.get(k), torch.Tensor) for k in ("loss", "correct", "count"))),
}
_OPTIONAL: dict[str, tuple[str, Any]] = {
    "spec_hash": ("a string", lambda v: isinstance(v, str)),
    "scaler": ("a GradScaler state_dict", lambda v: isinstance(v, dict)),
    "ema": ("an EMA state_dict", lambda v: isinstance(v, dict)),
    "best": ("a number or none", lambda v: v is None or isinstance(v, numbers.Real) and not isinstance(v, bool)),
    "history": ("a JSON list", lambda v: isinstance(v, str)),
    "stopping": ("early stopping's state or none", lambda v: v is None or isinstance(v, dict)),
    "stage": ("a whole number ≥ 0", _IS_INT),
}


def check_training_state(obj: dict[str, Any], path: Path) -> None:
    """Refuse what is not a complete training checkpoint, saying what the file is and what it lacks."""
    where = file_span(path)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise error("this checkpoint is a bare state_dict (weights only), not a training checkpoint: it "
                    "has no optimizer, scheduler, RNG states or position to resume from", where,
                    "resume needs the last.pt of a run written by `cnndsl train`; weights alone can be "
                    "evaluated (cnndsl eval --checkpoint)")
    missing = [k for k in _SCHEMA if k not in obj]
    if missing:
        raise error("this checkpoint is not a complete cnndsl training checkpoint: it has "
                    f"{', '.join(map(str, list(obj)[:8])) or 'no keys'} but no {', '.join(missing)}", where,
                    "resume needs the last.pt of a run written by `cnndsl train`")
    for key, (want, ok) in {**_SCHEMA, **_OPTIONAL}.items():
        if key in obj and not ok(obj[key]):
            shown = repr(obj[key]) if isinstance(obj[key], (str, int, float, bool, type(None))) else type(obj[key]).__name__
            raise error(f"this checkpoint's '{key}' must be {want}, but it is {shown[:60]}", where,
                        "the file is damaged or was not written by cnndsl")
    try:
        history = json.loads(obj.get("history", "[]"))
    except ValueError:
        history = None
    if not isinstance(history, list):
        raise error("this checkpoint's 'history' is not a JSON list", where, "the file is damaged")


def open_resume(resume: str | Path, spec_hash: str, force: bool) -> tuple[Path, Path, dict[str, Any]]:
    """(run directory, checkpoint file, state) of a ``--resume`` target, fully checked; writes nothing."""
    path = ckpt.resolve(resume)
    state = ckpt.load(path)
    check_training_state(state, path)
    got = state.get("spec_hash", "")
    if got != spec_hash and not force:
        raise error(f"the spec changed since the checkpoint was written: checkpoint spec hash {got}, "
                    f"current spec hash {spec_hash}", file_span(path),
                    hint="resume with the original spec, or pass --force to resume anyway; to train a changed "
                         f"spec from these weights, start a new run with --init-from {resume}")
    return path.parent, path, state


def restore(state: dict[str, Any], path: Path, *, model: Any, opt: Any, sched: Any, scaler: Any, ema: Any,
            accum: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    """Load a checked training state into the run's objects (after a --force, the optimizer state may
    not fit the network: that is a diagnostic too)."""
    ckpt.load_weights(model, state["model"], path)
    parts = [("optimizer", opt, state["optimizer"]), ("scheduler", sched, state["scheduler"])]
    if state.get("scaler"):
        parts.append(("scaler", scaler, state["scaler"]))
    if ema is not None and state.get("ema"):
        parts.append(("ema", ema, state["ema"]))
    for name, obj, saved in parts:
        try:
            obj.load_state_dict(saved)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise error(f"this checkpoint's {name} state does not fit this run ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''})", file_span(path),
                        "was it written for a different network or train section? start a new run") from None
    for target, key in zip(accum, ("loss", "correct", "count")):
        target.copy_(state["accum"][key])
    try:
        ckpt.set_rng_state(state["rng"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise error(f"this checkpoint's RNG states cannot be restored ({exc})", file_span(path),
                    "the file is damaged") from None
