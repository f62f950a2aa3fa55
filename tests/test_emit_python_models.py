"""``--emit python`` against torchvision itself: the classes emitted for the zoo specs load
torchvision's (randomly initialised, perturbed) weights with ``strict=True`` and compute its
outputs, in eval mode and — same seed — in train mode (stochastic depth draws the same samples).
Also: the copied ``cnndsl.nn`` classes are ruff-clean, a bare parameter sits on its block's class,
and a file using the copied classes runs as a script without cnndsl."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402
from cnndsl import nn as runtime  # noqa: E402
from cnndsl.emit.python import RUNTIME_NAMES, python_source  # noqa: E402
from test_emit_python import _load, _ruff, run_without_cnndsl  # noqa: E402
from test_zoo import SIZE, _perturb  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"
CASES = {"convnext_tiny": "convnext_tiny", "efficientnet_b0": "efficientnet_b0",
         "shufflenet_v2": "shufflenet_v2_x1_0"}

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _emitted(stem: str, **params):
    """(source, namespace) of ``--emit python`` for a shipped spec at ``params``."""
    spec = cnndsl.load(SPECS / f"{stem}.cnn")
    src = python_source(cnndsl.analyze(spec, **params), spec=spec)
    return src, _load(src)


@pytest.mark.parametrize("stem", sorted(CASES))
def test_emitted_class_is_torchvisions_model(stem):
    """torchvision's state_dict loads strictly into the emitted class (num_classes passed to its
    constructor) and both compute the same outputs."""
    src, ns = _emitted(stem, size=SIZE)
    torch.manual_seed(0)
    ref = _perturb(getattr(torchvision.models, CASES[stem])(num_classes=10))
    analysis = cnndsl.analyze(SPECS / f"{stem}.cnn", size=SIZE)
    model = ns[analysis.name](num_classes=10)
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), ref.eval()(x), rtol=1e-4, atol=1e-4)
        model.train(), ref.train()
        torch.manual_seed(5)
        ours = model(x)
        torch.manual_seed(5)
        theirs = ref(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert "import cnndsl" not in src and "from cnndsl" not in src


def test_convnext_layer_scale_is_a_parameter_of_the_block_class():
    """``layer_scale: layer_scale(scale)`` is ``self.layer_scale = nn.Parameter(...)`` on CNBlock,
    its shape written from the block's parameters; the network's ``layer_scale`` sets its value;
    the module tree is torchvision's."""
    src, ns = _emitted("convnext_tiny", size=SIZE)
    assert "self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), scale))" in src
    assert "out = out * self.layer_scale" in src
    assert "class LayerNorm2d(nn.LayerNorm):" in src and "class StochasticDepth(nn.Module):" in src
    assert "class PadChannels" not in src               # only the classes it uses
    with torch.device("meta"):
        block = ns["CNBlock"](96, scale=0.5, dim=96)
    assert [n for n, _ in block.named_parameters(recurse=False)] == ["layer_scale"]
    model = ns["ConvNeXtTiny"](layer_scale=0.25)
    assert model.features[1][0].layer_scale.shape == (96, 1, 1)
    assert torch.all(model.features[5][8].layer_scale == 0.25)
    # the block is torchvision's nn.Sequential (its permutes as modules): the same module tree
    assert type(model.features[1][0].block[1]).__name__ == "Permute"
    with torch.device("meta"):
        ref = torchvision.models.convnext_tiny()
    assert [n for n, _ in model.named_modules()] == [n for n, _ in ref.named_modules()]


def test_shufflenet_split_is_one_class_over_its_stages():
    """The channel split (``x1, x2: chunk(2)``) is written with the class's input size (the split
    halves the input, whatever ``out`` is), so the stride-1 unit of every stage is one class."""
    src, ns = _emitted("shufflenet_v2")
    assert "x1 = x.narrow(1, 0, self.in_channels // 2)" in src
    assert src.count("class InvertedResidual") == 2
    model = ns["ShuffleNetV2"]()
    assert type(model.stage2[1]) is type(model.stage4[3])


@pytest.mark.parametrize("name", sorted(RUNTIME_NAMES))
def test_copied_runtime_classes_are_ruff_clean(name):
    """A cnndsl.nn class goes into generated files as its source: formatted as ruff formats it."""
    _ruff("import torch\nfrom torch import nn\n\n\n" + inspect.getsource(getattr(runtime, name)))


ZOO_OPS = """
block Scaled(out, s = 1) {
    conv(out, k=3, s=s, p=1)
    residual { dwconv(3, p=1)  layernorm2d  ls: layer_scale(0.5)  stochastic_depth(0.1) }
}
block Shuffle(out, s = 1) {
    conv(2 * out, k=1, s=s)
    { x1, x2: chunk(2)  conv(out, k=1)  concat(x1) }
    channel_shuffle(2)
    pad_channels(4 * out)
}
network ZooOps(width = 4, num_classes = 3) {
    input 3x16x16
    stem: conv(width, k=3, p=1)
    stage0: Scaled(width * 2, s=2 if j == 0 else 1) x2 as j
    stage1: Shuffle(width, s=2 if j == 0 else 1) x2 as j
    global_avgpool  flatten  fc: linear(num_classes)
}
"""


def test_file_with_copied_classes_runs_standalone(tmp_path):
    """Written to a file and run as a script with cnndsl's import blocked; its network parameters
    are constructor arguments."""
    analysis = cnndsl.analyze(ZOO_OPS)
    src = python_source(analysis, spec=cnndsl.parse(ZOO_OPS))
    assert "def __init__(self, width: int = 4, num_classes: int = 3) -> None:" in src
    out = run_without_cnndsl(tmp_path / "zoo_ops.py", src)
    assert f"{analysis.params:,} parameters; output (2, 3)" in out.stdout
