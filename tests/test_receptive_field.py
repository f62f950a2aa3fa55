"""Receptive fields: the static analysis against ground truth measured with torch, known values from
the literature, jumps, and the misalignment warning for merged branches.

Empirical RF: every conv/linear weight set to a positive constant (1/fan-in, float64 so nothing
underflows), biases 0, BatchNorm in eval with identity statistics, max pools run as average pools of
the same geometry (max pools route the gradient to one element; the window is what matters). The
gradient of one output unit w.r.t. an all-ones input is then positive exactly on that unit's
receptive field; its extent is compared with ``size`` and its position with ``start + i·jump``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import cnndsl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


class _Stop(Exception):
    pass


def _positive(model: torch.nn.Module) -> torch.nn.Module:
    model = model.double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_(), m.running_var.fill_(1.0)
                if m.affine:
                    m.weight.fill_(1.0), m.bias.zero_()
            elif isinstance(m, torch.nn.MaxPool2d):
                assert m.dilation in (1, (1, 1))
                m.forward = (lambda x, m=m: F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                                         count_include_pad=True))
    return model


def empirical_rf(model, layer: str, shape: tuple[int, int, int]):
    """(rows, cols) spanned by the input gradient of the centre unit of ``layer``'s output, and the unit."""
    model = _positive(model)
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    found = {}

    def hook(mod, inp, out):
        i, j = out.shape[2] // 2, out.shape[3] // 2
        (g,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
        found["unit"], found["grad"] = (i, j), g[0].abs().sum(0)
        raise _Stop

    h = model.get_submodule(layer).register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        h.remove()
    g = found["grad"]
    rows = torch.nonzero(g.sum(1) > 0).flatten()
    cols = torch.nonzero(g.sum(0) > 0).flatten()
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())), found["unit"]


def check_against_torch(spec, layer: str, shape: tuple[int, int, int]):
    analysis = cnndsl.analyze(spec)
    rf = analysis.layer(layer).rf
    (r0, r1), (c0, c1), (i, j) = empirical_rf(cnndsl.build(analysis), layer, shape)
    for axis, (lo, hi), u, n in ((0, (r0, r1), i, shape[1]), (1, (c0, c1), j, shape[2])):
        centre = rf.start[axis] + u * rf.jump[axis]
        first, last = centre - rf.size[axis] / 2, centre + rf.size[axis] / 2 - 1
        assert 0 <= first and last <= n - 1, "choose a larger input: the field is clipped by the border"
        assert (lo, hi) == (first, last), (layer, axis, (lo, hi), (first, last), rf)
        assert hi - lo + 1 == rf.size[axis]
    return analysis, rf


# ----------------------------------------------------------------------------- against torch

STACK = """
network Stack {
    input 3x224x416
    c1: conv(4, k=3, s=2, p=1) relu
    c2: conv(4, k=5, d=2, p=4) batchnorm relu
    c3: conv(4, k=3, s=2)
    mp: maxpool(3, s=2, p=1)
    ap: avgpool(2)
    c4: conv(4, k=[3, 5], s=[1, 2], p=[1, 2])
    c5: conv(4, k=3, d=3, p=same) relu
}
"""

POOLS = """
network Pools {
    input 2x80x80
    maxpool(2)
    avgpool(3, s=2, p=1)
    conv(2, k=3, p=0)
    maxpool(3, s=1)
    last: avgpool(3, s=3, ceil_mode=true)
}
"""

BRANCHES = """
network Branches {
    input 3x64x64
    stem: conv(8, k=3, s=2, p=1) relu
    mix: concat { conv(4, k=1) | conv(4, k=3, p=1) conv(4, k=3, p=1) | maxpool(3, s=1, p=1) conv(4, k=1) }
    res: residual { conv(12, k=3, p=1) batchnorm relu conv(12, k=3, d=2, p=2) } relu
    out: conv(8, k=3, s=2, p=1)
}
"""


@pytest.mark.parametrize("spec,layers,shape", [
    (STACK, ["c1", "1", "c2", "3", "c3", "mp", "ap", "c4", "c5"], (3, 224, 416)),
    (POOLS, ["0", "1", "2", "3", "last"], (2, 80, 80)),
    (BRANCHES, ["stem", "out"], (3, 64, 64)),
])
def test_rf_matches_gradient_extent(spec, layers, shape):
    for layer in layers:
        check_against_torch(spec, layer, shape)


def test_stack_rf_values_by_hand():
    a = cnndsl.analyze(STACK)
    # r' = r + (d(k-1)+1 - 1)·j; j' = j·s
    expect = {"c1": (3, 2), "c2": (3 + 8 * 2, 2), "c3": (19 + 2 * 2, 4), "mp": (23 + 2 * 4, 8),
              "ap": (31 + 8, 16), "c5": None}
    for name, val in expect.items():
        if val:
            rf = a.layer(name).rf
            assert (rf.size[0], rf.jump[0]) == val, name
    c4 = a.layer("c4").rf
    assert (c4.size, c4.jump) == ((39 + 2 * 16, 39 + 4 * 16), (16, 32))
    c5 = a.layer("c5").rf
    assert c5.size == (71 + 6 * 16, 103 + 6 * 32)


