"""The ConvNeXt and EfficientNet specs against torchvision: the same state_dict keys and shapes,
torchvision's (randomly initialised) weights load strictly, the same outputs in eval mode and —
with the same random seed — in train mode (stochastic depth draws the same samples), the same drop
rate per block, static params equal to ``sum(p.numel())``, per-layer shapes and MACs equal to
torchinfo's on the torchvision model, and total MACs equal to torch's FLOP counter."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnndsl

torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")

SPECS = Path(__file__).resolve().parent.parent / "specs"
SIZE = 64                                   # both networks are fully convolutional up to their pool

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _perturb(model: nn.Module) -> nn.Module:
    """Non-trivial norm weights, running statistics and layer scales (ConvNeXt's 1e-6 would make
    every block nearly the identity, and a wrong block would go unnoticed)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


@functools.lru_cache(maxsize=None)
def _pair(spec: str, reference: str):
    """(analysis, cnndsl model, torchvision model) with torchvision's weights loaded strictly."""
    torch.manual_seed(0)
    ref = _perturb(getattr(torchvision.models, reference)(num_classes=10))
    analysis = cnndsl.analyze(SPECS / spec, num_classes=10, size=SIZE)
    model = cnndsl.build(analysis)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    model.load_state_dict(ref.state_dict(), strict=True)
    return analysis, model, ref


CASES = [("convnext_tiny.cnn", "convnext_tiny"), ("efficientnet_b0.cnn", "efficientnet_b0")]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("spec, reference", CASES, ids=IDS)
def test_outputs_match_torchvision_in_eval_and_train(spec, reference):
    analysis, model, ref = _pair(spec, reference)
    x = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.eval(), ref.eval()
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-4)
        model.train(), ref.train()              # stochastic depth (and dropout) draw the same samples
        torch.manual_seed(5)
        ours = model(x)
        torch.manual_seed(5)
        theirs = ref(x)
    model.eval(), ref.eval()
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec, reference", CASES, ids=IDS)
def test_static_params_shapes_and_macs_match_torchinfo(spec, reference):
    analysis, model, ref = _pair(spec, reference)
    assert analysis.params == sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    stats = torchinfo.summary(ref, input_size=(1, 3, SIZE, SIZE), verbose=0, device="cpu", depth=30,
                              col_names=("output_size", "num_params", "mult_adds"), mode="eval")
    names = {id(m): n for n, m in ref.named_modules()}
    rows = {names[id(r.module)]: r for r in stats.summary_list if id(r.module) in names}
    shapes = macs = 0
    for info in analysis.layers:
        row = rows.get(info.name)
        if row is None or not info.node.registered:
            continue
        assert tuple(row.output_size[1:]) == tuple(info.shape), info.name
        shapes += 1
        module = row.module
        # torchinfo counts a Linear over a channels-last map as one position (its params): checked below
        if isinstance(module, nn.Conv2d) or (isinstance(module, nn.Linear) and len(info.shape) == 1):
            # torchinfo counts the bias as (bias.numel() × output positions) MACs; cnndsl does not
            positions = info.shape[1] * info.shape[2] if isinstance(module, nn.Conv2d) else 1
            bias = module.bias.numel() * positions if module.bias is not None else 0
            assert row.macs == info.cost.macs + bias, info.name
            macs += 1
    assert shapes > 100 and macs == sum(isinstance(m, nn.Conv2d) for m in ref.modules()) + 1
    # every multiply-accumulate of the convolutions and matrix products, counted by torch itself
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref.eval()(torch.zeros(1, 3, SIZE, SIZE))
    dense = sum(l.cost.macs for l in analysis.layers if l.node.kind in ("conv", "linear"))
    assert counter.get_total_flops() == 2 * dense


@pytest.mark.parametrize("spec, reference", CASES, ids=IDS)
def test_stochastic_depth_rate_per_block_matches_torchvision(spec, reference):
    """Each block drops its branch with torchvision's rate (linearly increasing with depth), and
    does so with that frequency: ones through the module in train mode, 20,000 samples."""
    _, model, ref = _pair(spec, reference)
    ours = {n: m for n, m in model.named_modules() if n.endswith("stochastic_depth")}
    theirs = {n: m for n, m in ref.named_modules() if isinstance(m, torchvision.ops.StochasticDepth)}
    if "efficientnet" in spec:   # torchvision's MBConv holds one also where it has no residual (unused)
        theirs = {n: m for n, m in theirs.items() if ref.get_submodule(n.rpartition(".")[0]).use_res_connect}
    assert sorted(ours) == sorted(theirs)
    assert max(m.p for m in theirs.values()) > 0.05
    torch.manual_seed(7)
    n = 20_000
    for name, module in ours.items():
        assert module.p == pytest.approx(theirs[name].p) and module.mode == theirs[name].mode == "row"
        module.train()
        dropped = (module(torch.ones(n, 1, 1, 1)) == 0).float().mean().item()
        module.eval()
        sigma = (module.p * (1 - module.p) / n) ** 0.5
        assert abs(dropped - module.p) <= 5 * sigma + 1e-9, name
