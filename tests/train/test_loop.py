"""The loop: run directory, exact resume, refusal of a changed spec, NaN stop, SIGINT, learning."""

import json
import os
import signal

import pytest
import torch

from cnndsl.canonical import spec_hash
from cnndsl.errors import CnnError
from cnndsl.train import checkpoint as ckpt
from cnndsl.train.run import run_train
from helpers import DIGITS_NET, TINY, on_forward, synthetic_train, tiny_spec


def _equal_state(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_run_directory_contents(tmp_path):
    spec = tiny_spec(synthetic_train(epochs=2))
    res = run_train(spec, run_dir=str(tmp_path / "r"), quiet=True, progress=False)
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
    assert summary["ended_by"] == res.ended_by == "completed"
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
    spec = tiny_spec(synthetic_train(epochs=3, deterministic=True, **extra))
    full = run_train(spec, run_dir=str(tmp_path / "a"), progress=False)
    part = run_train(spec, run_dir=str(tmp_path / "b"), progress=False, stop_after_steps=8)
    assert part.status == "interrupted" and part.steps == 8
    done = run_train(spec, resume=str(tmp_path / "b"), progress=False)
    assert done.status == "completed" and done.steps == full.steps == 18
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert _equal_state(a["model"], b["model"])
    assert _equal_state(a["ema"], b["ema"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(_equal_state(sa[k], sb[k]) for k in sa)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("images_per_s", "seconds")} for r in h]  # noqa
    assert strip(full.history) == strip(done.history)


def test_resume_with_changed_spec_is_refused_unless_forced(tmp_path):
    run_train(tiny_spec(synthetic_train(epochs=2)), run_dir=str(tmp_path), progress=False, stop_after_steps=3)
    changed = tiny_spec(synthetic_train(epochs=2), net=TINY.replace("dropout = 0.2", "dropout = 0.3"))
    with pytest.raises(CnnError) as ei:
        run_train(changed, resume=str(tmp_path), progress=False)
    text = ei.value.render()
    old = ckpt.load(tmp_path / "last.pt")["spec_hash"]
    assert old in text and spec_hash(changed) in text and "--force" in text
    res = run_train(changed, resume=str(tmp_path), force=True, progress=False)
    assert res.status == "completed"


def _nan_at(at):
    return lambda n, x: x * float("nan") if n == at else None


def test_nan_loss_stops_with_step_epoch_and_last_finite_loss(tmp_path, monkeypatch):
    on_forward(monkeypatch, _nan_at(9))
    with pytest.raises(CnnError) as ei:
        run_train(tiny_spec(synthetic_train(epochs=3, checkpoint_every=1)), run_dir=str(tmp_path), progress=False)
    text = ei.value.render()
    assert "non-finite loss at step 9 (epoch 2)" in text
    assert "last finite loss" in text and "last finite loss none" not in text
    state = ckpt.load(tmp_path / "last.pt")
    assert state["global_step"] == 8 and ckpt.non_finite(state) is None
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == summary["ended_by"] == "failed"


def test_nan_in_the_first_step_writes_no_checkpoint_after_it(tmp_path, monkeypatch):
    on_forward(monkeypatch, _nan_at(1))
    with pytest.raises(CnnError, match="step 1 .*last finite loss none"):
        run_train(tiny_spec(synthetic_train(epochs=1, checkpoint_every=1)), run_dir=str(tmp_path), progress=False)
    state = ckpt.load(tmp_path / "last.pt")  # only the initial checkpoint, written before step 1
    assert state["global_step"] == 0 and ckpt.non_finite(state) is None


def test_sigint_stops_cleanly_with_a_resumable_checkpoint(tmp_path, monkeypatch):
    spec = tiny_spec(synthetic_train(epochs=2, deterministic=True))
    full = run_train(spec, run_dir=str(tmp_path / "a"), progress=False)
    with monkeypatch.context() as m:
        on_forward(m, lambda n, x: os.kill(os.getpid(), signal.SIGINT) if n == 4 else None)
        res = run_train(spec, run_dir=str(tmp_path / "b"), progress=False)
    assert res.status == res.ended_by == "interrupted" and res.steps == 4
    assert ckpt.load(tmp_path / "b" / "last.pt")["batch_idx"] == 4
    run_train(spec, resume=str(tmp_path / "b"), progress=False)
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert _equal_state(a["model"], b["model"]) and full.steps == b["global_step"]


def test_learns_digits(tmp_path):
    spec = tiny_spec({"data": "digits", "epochs": 4, "batch_size": 64, "device": "cpu",
                      "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                    "weight_decay": 5e-4, "decay_norm_and_bias": False},
                      "schedule": {"type": "onecycle", "pct_start": 0.25}, "label_smoothing": 0.1}, net=DIGITS_NET)
    res = run_train(spec, run_dir=str(tmp_path), progress=False)
    assert res.val_acc > 0.9, res.history


def test_batch_larger_than_dataset_is_a_user_error(tmp_path):
    with pytest.raises(CnnError, match="batch_size 1000"):
        run_train(tiny_spec(synthetic_train(batch_size=1000)), run_dir=str(tmp_path), progress=False)


def test_shape_mismatch_between_data_and_network(tmp_path):
    spec = tiny_spec({"data": "digits", "device": "cpu"})
    with pytest.raises(CnnError, match="digits images have 1 channel, but the network's input 3×8×8 has 3") as info:
        run_train(spec, run_dir=str(tmp_path), progress=False)
    hint = info.value.diagnostics[0].hint
    assert "add `rgb` to augment" in hint and "--set c=1" in hint  # convert, or set the parameter
