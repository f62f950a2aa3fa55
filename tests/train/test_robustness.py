"""The runner under hostile or broken inputs (issue 6, items 5, 16, 17, 18, 23): nothing is written
before a --resume is checked, write failures and bad checkpoints are diagnostics naming the file,
runs can always be resumed, NaN weights are refused, sizes are bounded before allocating."""

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cnndsl.errors import CnnError
from cnndsl.train import checkpoint as ckpt
from cnndsl.train.run import run_eval, run_train
from helpers import synthetic_train, tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def _train(tmp_path, name="run", **kw):
    spec = tiny_spec(synthetic_train(epochs=1, **kw))
    return spec, run_train(spec, run_dir=str(tmp_path / name), progress=False)


def _listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- item 5


def test_a_failed_resume_writes_nothing(tmp_path):
    """Reproducers: --resume some/dir/data.json overwrote that file; --resume /nonexistent/run created it."""
    spec, _ = _train(tmp_path)
    before = _listing(tmp_path)
    with pytest.raises(CnnError, match="cannot load checkpoint") as ei:
        run_train(spec, resume=str(tmp_path / "run" / "data.json"), progress=False)
    assert ei.value.span.file == str(tmp_path / "run" / "data.json")
    with pytest.raises(CnnError, match="checkpoint does not exist"):
        run_train(spec, resume=str(tmp_path / "nonexistent" / "run"), progress=False)
    changed = tiny_spec(synthetic_train(epochs=1, batch_size=8))
    with pytest.raises(CnnError, match="spec changed"):
        run_train(changed, resume=str(tmp_path / "run"), progress=False)
    assert _listing(tmp_path) == before and not (tmp_path / "nonexistent").exists()


# ----------------------------------------------------------------------------- item 17


def test_disk_full_on_the_first_checkpoint_is_a_diagnostic_and_leaves_no_temp(tmp_path, monkeypatch):
    real_save = torch.save

    def full(obj, f, *a, **k):  # what torch's writer does: the OSError of the write, wrapped
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CnnError) as ei:
        _train(tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    assert "no space left on device" in ei.value.render()
    assert ei.value.span.file == str(tmp_path / "run" / "last.pt")
    assert not list((tmp_path / "run").glob("*.tmp")) and not list((tmp_path / "run").glob(".*.tmp"))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"


def test_read_only_run_directory_is_a_diagnostic(tmp_path, monkeypatch):
    real_open = open

    def read_only(path, mode="r", *a, **k):
        if "w" in mode and str(tmp_path) in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, mode, *a, **k)
    monkeypatch.setattr("builtins.open", read_only)
    with pytest.raises(CnnError, match="read-only file system"):
        _train(tmp_path)


_FSIZE = textwrap.dedent("""
    import resource, signal, sys, torch
    sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
    from cnndsl.train import checkpoint as ckpt
    from cnndsl.errors import CnnError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write fails with EFBIG instead of killing us
    path = {path!r}
    ckpt.save_atomic({{"w": torch.ones(10)}}, path)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    try:
        ckpt.save_atomic({{"w": torch.zeros(1_000_000)}}, path)
    except CnnError as exc:
        print(exc.render())
        sys.exit(2)
""")