@pytest.fixture(scope="module")
def resnet18_analysis():
    return cnndsl.analyze(SPECS / "resnet18.cnn")


def test_resnet18_rf_is_435_and_matches_torch(resnet18_analysis):
    a = resnet18_analysis
    assert a.final_rf_node == "layer4.1.5"
    assert a.final_rf.size == (435, 435)                    # Araujo et al. (Distill 2019): 435
    assert a.final_rf.jump == (32, 32)
    # measured on a 512×512 input so the centre unit's field is not clipped
    (r0, r1), (c0, c1), unit = empirical_rf(cnndsl.build(a), "layer4.1.5", (3, 512, 512))
    assert unit == (8, 8)
    assert (r1 - r0 + 1, c1 - c0 + 1) == (435, 435)
    centre = a.final_rf.start[0] + 8 * 32
    assert r0 == centre - Fraction(435, 2)


def test_resnet18_stage_rfs_match_torch(resnet18_analysis):
    model = cnndsl.build(resnet18_analysis)
    for layer in ("maxpool", "layer1.1.5", "layer2.0.6", "layer3.1.5"):
        rf = resnet18_analysis.layer(layer).rf
        (r0, r1), (c0, c1), (i, _) = empirical_rf(model, layer, (3, 384, 384))
        assert r1 - r0 + 1 == rf.size[0] and c1 - c0 + 1 == rf.size[1], layer
        assert r0 == rf.start[0] + i * rf.jump[0] - rf.size[0] / 2, layer
    assert [resnet18_analysis.layer(n).rf.size[0] for n in ("maxpool", "layer1.1.5", "layer2.1.5",
                                                            "layer3.1.5", "layer4.1.5")] == [11, 43, 99, 211, 435]


def test_vgg11_rf_is_150_and_matches_torch():
    a = cnndsl.analyze(SPECS / "vgg11_bn.cnn")
    last = [l for l in a.layers if l.name.startswith("features.")][-1]
    assert last.op == "maxpool"
    assert last.rf.size == (150, 150) and last.rf.jump == (32, 32)
    assert a.final_rf.size == (150, 150)       # reported at 'avgpool' (adaptive 7 on a 7×7 map)
    (r0, r1), (c0, c1), _ = empirical_rf(cnndsl.build(a), last.name, (3, 320, 320))
    assert (r1 - r0 + 1, c1 - c0 + 1) == (150, 150)


def test_jump_is_product_of_strides(resnet18_analysis):
    a = cnndsl.analyze(STACK)
    assert a.layer("c5").rf.jump == (2 * 2 * 2 * 2, 2 * 2 * 2 * 2 * 2)
    for l in resnet18_analysis.layers:
        if l.rf is not None and not l.rf.global_ and len(l.shape) == 3:
            assert l.rf.jump[0] == 224 // l.shape[1], l.name


# ----------------------------------------------------------------------------- misalignment warning


def _misaligned(text: str) -> list[str]:
    return [w.message for w in cnndsl.analyze(text).warnings if "misaligned" in w.message]


@pytest.mark.parametrize("branches", [
    "conv(4, k=3, s=2, p=1) | conv(4, k=2, s=2)",          # same 8×8 size, field centres 0.5 vs 1.0
    "conv(4, k=1, s=2) | maxpool(2)",                        # centre 0.5 vs 1.0
    "conv(4, k=3, s=2, p=1) | conv(4, k=4, s=2, p=1)",      # same stride, other kernel/padding
    "conv(4, k=3, s=2, p=1) | upsample(size=[8, 8])",        # jump 2 vs 2, start 0.5 vs 1.0
])
def test_misalignment_warned(branches):
    text = f"network M {{ input 4x16x16  concat {{ {branches} }} }}"
    assert len(_misaligned(text)) == 1


@pytest.mark.parametrize("branches", [
    "conv(4, k=3, p=1) | conv(4, k=3, p=[1, 0]) conv(4, k=[1, 3], p=[0, 2])",   # size-preserving at stride 1
    "conv(4, k=3, p=0) | conv(4, k=1) conv(4, k=3)",
    "conv(4, k=3, s=2, p=1) | maxpool(3, s=2, p=1)",
])
def test_aligned_branches_not_warned(branches):
    text = f"network M {{ input 4x16x16  concat {{ {branches} }} }}"
    assert _misaligned(text) == []


def test_inception_style_branches_not_warned():
    text = """
    network Inception {
        input 8x28x28
        mixed: concat {
            conv(4, k=1)
          | conv(4, k=1) conv(6, k=3, p=1)
          | conv(2, k=1) conv(4, k=5, p=2)
          | maxpool(3, s=1, p=1) conv(4, k=1)
          | conv(4, k=3, p=same) conv(4, k=[1, 7], p=same) conv(4, k=[7, 1], p=same)
        }
        reduce: concat { conv(8, k=3, s=2, p=1) | maxpool(3, s=2, p=1) }
    }
    """
    assert _misaligned(text) == []
    assert not any("misaligned" in w.message for w in cnndsl.analyze(SPECS / "resnet18.cnn").warnings)
