"""One pattern rule for freeze / freeze_after / param_groups / stages; the BatchNorm policy of
frozen parts; cnndsl.param_groups; the train section's patterns checked at file:line:col."""

from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl import globs
from cnndsl.train import checkpoint as ckpt
from cnndsl.train import run_train
from cnndsl.train.optim import param_groups
from helpers import PARTS_NET as NET


TRAIN = """
train {
    data: synthetic(num_train = 64, num_val = 16)
    epochs: 2
    batch_size: 16
    device: cpu
    optimizer: sgd(lr = 0.1, momentum = 0.9)
    %s
}
"""


def spec_file(tmp_path, net: str = "", train: str = "", name: str = "t.cnn") -> Path:
    path = tmp_path / name
    path.write_text(NET % net + TRAIN % train)
    return path


def test_one_rule_for_every_pattern():
    names = ["conv1.weight", "layer1.0.conv1.weight", "layer1.0.bn1.bias", "layer10.0.conv1.weight", "fc.bias"]
    assert [n for n in names if globs.matches(n, "layer1")] == ["layer1.0.conv1.weight", "layer1.0.bn1.bias"]
    assert [n for n in names if globs.matches(n, "conv1")] == ["conv1.weight"]
    assert [n for n in names if globs.matches(n, "*conv1")] == ["conv1.weight", "layer1.0.conv1.weight",
                                                               "layer10.0.conv1.weight"]
    assert [n for n in names if globs.matches(n, "*.bias")] == ["layer1.0.bn1.bias", "fc.bias"]
    assert all(globs.matches(n, "all") and globs.matches(n, "*") for n in names)
    assert globs.frozen("layer1.0.bn1.bias", ["all"], ["layer1"]) is False
    assert globs.frozen("fc.bias", ["all"], ["layer1"]) is True


def test_freeze_after_and_param_groups_match_like_the_spec(tmp_path):
    """The reported bug: `layer1` froze layer1.0.conv1.weight in the spec's freeze but matched
    nothing in freeze_after and param_groups (which compared the owning module only)."""
    path = spec_file(tmp_path, train="freeze_after: [{match: layer1, epochs: 1}]\n"
                                     "    param_groups: [{match: layer1, lr_scale: 0.5}]")
    spec = cnndsl.load(path)
    model = cnndsl.build(spec)
    from cnndsl.train.run import config_of

    groups = param_groups(model, config_of(spec))
    scaled = next(g for g in groups if g["lr_scale"] == 0.5)
    assert scaled["names"] == ["layer1.0.weight", "layer1.0.bias", "layer1.bn.weight", "layer1.bn.bias"]
    assert scaled["lr"] == pytest.approx(0.05)
    res = run_train(spec, run_dir=str(tmp_path / "r"), progress=False)
    first = ckpt.load(tmp_path / "r" / "last.pt")["model"]
    assert res.status == "completed"
    assert all(not p.requires_grad for n, p in res.model.named_parameters() if n.startswith("layer1."))
    assert any(p.requires_grad for n, p in res.model.named_parameters() if n.startswith("head."))
    assert first["layer1.0.weight"].shape == (8, 8, 3, 3)


