"""The Python API: load, analyze, build. torch is imported only by ``build``."""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any, Sequence

from .analysis import Analysis, analyze_graph
from .expand import Expander, Limits
from .ir import Spec
from .syntax.source import load_spec, parse_text

if TYPE_CHECKING:
    import torch
    from torch import nn

SpecLike = Spec | str | os.PathLike


def load(source: str | os.PathLike, format: str | None = None, plugins: Sequence[str] = ()) -> Spec:
    """Read a spec from a path (``.cnn``, ``.yaml``), the name of a shipped spec (``"resnet18"``)
    or spec text; imports are resolved. ``plugins``: modules (names or ``.py`` files) whose ops
    the spec uses, enabled first (for the whole process; see :mod:`cnndsl.plugins`).

    Raises :class:`cnndsl.CnnError` with diagnostics on any problem.
    """
    if plugins:
        from .plugins import enable

        enable(plugins, flag="plugins")
    return load_spec(source, format)


def parse(text: str, format: str | None = None, filename: str = "<string>") -> Spec:
    """Parse spec text without resolving imports."""
    return parse_text(text, filename, format)


def _spec(spec: SpecLike) -> Spec:
    """``spec`` itself, or the spec a path, a shipped spec's name or spec text holds (:func:`load`)."""
    if isinstance(spec, Spec):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        from .errors import error

        raise error(f"spec must be a path, spec text or a cnndsl Spec, not {type(spec).__name__}",
                    hint='a .cnn/.yaml path ("specs/mnist5k.cnn"), spec text, or cnndsl.load(...)')
    return load(spec)


def analyze(spec: SpecLike, *, limits: Limits | None = None, **params: Any) -> Analysis:
    """Expand the network with ``params`` and infer shapes, receptive fields and costs (no torch)."""
    graph = Expander(_spec(spec), limits or Limits()).run(params)
    return analyze_graph(graph)


def build(spec: SpecLike | Analysis, *, limits: Limits | None = None, **params: Any) -> "nn.Module":
    """Build the ``torch.nn.Module`` a spec describes (plain torch modules, named from the spec)."""
    from .emit.module import build_network

    if isinstance(spec, Analysis):
        if params:
            raise TypeError("build(analysis) takes no parameters: they were bound when the analysis was made; "
                            "pass them to analyze(spec, ...) or build(spec, ...)")
        analysis = spec
    else:
        analysis = analyze(spec, limits=limits, **params)
    model = build_network(analysis)
    _BUILT[model] = analysis
    return model


_BUILT: "weakref.WeakKeyDictionary[Any, Analysis]" = weakref.WeakKeyDictionary()


def analysis_of(model: Any) -> Analysis | None:
    """The analysis a module was built from by :func:`build` (None for other modules)."""
    try:
        return _BUILT.get(model)
    except TypeError:  # not weak-referenceable
        return None


def param_groups(model: "nn.Module", spec: SpecLike, *, epoch: int = 1,
                 overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Optimizer parameter groups for ``model`` by the rules of ``spec``'s train section, as
    ``cnndsl train`` makes them: ``param_groups`` (first match wins; ``lr`` / ``lr_scale``,
    ``weight_decay`` / ``wd_scale``), the optimizer's ``lr`` and ``weight_decay``, and the
    ``stages`` that have started by ``epoch`` (numbered from 1): their ``freeze``/``unfreeze`` are
    applied to ``model``'s parameters and the last one's ``lr`` is the base. Frozen parameters are
    left out. Each group has ``params``, ``names``, ``lr``, ``weight_decay`` and ``lr_scale`` (a spec
without a train section: ``params`` and ``names``, so the optimizer's defaults apply)::

        opt = torch.optim.Adam(cnndsl.param_groups(model, spec))

    ``overrides``: train keys as ``--set train.KEY=VALUE`` gives them (``{"optimizer.lr": 0.01}``)."""
    from .train import config as C
    from .train.optim import param_groups as groups
    from .train.stages import trainable_at

    s = _spec(spec)
    raw = C.apply_overrides(s.train, overrides or {})
    raw.setdefault("data", "synthetic")   # the data does not matter here
    cfg = C.validate(raw, s, overrides)
    out = groups(model, cfg, base_lr=trainable_at(model, cfg, epoch))
    if not s.train and not overrides:   # no train section: the optimizer's own defaults apply
        out = [{"params": g["params"], "names": g["names"]} for g in out]
    return out


def features(model: "nn.Module", x: "torch.Tensor", layers: Sequence[str] | str, *,
             analysis: Analysis | None = None) -> "dict[str, torch.Tensor]":
    """The values of ``layers`` when ``model(x)`` runs: ``{name: tensor}``, batch first.

    Names are the spec's layer and container names for a network :func:`build` made
    (``"conv1"``, ``"layer1"``, ``"layer1.0"``), submodule paths for any other module.
    """
    from .inspect.taps import features as run

    return run(model, x, layers, analysis=analysis)
