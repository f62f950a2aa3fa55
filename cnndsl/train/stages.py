"""Staged unfreezing at run time: ``stages: [{at_epoch: 3, unfreeze: "features.layer4", lr: 1e-4}]``.

At the start of epoch ``at_epoch`` (numbered from 1) a stage applies its patterns to the model
(:func:`cnndsl.emit.frozen.set_trainable`: ``freeze``, then ``unfreeze`` exceptions), and:

- the parameters that became trainable and are not in the optimizer yet join it as new parameter
  groups (split by the ``param_groups`` rules like the first ones), with fresh optimizer state;
- ``lr`` becomes the base learning rate: every group whose lr is a multiple of the base
  (``lr_scale``) is rescaled, groups with an absolute ``lr`` keep it;
- the scheduler (a ``LambdaLR`` stepped per iteration) gets the new groups' base lrs, so the
  schedule (warmup, cosine, ...) keeps running over the whole run for every group.

The number of stages applied is saved in every checkpoint; on ``--resume`` the same stages are
replayed on the fresh optimizer before its state is loaded, so the groups line up and the run
continues bitwise as if it had not stopped.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnndsl import globs
from cnndsl.emit.frozen import set_trainable

from . import config as C, optim as O
from .parts import stage_change, stage_order


class Stages:
    """The stages of a run, applied to its model, optimizer and scheduler."""

    def __init__(self, model: nn.Module, cfg: C.TrainConfig, opt: torch.optim.Optimizer,
                 sched: torch.optim.lr_scheduler.LambdaLR):
        self.model, self.cfg, self.opt, self.sched = model, cfg, opt, sched
        self.order = [s for _, s in stage_order(cfg)]
        self.applied = 0            # how many stages have been applied (saved in checkpoints)
        self.base_lr = cfg.optimizer.lr

    def due(self, epoch: int) -> bool:
        """Does a stage start at (0-based) ``epoch``?"""
        return self.applied < len(self.order) and self.order[self.applied].at_epoch - 1 <= epoch

    def advance(self, epoch: int, step: int) -> list[str]:
        """Apply the stages that start by (0-based) ``epoch``; one log line per stage."""
        lines = []
        while self.due(epoch):
            lines.append(self._apply(self.order[self.applied], step))
        return lines

    def replay(self, count: int, step: int) -> None:
        """Apply the first ``count`` stages (resuming a checkpoint that had applied them)."""
        if count > len(self.order):
            from cnndsl.errors import error
            raise error(f"the checkpoint has applied {count} stages but the train section has {len(self.order)}",
                        hint="resume with the train section the run was started with")
        while self.applied < count:
            self._apply(self.order[self.applied], step)

    def _apply(self, stage: C.Stage, step: int) -> str:
        self.applied += 1
        joined = set(set_trainable(self.model, globs.as_list(stage.freeze), globs.as_list(stage.unfreeze)))
        held = {id(p) for g in self.opt.param_groups for p in g["params"]}
        new = {n for n, p in self.model.named_parameters() if n in joined and id(p) not in held}
        factor = self.sched.lr_lambdas[0]
        if stage.lr is not None:
            self.base_lr = stage.lr
            for i, g in enumerate(self.opt.param_groups):
                scale = g.get("lr_scale", 1.0)
                if scale is not None:
                    g["initial_lr"] = self.sched.base_lrs[i] = self.base_lr * scale
                    g["lr"] = g["initial_lr"] * factor(step)
        groups = O.param_groups(self.model, self.cfg, only=new, base_lr=self.base_lr) if new else []
        for g in groups:
            base = g["lr"]
            self.opt.add_param_group(g)
            added = self.opt.param_groups[-1]
            added["initial_lr"] = base
            added["lr"] = base * factor(step)
            self.sched.base_lrs.append(base)
            self.sched.lr_lambdas.append(factor)
        self.sched._last_lr = [g["lr"] for g in self.opt.param_groups]
        count = sum(p.numel() for g in groups for p in g["params"])
        change = stage_change(globs.as_list(stage.unfreeze), globs.as_list(stage.freeze), stage.lr, count)
        return f"stage {self.applied + 1} (epoch {stage.at_epoch}): {change}"


def trainable_at(model: nn.Module, cfg: C.TrainConfig, epoch: int) -> float:
    """Apply the stages that start by epoch ``epoch`` (numbered from 1) to ``model``'s parameters;
    the base learning rate at that epoch."""
    lr = cfg.optimizer.lr
    for stage in (s for _, s in stage_order(cfg)):
        if stage.at_epoch <= epoch:
            set_trainable(model, globs.as_list(stage.freeze), globs.as_list(stage.unfreeze))
            lr = stage.lr if stage.lr is not None else lr
    return lr


def groups_mismatch(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> str | None:
    """Why a checkpoint's optimizer state does not fit ``opt`` (None: it fits)."""
    mine = [len(g["params"]) for g in opt.param_groups]
    theirs = [len(g["params"]) for g in saved.get("param_groups", [])]
    if mine == theirs:
        return None
    if sum(mine) == sum(theirs):
        return f"the optimizer's parameters are grouped differently (tensors per group: checkpoint {theirs}, now {mine})"
    return (f"the checkpoint's optimizer trains {sum(theirs)} tensors in {len(theirs)} group(s), this run's "
            f"{sum(mine)} in {len(mine)}")
