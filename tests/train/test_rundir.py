"""eval/predict reuse what a run recorded (spec, --set values, train config), and a run's
summary.json says why it ended (issue 7, item 3)."""

import json
from pathlib import Path

import numpy as np
import pytest

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.train.run import run_train

BLOCKS = """block Stem(c) {
    conv(c, k=3, p=1) batchnorm relu
}
"""

# a parameter the run sets with --set, a block from an imported file, a train section
SPEC = """import "lib/blocks.cnn"
network Net(in_ch = 3, num_classes = 4) {
    input (in_ch, 8, 8)
    Stem(8)
    maxpool(2)
    flatten
    fc: linear(num_classes)
}
"""
TRAIN = """train {
    data: synthetic(num_train = 64, num_val = 32, shape = [1, 8, 8], num_classes = 4)
    epochs: 2
    batch_size: 16
    optimizer: sgd(lr = 0.05, momentum = 0.9)
    device: cpu
}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rundir")
    (root / "lib").mkdir()
    (root / "lib" / "blocks.cnn").write_text(BLOCKS)
    (root / "net.cnn").write_text(SPEC + TRAIN)
    (root / "bare.cnn").write_text(SPEC)  # the same network, no train section
    res = run_train(cnndsl.load(str(root / "net.cnn")), params={"in_ch": 1}, run_dir=str(root / "run"),
                    progress=False)
    return root, res


def test_the_run_records_how_it_was_started(run):
    root, _ = run
    rec = json.loads((root / "run" / "run.json").read_text())
    assert rec["params"] == {"in_ch": 1} and rec["spec"] == str(root / "net.cnn")
    assert (root / "run" / "spec.cnn").read_text() == SPEC + TRAIN


def test_eval_a_run_directory_alone(cli, run):
    """No spec, no --set in_ch=1: both come from the run directory (its imports still resolve)."""
    root, res = run
    rc, out, err = cli("eval", str(root / "run"), "--json")
    assert rc == 0, err
    assert json.loads(out)["acc"] == pytest.approx(res.history[-1]["val_acc"])


def test_eval_a_spec_without_train_section_with_the_runs_config(cli, run):
    root, _ = run
    rc, out, err = cli("eval", str(root / "bare.cnn"), "--checkpoint", str(root / "run" / "best.pt"), "--json")
    assert rc == 0, err
    assert json.loads(out)["n"] == 32


def test_flags_override_recorded_values(cli, run):
    root, _ = run
    rc, _, err = cli("eval", str(root / "run"), "--set", "in_ch=3")  # an explicit value wins...
    assert rc == 2 and "does not match the model" in err           # ...and this one does not fit the weights
    rc, out, err = cli("eval", str(root / "run"), "--json", "--set", "train.data.num_val=16")
    assert rc == 0 and json.loads(out)["n"] == 16


def test_predict_with_a_run_directory(cli, run, tmp_path):
    from PIL import Image
    root, _ = run
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img)
    rc, out, err = cli("predict", str(root / "run"), str(img), "--top-k", "2", "--json")
    assert rc == 0, err
    top = json.loads(out)[0]["top"]
    assert len(top) == 2 and {t["class"] for t in top} <= {"0", "1", "2", "3"}


def test_eval_without_a_checkpoint_says_how_to_give_one(cli, run):
    root, _ = run
    rc, _, err = cli("eval", str(root / "net.cnn"))
    assert rc == 2 and "eval needs a checkpoint" in err and "--checkpoint RUN_DIR" in err


# ----------------------------------------------------------------------------- summary.json


def _summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def test_summary_of_a_nan_stop_says_why(run, tmp_path):
    root, _ = run
    spec = cnndsl.load(str(root / "net.cnn"))
    with pytest.raises(CnnError, match="non-finite loss"):
        run_train(spec, params={"in_ch": 1}, overrides={"optimizer.lr": "1e30"}, run_dir=str(tmp_path),
                  progress=False)
    s = _summary(tmp_path)
    assert s["status"] == "failed" and s["reason"].startswith("non-finite loss at step")
    assert s["error"]["type"] == "CnnError" and "hint: lower the learning rate" in s["error"]["message"]


def test_summary_of_an_interrupted_run_says_why(run, tmp_path):
    root, _ = run
    res = run_train(cnndsl.load(str(root / "net.cnn")), params={"in_ch": 1}, run_dir=str(tmp_path),
                    progress=False, stop_after_steps=2)
    s = _summary(tmp_path)
    assert res.status == s["status"] == "interrupted" and "resumable" in s["reason"]


def test_summary_of_an_internal_error_says_why(run, tmp_path, monkeypatch):
    from cnndsl.train import loop

    def broken(*_a, **_k):
        raise RuntimeError("boom in the loss")
    monkeypatch.setattr(loop, "compute_loss", broken)
    root, _ = run
    with pytest.raises(RuntimeError):
        run_train(cnndsl.load(str(root / "net.cnn")), params={"in_ch": 1}, run_dir=str(tmp_path), progress=False)
    s = _summary(tmp_path)
    assert s["status"] == "failed" and s["reason"] == "RuntimeError: boom in the loss"
    assert s["error"] == {"type": "RuntimeError", "message": "boom in the loss"}
