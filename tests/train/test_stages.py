"""Staged unfreezing: groups join the optimizer mid-run, the schedule covers them, a run stopped
after (or before) the stage change resumes bitwise; a finished stage 1 continues as stage 2."""

from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.train import checkpoint as ckpt
from cnndsl.train import run_train
from helpers import PARTS_NET

SPEC = PARTS_NET % "freeze all\n    unfreeze head%s" + """train {
    data: synthetic(num_train = 64, num_val = 16)
    epochs: 3
    batch_size: 16
    device: cpu
    deterministic: true
    optimizer: adam(lr = 1e-3, weight_decay = 1e-4)
    schedule: cosine(warmup = 0.5)
    param_groups: [{match: "layer1.bn", lr_scale: 2}]
    %s
}
"""
STAGES = 'stages: [{at_epoch: 2, unfreeze: layer1, lr: 1e-4}]'


def load(tmp_path, unfreeze: str = "", train: str = STAGES, name: str = "t.cnn"):
    path = tmp_path / name
    path.write_text(SPEC % (unfreeze, train))
    return cnndsl.load(path)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stage_adds_groups_that_the_schedule_drives(tmp_path, capsys):
    res = run_train(load(tmp_path), run_dir=str(tmp_path / "r"), quiet=True)
    assert "stage 2 (epoch 2): unfreeze layer1; 600 parameters join the optimizer; lr 0.0001" in capsys.readouterr().err
    state = ckpt.load(tmp_path / "r" / "last.pt")
    groups = state["optimizer"]["param_groups"]
    assert state["stage"] == 1 and len(groups) == 3
    assert [g["names"] for g in groups] == [["head.weight", "head.bias"], ["layer1.0.weight", "layer1.0.bias"],
                                            ["layer1.bn.weight", "layer1.bn.bias"]]
    assert state["scheduler"]["base_lrs"] == pytest.approx([1e-4, 1e-4, 2e-4])
    factor = state["scheduler"]["_last_lr"][0] / 1e-4
    assert [g["lr"] for g in groups] == pytest.approx([1e-4 * factor, 1e-4 * factor, 2e-4 * factor])
    model = state["model"]
    assert int(model["stem.1.num_batches_tracked"]) == 0          # frozen throughout: never updated
    assert int(model["layer1.bn.num_batches_tracked"]) == 8       # trained from epoch 2: 2 epochs × 4 steps
    assert all(p.requires_grad == (not n.startswith("stem.")) for n, p in res.model.named_parameters())


@pytest.mark.parametrize("stop", [3, 6])
def test_stopped_run_resumes_bitwise_across_the_stage_change(tmp_path, stop):
    """stop 6: killed after the stage change (epoch 2, step 2); stop 3: before it."""
    spec = load(tmp_path)
    full = run_train(spec, run_dir=str(tmp_path / "a"), progress=False)
    part = run_train(spec, run_dir=str(tmp_path / "b"), progress=False, stop_after_steps=stop)
    assert part.status == "interrupted" and ckpt.load(tmp_path / "b" / "last.pt")["stage"] == (stop > 4)
    done = run_train(spec, resume=str(tmp_path / "b"), progress=False)
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert done.steps == full.steps == 12 and a["stage"] == b["stage"] == 1
    assert _same(a["model"], b["model"])
    sa, sb = a["optimizer"], b["optimizer"]
    assert [g["names"] for g in sa["param_groups"]] == [g["names"] for g in sb["param_groups"]]
    assert [g["lr"] for g in sa["param_groups"]] == [g["lr"] for g in sb["param_groups"]]
    assert all(_same(sa["state"][k], sb["state"][k]) for k in sa["state"])
    assert a["scheduler"] == b["scheduler"]
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("images_per_s", "seconds")} for r in h]  # noqa: E731
    assert strip(full.history) == strip(done.history)


def test_changed_freezing_cannot_be_resumed_but_continues_with_init_from(tmp_path):
    """The reported bug: stage 2 as a changed spec died in torch ("loaded state dict contains a
    parameter group that doesn't match") even with --force. --resume now refuses with a
    diagnostic naming --init-from, which starts stage 2 from stage 1's weights."""
    stage1 = load(tmp_path, train="", name="stage1.cnn")
    run_train(stage1, run_dir=str(tmp_path / "s1"), progress=False)
    stage2 = load(tmp_path, unfreeze=', "layer1"', train="", name="stage2.cnn")
    with pytest.raises(CnnError) as ei:
        run_train(stage2, resume=str(tmp_path / "s1"), force=True, progress=False)
    text = ei.value.render()
    assert "the checkpoint's optimizer trains 2 tensors in 1 group(s), this run's 6 in 2" in text and f"--init-from {tmp_path / 's1'}" in text
    res = run_train(stage2, run_dir=str(tmp_path / "s2"), progress=False, init_from=str(tmp_path / "s1"))
    assert res.status == "completed"
    one = ckpt.load(tmp_path / "s1" / "best.pt")["model"]
    two = ckpt.load(tmp_path / "s2" / "last.pt")["model"]
    assert _same({k: v for k, v in one.items() if k.startswith("stem.")},
                 {k: v for k, v in two.items() if k.startswith("stem.")})   # frozen in both: stage 1's values
    assert not torch.equal(one["layer1.0.weight"], two["layer1.0.weight"])   # trained in stage 2


SPECS = Path(__file__).resolve().parents[2] / "specs"
R18_FILE = "resnet18-f37072fd.pth"    # the file of torchvision's resnet18.IMAGENET1K_V1


