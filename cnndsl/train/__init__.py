"""The training runner: ``train`` section config, data, loop, checkpoints, metrics (torch imported lazily).

The package is callable: ``cnndsl.train(spec, **overrides)`` is :func:`cnndsl.train.api.train`
(the package's class is swapped for a callable module class, so ``cnndsl.train.loop`` and
``import cnndsl.train.config`` keep working). ``cnndsl.evaluate`` and ``cnndsl.predict`` are
:func:`cnndsl.train.api.evaluate` and :func:`cnndsl.train.api.predict` (``cnndsl.train.evaluate``
is the evaluation module).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["train", "Evaluation", "Prediction", "Result", "run_train", "run_eval", "run_predict"]


class _TrainModule(types.ModuleType):
    """``cnndsl.train(...)``: calling the package trains (the API is imported on the first call, so
    the command line's parser, which imports :mod:`cnndsl.train.cli`, stays light)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _TrainModule


def __getattr__(name: str) -> Any:
    if name in ("train", "Evaluation", "Prediction"):
        from . import api

        return getattr(api, name)
    if name == "__signature__":  # what help() and inspect show for cnndsl.train(...)
        import inspect

        from .api import train

        return inspect.signature(train)
    if name in ("run_train", "run_eval", "run_predict"):
        from . import run
        return getattr(run, name)
    if name == "Result":
        from .loop import Result
        return Result
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
