"""When a run stops before its last epoch: early stopping on a validation metric, a target accuracy,
a wall-clock budget, and the ``on_epoch`` hook of :func:`cnndsl.train`.

No torch here: the config models are imported by :mod:`cnndsl.train.config` (``cnndsl check``).
Every way a run can end has a name, written to ``summary.json`` as ``ended_by`` and to
:class:`cnndsl.train.loop.Result`:

=============  ==========  ===========================================================
``ended_by``   status      when
=============  ==========  ===========================================================
completed      completed   every epoch ran
target_acc     completed   a validation reached ``target_acc``
early_stop     completed   ``early_stop.metric`` did not improve for ``patience`` validations
on_epoch       completed   the ``on_epoch`` function returned ``False``
max_time       stopped     the ``max_time`` budget ran out (resumable from ``last.pt``)
interrupted    interrupted Ctrl-C (resumable from ``last.pt``)
failed         failed      an error (``summary.json`` has it)
=============  ==========  ===========================================================
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

ENDED_BY = ("completed", "target_acc", "early_stop", "on_epoch", "max_time", "interrupted", "failed")
STATUS = {"max_time": "stopped", "interrupted": "interrupted", "failed": "failed"}  # the rest: completed

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd])")


class EarlyStop(BaseModel):
    """``early_stop: {metric: val_acc, patience: 3, min_delta: 0.001}``."""

    model_config = ConfigDict(extra="forbid")
    metric: Literal["val_acc", "val_loss"] = "val_acc"  # val_acc rises, val_loss falls
    patience: int = Field(3, ge=1)  # validations without an improvement before the run stops
    min_delta: float = Field(0.0, ge=0, allow_inf_nan=False)  # an improvement is larger than this


def parse_duration(value: Any) -> Any:
    """Seconds from a number or from text: ``90``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"1.5h"``,
    ``"01:30:00"`` (h:m:s or m:s). Other values are left for pydantic to refuse."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if re.fullmatch(r"\d+(:\d{1,2}){1,2}", text):
        secs = 0
        for part in text.split(":"):
            secs = secs * 60 + int(part)
        return secs
    try:
        return float(text)
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip():
        raise ValueError(f"'{value}' is not a duration: write seconds (90), or 90s, 15m, 1h30m, 1.5h, 01:30:00")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_seconds(s: float) -> str:
    return f"{s:g}s" if s < 120 else f"{s / 60:g}m" if s < 7200 else f"{s / 3600:g}h"


@dataclass
class Stop:
    """A decision to end the run, for ``summary.json`` and the Result."""

    ended_by: str
    reason: str

    @property
    def status(self) -> str:
        return STATUS.get(self.ended_by, "completed")


class Stopper:
    """Decides, after every step and every epoch, whether the run should end.

    ``started``: ``time.perf_counter()`` when this process started the run — ``max_time`` is a
    budget per invocation, so a run stopped by it continues for another ``max_time`` when resumed.
    """

    def __init__(self, cfg: Any, on_epoch: Callable[[dict[str, Any]], Any] | None = None,
                 started: float | None = None):
        self.early, self.target, self.max_time = cfg.early_stop, cfg.target_acc, cfg.max_time
        self.on_epoch = on_epoch
        self.started = time.perf_counter() if started is None else started
        self.best: float | None = None  # best value of early_stop.metric so far
        self.best_epoch = 0
        self.waited = 0  # validations since the best

    def out_of_time(self) -> bool:
        return self.max_time is not None and time.perf_counter() - self.started >= self.max_time

    def time_stop(self, step: int, epoch: int, at_epoch_end: bool) -> Stop:
        where = f"after epoch {epoch}" if at_epoch_end else f"at step {step} (epoch {epoch + 1})"
        return Stop("max_time", f"reached max_time {format_seconds(self.max_time)} {where}; "
                                "resumable from last.pt")

    def after_epoch(self, record: dict[str, Any]) -> Stop | None:
        """The decision after an epoch's record (with ``val_*`` when it validated). ``on_epoch`` is
        called first, with every record, and may return ``False`` to stop."""
        epoch = record["epoch"]
        if self.on_epoch is not None and self.on_epoch(dict(record)) is False:
            return Stop("on_epoch", f"on_epoch returned False after epoch {epoch}")
        acc = record.get("val_acc")
        if self.target is not None and acc is not None and acc >= self.target:
            return Stop("target_acc", f"val_acc {acc:.4f} reached target_acc {self.target:g} after epoch {epoch}")
        if self.early is not None and self.early.metric in record:
            stop = self._early(record[self.early.metric], epoch)
            if stop is not None:
                return stop
        if self.out_of_time():
            return self.time_stop(record["step"], epoch, True)
        return None

    def _early(self, value: float, epoch: int) -> Stop | None:
        e = self.early
        better = self.best is None or (value > self.best + e.min_delta if e.metric == "val_acc"
                                       else value < self.best - e.min_delta)
        if better:
            self.best, self.best_epoch, self.waited = value, epoch, 0
            return None
        self.waited += 1
        if self.waited < e.patience:
            return None
        delta = f" by more than {e.min_delta:g}" if e.min_delta else ""
        return Stop("early_stop", f"{e.metric} did not improve{delta} for {self.waited} validation(s) "
                                  f"(best {self.best:.4f} after epoch {self.best_epoch}); stopped after epoch {epoch}")

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited}

    def load(self, state: dict[str, Any] | None) -> None:
        if state:
            self.best, self.best_epoch, self.waited = state.get("best"), state.get("best_epoch", 0), state.get("waited", 0)
