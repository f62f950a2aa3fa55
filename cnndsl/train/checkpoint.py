"""Checkpoints: atomic writes, safe loads (``weights_only=True``, never a fallback), RNG states.

Everything stored is a tensor, a number, a string, a list or a dict, so the standard safe unpickler
reads it with no allow-listed globals.
"""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnndsl.errors import error
from cnndsl.files import file_span, os_cause, writing

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "cnndsl_version", "torch_version", "spec_hash", "model", "optimizer",
                 "scheduler", "scaler", "ema", "rng", "epoch", "global_step", "batch_idx", "sampler",
                 "accum", "best", "config")


def cnndsl_version() -> str:
    try:
        from importlib.metadata import version
        return version("cnndsl")
    except Exception:  # noqa: BLE001 - not installed as a package
        return "0+local"


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA RNG states as plain data and tensors."""
    pv, pstate, pgauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [pv, list(pstate), pgauss],
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    pv, pstate, pgauss = state["python"]
    random.setstate((pv, tuple(pstate), pgauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # platforms without directory fds (Windows)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` with torch.save to a temp file in the same directory, fsync it, os.replace it
    over ``path``, fsync the directory. On any failure (a full disk, a file-size limit, a read-only
    directory) the temp file is removed, the previous file is untouched, and the error names the
    path and the cause."""
    path = Path(path)
    with writing(path.parent, "create the directory"):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, (OSError, RuntimeError)):  # torch's writer wraps the OSError of a failed write
            raise error(f"could not write this checkpoint: {os_cause(exc)}", file_span(path),
                        hint="the previous checkpoint (if any) is unchanged; free space or lift the limit, "
                             "then resume") from None
        raise
    _fsync_dir(path.parent)
    return path


def clean_stale_temps(run_dir: str | os.PathLike) -> list[Path]:
    """Remove temp files of checkpoint writes whose process is gone (a kill during a save)."""
    removed = []
    for tmp in Path(run_dir).glob(".*.pt.*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def resolve(path: str | os.PathLike) -> Path:
    """The checkpoint file a path names: the file itself, or a run directory's last.pt (also
    accepted in a checkpoints/ sub-folder, as other tools lay runs out)."""
    path = Path(path)
    if path.is_dir():
        found = [c for c in (path / "last.pt", path / "checkpoints" / "last.pt") if c.exists()]
        if not found:
            raise error("this run directory has no checkpoint yet (no last.pt): the run stopped before "
                        "its first checkpoint was written", file_span(path),
                        hint=f"nothing to resume or evaluate; start again (e.g. --run-dir {path})")
        return found[0]
    if not path.exists():
        raise error("this checkpoint does not exist", file_span(path), hint="pass a .pt file or a run directory")
    return path


def load(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; any failure is a CnnError naming the path."""
    path = resolve(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise error("this checkpoint is not a regular file", file_span(path), hint="pass a .pt file or a run directory")
    if info.st_size == 0:
        raise error("this checkpoint is empty (0 bytes)", file_span(path),
                    hint="the file is corrupt; use another checkpoint")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - never fall back to an unsafe load
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        unsafe = ""
        try:
            from torch.serialization import get_unsafe_globals_in_checkpoint
            names = get_unsafe_globals_in_checkpoint(path)
            if names:
                unsafe = f"; it references unsafe globals: {', '.join(names[:5])}"
        except Exception:  # noqa: BLE001 - truncated archives cannot be scanned either
            pass
        raise error(f"cannot load checkpoint: {detail}{unsafe}", file_span(path),
                    hint="the file is truncated, corrupt or not a cnndsl checkpoint; "
                         "it was not loaded unsafely") from None
    if not isinstance(obj, dict):
        raise error(f"this checkpoint holds a {type(obj).__name__}, not a cnndsl checkpoint", file_span(path))
    return obj


def model_state(obj: dict[str, Any], path: Any) -> dict[str, torch.Tensor]:
    """The model weights of a full training checkpoint, or a bare state_dict."""
    if "model" in obj and isinstance(obj["model"], dict):
        return obj["model"]
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise error("this checkpoint has no model weights", file_span(path),
                hint="expected a checkpoint written by `cnndsl train` or a state_dict of tensors")


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Any) -> None:
    """Strict load with a readable table of missing / unexpected / mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shape = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or shape:
        lines = ([f"missing: {k}" for k in missing[:5]] + [f"unexpected: {k}" for k in extra[:5]]
                 + [f"mis-shaped: {s}" for s in shape[:5]])
        raise error("this checkpoint does not match the model: " + "; ".join(lines), file_span(path),
                    hint="was it written for a different spec or different network parameters?")
    model.load_state_dict(state)


def non_finite(state: dict[str, Any]) -> str | None:
    """Name of the first tensor with a NaN/Inf in a (nested) state, or None."""
    stack: list[tuple[str, Any]] = [("", state)]
    while stack:
        name, v = stack.pop()
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                return name
        elif isinstance(v, dict):
            stack.extend((f"{name}.{k}" if name else str(k), x) for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{name}[{i}]", x) for i, x in enumerate(v))
    return None
