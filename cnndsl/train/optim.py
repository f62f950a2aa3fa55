"""Optimizers with parameter groups chosen by name glob, per-iteration schedules, and EMA."""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Callable

import torch
from torch import nn

from cnndsl import globs

from . import config as C

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def param_groups(model: nn.Module, cfg: C.TrainConfig, only: set[str] | None = None,
                 base_lr: float | None = None) -> list[dict[str, Any]]:
    """Split the trainable parameters (those named in ``only``, when given) into optimizer groups:
    the first ``param_groups`` rule that matches wins (patterns: :mod:`cnndsl.globs`); optional no
    decay on norms and biases. A group's ``lr`` is the rule's absolute ``lr``, else ``base_lr`` (the
    optimizer's, or the current stage's) times its ``lr_scale``, which the group keeps (``None``
    for an absolute lr) so that a stage can change the base; ``names`` lists its parameters."""
    opt = cfg.optimizer
    base = opt.lr if base_lr is None else base_lr
    owner: dict[str, nn.Module] = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = mod
    groups: dict[tuple, dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad or (only is not None and name not in only):
            continue
        scale: float | None = 1.0
        lr, wd = base, opt.weight_decay
        mod = owner.get(name)
        if not opt.decay_norm_and_bias and (isinstance(mod, NORM_TYPES) or name.endswith(".bias") or p.ndim <= 1):
            wd = 0.0
        for rule in cfg.param_groups:
            if not globs.match_any(name, globs.as_list(rule.match)):
                continue
            if rule.module_type and not fnmatch.fnmatchcase(type(mod).__name__, rule.module_type):
                continue
            scale = None if rule.lr is not None else rule.lr_scale
            lr = rule.lr if rule.lr is not None else base * rule.lr_scale
            wd = rule.weight_decay if rule.weight_decay is not None else wd * rule.wd_scale
            break
        g = groups.setdefault((lr, wd, scale), {"params": [], "names": [], "lr": lr, "weight_decay": wd,
                                                "lr_scale": scale})
        g["params"].append(p)
        g["names"].append(name)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: C.TrainConfig) -> torch.optim.Optimizer:
    """The optimizer the config names, over :func:`param_groups`."""
    groups = param_groups(model, cfg)
    if not groups:
        from cnndsl.errors import error
        raise error("the model has no trainable parameters", hint="check the spec's freeze statements")
    o = cfg.optimizer
    if isinstance(o, C.SGD):
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               dampening=o.dampening, weight_decay=o.weight_decay)
    if isinstance(o, C.Adam):
        cls = torch.optim.AdamW if o.type == "adamw" else torch.optim.Adam
        return cls(groups, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    return torch.optim.RMSprop(groups, lr=o.lr, alpha=o.alpha, eps=o.eps, momentum=o.momentum,
                               weight_decay=o.weight_decay)


def lr_factor(cfg: Any, total: int, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the peak lr at iteration ``step`` (0-based) for a schedule config."""
    total = max(total, 1)
    spe = max(steps_per_epoch, 1)
    warm = int(round(cfg.warmup * spe)) if cfg.warmup >= 1 else int(round(cfg.warmup * total))

    def base(step: int) -> float:
        t = step / total
        if isinstance(cfg, C.StepSchedule):
            ep = step / spe
            n = (int(ep // cfg.step_size) if cfg.step_size else sum(ep >= m for m in cfg.milestones))
            return cfg.gamma ** n
        if isinstance(cfg, C.Cosine):
            return cfg.final_scale + (1 - cfg.final_scale) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if isinstance(cfg, C.OneCycle):
            lo, end = 1 / cfg.div_factor, 1 / (cfg.div_factor * cfg.final_div_factor)
            up = cfg.pct_start * total

            def interp(a: float, b: float, f: float) -> float:
                f = min(max(f, 0.0), 1.0)
                return a + (b - a) * (f if cfg.anneal == "linear" else 0.5 * (1 - math.cos(math.pi * f)))
            if step < up:
                return interp(lo, 1.0, step / up)
            return interp(1.0, end, (step - up) / max(total - up, 1))
        if isinstance(cfg, C.Piecewise):
            xs = [p[0] for p in cfg.points]
            ys = [p[1] for p in cfg.points]
            if t <= xs[0]:
                return ys[0]
            for (x0, y0), (x1, y1) in zip(cfg.points, cfg.points[1:]):
                if t <= x1:
                    return y0 + (y1 - y0) * (t - x0) / max(x1 - x0, 1e-12)
            return ys[-1]
        return 1.0

    def factor(step: int) -> float:
        f = base(step)
        if warm and step < warm:
            f *= (step + 1) / warm
        return f
    return factor


def build_scheduler(opt: torch.optim.Optimizer, cfg: C.TrainConfig, total: int,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per iteration."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg.schedule, total, steps_per_epoch))


class EMA:
    """Exponential moving average of the weights (and buffers).

    ``ema``: a shadow copy used for evaluation. ``lookahead``: every ``every`` steps the average is
    updated and copied back into the model (airbench); at the end the model holds the average.
    """

    def __init__(self, model: nn.Module, cfg: C.EMAConfig, total_steps: int):
        self.cfg, self.total = cfg, max(total_steps, 1)
        self.shadow = {k: v.detach().clone() for k, v in self._tracked(model).items()}

    def _tracked(self, model: nn.Module) -> dict[str, torch.Tensor]:
        sd = model.state_dict()
        keep = {n for n, _ in model.named_parameters()}
        if self.cfg.buffers:
            keep |= {n for n, _ in model.named_buffers()}
        return {k: v for k, v in sd.items() if k in keep and v.is_floating_point()}

    def decay(self, step: int) -> float:
        c = self.cfg
        if c.type == "ema":  # warm up: early averages forget their random start quickly
            return min(c.decay, (1 + step) / (10 + step))
        d = c.decay ** c.every
        return d * (step / self.total) ** c.power if c.power else d

    @torch.no_grad()
    def update(self, model: nn.Module, step: int, final: bool = False) -> None:
        """Call after optimizer step number ``step`` (1-based)."""
        if not final and step % self.cfg.every:
            return
        d = 1.0 if final else self.decay(step)
        cur = self._tracked(model)
        for k, v in cur.items():
            self.shadow[k].lerp_(v.detach(), 1 - d)
            if self.cfg.type == "lookahead":
                v.copy_(self.shadow[k])

    @torch.no_grad()
    def swap(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Load the average into the model; returns the replaced values (for :meth:`restore`)."""
        cur = self._tracked(model)
        saved = {k: v.detach().clone() for k, v in cur.items()}
        for k, v in cur.items():
            v.copy_(self.shadow[k])
        return saved

    @torch.no_grad()
    def restore(self, model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
        for k, v in self._tracked(model).items():
            v.copy_(saved[k])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)
