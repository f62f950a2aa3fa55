"""The shipped training specs, through the compiler and the real CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

cnndsl = pytest.importorskip("cnndsl")
from cnndsl.train import checkpoint as ckpt  # noqa: E402
from cnndsl.train.run import config_of, run_train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


@pytest.mark.parametrize("name", ["mnist5k.cnn", "airbench94.cnn"])
def test_train_sections_validate(name):
    spec = cnndsl.load(str(SPECS / name))
    cfg = config_of(spec)
    assert cfg.epochs > 0


def test_airbench_recipe_runs_small(tmp_path):
    spec = cnndsl.load(str(SPECS / "airbench94.cnn"))
    over = {"data": {"type": "synthetic", "num_train": 128, "num_val": 64}, "epochs": 4, "batch_size": 32,
            "eval_batch_size": 64, "precision": "fp32", "channels_last": False, "device": "cpu"}
    params = {"w1": 8, "w2": 16, "w3": 16}
    torch.manual_seed(0)
    before = cnndsl.build(spec, **params)
    res = run_train(spec, params=params, overrides=over, run_dir=str(tmp_path), progress=False)
    assert res.status == "completed" and res.steps == 16
    m = res.model
    w = m.whiten.weight.detach()
    assert torch.allclose(w[12:], -w[:12]) and not torch.allclose(w, before.whiten.weight)  # from data
    for name in ("layer1.norm1.weight", "layer3.norm2.weight"):
        assert torch.equal(m.get_parameter(name).detach(), torch.ones_like(m.get_parameter(name)))
    assert set(ckpt.load(tmp_path / "last.pt")["model"]) == set(m.state_dict())


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cnndsl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_cli_train_eval_predict_mnist5k(tmp_path):
    from PIL import Image
    p = _cli("train", SPECS / "mnist5k.cnn", "--epochs", "1", "--device", "cpu", "--quiet", "--set",
             "width=8", "--set", "train.batch_size=128", "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["val_acc"] > 0.15  # better than chance after 31 steps
    assert (tmp_path / "run" / "mnist5k.cnn").exists() or (tmp_path / "run" / "spec.cnn").exists()
    e = _cli("eval", SPECS / "mnist5k.cnn", "--checkpoint", tmp_path / "run" / "best.pt", "--set", "width=8",
             "--json", cwd=tmp_path)
    assert e.returncode == 0, e.stderr
    ev = json.loads(e.stdout)
    assert ev["n"] == 1000 and abs(ev["acc"] - summary["best_val_acc"]) < 1e-9
    img = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(img)
    pr = _cli("predict", SPECS / "mnist5k.cnn", "--checkpoint", tmp_path / "run" / "best.pt", "--set",
              "width=8", "--top-k", "2", img, cwd=tmp_path)
    assert pr.returncode == 0, pr.stderr
    assert "digit.png:" in pr.stdout and "%" in pr.stdout


def test_cli_user_errors_have_positions_and_no_traceback(tmp_path):
    p = _cli("train", SPECS / "mnist5k.cnn", "--set", "train.optimizer.lr=-1", "--device", "cpu", cwd=tmp_path)
    assert p.returncode == 2
    assert "mnist5k.cnn:" in p.stderr and "optimizer" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    p = _cli("eval", SPECS / "mnist5k.cnn", "--checkpoint", bad, cwd=tmp_path)
    assert p.returncode == 2 and "bad.pt" in p.stderr and "Traceback" not in p.stderr
