"""Frozen parts of a built module at run time: the BatchNorm policy, and freezing by pattern.

A frozen norm layer is one whose parameters are all frozen (``requires_grad`` false) — or, for a
norm without affine parameters, one a ``freeze`` pattern names (:func:`cnndsl.globs.frozen` on its
module name). With the ``frozen`` policy (the default) such layers stay in eval mode while the rest
of the network trains: their running statistics and ``num_batches_tracked`` do not change, and they
normalise with those statistics, as the pretrained network did. The ``train`` policy lets them
follow ``module.train()`` like every other layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .. import globs

POLICIES = ("frozen", "train")
_NORM = nn.modules.batchnorm._NormBase   # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm with statistics


def norm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The norm layers that keep running statistics, by module name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _NORM) and m.track_running_stats]


def is_frozen(module: nn.Module) -> bool:
    params = list(module.parameters(recurse=False))
    if params:
        return not any(p.requires_grad for p in params)
    return bool(getattr(module, "_cnndsl_frozen", False))


def frozen_norms(model: nn.Module) -> list[str]:
    """Names of the frozen norm layers."""
    return [n for n, m in norm_layers(model) if is_frozen(m)]


def hold_frozen_norms(model: nn.Module, policy: str | None = None) -> None:
    """Put the frozen norm layers back in eval mode (policy ``frozen``) after ``model.train()``."""
    policy = policy or getattr(model, "bn_policy", "frozen")
    if policy != "frozen" or not model.training:
        return
    for _, m in norm_layers(model):
        if is_frozen(m):
            m.eval()


def mark_norms(model: nn.Module, freeze: Sequence[str], unfreeze: Sequence[str]) -> None:
    """Record which norm layers without parameters the spec's patterns freeze."""
    for name, m in norm_layers(model):
        if not list(m.parameters(recurse=False)):
            m._cnndsl_frozen = globs.frozen(name, freeze, unfreeze)


def set_trainable(model: nn.Module, freeze: Sequence[str], unfreeze: Sequence[str]) -> list[str]:
    """Apply a stage's patterns to the parameters (and to norms without any); returns the names of
    the parameters that became trainable (:func:`cnndsl.globs.apply`)."""
    params = dict(model.named_parameters())
    flags = {n: p.requires_grad for n, p in params.items()}
    joined = globs.apply(flags, freeze, unfreeze)
    for n, on in flags.items():
        params[n].requires_grad_(on)
    bare = {n: m for n, m in norm_layers(model) if not list(m.parameters(recurse=False))}
    norms = {n: not getattr(m, "_cnndsl_frozen", False) for n, m in bare.items()}
    globs.apply(norms, freeze, unfreeze)
    for n, on in norms.items():
        bare[n]._cnndsl_frozen = not on
    return joined
