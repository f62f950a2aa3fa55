"""Receptive fields: the static analysis against ground truth measured with torch, known values from
the literature, jumps, global context (squeeze-and-excitation gates), the misalignment warning for
merged branches and the warning for outputs that never see the whole input.

Empirical RF: every conv/linear weight set to a positive constant (1/fan-in, float64 so nothing
underflows), biases 0, BatchNorm in eval with identity statistics, activations and normalisations
made identity, max pools (adaptive ones too) run as average pools of the same geometry (max pools route the gradient to
one element; the window is what matters). The gradient of one output unit w.r.t. an all-ones input
is then positive exactly on that unit's receptive field; its extent is compared with ``size`` and
its position with ``start + i·jump``. With the global paths cut (global pools' outputs detached) the
same measurement gives the local field of a map behind a gate; uncut, such a map sees everything.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.layout import is_standard  # noqa: E402
from cnndsl.ops.base import Transposed  # noqa: E402
from cnndsl.ops.base import Upsample as UpsampleRule  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


class _Stop(Exception):
    pass


def _positive(model: torch.nn.Module, dtype=torch.float64) -> torch.nn.Module:
    model = model.to(dtype).eval()
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
            elif isinstance(m, torch.nn.AdaptiveMaxPool2d):
                m.forward = lambda x, m=m: F.adaptive_avg_pool2d(x, m.output_size)
            elif isinstance(m, IDENTITY):
                m.forward = lambda x: x
    return model


# activations (torch.nn.modules.activation) and normalisations with statistics over the map; the
# sigmoid stays (its gradient is never 0, and it keeps squeeze-and-excitation gates below 1: as the
# identity, EfficientNet's gates square the values block after block until float32 overflows)
IDENTITY = tuple(getattr(torch.nn, n) for n in torch.nn.modules.activation.__all__
                 if n not in ("MultiheadAttention", "Sigmoid")) + (
    torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.InstanceNorm2d)


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


# ----------------------------------------------------------------------------- global context

SE = """
network SE {
    input 3x64x64
    c1: conv(8, k=3, s=2, p=1)  relu
    se1: multiply { | global_avgpool  conv(2, k=1)  relu  conv(8, k=1)  sigmoid }
    c2: conv(8, k=3, s=2, p=1)  relu
    se2: multiply { | global_avgpool  conv(2, k=1)  relu  conv(8, k=1)  sigmoid }
    c3: conv(8, k=3, s=2, p=1)  relu
    global_avgpool  flatten  fc: linear(10)
}
"""

# EfficientNet-style: MBConv (1×1 expand, depthwise k×k, squeeze-and-excitation, 1×1 project)
EFFNET = """
block SqueezeExcite(squeeze, c = in.channels) {
    multiply { | global_avgpool  conv(squeeze, k=1)  silu  conv(c, k=1)  sigmoid }
}
block MBConvBody(out, k = 3, stride = 1, expand = 4) {
    conv(in.channels * expand, k=1, bias=false)  batchnorm  silu
    dwconv(k, s=stride, p=k // 2, bias=false)  batchnorm  silu
    se: SqueezeExcite(max(1, in.channels // (4 * expand)))
    conv(out, k=1, bias=false)  batchnorm
}
block MBConv(out, k = 3, stride = 1, expand = 4) {
    residual { body: MBConvBody(out, k, stride, expand) } when stride == 1 and in.channels == out
    body: MBConvBody(out, k, stride, expand) when not (stride == 1 and in.channels == out)
}
network EffNetLike {
    input 3x64x64
    stem: conv(16, k=3, s=2, p=1, bias=false)  batchnorm  silu
    b1: MBConv(16, expand=1)
    b2: MBConv(24, stride=2)
    b3: MBConv(24)
    b4: MBConv(40, k=5, stride=2)
    b5: MBConv(40, k=5)
    head: conv(64, k=1, bias=false)  batchnorm  silu
    global_avgpool  flatten  fc: linear(10)
}
"""


def _global_origins(analysis) -> list[str]:
    """Registered layers where a global path starts (a global pool on a local map)."""
    rf = {l.node.id: l.rf for l in analysis.layers}          # the input (id 0) is a local map
    return [l.name for l in analysis.layers if l.rf is not None and l.rf.global_ and l.node.registered
            and not getattr(rf.get(l.node.inputs[0]), "global_", False)]


def measured_fields(analysis, layers: list[str], cut_global: bool) -> dict[str, tuple]:
    """For each layer: ((row0, row1), (col0, col1), centre unit) of the input gradient of its centre
    unit, in one forward; ``cut_global`` detaches every global path (the local field)."""
    model = _positive(cnndsl.build(analysis), torch.float32)     # float64's first depthwise pass is slow
    shape = analysis.input_shape
    x = torch.ones(1, *shape, dtype=torch.float32, requires_grad=True)
    outs, hooks = {}, []
    for name in layers:
        hooks.append(model.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: outs.__setitem__(name, o)))
    if cut_global:
        for name in _global_origins(analysis):
            hooks.append(model.get_submodule(name).register_forward_hook(lambda m, i, o: o.detach()))
    model(x)
    for h in hooks:
        h.remove()
    found = {}
    for name in layers:
        o = outs[name]
        i, j = o.shape[2] // 2, o.shape[3] // 2
        (g,) = torch.autograd.grad(o[0, :, i, j].sum(), x, retain_graph=True)
        g = g[0].abs().sum(0)
        rows, cols = torch.nonzero(g.sum(1) > 0).flatten(), torch.nonzero(g.sum(0) > 0).flatten()
        found[name] = ((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())), (i, j))
    return found


def _phase_slack(analysis) -> dict[str, Fraction]:
    """How far a field's edges may be from the measured ones: upsampling (transposed conv, upsample)
    maps output u to input u/s, so a unit's true field is the average one shifted by its phase — up
    to half the upsampled stride for each upsampling on the way. Windows and pools are exact."""
    g, slack = analysis.graph, {0: Fraction(0)}
    for l in analysis.layers:
        node = l.node
        rule = node.op.rf([g.nodes[i].shape for i in node.inputs])
        own = l.rf.jump[0] / 2 if isinstance(rule, (Transposed, UpsampleRule)) and l.rf else 0
        slack[node.id] = max(slack[i] for i in node.inputs) + own
    return {l.name: slack[l.node.id] for l in analysis.layers}


def check_fields(analysis, layers: list[str], context_from_pools: bool = True) -> None:
    """Local fields (global paths cut) equal the static RF, clipped to the input; maps marked
    'global context' see every input pixel when the paths are not cut (``context_from_pools``: the
    context comes from a global pool, not from a normalisation's statistics, made identity here)."""
    h, w = analysis.input_shape[1:]
    local = measured_fields(analysis, layers, cut_global=True)
    context = [n for n in layers if analysis.layer(n).rf.context] if context_from_pools else []
    full = measured_fields(analysis, context, cut_global=False) if context else {}
    slack = _phase_slack(analysis)
    for name in layers:
        rf = analysis.layer(name).rf
        (r0, r1), (c0, c1), (i, j) = local[name]
        for (lo, hi), u, n, axis in (((r0, r1), i, h, 0), ((c0, c1), j, w, 1)):
            centre = rf.start[axis] + u * rf.jump[axis]
            first, last = max(centre - rf.size[axis] / 2, 0), min(centre + rf.size[axis] / 2 - 1, n - 1)
            assert abs(lo - first) <= slack[name] and abs(hi - last) <= slack[name], \
                (name, axis, (lo, hi), (first, last), slack[name], rf)
        if name in full:
            assert full[name][:2] == ((0, h - 1), (0, w - 1)), (name, full[name])


def _spatial_layers(analysis, limit: int = 5) -> list[str]:
    """Up to ``limit`` registered layers with a local C×H×W output, evenly spread, and the final one."""
    names = [l.name for l in analysis.layers if l.node.registered and not l.node.op.bare_parameter
             and len(l.shape) == 3 and is_standard(l.shape) and l.rf is not None and not l.rf.global_]
    step = max(1, len(names) // limit)
    picked = names[::step][:limit]
    final = analysis.final_rf_node
    if final in names and final not in picked:
        picked.append(final)
    return picked


def test_se_gate_keeps_the_spatial_geometry_and_marks_context():
    a = cnndsl.analyze(SE)
    stride = {n: a.layer(n).rf.jump[0] for n in ("c1", "c2", "c3", "7")}
    assert stride == {"c1": 2, "c2": 4, "c3": 8, "7": 8}      # not 32 or 64 after the gates
    assert [a.layer(n).rf.size[0] for n in ("c1", "c2", "c3")] == [3, 7, 15]
    assert a.layer("se1.multiply").rf.context == "se1.multiply" and a.layer("c3").rf.context == "se1.multiply"
    assert a.layer("c1").rf.context is None and a.layer("se1.0").rf.global_
    assert a.final_rf_node == "7" and a.final_rf.size == (15, 15) and a.final_rf.context == "se1.multiply"
    check_fields(a, ["c1", "1", "c2", "4", "c3", "7"])


def test_efficientnet_style_blocks_match_gradients():
    a = cnndsl.analyze(EFFNET)
    assert [a.layer(n).rf.jump[0] for n in ("stem", "b2.body.3", "b4.body.3", "head")] == [2, 4, 8, 8]
    assert a.final_rf.context is not None and a.final_rf.jump == (8, 8)
    check_fields(a, _spatial_layers(a, limit=10))


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.cnn")), ids=lambda p: p.name)
def test_shipped_specs_fields_match_gradients(path):
    a = cnndsl.analyze(path)
    assert len(a.input_shape) == 3, "every shipped spec takes an image (a vector input has no receptive field)"
    check_fields(a, _spatial_layers(a))
    twin = path.with_suffix(".yaml")
    if twin.exists():
        assert [l.rf for l in cnndsl.analyze(twin).layers] == [l.rf for l in a.layers]


def test_group_and_instance_norm_give_context():
    a = cnndsl.analyze("network N { input 3x32x32  c: conv(4, k=3)  groupnorm(2)  d: conv(4, k=3)  "
                       "layernorm  instancenorm  head: conv(2, k=1) }")
    assert a.layer("c").rf.context is None and a.layer("d").rf.context == "1"
    assert a.layer("3").rf.context == "1" and a.layer("head").rf.size == (5, 5)
    assert not [w for w in a.warnings if "never sees the whole" in w.message]


# ----------------------------------------------------------------------------- outputs that see a patch


def _partial(spec) -> list:
    return [w for w in cnndsl.analyze(spec).warnings if "never sees the whole" in w.message]


# Warnings a shipped spec documents in its own comments (FPN's nearest upsampling is misaligned by
# half a fine pixel, as in the original paper); every other shipped spec has none.
DOCUMENTED_WARNINGS = {"fpn_resnet18.cnn": ["merged by 'p4' are misaligned", "merged by 'p3' are misaligned"]}


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.cnn")), ids=lambda p: p.name)
def test_shipped_specs_have_no_warnings(path):
    """The tutorial's SimpleCNN and CNNWithBatchNorm: their convs see a patch, but fc1 sees it all."""
    messages = [w.message for w in cnndsl.analyze(path).warnings]
    expected = DOCUMENTED_WARNINGS.get(path.name, [])
    assert len(messages) == len(expected)
    assert all(part in message for part, message in zip(expected, messages))


def test_fully_convolutional_head_warned_at_the_output():
    spec = """network FCN {
    input 3x64x64
    c1: conv(8, k=3, p=1)  relu
    c2: conv(8, k=3, s=2, p=1)  relu
    head: conv(2, k=1)
    from c2
    global_avgpool  flatten
    cls: linear(4)
    output head, cls
}"""
    (w,) = _partial(spec)
    assert w.message.startswith("output 'head' (conv) never sees the whole 64×64 input: each of its values "
                                "is computed from a 5×5 window (receptive-field stride 2)")
    assert (w.span.line, w.span.col) == (5, 11)
    gated = spec.replace("head: conv(2, k=1)", "multiply { | global_avgpool conv(8, k=1) sigmoid }  head: conv(2, k=1)")
    assert _partial(gated) == []
