"""A whole network starting from existing weights: the spec's ``init`` entry and ``cnndsl train
--init-from``. Keys are matched by name (strict unless the spec says ``strict = false`` or the flag
``--init-partial`` is given), so ``specs/resnet18.cnn`` — named like torchvision — loads
``torchvision:resnet18.IMAGENET1K_V1`` as it is."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Span
from .refs import WeightsRef, init_ref

if TYPE_CHECKING:
    from torch import nn

    from ..ir import Init


_SKIP = contextvars.ContextVar("cnndsl_skip_initial_weights", default=False)


@contextlib.contextmanager
def without_initial_weights():
    """Build without loading the spec's starting weights (backbone ``weights``, ``init``): for a
    network whose weights come from a checkpoint next (eval, predict, resume) — so that, offline,
    it does not need files it would overwrite anyway."""
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)


def loading_initial_weights() -> bool:
    return not _SKIP.get()


@dataclass(frozen=True)
class InitWeights:
    """The network's initial weights, resolved (the file exists, the weights name is valid)."""

    ref: WeightsRef
    strict: bool = True

    @property
    def source(self) -> str:
        return self.ref.describe()


def resolve_init(init: "Init | None") -> InitWeights | None:
    """Check a spec's ``init`` entry without torch (a relative path: next to the spec, then here)."""
    if init is None:
        return None
    span: Span | None = init.span
    base = None if span is None or span.file.startswith("<") else (os.path.dirname(span.file) or ".")
    return InitWeights(init_ref(init.source, span, base), init.strict)


def apply_init(model: "nn.Module", init: InitWeights | None, what: str = "the network") -> None:
    """Load the initial weights into a built network; the report goes to ``model.cnndsl_init_log``."""
    if init is None or (not init.ref.flag and not loading_initial_weights()):
        return
    from .load import read_state
    from .match import load_matched

    state = read_state(init.ref)
    report = load_matched(model, state, strict=init.strict, what=what, source=init.ref.describe(),
                          span=init.ref.span, flag=init.ref.flag)
    lines = list(getattr(model, "cnndsl_init_log", []))
    lines.append(report.line("init" if not init.ref.flag else init.ref.flag, init.ref.describe(), init.strict))
    model.cnndsl_init_log = lines


def init_from_flag(model: "nn.Module", source: str, partial: bool = False, flag: str = "--init-from") -> None:
    """``--init-from PATH|RUN_DIR|torchvision:MODEL[.WEIGHTS]``: every diagnostic names the flag."""
    apply_init(model, InitWeights(init_ref(source, None, None, flag), not partial))


def weights_log(model: "nn.Module") -> list[str]:
    """What was loaded into a built network: one line per backbone with weights, then ``init``."""
    lines = [m.cnndsl_weights for m in model.modules() if isinstance(getattr(m, "cnndsl_weights", None), str)]
    return lines + list(getattr(model, "cnndsl_init_log", []))


def report_weights(model: "nn.Module", quiet: bool = False, stream: Any = None) -> None:
    if quiet:
        return
    for line in weights_log(model):
        print(f"weights: {line}", file=stream or sys.stderr)
