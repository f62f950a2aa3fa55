"""The state of a run: what a step uses (:class:`Parts`), where the run is (:class:`Position`), the
device-side accumulators (:class:`Meters`), and the checkpoint that saves and restores all three."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnndsl.errors import error
from cnndsl.files import file_span
from . import checkpoint as ckpt, config as C, distributed as D, optim as O
from .stages import Stages, groups_mismatch
from .evaluate import outputs


def autocast_factory(device: torch.device, precision: str) -> Callable[[], Any] | None:
    if precision == "fp32":
        return None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


@dataclass
class Parts:
    """What a step uses: the model (and its DDP/compiled wrapper), optimizer, schedule, scaler, EMA."""

    model: nn.Module
    train_model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: O.EMA | None
    autocast: Callable[[], Any] | None
    stages: Stages  # the train section's staged unfreezing: groups added to ``opt`` as epochs come


@dataclass
class Position:
    """Where the run is: the next epoch and batch in it, optimizer steps done, best val_acc, history."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    stopping: dict[str, Any] | None = None  # the Stopper's state (early stopping's best and patience)


class Meters:
    """Device-side accumulators: the epoch's loss sum, correct and seen counts, the first non-finite
    step and the last finite loss. Nothing here reads the device except :meth:`check_finite` and
    :meth:`totals`."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.count = torch.zeros((), device=device, dtype=torch.int64)
        self.bad_step = torch.full((), -1, device=device, dtype=torch.int64)
        self.last_finite = torch.full((), float("nan"), device=device, dtype=torch.float64)

    def add(self, loss: torch.Tensor, out: Any, y: torch.Tensor, step: int, reduction: str) -> None:
        """Account for optimizer step ``step`` (1-based) on targets ``y``."""
        ld = loss.detach().double()
        fin = torch.isfinite(ld)
        self.bad_step.copy_(torch.where(~fin & (self.bad_step < 0), step - 1, self.bad_step))
        self.last_finite.copy_(torch.where(fin & (self.bad_step < 0), ld, self.last_finite))
        first = outputs(out)[0].detach()
        self.loss.add_(ld if reduction == "sum" else ld * y.shape[0])
        self.correct.add_((first.argmax(1) == y).sum())
        self.count.add_(y.numel())

    def check_finite(self, epoch: int) -> None:
        bs = int(self.bad_step)
        if bs >= 0:
            lf = float(self.last_finite)
            raise error(f"non-finite loss at step {bs + 1} (epoch {epoch + 1}); last finite loss "
                        f"{'none' if math.isnan(lf) else f'{lf:.6g}'}; stopped without writing a checkpoint "
                        "after that step", hint="lower the learning rate, set grad_clip, or rerun with "
                                                 "--detect-anomaly to find the operation")

    def running(self) -> tuple[float, float]:
        """(mean loss, accuracy) so far this epoch, on this process."""
        cnt = max(int(self.count), 1)
        return float(self.loss) / cnt, int(self.correct) / cnt

    def totals(self, dist: D.Dist) -> tuple[float, float]:
        """(mean loss, accuracy) of the epoch over every process."""
        tot = D.all_reduce_sum(torch.stack([self.loss, self.correct.double(), self.count.double()]), dist)
        return float(tot[0] / tot[2].clamp_min(1)), float(tot[1] / tot[2].clamp_min(1))

    def state(self) -> dict[str, torch.Tensor]:
        return {"loss": self.loss.clone(), "correct": self.correct.clone(), "count": self.count.clone()}

    def load(self, acc: dict[str, torch.Tensor]) -> None:
        self.loss.copy_(acc["loss"]), self.correct.copy_(acc["correct"]), self.count.copy_(acc["count"])

    def reset(self) -> None:
        self.loss.zero_(), self.correct.zero_(), self.count.zero_()


def wrap(model: nn.Module, cfg: C.TrainConfig, dist: D.Dist, device: torch.device) -> nn.Module:
    """The module a step calls: DDP and/or ``torch.compile`` around ``model`` (again after a stage
    changes what trains: DDP registers the trainable parameters)."""
    train_model = D.wrap(model, dist, device)
    if cfg.compile:
        mode = None if cfg.compile is True or cfg.compile == "default" else cfg.compile
        train_model = torch.compile(train_model, mode=mode)
    return train_model


def build_parts(model: nn.Module, cfg: C.TrainConfig, device: torch.device, dist: D.Dist, total_steps: int,
           spe: int) -> Parts:
    opt = O.build_optimizer(model, cfg)
    sched = O.build_scheduler(opt, cfg, total_steps, spe)
    stages = Stages(model, cfg, opt, sched)
    model.bn_policy = cfg.bn
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16" and device.type == "cuda")
    ema = O.EMA(model, cfg.ema, total_steps) if cfg.ema else None
    return Parts(model, wrap(model, cfg, dist, device), opt, sched, scaler, ema,
                 autocast_factory(device, cfg.precision), stages)


def resume(state: dict[str, Any], path: Path, parts: Parts, meters: Meters) -> Position:
    """Load a checkpoint already checked by :func:`cnndsl.train.resume.open_resume` (schema, spec
    hash) into the run's objects; where the run continues."""
    from .resume import restore

    parts.stages.replay(int(state.get("stage", 0)), int(state["global_step"]))
    why = groups_mismatch(parts.opt, state["optimizer"])
    if why:
        raise error(f"cannot resume {path}: the optimizer state does not fit this run: {why} "
                    "(the spec's freezing or param_groups changed)", file_span(path),
                    hint="--resume continues the same run; to start a new run from these weights "
                         f"(a new stage, a changed spec) use --init-from {path}")
    restore(state, path, model=parts.model, opt=parts.opt, sched=parts.sched, scaler=parts.scaler,
            ema=parts.ema, accum=(meters.loss, meters.correct, meters.count))
    return Position(state["epoch"], state["batch_idx"], state["global_step"], state.get("best"),
                    json.loads(state.get("history", "[]")), state.get("stopping"))


def checkpoint_state(parts: Parts, pos: Position, meters: Meters, cfg: C.TrainConfig,
                      opts: Any) -> dict[str, Any]:
    """Everything an exact resume needs, at position ``pos`` (its epoch and batch are the next ones)."""
    return {"format_version": ckpt.FORMAT_VERSION, "cnndsl_version": ckpt.cnndsl_version(),
            "torch_version": str(torch.__version__), "spec_hash": opts.spec_hash,
            "model": parts.model.state_dict(), "optimizer": parts.opt.state_dict(),
            "scheduler": parts.sched.state_dict(),
            "scaler": parts.scaler.state_dict() if parts.scaler.is_enabled() else {},
            "ema": parts.ema.state_dict() if parts.ema else {}, "rng": ckpt.rng_state(),
            "epoch": pos.epoch, "global_step": pos.step, "batch_idx": pos.batch, "stage": parts.stages.applied,
            "sampler": {"epoch": pos.epoch, "seed": cfg.seed, "position": pos.batch * cfg.batch_size},
            "accum": meters.state(), "best": pos.best, "config": json.dumps(cfg.model_dump(mode="json")),
            "history": json.dumps(pos.history), "stopping": pos.stopping}
