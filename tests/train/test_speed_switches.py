"""The speed switches run on the CPU too: bf16 autocast, channels_last, torch.compile."""

import math

import pytest
import torch

from cnndsl.train.run import run_train
from helpers import synthetic_train, tiny_spec


def _run(tmp_path, **switches):
    spec = tiny_spec(synthetic_train(epochs=2, **switches))
    return run_train(spec, run_dir=str(tmp_path / "r"), quiet=True, progress=False)


def test_bf16_autocast_and_channels_last_train(tmp_path):
    res = _run(tmp_path, precision="bf16", channels_last=True, loader="dataloader")
    assert res.status == "completed" and res.steps == 12
    assert all(math.isfinite(row["train_loss"]) for row in res.history)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"] * 1.5


def test_channels_last_with_the_device_loader(tmp_path):
    res = _run(tmp_path, channels_last=True, loader="device")
    assert res.status == "completed"
    conv = next(m for m in res.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_torch_compile_switch(tmp_path):
    res = _run(tmp_path, compile=True)
    assert res.status == "completed" and res.steps == 12
    assert all(math.isfinite(row["train_loss"]) for row in res.history)
