"""Stopping before the last epoch (issue 12): early stopping with patience and min-delta, a target
accuracy, a wall-clock budget (stopped cleanly and resumable), the on_epoch hook; each recorded in
summary.json (status, ended_by, reason) and in the Result."""

import json
import time

import pytest
import torch

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.train import checkpoint as ckpt
from cnndsl.train import config as C
from cnndsl.train.run import run_train
from cnndsl.train.stopping import Stopper, parse_duration
from helpers import on_forward, synthetic_train, tiny_spec


def _summary(res):
    return json.loads((res.run_dir / "summary.json").read_text())


def _stopper(**train):
    return Stopper(C.validate({"data": "digits", **train}))


def _records(metric, values):
    return [{"epoch": i + 1, "step": 10 * (i + 1), metric: v} for i, v in enumerate(values)]


# ----------------------------------------------------------------------------- the decisions

@pytest.mark.parametrize("metric, values, min_delta, stops_after", [
    ("val_acc", [0.5, 0.6, 0.6, 0.59, 0.7], 0.0, 4),        # two validations without a rise
    ("val_acc", [0.5, 0.6, 0.605, 0.609, 0.7], 0.01, 4),    # rises of at most min_delta do not count
    ("val_acc", [0.5, 0.6, 0.6, 0.7, 0.7, 0.7], 0.0, 6),    # an improvement resets the count
    ("val_loss", [1.0, 0.8, 0.9, 0.8, 0.5], 0.0, 4),        # a loss must fall
    ("val_acc", [0.5, 0.6, 0.7, 0.8], 0.0, None),
])
def test_early_stopping_counts_validations_without_improvement(metric, values, min_delta, stops_after):
    s = _stopper(early_stop={"metric": metric, "patience": 2, "min_delta": min_delta})
    decisions = [s.after_epoch(r) for r in _records(metric, values)]
    stopped = [i + 1 for i, d in enumerate(decisions) if d is not None]
    assert stopped[:1] == ([stops_after] if stops_after else [])
    if stops_after:
        d = decisions[stops_after - 1]
        assert d.ended_by == "early_stop" and d.status == "completed" and metric in d.reason


def test_early_stopping_skips_epochs_that_did_not_validate():
    s = _stopper(early_stop={"patience": 1})
    assert s.after_epoch({"epoch": 1, "step": 5, "val_acc": 0.5}) is None
    assert s.after_epoch({"epoch": 2, "step": 10}) is None  # val_every 2: nothing to compare
    assert s.after_epoch({"epoch": 3, "step": 15, "val_acc": 0.5}).ended_by == "early_stop"


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("15m", 900), ("1h30m", 5400), ("1.5h", 5400),
                                           ("01:30:00", 5400), ("2:30", 150), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert C.validate({"data": "digits", "max_time": text}).max_time == seconds


def test_train_section_keys_are_checked_at_their_spec_line():
    spec = tiny_spec(synthetic_train(max_time="10 minutes"))
    with pytest.raises(CnnError) as info:
        C.validate(spec.train, spec)
    d = info.value.diagnostics[0]
    assert "not a duration" in d.message and d.span.line == spec.train_span(("max_time",)).line
    for bad, message in [({"target_acc": 98}, "target_acc must be ≤ 1"),
                         ({"early_stop": {"patience": 0}}, "early_stop.patience"),
                         ({"early_stop": {"metric": "accuracy"}}, "early_stop.metric")]:
        with pytest.raises(CnnError, match=message):
            C.validate({"data": "digits", **bad})


# ----------------------------------------------------------------------------- whole runs

def test_early_stop_ends_a_run_that_stopped_learning(tmp_path):
    """lr 1e-9: the weights barely move, so val_acc stays put and patience 2 ends the run after 3 epochs."""
    train = synthetic_train(epochs=20, optimizer={"type": "sgd", "lr": 1e-9}, early_stop={"patience": 2})
    res = run_train(tiny_spec(train), run_dir=str(tmp_path), progress=False)
    assert (res.status, res.ended_by, res.epochs) == ("completed", "early_stop", 3)
    s = _summary(res)
    assert (s["status"], s["ended_by"], s["epochs_completed"]) == ("completed", "early_stop", 3)
    assert "val_acc did not improve for 2 validation(s)" in s["reason"] == res.reason
    assert ckpt.load(tmp_path / "last.pt")["stopping"]["waited"] == 2  # a resumed run keeps counting


