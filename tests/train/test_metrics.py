"""Run logging: TensorBoard scalars when the package is installed, the rich progress bar on a terminal."""

import importlib.util
import io
import sys
import types

from cnndsl.train import metrics


class _Writer:
    """Stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is an optional package)."""

    instances: list["_Writer"] = []

    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False
        _Writer.instances.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_scalars_when_installed(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "tensorboard" else real_find_spec(name, *a))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_Writer))
    log = metrics.RunLogger(tmp_path)
    log.log_epoch({"epoch": 1, "step": 62, "train_loss": 0.5, "val_acc": 0.9, "lr": 0.1, "note": "x"})
    log.close()
    w = _Writer.instances[-1]
    assert w.log_dir == str(tmp_path / "tensorboard") and w.closed
    assert sorted(w.scalars) == [("lr", 0.1, 62), ("train_loss", 0.5, 62), ("val_acc", 0.9, 62)]
    assert (tmp_path / "metrics.jsonl").exists() and (tmp_path / "metrics.csv").exists()


def test_no_tensorboard_no_writer(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a))
    assert metrics.RunLogger(tmp_path).tb is None


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_plain_lines_otherwise():
    tty = _Tty()
    bar = metrics.Progress(stream=tty)
    assert bar.rich is not None                                   # rich draws the bar on terminals
    bar.start_epoch(0, 2, total=10)
    bar.update(5, 0.75, 0.5, 1234.0)
    bar.line("epoch 1/2: done")
    bar.close()
    drawn = tty.getvalue()
    assert "epoch 1/2" in drawn and "loss 0.7500 acc 50.00% 1,234 img/s" in drawn
    plain = metrics.Progress(stream=io.StringIO())
    assert plain.rich is None
    quiet = metrics.Progress(stream=_Tty(), quiet=True)
    assert quiet.rich is None
