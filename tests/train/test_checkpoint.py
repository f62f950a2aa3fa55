"""Atomic writes, safe loads, corrupt files, schema, RNG round trip."""

import errno
import os
import random

import numpy as np
import pytest
import torch

from cnndsl.errors import CnnError
from cnndsl.train import checkpoint as ckpt


def test_failed_save_keeps_previous_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"w": torch.arange(4.0)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def broken(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(CnnError, match="disk on fire") as ei:  # torch's writer raises RuntimeError
        ckpt.save_atomic({"w": torch.zeros(4)}, path)
    assert ei.value.span.file == str(path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert torch.equal(ckpt.load(path)["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_enospc_is_reported_and_old_checkpoint_survives(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"w": torch.ones(2)}, path)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CnnError, match="no space left"):
        ckpt.save_atomic({"w": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(ckpt.load(path)["w"], torch.ones(2))
    assert len(list(tmp_path.iterdir())) == 1


def test_fsync_file_and_directory_and_temp_in_same_dir(tmp_path, monkeypatch):
    synced, opened = [], []
    real_fsync = os.fsync
    real_replace = os.replace

    def spy_fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else fd)
        real_fsync(fd)

    def spy_replace(src, dst):
        opened.append((str(src), str(dst)))
        real_replace(src, dst)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    ckpt.save_atomic({"x": torch.ones(1)}, tmp_path / "c.pt")
    (src, dst), = opened
    assert os.path.dirname(src) == str(tmp_path) and dst == str(tmp_path / "c.pt")
    assert len(synced) == 2
    assert synced[1] == str(tmp_path)  # the directory, after the replace


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, os.urandom(300)])
def test_corrupt_files_are_cnn_errors_naming_the_path(tmp_path, content):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(CnnError) as ei:
        ckpt.load(p)
    assert str(p) in ei.value.render()


def test_truncated_checkpoint(tmp_path):
    p = tmp_path / "t.pt"
    ckpt.save_atomic({"w": torch.randn(1000)}, p)
    p.write_bytes(p.read_bytes()[:2000])
    with pytest.raises(CnnError, match="t.pt"):
        ckpt.load(p)


def test_pickle_rce_is_refused_without_fallback(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    p = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, p)
    calls = []
    real = torch.load

    def spy(*a, **k):
        calls.append(k.get("weights_only"))
        return real(*a, **k)
    monkeypatch.setattr(torch, "load", spy)
    with pytest.raises(CnnError, match="unsafe globals"):
        ckpt.load(p)
    assert calls == [True] and not marker.exists()


def test_rng_states_round_trip_through_a_safe_load(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.save_atomic({"rng": ckpt.rng_state()}, tmp_path / "r.pt")
    expect = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(ckpt.load(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expect


def test_strict_weight_loading_lists_differences():
    m = torch.nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1)}
    with pytest.raises(CnnError) as ei:
        ckpt.load_weights(m, state, "x.pt")
    text = ei.value.render()
    assert "missing: bias" in text and "unexpected: extra" in text and "mis-shaped: weight" in text
