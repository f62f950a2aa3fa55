"""The train section's name patterns checked against the network's parameters (no torch).

``param_groups``, ``freeze_after`` and ``stages`` name parts of the network with the project's one
pattern rule (:mod:`cnndsl.globs`). Known statically from the analysis (names, and which parameters
the spec freezes), so ``cnndsl check`` reports, at the train section's ``file:line:col``:

- a pattern that matches no parameter, with the nearest names;
- a ``param_groups`` rule whose parameters are all taken by earlier rules (first match wins), or
  that sets a learning rate for parameters frozen for the whole run;
- a stage that starts after the last epoch, that unfreezes nothing frozen, or whose ``freeze`` an
  ``unfreeze`` undoes; a ``freeze_after`` that never applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnndsl import globs
from cnndsl.errors import Diagnostic, Span, warning

from . import config as C

Where = Callable[[tuple], tuple[Span | None, str]]   # train key path → (its span, " (from --set …)")


def names_of(analysis: Any) -> dict[str, bool]:
    """``{parameter name: frozen by the spec}`` (the built network has them in its own order)."""
    return {name: frozen for name, (_, frozen) in _parameters(analysis).items()}


def _parameters(analysis: Any) -> dict[str, tuple[int, bool]]:
    """``{parameter name: (number of values, frozen by the spec)}`` (the built network has them in its own order)."""
    from cnndsl.analysis.cost import param_key

    out: dict[str, tuple[int, bool]] = {}
    for layer in analysis.layers:
        cost = layer.cost
        if cost is None:
            continue
        for pname, shape in cost.param_shapes.items():
            out[param_key(layer.name, pname)] = (math.prod(shape), pname in cost.frozen)
    return out


@dataclass(frozen=True)
class StageTrainable:
    """What a stage changes, as ``compile --summary`` shows it: the trainable parameters from
    ``at_epoch`` on (stage 1 is the spec's own ``freeze``; stages are numbered as the run logs them)."""

    number: int
    at_epoch: int
    freeze: list[str]
    unfreeze: list[str]
    lr: float | None
    trainable: int
    change: int   # trainable now minus before the stage

    def text(self) -> str:
        return (f"stage {self.number} (epoch {self.at_epoch}): {stage_change(self.unfreeze, self.freeze, self.lr)} "
                f"-> trainable {self.trainable:,} ({self.change:+,})")

    def as_json(self) -> dict[str, Any]:
        return {"stage": self.number, "at_epoch": self.at_epoch, "freeze": self.freeze,
                "unfreeze": self.unfreeze, "lr": self.lr, "trainable_params": self.trainable}


def trainable_by_stage(cfg: C.TrainConfig, analysis: Any) -> list[StageTrainable]:
    """The trainable parameter count after each stage of ``cfg`` (no torch: from the analysis)."""
    params = _parameters(analysis)
    trainable = {name: not frozen for name, (_, frozen) in params.items()}
    count = sum(n for name, (n, _) in params.items() if trainable[name])
    out = []
    for number, (_, stage) in enumerate(stage_order(cfg), start=2):
        apply_stage(trainable, stage)
        now = sum(n for name, (n, _) in params.items() if trainable[name])
        out.append(StageTrainable(number, stage.at_epoch, globs.as_list(stage.freeze),
                                  globs.as_list(stage.unfreeze), stage.lr, now, now - count))
        count = now
    return out


def stage_change(unfreeze: list[str], freeze: list[str], lr: float | None, joined: int = 0) -> str:
    """What a stage changes, in words, as the run log and ``compile --summary`` write it (``joined``:
    parameters that join the optimizer)."""
    what = [f"unfreeze {', '.join(unfreeze)}"] if unfreeze else []
    what += [f"freeze {', '.join(freeze)}"] if freeze else []
    what += [f"{joined:,} parameters join the optimizer"] if joined else []
    what += [f"lr {lr:g}"] if lr is not None else []
    return "; ".join(what or ["no change"])


def stage_order(cfg: C.TrainConfig) -> list[tuple[int, C.Stage]]:
    """The stages as they apply: by ``at_epoch``, in written order for equal epochs."""
    return sorted(enumerate(cfg.stages), key=lambda t: t[1].at_epoch)


def apply_stage(trainable: dict[str, bool], stage: C.Stage) -> list[str]:
    """Set the trainable flags a stage changes; returns the names that became trainable."""
    return globs.apply(trainable, globs.as_list(stage.freeze), globs.as_list(stage.unfreeze))


def check_parts(cfg: C.TrainConfig, frozen: dict[str, bool], where: Where) -> list[Diagnostic]:
    """Warnings for the train section's patterns against ``{name: frozen at the start}``."""
    names = list(frozen)
    found: list[Diagnostic] = []

    def unmatched(key: tuple, patterns: list[str], what: str) -> list[list[str]]:
        hits = []
        for i, pattern in enumerate(patterns):
            hit = [n for n in names if globs.matches(n, pattern)]
            if not hit:
                span, frm = where(key if len(patterns) == 1 else key + (i,))
                found.append(warning(f"{what} '{pattern}'{frm} matches no parameter", span,
                                     globs.no_match_hint(pattern, names)))
            hits.append(hit)
        return hits

    # stages: simulate which parameters are ever trainable
    trainable = {n: not f for n, f in frozen.items()}
    ever = {n for n, on in trainable.items() if on}
    epochs = math.ceil(cfg.epochs)
    for i, stage in stage_order(cfg):
        key = ("stages", i)
        ups = unmatched(key + ("unfreeze",), globs.as_list(stage.unfreeze), f"stages[{i}].unfreeze")
        downs = unmatched(key + ("freeze",), globs.as_list(stage.freeze), f"stages[{i}].freeze")
        span, frm = where(key + ("at_epoch",))
        if stage.at_epoch > epochs:
            found.append(warning(f"stages[{i}] at epoch {stage.at_epoch}{frm} never starts: the run has "
                                 f"{epochs} epoch{'s' if epochs != 1 else ''}", span,
                                 f"raise epochs to at least {stage.at_epoch}, or start the stage earlier"))
        before = dict(trainable)
        joined = apply_stage(trainable, stage)
        ever.update(joined)
        if any(ups) and not joined:
            found.append(warning(f"stages[{i}].unfreeze{frm} unfreezes nothing: the parameters it matches are "
                                 "already trainable", where(key + ("unfreeze",))[0],
                                 "a stage's unfreeze makes frozen parts trainable (frozen by the spec's "
                                 "freeze or an earlier stage)"))
        stuck = [h for h in downs if h and all(before.get(n) == trainable[n] for n in h)
                 and all(globs.match_any(n, globs.as_list(stage.unfreeze)) for n in h)]
        if stuck:
            found.append(warning(f"stages[{i}].freeze{frm} has no effect: the stage's unfreeze makes every "
                                 "parameter it matches trainable", where(key + ("freeze",))[0],
                                 "a stage's unfreeze makes exceptions to its freeze, as in the spec"))

    # param_groups: first matching rule wins; lr for parameters that never train
    claimed: set[str] = set()
    for i, rule in enumerate(cfg.param_groups):
        key = ("param_groups", i, "match")
        hits = unmatched(key, globs.as_list(rule.match), f"param_groups[{i}].match")
        mine = {n for h in hits for n in h} - claimed
        span, frm = where(key)
        if any(hits) and not mine:
            found.append(warning(f"param_groups[{i}]{frm} never applies: every parameter it matches is taken by an "
                                 "earlier rule (the first matching rule wins)", span,
                                 "move the more specific rule first"))
        elif mine and not mine & ever:
            found.append(warning(f"param_groups[{i}]{frm} applies only to parameters that are frozen for the whole "
                                 "run", span, "unfreeze them (in the spec, or with a stage), or drop the rule"))
        claimed |= mine

    for i, rule in enumerate(cfg.freeze_after):
        unmatched(("freeze_after", i, "match"), globs.as_list(rule.match), f"freeze_after[{i}].match")
        if rule.epochs >= cfg.epochs:
            span, frm = where(("freeze_after", i, "epochs"))
            found.append(warning(f"freeze_after[{i}]{frm} never applies: epochs {rule.epochs:g} is not before the end "
                                 f"of the run ({cfg.epochs:g} epochs)", span, "lower its epochs"))
    return found
