"""Built modules behave like hand-written PyTorch: every named container runs its own forward, so
forward hooks fire (once, with the statically inferred shape), torchinfo shows per-block rows,
``model.layer1[0](x)`` equals what the hook saw, and a replaced child takes effect. Ground truth:
torchvision's resnet18 (same weights), torchinfo's rows for it, and the analysis' static shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402
from cnndsl.emit.module import Container, signature  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "specs").glob("*.yaml"))


def _x(shape, batch=1, seed=0):
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the tutorial's hook


def tutorial_feature_map(model, x):
    """The tutorial's code, unchanged: capture layer1[0]'s output with a forward hook."""
    activation = {}

    def get_activation(name):
        def hook(model, input, output):
            activation[name] = output.detach()
        return hook

    model.layer1[0].register_forward_hook(get_activation("layer1_0"))
    model.eval()
    with torch.no_grad():
        model(x)
    return activation["layer1_0"]


def test_tutorial_hook_on_resnet18_equals_torchvision():
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    ours = cnndsl.build(ROOT / "specs" / "resnet18.cnn")
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = _x((3, 224, 224))
    want, got = tutorial_feature_map(tv, x), tutorial_feature_map(ours, x)
    assert got.shape == (1, 64, 56, 56)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    stage = []
    ours.layer1.register_forward_hook(lambda m, i, o: stage.append(o.detach()))
    with torch.no_grad():
        assert torch.equal(ours.layer1[0](ours.maxpool(ours.relu(ours.bn1(ours.conv1(x))))), got)
        ours(x)
        torch.testing.assert_close(stage[0], tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))), rtol=0, atol=0)


# ----------------------------------------------------------------------------- every named module


def _copy(v):
    if isinstance(v, dict):  # a backbone's feature extractor returns {tap: tensor}
        return {k: t.clone() for k, t in v.items()}
    return tuple(t.clone() for t in v) if isinstance(v, tuple) else v.clone()


def _in_backbone(name: str, backbones: dict) -> bool:
    """Inside a backbone module: torch.fx's feature extractor calls the model's leaf layers (some
    twice, like ResNet's shared relu), not its containers, as torchvision's own does."""
    return any(name.startswith(p + ".") for p in backbones)


def check_every_module_runs_once(analysis, model, x) -> int:
    """Hook every module: each fires once per forward with its static shape(s); every container
    called alone on the inputs its hook saw returns what the hook saw. Returns the container count.
    A backbone is one module here: it returns its outputs' static shapes; its insides are torch's."""
    graph = analysis.graph
    shapes = {n.path: tuple(n.shape) for n in graph.nodes}
    backbones = {d.path: d for d in graph.backbones.values()}
    calls: dict[str, list] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: calls.setdefault(name, []).append(
        (tuple(t.clone() for t in i), _copy(o)))) for name, m in model.named_modules()
        if not _in_backbone(name, backbones)]
    with torch.no_grad():
        model(x)
        model(x)
    for h in hooks:
        h.remove()
    containers = 0
    for name, m in model.named_modules():
        if _in_backbone(name, backbones):
            continue
        assert len(calls.get(name, [])) == 2, f"{name!r} ran {len(calls.get(name, []))} times in 2 forwards"
        ins, out = calls[name][0]
        if not name:
            continue
        if name in backbones:
            outs = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple) else [out]
            assert [tuple(t.shape[1:]) for t in outs] == \
                [shapes[graph.nodes[i].path] for i in dict.fromkeys(backbones[name].outputs)], name
            continue
        if isinstance(m, Container):
            containers += 1
            sig = signature(m)
            outs = out if len(sig.outputs) > 1 else (out,)
            assert [tuple(t.shape[1:]) for t in outs] == [shapes[p] for p in sig.outputs], name
            assert [tuple(t.shape[1:]) for t in ins] == [shapes[p] for p in sig.inputs], name
            with torch.no_grad():
                alone = m(*ins)
            alone = alone if len(sig.outputs) > 1 else (alone,)
            for a, b in zip(alone, outs, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        else:
            assert isinstance(out, torch.Tensor) and tuple(out.shape[1:]) == shapes[name], name
    return containers


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_named_module_of_shipped_specs_runs_once(path):
    analysis = cnndsl.analyze(path)
    torch.manual_seed(0)
    model = cnndsl.build(analysis).eval()
    n = check_every_module_runs_once(analysis, model, _x(analysis.input_shape))
    backbones = {d.path for d in analysis.graph.backbones.values()}
    named = {p for p in analysis.graph.containers
             if any(l.node.registered and l.name.startswith(p + ".") for l in analysis.layers)
             and not any(p == b or p.startswith(b + ".") for b in backbones)}  # a backbone's are torch's
    assert n == len(named)


# ----------------------------------------------------------------------------- crossing values

TAPS = """
block Blk(c) {
    residual { conv1: conv(c, k=3, p=1)  relu  conv2: conv(c, k=3, p=1) } relu
}
network Taps {
    input 3x16x16
    stem: conv(8, k=3, p=1)
    layer1: Blk(8) x2
    global_avgpool  flatten
    fc: linear(5)
    output fc, layer1.0.conv1
}
"""

UNET = """
network U {
    input 3x16x16
    enc1: { conv(8, k=3, p=1)  relu }
    down: maxpool(2)
    mid: conv(16, k=3, p=1)  relu
    dec1: { up: conv_transpose(8, k=2, s=2)  concat(enc1)  conv(8, k=3, p=1)  relu }
    head: conv(2, k=1)
}
"""

SKIPS = """
network Skips {
    input 3x16x16
    enc1: { c: conv(16, k=3, p=1)  relu }
    conv(16, k=3, p=1)
    add(enc1.c)
    head: conv(2, k=1)
}
"""


def test_inner_value_used_outside_is_returned_by_every_enclosing_container():
    analysis = cnndsl.analyze(TAPS)
    model = cnndsl.build(analysis).eval()
    assert signature(model.layer1[0]) == (("stem",), ("layer1.0.3", "layer1.0.conv1"))
    assert signature(model.layer1) == (("stem",), ("layer1.1.3", "layer1.0.conv1"))
    assert signature(model.layer1[1]) == (("layer1.0.3",), ("layer1.1.3",))
    check_every_module_runs_once(analysis, model, _x((3, 16, 16), batch=2))
    x = _x((3, 16, 16), batch=2)
    with torch.no_grad():
        fc, tap = model(x)
        out, tap1 = model.layer1(model.stem(x))
    assert torch.equal(tap, tap1) and tap.shape == (2, 8, 16, 16) and fc.shape == (2, 5)
    assert "returns=(layer1.0.3, layer1.0.conv1)" in repr(model.layer1[0])


def test_stage_reading_a_skip_connection_takes_it_as_a_second_argument():
    analysis = cnndsl.analyze(UNET)
    model = cnndsl.build(analysis).eval()
    assert signature(model.dec1) == (("3", "enc1.1"), ("dec1.3",))
    assert "inputs=(3, enc1.1)" in repr(model.dec1)
    check_every_module_runs_once(analysis, model, _x((3, 16, 16), batch=2))
    with pytest.raises(TypeError, match=r"takes 2 input\(s\) \(3, enc1.1\), got 1"):
        model.dec1(_x((16, 8, 8)))


def test_dotted_reference_into_a_stage():
    analysis = cnndsl.analyze(SKIPS)
    model = cnndsl.build(analysis).eval()
    assert signature(model.enc1) == (("input",), ("enc1.1", "enc1.c"))
    assert not model.enc1[1].inplace        # enc1.c is read again outside: relu must not overwrite it
    check_every_module_runs_once(analysis, model, _x((3, 16, 16), batch=2))


# ----------------------------------------------------------------------------- torchinfo, replacement


def test_torchinfo_rows_per_block_match_torchvision():
    torchinfo = pytest.importorskip("torchinfo")

    def rows(model):
        s = torchinfo.summary(model, input_size=(1, 3, 224, 224), depth=3, verbose=0)
        return [(l.depth, l.num_params, l.output_size) for l in s.summary_list if l.class_name == "BasicBlock"]

    ours, ref = rows(cnndsl.build(ROOT / "specs" / "resnet18.cnn")), rows(torchvision.models.resnet18())
    assert len(ours) == 8 and ours == ref
    assert ours[2] == (2, 230_144, [1, 128, 28, 28])


def test_replacing_a_child_takes_effect():
    model = cnndsl.build(ROOT / "specs" / "simple_cnn.cnn").eval()
    model.fc2 = torch.nn.Linear(256, 3)
    model.conv1 = torch.nn.Conv2d(3, 32, 5, padding=2)
    assert model(_x((3, 32, 32), batch=2)).shape == (2, 3)
