"""Test helpers: tiny real specs (a network in .cnn text plus a train section) and forward hooks.

The runner is always driven through :class:`cnndsl.ir.Spec` objects parsed from ``.cnn`` text, as a
user's would be; behaviour a test needs inside the model (a NaN, a signal at forward number N) is
added to the module ``cnndsl.build`` returns, through :func:`on_forward`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import cnndsl
from cnndsl.ir import Spec
from cnndsl.syntax.format import format_cnn

# conv-bn-relu-pool, dropout, linear: BN buffers and dropout RNG
TINY = """network Tiny(c = 3, hw = 8, classes = 4, width = 8, dropout = 0.2) {
    input (c, hw, hw)
    conv: conv(width, k = 3, p = 1)  bn: batchnorm  relu  maxpool(2)
    dropout(dropout)  flatten  fc: linear(classes)
}
"""

# named parts (stem, layer1 with a named norm, head) for freezing, param_groups and stages;
# %s: more body lines (freeze / unfreeze statements)
PARTS_NET = """
network T(num_classes = 4) {
    input 3x8x8
    stem: { conv(8, k=3, p=1) batchnorm relu }
    layer1: { conv(8, k=3, p=1) bn: batchnorm relu }
    global_avgpool flatten
    head: linear(num_classes)
    %s
}
"""

DIGITS_NET = """network DigitsNet {
    input 1x8x8
    conv(16, k = 3, p = 1)  batchnorm  relu
    conv(32, k = 3, p = 1)  batchnorm  relu  maxpool(2)
    flatten  linear(10)
}
"""


def spec_text(train: dict[str, Any], net: str = TINY) -> str:
    """``net`` followed by ``train`` written as a .cnn train section (by cnndsl's own formatter)."""
    return format_cnn(cnndsl.parse(net).model_copy(update={"train": train}))


def tiny_spec(train: dict[str, Any], net: str = TINY, path: Path | None = None,
              filename: str = "tiny.cnn") -> Spec:
    """A real spec: parsed from its text (saved to ``path`` first when given, as a spec file is)."""
    text = spec_text(train, net)
    if path is not None:
        path.write_text(text)
        return cnndsl.load(str(path))
    return cnndsl.parse(text, filename=filename)


def synthetic_train(**over: Any) -> dict[str, Any]:
    t = {"data": {"type": "synthetic", "num_train": 96, "num_val": 32, "shape": [3, 8, 8], "num_classes": 4},
         "epochs": 2, "batch_size": 16, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
         "device": "cpu", "log_every": 1000}
    t.update(over)
    return t


def on_forward(monkeypatch: Any, action: Callable[[int, Any], Any]) -> None:
    """Make the next models ``cnndsl.build`` returns call ``action(n, x)`` before their n-th training
    forward (1-based); what it returns replaces the input when it is not None."""
    real = cnndsl.build

    def build(*args: Any, **kwargs: Any) -> Any:
        model = real(*args, **kwargs)
        calls = {"n": 0}

        def hook(module: Any, inputs: tuple) -> Any:
            if not module.training:
                return None
            calls["n"] += 1
            out = action(calls["n"], inputs[0])
            return None if out is None else (out,)
        model.register_forward_pre_hook(hook)
        return model
    monkeypatch.setattr(cnndsl, "build", build)


def tiny_model(**params: Any) -> Any:
    """The TINY network, built: modules ``conv``, ``bn``, ``fc``."""
    return cnndsl.build(cnndsl.parse(TINY), **params)
