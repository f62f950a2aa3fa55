"""The built module is a plain torch module: fx, train/eval, deepcopy, outputs, containers called
alone, frozen parameters, in-place safety, torch.compile, and costs cross-checked with torchinfo."""

from __future__ import annotations

import copy
import fnmatch
import shutil
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return cnndsl.build(SPECS / "resnet18.cnn")


@pytest.fixture(scope="module")
def simple_cnn():
    torch.manual_seed(0)
    return cnndsl.build(SPECS / "simple_cnn.cnn")


def _x(shape, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *shape, generator=g)


def _no_inplace(model):
    """A copy of ``model`` with every ``inplace`` flag cleared: the autograd reference."""
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return ref


def _inplace_count(model) -> int:
    return sum(1 for m in model.modules() if getattr(m, "inplace", False))


# ----------------------------------------------------------------------------- torch.fx


@pytest.mark.parametrize("name, shape, target", [("simple_cnn", (3, 32, 32), "conv1"),
                                                  ("resnet18", (3, 64, 64), "layer1.0.conv1")])
def test_fx_symbolic_trace_gives_equal_outputs(name, shape, target, request):
    model = request.getfixturevalue(name)
    gm = torch.fx.symbolic_trace(model)
    x = _x(shape)
    model.eval(), gm.eval()
    with torch.no_grad():
        assert torch.equal(gm(x), model(x))
    assert any(n.op == "call_module" and n.target == target for n in gm.graph.nodes)


# ----------------------------------------------------------------------------- train / eval


def test_train_eval_propagate_to_every_submodule(resnet18):
    resnet18.eval()
    assert not any(m.training for m in resnet18.modules())
    resnet18.train()
    assert all(m.training for m in resnet18.modules())
    resnet18.eval()


def test_batchnorm_running_stats_update_in_train_only():
    model = cnndsl.build(SPECS / "resnet18.cnn")
    x = _x((3, 64, 64), batch=4)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 20
    before = [bn.running_mean.clone() for bn in bns]
    model.eval()
    with torch.no_grad():
        model(x)
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))
    assert all(int(bn.num_batches_tracked) == 0 for bn in bns)
    model.train()
    with torch.no_grad():
        model(x)
    assert all(not torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))
    assert all(int(bn.num_batches_tracked) == 1 for bn in bns)


def test_dropout_active_in_train_only(simple_cnn):
    x = _x((3, 32, 32), batch=8)
    simple_cnn.eval()
    with torch.no_grad():
        a, b = simple_cnn(x), simple_cnn(x)
    assert torch.equal(a, b)
    simple_cnn.train()
    torch.manual_seed(1)
    with torch.no_grad():
        c, d = simple_cnn(x), simple_cnn(x)
    simple_cnn.eval()
    assert not torch.equal(c, d)
    # the dropout layer itself zeroes about half its input in train mode
    drop = next(m for m in simple_cnn.modules() if isinstance(m, torch.nn.Dropout))
    drop.train()
    z = drop(torch.ones(10_000))
    drop.eval()
    assert 0.4 < (z == 0).float().mean().item() < 0.6
    assert torch.equal(drop(torch.ones(10)), torch.ones(10))


# ----------------------------------------------------------------------------- deepcopy, outputs


def test_deepcopy_is_independent(resnet18):
    twin = copy.deepcopy(resnet18)
    x = _x((3, 64, 64))
    resnet18.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(twin(x), resnet18(x))
        twin.fc.weight.mul_(2)           # the copy's forward must run the copy's modules
        assert not torch.equal(twin(x), resnet18(x))
        twin.fc.weight.div_(2)
        assert torch.equal(twin(x), resnet18(x))
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(twin.parameters(), resnet18.parameters()))
    assert twin.state_dict().keys() == resnet18.state_dict().keys()


MULTI = """
network Two {
    input 3x16x16
    c1: conv(8, k=3, p=1)
    r1: relu
    a: conv(4, k=1)
    from r1
    b: conv(6, k=3, s=2, p=1)
    output a, b
}
"""