def test_a_real_file_size_limit_fails_cleanly_and_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    code = _FSIZE.format(root=str(ROOT), here=str(Path(__file__).parent), path=str(path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert f"{path}: error: could not write this checkpoint: file too large" in p.stdout
    assert torch.equal(ckpt.load(path)["w"], torch.ones(10))
    assert [q.name for q in tmp_path.iterdir()] == ["last.pt"]


# ----------------------------------------------------------------------------- item 18


@pytest.mark.parametrize("content, words", [
    (lambda full: full["model"], "bare state_dict"),
    (lambda full: {"model": full["model"]}, "but no optimizer, scheduler, rng"),
    (lambda full: {**full, "epoch": "x"}, "'epoch' must be a whole number ≥ 0, but it is 'x'"),
    (lambda full: {**full, "optimizer": {"state": {}, "param_groups": []}}, "optimizer state does not fit"),
])
def test_resume_force_with_a_malformed_checkpoint_says_what_is_missing(tmp_path, content, words):
    spec, _ = _train(tmp_path)
    bad = tmp_path / "bad.pt"
    torch.save(content(ckpt.load(tmp_path / "run" / "last.pt")), bad)
    with pytest.raises(CnnError) as ei:
        run_train(spec, resume=str(bad), force=True, progress=False)
    assert words in ei.value.render() and ei.value.span.file == str(bad)


# ----------------------------------------------------------------------------- item 23


@pytest.mark.slow
def test_a_run_killed_at_its_first_step_resumes_bitwise_equal(tmp_path):
    """Reproducer: a run killed before its first checkpoint could not be resumed. The initial
    checkpoint (step 0) makes it resumable, and the result equals an uninterrupted run."""
    from test_subprocess import _run

    _run(tmp_path / "a", "--epochs", "1")
    killed = _run(tmp_path / "b", "--epochs", "1", "--kill-at", "1", check=False)
    assert killed.returncode == -9, killed.stderr
    assert ckpt.load(tmp_path / "b" / "last.pt")["global_step"] == 0
    _run(tmp_path / "b", "--epochs", "1", "--resume")
    a, b = ckpt.load(tmp_path / "a" / "last.pt"), ckpt.load(tmp_path / "b" / "last.pt")
    assert a["global_step"] == b["global_step"] > 0
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_run_killed_before_any_checkpoint_says_so(tmp_path):
    spec = tiny_spec(synthetic_train(epochs=1))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data.json").write_text("{}")
    with pytest.raises(CnnError) as ei:
        run_train(spec, resume=str(tmp_path / "run"), progress=False)
    text = ei.value.render()
    assert "no checkpoint yet" in text and "checkpoints/last.pt" not in text
    assert ei.value.span.file == str(tmp_path / "run")


def test_stale_temp_files_of_a_killed_save_are_removed_on_resume(tmp_path):
    spec, _ = _train(tmp_path)
    dead = tmp_path / "run" / ".last.pt.99999999.tmp"
    dead.write_bytes(b"")
    run_train(tiny_spec(synthetic_train(epochs=2)), resume=str(tmp_path / "run"), force=True,
              progress=False)
    assert not dead.exists()


def test_nan_weights_are_refused_by_eval_and_predict(tmp_path):
    spec, _ = _train(tmp_path)
    state = ckpt.load(tmp_path / "run" / "last.pt")
    state["model"]["fc.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(CnnError, match="non-finite weights .*fc.weight") as ei:
        run_eval(spec, tmp_path / "nan.pt")
    assert ei.value.span.file == str(tmp_path / "nan.pt")


# ----------------------------------------------------------------------------- item 16


@pytest.mark.parametrize("override, words", [
    ({"data.num_train": "1000000000000"}, "num_train must be ≤ 10000000"),
    ({"data.num_classes": "1000000000"}, "num_classes must be ≤ 100000"),
    ({"num_workers": "100000"}, "num_workers must be ≤ 128"),
    ({"epochs": "inf"}, "finite number"),
    ({"device": "meta"}, "'meta' is not a device"),
])
def test_sizes_are_bounded_before_anything_is_allocated(tmp_path, override, words):
    spec = tiny_spec(synthetic_train())
    with pytest.raises(CnnError, match=words):
        run_train(spec, overrides=override, run_dir=str(tmp_path / "r"), progress=False)
    assert not (tmp_path / "r").exists()


def test_synthetic_data_estimates_its_memory_first(monkeypatch):
    from cnndsl.train import budget, config as C
    from cnndsl.train.data import load_synthetic

    monkeypatch.setattr(budget, "available_bytes", lambda: 1 << 30)
    cfg = C.SyntheticData(type="synthetic", num_train=5_000_000, shape=(3, 64, 64))
    with pytest.raises(CnnError, match="synthetic data .* would need about .* GiB"):
        load_synthetic(cfg, None, 10)


def test_evaluation_of_many_classes_skips_the_quadratic_confusion_matrix():
    from cnndsl.train.config import LossConfig
    from cnndsl.train.evaluate import MAX_CONFUSION, evaluate

    k = MAX_CONFUSION + 1
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, k))

    class Loader:
        def epoch(self, _):
            g = torch.Generator().manual_seed(0)
            yield torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, k - 1])
    ev = evaluate(model, Loader(), LossConfig(type="cross_entropy"), k)
    pred = model(next(Loader().epoch(0))[0]).argmax(1)
    assert ev["confusion"] is None and ev["n"] == 6
    assert ev["acc"] == pytest.approx(float((pred == torch.tensor([0, 1, 2, 0, 1, k - 1])).float().mean()))
