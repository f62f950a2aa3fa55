"""The loop: run directory, exact resume, refusal of a changed spec, NaN stop, SIGINT, learning."""

import json
import os
import signal

import pytest
import torch
from torch import nn

from cnndsl.errors import CnnError
from cnndsl.train import checkpoint as ckpt
from cnndsl.canonical import spec_hash
from cnndsl.train.commands import run_train
from helpers import FakeSpec, Tiny, build_tiny, synthetic_train


def _equal_state(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_run_directory_contents(tmp_path):
    spec = FakeSpec(synthetic_train(epochs=2))
    res = run_train(spec, build=build_tiny, run_dir=str(tmp_path / "r"), quiet=True, progress=False)
    d = tmp_path / "r"
    assert {"config.json", "metrics.jsonl", "metrics.csv", "summary.json", "last.pt", "best.pt", "data.json"} <= {
        p.name for p in d.iterdir()}
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "seconds"):
        assert all(isinstance(r[key], float) for r in rows), key
    header = (d / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc"]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == res.steps == 12
    state = ckpt.load(d / "last.pt")
    assert set(ckpt.REQUIRED_KEYS) <= set(state)
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert state["spec_hash"] == spec_hash(spec) and state["global_step"] == 12 and state["epoch"] == 2


@pytest.mark.parametrize("extra", [
    dict(loader="device", augment=["alt_flip", {"type": "translate", "padding": 1}, {"type": "cutout", "size": 3}],
         mixup=0.4, ema="ema", schedule="cosine"),
    dict(loader="dataloader", augment=["hflip", {"type": "random_crop", "padding": 1}, "color_jitter"],
         cutmix=1.0, ema={"type": "lookahead", "decay": 0.9, "every": 2, "power": 1}, grad_clip=1.0,
         schedule={"type": "piecewise", "points": [[0, 0.2], [0.3, 1], [1, 0.05]]}),
])
def test_stop_and_resume_is_bitwise_exact(tmp_path, extra):
    train = synthetic_train(epochs=3, deterministic=True, **extra)
    spec = FakeSpec(train)
    full = run_train(spec, build=build_tiny, run_dir=str(tmp_path / "a"), progress=False)
    part = run_train(spec, build=build_tiny, run_dir=str(tmp_path / "b"), progress=False, stop_after_steps=8)
    assert part.status == "interrupted" and part.steps == 8
    done = run_train(spec, build=build_tiny, resume=str(tmp_path / "b"), progress=False)
    assert done.status == "completed" and done.steps == full.steps == 18
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert _equal_state(a["model"], b["model"])
    assert _equal_state(a["ema"], b["ema"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(_equal_state(sa[k], sb[k]) for k in sa)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("images_per_s", "seconds")} for r in h]  # noqa
    assert strip(full.history) == strip(done.history)


def test_resume_with_changed_spec_is_refused_unless_forced(tmp_path):
    run_train(FakeSpec(synthetic_train(epochs=2)), build=build_tiny, run_dir=str(tmp_path), progress=False,
              stop_after_steps=3)
    changed = FakeSpec(synthetic_train(epochs=2), width=8, dropout=0.2)
    with pytest.raises(CnnError) as ei:
        run_train(changed, build=build_tiny, resume=str(tmp_path), progress=False)
    text = ei.value.render()
    old = ckpt.load(tmp_path / "last.pt")["spec_hash"]
    assert old in text and spec_hash(changed) in text and "--force" in text
    res = run_train(changed, build=build_tiny, resume=str(tmp_path), force=True, progress=False)
    assert res.status == "completed"


class NanAt(Tiny):
    """Produces a NaN output at training forward number ``at``."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                x = x * float("nan")
        return super().forward(x)


def test_nan_loss_stops_with_step_epoch_and_last_finite_loss(tmp_path):
    spec = FakeSpec(synthetic_train(epochs=3, checkpoint_every=1))
    with pytest.raises(CnnError) as ei:
        run_train(spec, build=lambda s: NanAt(9), run_dir=str(tmp_path), progress=False)
    text = ei.value.render()
    assert "non-finite loss at step 9 (epoch 2)" in text
    assert "last finite loss" in text and "last finite loss none" not in text
    state = ckpt.load(tmp_path / "last.pt")
    assert state["global_step"] == 8 and ckpt.non_finite(state) is None
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_nan_in_the_first_step_writes_no_checkpoint_after_it(tmp_path):
    spec = FakeSpec(synthetic_train(epochs=1, checkpoint_every=1))
    with pytest.raises(CnnError, match="step 1 .*last finite loss none"):
        run_train(spec, build=lambda s: NanAt(1), run_dir=str(tmp_path), progress=False)
    state = ckpt.load(tmp_path / "last.pt")  # only the initial checkpoint, written before step 1
    assert state["global_step"] == 0 and ckpt.non_finite(state) is None


class SigintAt(Tiny):
    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGINT)
        return super().forward(x)


def test_sigint_stops_cleanly_with_a_resumable_checkpoint(tmp_path):
    train = synthetic_train(epochs=2, deterministic=True)
    spec = FakeSpec(train)
    full = run_train(spec, build=build_tiny, run_dir=str(tmp_path / "a"), progress=False)
    res = run_train(spec, build=lambda s: SigintAt(4), run_dir=str(tmp_path / "b"), progress=False)
    assert res.status == "interrupted" and res.steps == 4
    assert ckpt.load(tmp_path / "b" / "last.pt")["batch_idx"] == 4
    run_train(spec, build=build_tiny, resume=str(tmp_path / "b"), progress=False)
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert _equal_state(a["model"], b["model"]) and full.steps == b["global_step"]


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10))
        self.cnndsl_input_shape = (1, 8, 8)

    def forward(self, x):
        return self.net(x)


def test_learns_digits(tmp_path):
    spec = FakeSpec({"data": "digits", "epochs": 4, "batch_size": 64, "device": "cpu",
                     "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                   "weight_decay": 5e-4, "decay_norm_and_bias": False},
                     "schedule": {"type": "onecycle", "pct_start": 0.25}, "label_smoothing": 0.1})
    res = run_train(spec, build=lambda s: DigitsNet(), run_dir=str(tmp_path), progress=False)
    assert res.val_acc > 0.9, res.history


def test_batch_larger_than_dataset_is_a_user_error(tmp_path):
    spec = FakeSpec(synthetic_train(batch_size=1000))
    with pytest.raises(CnnError, match="batch_size 1000"):
        run_train(spec, build=build_tiny, run_dir=str(tmp_path), progress=False)


def test_shape_mismatch_between_data_and_network(tmp_path):
    spec = FakeSpec({"data": "digits", "device": "cpu"})
    with pytest.raises(CnnError, match="digits images have 1 channel, but the network's input 3×8×8 has 3") as info:
        run_train(spec, build=build_tiny, run_dir=str(tmp_path), progress=False)
    assert "add `rgb` to augment" in info.value.diagnostics[0].hint  # a channel problem: convert, not resize