def test_multiple_outputs_are_a_tuple():
    model = cnndsl.build(MULTI)
    analysis = cnndsl.analyze(MULTI)
    out = model(_x((3, 16, 16)))
    assert isinstance(out, tuple) and len(out) == 2
    assert [tuple(t.shape[1:]) for t in out] == analysis.output_shapes == [(4, 16, 16), (6, 8, 8)]
    single = cnndsl.build(SPECS / "simple_cnn.cnn")(_x((3, 32, 32)))
    assert isinstance(single, torch.Tensor)


# ----------------------------------------------------------------------------- containers alone


def _capture(model, names):
    """Outputs of the named leaf modules during one forward (cloned: later in-place ops can't touch them)."""
    got, hooks = {}, []
    for name in names:
        m = model.get_submodule(name)
        hooks.append(m.register_forward_hook(lambda mod, i, o, name=name: got.__setitem__(name, o.clone())))
    return got, hooks


@pytest.mark.parametrize("container,before,last", [
    ("layer1", "maxpool", "layer1.1.5"),
    ("layer2", "layer1.1.5", "layer2.1.5"),
    ("layer2.0", "layer1.1.5", "layer2.0.6"),
    ("layer4", "layer3.1.5", "layer4.1.5"),
])
def test_container_alone_equals_slice_of_forward(resnet18, container, before, last):
    resnet18.eval()
    got, hooks = _capture(resnet18, [before, last])
    try:
        with torch.no_grad():
            resnet18(_x((3, 64, 64)))
    finally:
        for h in hooks:
            h.remove()
    inp = got[before].clone()
    with torch.no_grad():
        out = resnet18.get_submodule(container)(inp)
    assert torch.equal(inp, got[before]), "calling a container alone modified its input"
    torch.testing.assert_close(out, got[last], rtol=0, atol=0)


def test_container_alone_matches_torchvision(resnet18):
    tv = torchvision.models.resnet18().eval()
    resnet18.load_state_dict(tv.state_dict())
    resnet18.eval()
    x = _x((64, 16, 16))
    with torch.no_grad():
        torch.testing.assert_close(resnet18.layer1(x), tv.layer1(x), rtol=0, atol=0)
        torch.testing.assert_close(resnet18.layer3(_x((128, 8, 8))), tv.layer3(_x((128, 8, 8))), rtol=0, atol=0)


# ----------------------------------------------------------------------------- frozen parameters


def test_frozen_parameters(tmp_path):
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    text = (SPECS / "resnet18.cnn").read_text().rstrip().rstrip("}")
    text += '    freeze "layer1.*", "conv1.weight", "*.bn2.bias"\n    unfreeze "layer1.0.bn1.*"\n}\n'
    path = tmp_path / "frozen.cnn"
    path.write_text(text)
    analysis = cnndsl.analyze(cnndsl.load(path))
    model = cnndsl.build(analysis)

    def frozen(name):
        hit = any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, p + ".*")
                  for p in ("layer1.*", "conv1.weight", "*.bn2.bias"))
        keep = fnmatch.fnmatchcase(name, "layer1.0.bn1.*")
        return hit and not keep

    named = dict(model.named_parameters())
    assert {n for n, p in named.items() if not p.requires_grad} == {n for n in named if frozen(n)}
    assert not named["layer1.1.conv2.weight"].requires_grad
    assert named["layer1.0.bn1.weight"].requires_grad
    assert not named["layer3.0.bn2.bias"].requires_grad and named["layer3.0.bn2.weight"].requires_grad
    assert analysis.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert analysis.params == sum(p.numel() for p in model.parameters())
    assert analysis.trainable_params < analysis.params
    # frozen parameters get no gradient
    model.train()
    model(_x((3, 32, 32))).sum().backward()
    assert named["conv1.weight"].grad is None and named["layer2.0.conv1.weight"].grad is not None


# ----------------------------------------------------------------------------- in-place safety

