"""The training runner: ``train`` section config, data, loop, checkpoints, metrics (torch imported lazily)."""

from __future__ import annotations

__all__ = ["run_train", "run_eval", "run_predict"]


def __getattr__(name: str):
    if name in __all__:
        from . import commands
        return getattr(commands, name)
    raise AttributeError(name)