def test_target_acc_stops_at_the_first_validation_that_reaches_it(tmp_path):
    res = run_train(tiny_spec(synthetic_train(epochs=30, target_acc=0.9)), run_dir=str(tmp_path), progress=False)
    accs = [r["val_acc"] for r in res.history]
    assert res.ended_by == "target_acc" and res.status == "completed" and res.epochs < 30
    assert accs[-1] >= 0.9 > max(accs[:-1], default=0)
    assert _summary(res)["ended_by"] == "target_acc" and "reached target_acc 0.9" in res.reason


def test_max_time_stops_cleanly_mid_epoch_and_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """The 5th training forward sleeps past the 2 s budget: the run stops at a step boundary with a
    checkpoint there, and resuming (without the budget) ends where an uninterrupted run ends."""
    spec = tiny_spec(synthetic_train(epochs=3, deterministic=True))
    full = run_train(spec, run_dir=str(tmp_path / "full"), progress=False)
    with monkeypatch.context() as m:
        on_forward(m, lambda n, x: time.sleep(2.1) if n == 5 else None)
        res = run_train(spec, overrides={"max_time": 2}, run_dir=str(tmp_path / "b"), progress=False)
    assert (res.status, res.ended_by) == ("stopped", "max_time") and 0 < res.steps <= 5
    s = _summary(res)
    assert (s["status"], s["ended_by"]) == ("stopped", "max_time") and "resumable" in s["reason"]
    assert ckpt.load(tmp_path / "b" / "last.pt")["global_step"] == res.steps
    done = run_train(spec, resume=str(tmp_path / "b"), overrides={"max_time": None}, progress=False)
    assert done.ended_by == "completed" and done.steps == full.steps == 18
    a, b = ckpt.load(tmp_path / "full" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_on_epoch_sees_every_record_and_can_stop_the_run(tmp_path):
    seen = []

    def hook(record):
        seen.append(record)
        return record["epoch"] < 2

    res = cnndsl.train(tiny_spec(synthetic_train(epochs=5)), run_dir=tmp_path, on_epoch=hook, progress=False)
    assert [r["epoch"] for r in seen] == [1, 2] and {"val_acc", "train_loss", "lr"} <= set(seen[0])
    assert (res.ended_by, res.epochs, res.status) == ("on_epoch", 2, "completed")
    assert _summary(res)["reason"] == "on_epoch returned False after epoch 2"


def test_an_exception_in_on_epoch_fails_the_run_and_says_so(tmp_path):
    def hook(record):
        raise ValueError("my metric is broken")

    with pytest.raises(ValueError, match="my metric"):
        cnndsl.train(tiny_spec(synthetic_train(epochs=2)), run_dir=tmp_path, on_epoch=hook, progress=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert (s["status"], s["ended_by"]) == ("failed", "failed") and "my metric is broken" in s["reason"]


def test_cli_stop_flags(cli, capsys, tmp_path):
    path = tmp_path / "tiny.cnn"
    tiny_spec(synthetic_train(epochs=30), path=path)
    rc, out, err = cli("train", str(path), "--target-acc", "0.9", "--max-time", "10m", "--quiet",
                       "--run-dir", str(tmp_path / "run"))
    assert rc == 0, err
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["ended_by"] == "target_acc" and "(target_acc: val_acc" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert config["max_time"] == 600 and config["target_acc"] == 0.9
    for flag, value, message in [("--max-time", "soon", "not a duration"), ("--target-acc", "98", "0.98"),
                                 ("--max-time", "-5", "positive")]:
        with pytest.raises(SystemExit) as info:
            cli("train", str(path), f"{flag}={value}")
        assert info.value.code == 2 and message in capsys.readouterr().err