TWO_CONSUMERS = """
network TwoConsumers {
    input 4x8x8
    c1: conv(4, k=3, p=1)
    c2: conv(4, k=3, p=1)
    s: add(c1)                 # add(c2, c1): its first input c2 is also used by t below
    r: relu
    from c2
    t: sigmoid
    u: relu                    # after sigmoid, whose backward needs its output
    output r, u
}
"""

RESIDUAL_CHAINS = """
network Chains {
    input 4x12x12
    residual { conv(4, k=3, p=1) batchnorm relu conv(4, k=3, p=1) batchnorm } relu
    residual { relu conv(4, k=3, p=1) } relu
    tanh relu
    maxpool(2) relu
    concat { conv(4, k=1) | relu | } relu
    residual { conv(12, k=1) } shortcut proj { conv(12, k=1) } relu
    upsample(2, mode=bilinear) relu
    avgpool(2) leaky_relu(0.1) relu6
    dropout(0.0) relu
    global_avgpool flatten linear(6) relu linear(3)
}
"""

FIRST_OP_INPLACE = """
network First {
    input 4x8x8
    relu
    residual { conv(4, k=3, p=1) }
    relu
}
"""

RESIDUAL_ON_INPUT = """
network OnInput {
    input 4x8x8
    residual { relu conv(4, k=3, p=1) } relu
    stage: { relu conv(4, k=1) }
}
"""


@pytest.mark.parametrize("spec,shape", [
    (TWO_CONSUMERS, (4, 8, 8)), (RESIDUAL_CHAINS, (4, 12, 12)), (FIRST_OP_INPLACE, (4, 8, 8)),
    (RESIDUAL_ON_INPUT, (4, 8, 8)), (SPECS / "resnet18.cnn", (3, 64, 64)),
    (SPECS / "simple_cnn.cnn", (3, 32, 32)),
])
def test_inplace_ops_keep_autograd_exact(spec, shape):
    """Outputs and every gradient equal those of the same model with all in-place flags off."""
    torch.manual_seed(0)
    model = cnndsl.build(spec).train()
    ref = _no_inplace(model).train()
    x = _x(shape, seed=3)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(7)
    oa = model(xa)
    torch.manual_seed(7)          # same dropout masks
    ob = ref(xb)
    oa = oa if isinstance(oa, tuple) else (oa,)
    ob = ob if isinstance(ob, tuple) else (ob,)
    for a, b in zip(oa, ob):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in oa).backward()
    sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in ob).backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-6)
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=n)


def test_inplace_choices_for_shared_and_output_needing_inputs():
    model = cnndsl.build(TWO_CONSUMERS)
    assert not model.s.inplace      # its first input (c2) is read again by t
    assert model.r.inplace          # the sum is used once and add's backward does not need it
    assert not model.u.inplace      # sigmoid's backward needs its output


def test_resnet18_uses_inplace_like_torchvision(resnet18):
    # torchvision: every ReLU in place (17) and the residual sum `out += identity` (8)
    relus = [m for m in resnet18.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and all(m.inplace for m in relus)
    assert _inplace_count(resnet18) >= 17


def test_resnet18_gradients_equal_torchvision():
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    ours = cnndsl.build(SPECS / "resnet18.cnn")
    ours.load_state_dict(tv.state_dict())
    x = _x((3, 64, 64))
    ours.train(), tv.train()
    ya, yb = ours(x), tv(x)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    ya.square().sum().backward()
    yb.square().sum().backward()
    tvp = dict(tv.named_parameters())
    for n, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, tvp[n].grad, rtol=1e-5, atol=1e-5, msg=n)


@pytest.mark.parametrize("spec,shape", [
    (FIRST_OP_INPLACE, (4, 8, 8)), (RESIDUAL_ON_INPUT, (4, 8, 8)), (TWO_CONSUMERS, (4, 8, 8)),
    (RESIDUAL_CHAINS, (4, 12, 12)), (SPECS / "resnet18.cnn", (3, 32, 32)),
])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_forward_never_modifies_the_callers_input(spec, shape, mode):
    model = cnndsl.build(spec)
    getattr(model, mode)()
    x = _x(shape)
    keep = x.clone()
    with torch.no_grad():
        model(x)
    assert torch.equal(x, keep)
    x.requires_grad_()
    model(x)
    assert torch.equal(x.detach(), keep)