def test_spec_freeze_all_then_unfreeze(tmp_path):
    model = cnndsl.build(cnndsl.load(spec_file(tmp_path, "freeze all\n    unfreeze layer1")))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["layer1.0.bias", "layer1.0.weight", "layer1.bn.bias", "layer1.bn.weight"]
    info = cnndsl.analyze(cnndsl.load(spec_file(tmp_path, "freeze all\n    unfreeze layer1")))
    assert info.totals()["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def _stats(model_or_state, prefix):
    sd = model_or_state if isinstance(model_or_state, dict) else model_or_state.state_dict()
    return {k: v.clone() for k, v in sd.items() if k.startswith(prefix) and ("running" in k or "num_batches" in k)}


@pytest.mark.parametrize("policy", ["frozen", "train"])
def test_frozen_batchnorm_keeps_its_statistics(tmp_path, policy):
    """Training steps leave a frozen BN's running statistics (and num_batches_tracked) bitwise
    unchanged — also after the loop's model.train() calls; the unfrozen BN's do change. With
    `bn: train` the frozen BN updates its statistics."""
    spec = cnndsl.load(spec_file(tmp_path, "freeze stem", f"bn: {policy}"))
    torch.manual_seed(0)
    start = cnndsl.build(spec)
    with torch.no_grad():   # non-trivial statistics, as a pretrained network has
        for _, m in cnndsl.emit.frozen.norm_layers(start):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.num_batches_tracked.fill_(7)
    torch.save(start.state_dict(), tmp_path / "start.pt")
    res = run_train(spec, run_dir=str(tmp_path / "r"), progress=False, init_from=str(tmp_path / "start.pt"))
    after = ckpt.load(tmp_path / "r" / "last.pt")["model"]
    before = start.state_dict()
    frozen_same = all(torch.equal(before[k], after[k]) for k in _stats(before, "stem."))
    assert frozen_same == (policy == "frozen")
    assert all(not torch.equal(before[k], after[k]) for k in _stats(before, "layer1."))
    assert int(after["layer1.bn.num_batches_tracked"]) == 7 + res.steps


def test_built_network_keeps_frozen_norms_in_eval_mode(tmp_path):
    model = cnndsl.build(cnndsl.load(spec_file(tmp_path, "freeze stem")))
    model.train()
    assert not model.stem[1].training and model.layer1.bn.training and model.stem[0].training
    before = _stats(model, "stem.")
    model(torch.randn(4, 3, 8, 8))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.bn_policy = "train"
    model.train()
    assert model.stem[1].training
    model.eval()
    assert not model.layer1.bn.training


def test_norm_without_parameters_follows_the_patterns(tmp_path):
    text = (NET % "freeze stem").replace("{ conv(8, k=3, p=1) batchnorm relu }",
                                         "{ conv(8, k=3, p=1) batchnorm(affine = false) relu }")
    model = cnndsl.build(cnndsl.parse(text))
    model.train()
    assert not model.stem[1].training and model.layer1.bn.training


def test_param_groups_api_follows_the_runner(tmp_path):
    path = spec_file(tmp_path, "freeze all\n    unfreeze head", """param_groups: [{match: "layer1.bn", lr: 1e-5}, {match: "layer1", lr_scale: 0.5}]
    stages: [{at_epoch: 2, unfreeze: layer1, lr: 1e-4}]""")
    path.write_text(path.read_text().replace("sgd(lr = 0.1, momentum = 0.9)", "adam(lr = 1e-3)"))
    spec = cnndsl.load(path)
    model = cnndsl.build(spec)
    first = cnndsl.param_groups(model, spec)
    assert [(g["names"], g["lr"]) for g in first] == [(["head.weight", "head.bias"], 1e-3)]
    second = cnndsl.param_groups(model, spec, epoch=2)
    got = {tuple(g["names"]): g["lr"] for g in second}
    assert got == {("layer1.0.weight", "layer1.0.bias"): pytest.approx(5e-5),
                   ("layer1.bn.weight", "layer1.bn.bias"): 1e-5, ("head.weight", "head.bias"): 1e-4}
    opt = torch.optim.Adam(second)
    assert len(opt.param_groups) == 3
    plain = cnndsl.build(cnndsl.parse(NET % ""))
    groups = cnndsl.param_groups(plain, cnndsl.parse(NET % ""))
    assert set(groups[0]) == {"params", "names"} and len(groups[0]["params"]) == 10


CHECK_CASES = [
    ('freeze "layr1"', "", "freeze 'layr1' matches no parameter", "did you mean 'layer1'"),
    ("freeze stem\n    freeze layer1\n    unfreeze all", "", "freeze 'stem' has no effect", "narrow the unfreeze"),
    # written in the wrong order: the unfreeze still makes its exception (YAML's two lists have no order)
    ("unfreeze head\n    freeze all", "", "unfreeze 'head' is written before freeze 'all'", "write the unfreeze after"),
    ("", "param_groups: [{match: laer1, lr: 0.01}]", "param_groups[0].match 'laer1' matches no parameter",
     "did you mean 'layer1'"),
    ("", "freeze_after: [{match: [head, stm], epochs: 1}]", "freeze_after[0].match 'stm' matches no parameter",
     "did you mean 'stem'"),
    ("freeze stem", 'stages: [{at_epoch: 2, unfreeze: "stem.9"}]', "stages[0].unfreeze 'stem.9' matches no parameter",
     "did you mean 'stem.1' or 'stem.0'"),
    ("freeze stem", "param_groups: [{match: stem, lr: 0.01}]", "param_groups[0] applies only to parameters that "
     "are frozen for the whole run", "unfreeze them"),
    ("", "stages: [{at_epoch: 2, unfreeze: head}]", "stages[0].unfreeze unfreezes nothing", "already trainable"),
    ("freeze stem", "stages: [{at_epoch: 5, unfreeze: stem}]", "stages[0] at epoch 5 never starts", "epochs"),
    ("", "param_groups: [{match: all, lr: 0.01}, {match: head, lr: 0.1}]", "param_groups[1] never applies",
     "more specific rule first"),
]


@pytest.mark.parametrize("net, train, message, hint", CHECK_CASES)
def test_check_reports_patterns_at_their_position(tmp_path, capsys, net, train, message, hint):
    from cnndsl.cli import main

    path = spec_file(tmp_path, net, train)
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if message in ln)
    lineno = int(line.split(":")[1])
    text = path.read_text().splitlines()
    pattern = message.split("'")[1] if "'" in message else None
    if pattern:
        assert pattern in text[lineno - 1]
    assert hint in line + err.split(line, 1)[1].split("warning:")[0]