@pytest.mark.slow
def test_transfer_spec_runs_both_stages_offline(tmp_path, monkeypatch, cli):
    """`cnndsl train specs/transfer_resnet18.cnn --set pretrained=true`, offline: "ImageNet" weights
    (a state dict saved from a randomly initialised torchvision resnet18, put where torchvision's
    cache expects the download) load by name; stage 1 trains the head only, the frozen backbone —
    BatchNorm statistics included — keeps the file's values; from epoch 3 layer4 trains too, its
    BatchNorms update, and layer4 + head train at 1e-4. A small input and dataset keep it quick."""
    import torchvision

    assert cnndsl.load(SPECS / "transfer_resnet18.yaml") == cnndsl.load(SPECS / "transfer_resnet18.cnn")

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(7)
    saved = torchvision.models.resnet18().state_dict()
    torch.save(saved, tmp_path / "hub" / "checkpoints" / R18_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    rc, out, err = cli("train", str(SPECS / "transfer_resnet18.cnn"), "--set", "pretrained=true",
                       "--set", "size=32", "--set", "train.data=synthetic(num_train = 32, num_val = 8)",
                       "--batch-size", "16", "--device", "cpu", "--quiet", "--run-dir", str(tmp_path / "r"))
    assert rc == 0, err
    assert "loaded 120 of 120 tensors from torchvision resnet18.IMAGENET1K_V1 (strict)" in err
    assert "stage 2 (epoch 3): unfreeze features.layer4; 8,393,728 parameters join the optimizer; lr 0.0001" in err
    state = ckpt.load(tmp_path / "r" / "last.pt")
    assert state["global_step"] == 8 and state["stage"] == 1
    groups = state["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [1e-4] * len(groups)
    assert {n.split(".")[0] if n.startswith("head") else ".".join(n.split(".")[:2]) for g in groups
            for n in g["names"]} == {"head", "features.layer4"}
    model = state["model"]
    for key, value in saved.items():
        if key.startswith("fc."):
            continue
        if key.startswith("layer4."):   # trained in stage 2 (2 epochs × 2 steps)
            if key.endswith("num_batches_tracked"):
                assert int(model["features." + key]) == int(value) + 4, key
            elif key.endswith(("weight", "running_mean")):
                assert not torch.equal(model["features." + key], value), key
        else:                           # frozen throughout: the file's values, BatchNorm statistics too
            assert torch.equal(model["features." + key], value), key


@pytest.mark.slow
def test_example_runs_both_stages_through_the_python_api(monkeypatch, capsys):
    """examples/transfer.py: cnndsl.param_groups gives the head at 1e-3, then layer4 + head at 1e-4;
    the frozen stem's BatchNorm statistics do not move in the example's own loop."""
    import runpy

    monkeypatch.setattr("sys.argv", ["transfer.py", "--size", "32"])
    runpy.run_path(str(SPECS.parent / "examples" / "transfer.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "TransferResNet18: 11,179,077 parameters, 2,565 trainable" in out
    assert "stage 1: [(['head.weight', 'head.bias'], 0.001)]" in out
    assert "stage 2: [('17 tensors from features.layer4.0.conv1.weight to head.bias', 0.0001)]" in out
    assert "trainable now: 8,396,293 (layer4 + head); frozen stem BatchNorm statistics unchanged: True" in out


@pytest.mark.parametrize("train", [
    STAGES,
    'stages: [{at_epoch: 2, unfreeze: "layer1", lr: 1e-4}, {at_epoch: 3, freeze: "layer1.bn", unfreeze: "stem.0"}]',
    'stages: [{at_epoch: 3, unfreeze: "all"}, {at_epoch: 2, unfreeze: "layer1.0.weight"}]',
])
def test_summary_counts_per_stage_are_what_the_built_model_trains(tmp_path, train, capsys):
    """compile --summary's trainable count after each stage (static) = the parameters with
    requires_grad once the runner has applied the stages up to that epoch (torch)."""
    from cnndsl.cli import main
    from cnndsl.train import config as C
    from cnndsl.train.parts import trainable_by_stage
    from cnndsl.train.stages import trainable_at

    spec = load(tmp_path, train=train)
    cfg = C.validate(spec.train, spec)
    counted = trainable_by_stage(cfg, cnndsl.analyze(spec))
    assert counted
    for stage in counted:
        model = cnndsl.build(spec)
        trainable_at(model, cfg, stage.at_epoch)
        assert stage.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert main(["compile", str(tmp_path / "t.cnn"), "--summary"]) == 0
    out = capsys.readouterr().out
    assert all(f"-> trainable {s.trainable:,} ({s.change:+,})" in out for s in counted)


def test_summary_of_the_transfer_recipe_shows_stage_two(capsys):
    from cnndsl.cli import main

    spec = Path(__file__).resolve().parents[2] / "specs" / "transfer_resnet18.cnn"
    assert main(["compile", str(spec), "--summary"]) == 0
    assert ("params: 11,179,077 (trainable 2,565, frozen 11,176,512)\n"
            "  stage 2 (epoch 3): unfreeze features.layer4; lr 0.0001 -> trainable 8,396,293 (+8,393,728)"
            ) in capsys.readouterr().out


def test_the_train_sections_names_are_the_built_models_parameter_names():
    """Including bare parameters (ConvNeXt's layer_scale is `<block>.layer_scale`, no trailing dot)."""
    from cnndsl.train.parts import names_of

    spec = Path(__file__).resolve().parents[2] / "specs" / "convnext_tiny.cnn"
    names = list(names_of(cnndsl.analyze(spec, size=32)))
    assert "features.1.0.layer_scale" in names
    assert sorted(names) == sorted(n for n, _ in cnndsl.build(spec, size=32).named_parameters())