def test_container_called_alone_never_modifies_its_input(resnet18):
    """A container whose first op could run in place on its input does not: it runs alone, and the
    caller's tensor is untouched (the network's in-place choices stay inside each container)."""
    model = cnndsl.build(RESIDUAL_ON_INPUT).eval()
    assert not model.stage[0].inplace
    x = _x((4, 8, 8))
    keep = x.clone()
    with torch.no_grad():
        y = model.stage(x)
    assert torch.equal(x, keep)
    torch.testing.assert_close(y, model.stage[1](torch.relu(x)), rtol=0, atol=0)
    for name in ("layer1", "layer1.0", "layer2", "layer2.1"):
        c = resnet18.get_submodule(name).eval()
        shape = (64, 16, 16) if name.startswith("layer1") else ((64, 16, 16) if name == "layer2" else (128, 8, 8))
        x = _x(shape)
        keep = x.clone()
        with torch.no_grad():
            c(x)
        assert torch.equal(x, keep), name


# ----------------------------------------------------------------------------- torch.compile

TINY = """
network Tiny {
    input 3x16x16
    c1: conv(8, k=3, p=1, bias=false)  bn: batchnorm  relu
    residual { conv(8, k=3, p=1) relu conv(8, k=3, p=1) } relu
    global_avgpool flatten fc: linear(5)
}
"""


@pytest.mark.slow
def test_torch_compile_tiny_spec():
    torch._dynamo.reset()
    model = cnndsl.build(TINY).eval()
    x = _x((3, 16, 16))
    t = time.perf_counter()
    compiled = torch.compile(model)      # CPU inductor (~30-60 s cold on 2 cores)
    with torch.no_grad():
        y = compiled(x)
        ref = model(x)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-5)
    assert time.perf_counter() - t < 600


# ----------------------------------------------------------------------------- costs vs torchinfo


def _torchinfo_layers(model, shape):
    torchinfo = pytest.importorskip("torchinfo")
    stats = torchinfo.summary(model, input_size=(1, *shape), verbose=0, device="cpu", depth=20,
                              col_names=("output_size", "num_params", "mult_adds"))
    names = {id(m): n for n, m in model.named_modules()}
    return stats, {names[id(l.module)]: l for l in stats.summary_list if id(l.module) in names}


@pytest.mark.parametrize("spec", ["resnet18.cnn", "simple_cnn.cnn", "vgg11_bn.cnn"])
def test_macs_and_params_match_torchinfo(spec):
    analysis = cnndsl.analyze(SPECS / spec)
    model = cnndsl.build(analysis).eval()
    stats, by_name = _torchinfo_layers(model, analysis.input_shape)
    checked = 0
    for info in analysis.layers:
        module = model.get_submodule(info.name) if info.node.registered else None
        if not isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            continue
        ti = by_name[info.name]
        if isinstance(module, torch.nn.Conv2d):
            # torchinfo: (weight + bias).numel() * H_out * W_out; cnndsl counts the weights only
            bias = module.bias.numel() * info.shape[1] * info.shape[2] if module.bias is not None else 0
        else:
            bias = module.bias.numel() if module.bias is not None else 0
        assert ti.macs == info.cost.macs + bias, info.name
        assert ti.num_params == info.cost.params, info.name
        checked += 1
    assert checked == {"resnet18.cnn": 21, "simple_cnn.cnn": 5, "vgg11_bn.cnn": 11}[spec]
    assert stats.total_params == analysis.params == sum(p.numel() for p in model.parameters())
    assert stats.trainable_params == analysis.trainable_params
    if spec == "resnet18.cnn":
        assert analysis.macs == 1_814_073_344          # the usual "1.8 GMACs" (torchvision docs: 1.81)
