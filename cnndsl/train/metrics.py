"""Run directory logging (metrics.jsonl, metrics.csv, TensorBoard if installed) and progress output."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from cnndsl.files import writing

CSV_FIELDS = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s",
              "seconds"]


class RunLogger:
    """Appends one record per epoch to metrics.jsonl and metrics.csv; rank 0 only writes."""

    def __init__(self, run_dir: Path, *, enabled: bool = True):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.tb = None
        if enabled and importlib.util.find_spec("tensorboard") is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except Exception:  # noqa: BLE001 - TensorBoard is optional
                self.tb = None

    def log_epoch(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with writing(self.run_dir / "metrics.jsonl"):
            self._append(record)
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step") and v is not None:
                    self.tb.add_scalar(k, v, record.get("step", 0))
            self.tb.flush()

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        path = self.run_dir / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: record.get(k, "") for k in CSV_FIELDS})

    def write_json(self, name: str, obj: Any) -> None:
        if self.enabled:
            with writing(self.run_dir / name):
                (self.run_dir / name).write_text(json.dumps(obj, indent=2, default=str) + "\n")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _fmt_time(s: float) -> str:
    s = max(int(s), 0)
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """A progress bar per epoch (rich, when on a terminal and not quiet), else plain log lines."""

    def __init__(self, *, quiet: bool = False, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.quiet = quiet
        self.rich = None
        if enabled and not quiet and self.stream.isatty() and importlib.util.find_spec("rich"):
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RP, TextColumn, TimeRemainingColumn
            self.rich = RP(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                           TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False,
                           console=Console(file=self.stream, force_terminal=True))
        self.task = None
        self.t0 = time.perf_counter()

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int = 0) -> None:
        self.t0, self.epoch, self.total = time.perf_counter(), epoch, total
        if self.rich is not None:
            if self.task is None:
                self.rich.start()
            else:
                self.rich.remove_task(self.task)
            self.task = self.rich.add_task(f"epoch {epoch + 1}/{epochs}", total=total, completed=done, info="")

    def update(self, done: int, loss: float, acc: float, ips: float) -> None:
        if not self.enabled:
            return
        info = f"loss {loss:.4f} acc {acc:.2%} {ips:,.0f} img/s"
        if self.rich is not None and self.task is not None:
            self.rich.update(self.task, completed=done, info=info)
        elif not self.quiet:
            eta = (time.perf_counter() - self.t0) / max(done, 1) * (self.total - done)
            print(f"epoch {self.epoch + 1} [{done}/{self.total}] {info} eta {_fmt_time(eta)}",
                  file=self.stream, flush=True)

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self.rich is not None:
            self.rich.console.print(text, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.rich is not None and self.task is not None:
            self.rich.stop()
