"""Issue 9's shipped zoo specs that need its naming constructs, against torchvision: DenseNet-121
(computed names: ``features.denseblock1.denselayer1``) and ShuffleNetV2 x1.0 (``x1, x2: chunk(2)``).

Each: state_dict keys and shapes identical; a state dict saved from a randomly initialised
torchvision model loads strictly (from disk, ``weights_only=True``); eval outputs agree; static
parameters equal ``sum(numel)``; every conv's and linear's output shape, parameters and MACs equal
torchinfo's. Small inputs keep it cheap.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl.canonical import spec_hash

torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
SPECS = Path(__file__).resolve().parent.parent / "specs"


def _randomise_bn(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial running statistics and affine parameters, so eval outputs test them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def check_parity(spec: Path, reference: torch.nn.Module, side: int, tmp_path: Path, **params) -> None:
    reference.eval()
    _randomise_bn(reference)
    analysis = cnndsl.analyze(cnndsl.load(spec), **params)
    model = cnndsl.build(analysis).eval()
    ref_sd = reference.state_dict()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in ref_sd.items()]
    assert analysis.params == sum(p.numel() for p in reference.parameters())
    path = tmp_path / "reference.pt"
    torch.save(ref_sd, path)
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)
    # torchinfo on torchvision's model: every conv's and linear's output shape, parameters and MACs
    stats = torchinfo.summary(reference, input_size=(1, 3, side, side), verbose=0, device="cpu", depth=30,
                              col_names=("output_size", "num_params", "mult_adds"))
    names = {id(m): n for n, m in reference.named_modules()}
    rows = {names[id(r.module)]: r for r in stats.summary_list if id(r.module) in names}
    checked, modules = 0, dict(reference.named_modules())
    for info in analysis.layers:
        module = modules.get(info.name) if info.node.registered else None
        if not isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            continue
        row = rows[info.name]
        bias = 0 if module.bias is None else module.bias.numel() * (
            info.shape[1] * info.shape[2] if isinstance(module, torch.nn.Conv2d) else 1)
        assert (tuple(row.output_size[1:]), row.num_params, row.macs) == \
            (info.shape, info.cost.params, info.cost.macs + bias), info.name
        checked += 1
    assert checked == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in reference.modules())


def test_densenet121_matches_torchvision(tmp_path):
    check_parity(SPECS / "densenet121.cnn", torchvision.models.densenet121(num_classes=10), 32, tmp_path,
                 num_classes=10, size=32)


def test_densenet121_yaml_twin():
    assert spec_hash(cnndsl.load(SPECS / "densenet121.yaml")) == spec_hash(cnndsl.load(SPECS / "densenet121.cnn"))


def test_shufflenet_v2_matches_torchvision(tmp_path):
    check_parity(SPECS / "shufflenet_v2.cnn", torchvision.models.shufflenet_v2_x1_0(num_classes=10), 64, tmp_path,
                 num_classes=10, size=64)


def test_shufflenet_v2_receptive_field_matches_the_gradient():
    """The chunk's parts and the shuffle keep each channel's field: the gradient-measured field of
    a stride-1 unit's output (a chunk, a branch, a concat and a shuffle) equals the static one."""
    from test_receptive_field import empirical_rf

    analysis = cnndsl.analyze(cnndsl.load(SPECS / "shufflenet_v2.cnn"), size=96)
    info = [l for l in analysis.layers if l.name.startswith("stage2.1.")][-1]
    (r0, r1), (c0, c1), (i, j) = empirical_rf(cnndsl.build(analysis), info.name, (3, 96, 96))
    rf = info.rf
    for axis, (lo, hi), u in ((0, (r0, r1), i), (1, (c0, c1), j)):
        centre = rf.start[axis] + u * rf.jump[axis]
        first, last = centre - rf.size[axis] / 2, centre + rf.size[axis] / 2 - 1
        assert 0 <= first and last <= 95  # not clipped by the border
        assert (lo, hi) == (first, last), (axis, (lo, hi), (first, last))
