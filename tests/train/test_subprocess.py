"""SIGKILL mid-epoch then resume == uninterrupted (bitwise); DDP on CPU with gloo, two processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnndsl.train import checkpoint as ckpt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DRIVER = HERE / "driver.py"


def _run(*args, check=True, env=None):
    p = subprocess.run([sys.executable, str(DRIVER), *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.mark.slow
@pytest.mark.parametrize("loader, kill_at", [("dataloader", 11), ("device", 5)])
def test_sigkill_mid_epoch_then_resume_is_bitwise_equal(tmp_path, loader, kill_at):
    _run(tmp_path / "a", "--loader", loader)
    killed = _run(tmp_path / "b", "--loader", loader, "--kill-at", kill_at, check=False)
    assert killed.returncode == -9, killed.stderr
    mid = ckpt.load(tmp_path / "b" / "last.pt")
    assert 0 < mid["batch_idx"] < 6 and mid["global_step"] < kill_at  # a mid-epoch checkpoint
    _run(tmp_path / "b", "--loader", loader, "--resume")
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert a["global_step"] == b["global_step"] == 18
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for k, sa in a["optimizer"]["state"].items():
        assert all(torch.equal(sa[n], b["optimizer"]["state"][k][n]) for n in sa)
    cols = lambda p: [line.split(",")[:7] for line in (p / "metrics.csv").read_text().splitlines()]  # noqa
    assert cols(tmp_path / "a") == cols(tmp_path / "b")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_gloo_identical_parameters(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DDP_DUMP": str(tmp_path / "rank")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(DRIVER), str(tmp_path / "run"), "--epochs", "2",
           "--loader", "device", "--checkpoint-every", "0"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0 if "running" not in k and "num_batches" not in k)
    saved = ckpt.load(tmp_path / "run" / "last.pt")
    assert saved["global_step"] == 6  # 96 images / 2 ranks / 16 per batch = 3 steps per epoch
    assert not list((tmp_path / "run").glob("*.tmp"))
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # one writer: header + 2 epochs


DDP_SPEC = """
network D(num_classes = 4) {
    input 3x8x8
    conv(8, k=3, p=1) batchnorm relu maxpool(2) flatten linear(num_classes)
}
train {
    data: synthetic(num_train = 96, num_val = 32, num_classes = 4)
    epochs: 2
    batch_size: 16
    optimizer: sgd(lr = 0.05, momentum = 0.9)
    device: cpu
}
"""


@pytest.mark.slow
def test_torchrun_module_cnndsl_train(tmp_path):
    """The documented entry point: torchrun --nproc_per_node=2 -m cnndsl train spec.cnn."""
    spec = tmp_path / "ddp.cnn"
    spec.write_text(DDP_SPEC)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "cnndsl", "train", str(spec), "--run-dir", str(tmp_path / "run"),
           "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("done: 2 epochs, 6 steps") == 1          # rank 0 reports, once
    assert (p.stdout + p.stderr).count("epoch 2/2:") == 1
    saved = ckpt.load(tmp_path / "run" / "last.pt")
    assert saved["global_step"] == 6 and saved["epoch"] == 2
