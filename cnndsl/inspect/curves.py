"""``cnndsl plot``: training curves of runs, and the images ``train`` and ``eval`` write.

Reads what the runner logs per epoch (``metrics.jsonl``, else ``metrics.csv``): loss, accuracy
and learning rate against epochs, train solid and validation dashed, one colour per run.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import error
from . import viz

WIDTH_IN, HEIGHT_IN = 14.0, 4.3
PANELS = (("loss", ("train_loss", "val_loss"), 1.0), ("accuracy (%)", ("train_acc", "val_acc"), 100.0),
          ("learning rate", ("lr",), 1.0))
NOT_A_RUN = "pass a run directory written by `cnndsl train` (runs/<spec>/<time>/)"


def _number(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def read_metrics(run: str | Path) -> list[dict[str, float | None]]:
    """One record per epoch (the last one logged for an epoch wins, e.g. after a resume)."""
    p = Path(run)
    if not p.exists():
        raise error(f"run directory {p} does not exist", None, NOT_A_RUN)
    path = p if p.is_file() else next((p / n for n in ("metrics.jsonl", "metrics.csv") if (p / n).is_file()), None)
    if path is None:
        raise error(f"{p} has no metrics.jsonl or metrics.csv", None, NOT_A_RUN)
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {path}: {exc}", None, NOT_A_RUN) from None
    if path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise error(f"{path}:{i}: not a JSON record: {exc}", None,
                            "the file is damaged; metrics.csv in the same directory has the same numbers") from None
            if isinstance(rec, dict):
                rows.append(rec)
    by_epoch: dict[float, dict[str, float | None]] = {}
    for rec in rows:
        epoch = _number(rec.get("epoch"))
        if epoch is not None:
            by_epoch[epoch] = {k: _number(v) for k, v in rec.items()}
    if not by_epoch:
        raise error(f"{path} holds no epoch records", None, "the run stopped before its first epoch ended")
    return [by_epoch[e] for e in sorted(by_epoch)]


def run_label(path: Path) -> str:
    """``<spec>/<time>`` as the runner names runs (or the directory's name), with the ``--set``
    values the run was trained with."""
    path = path if path.is_dir() else path.parent
    label = f"{path.parent.name}/{path.name}" if path.parent.name not in ("", ".") else path.name
    try:
        params = json.loads((path / "data.json").read_text()).get("params") or {}
    except (OSError, ValueError, AttributeError):
        params = {}
    return label + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")


def draw(runs: Sequence[tuple[str, list[dict[str, float | None]]]], dpi: int = viz.DPI) -> Any:
    from matplotlib.lines import Line2D

    fig = viz.figure(WIDTH_IN, HEIGHT_IN, dpi)
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for k, (title, keys, scale) in enumerate(PANELS):
        ax = fig.add_axes((0.05 + k * 0.325, 0.22, 0.27, 0.68))
        for colour, (_, records) in zip(colours, runs):
            for key in keys:
                pts = [(r["epoch"], r[key] * scale) for r in records if r.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), color=colour, linestyle="--" if key.startswith("val") else "-",
                            marker="o" if len(pts) < 30 else None, markersize=3, linewidth=1.4)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    handles = [Line2D([], [], color=c, linewidth=2, label=label) for c, (label, _) in zip(colours, runs)]
    handles += [Line2D([], [], color="gray", linestyle="-", label="train"),
                Line2D([], [], color="gray", linestyle="--", label="validation")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    return fig


def plot_runs(run_dirs: Sequence[str | Path], output: str | Path, dpi: int = viz.DPI) -> Path:
    """Draw the curves of ``run_dirs`` into ``output``."""
    out = viz.check_output(output)
    paths = [Path(r) for r in run_dirs]
    runs = [(run_label(p), read_metrics(p)) for p in paths]
    return viz.save(draw(runs, dpi), out)


def write_run_curves(run_dir: str | Path) -> Path | None:
    """``curves.png`` in a finished run directory; nothing without matplotlib or metrics. Never raises:
    a picture must not fail a training run."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file() and not (run_dir / "metrics.csv").is_file():
        return None
    try:
        return plot_runs([run_dir], run_dir / "curves.png")
    except Exception as exc:  # noqa: BLE001 - report and carry on
        print(f"warning: could not draw {run_dir / 'curves.png'}: {exc}", file=sys.stderr)
        return None


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str,
                     dpi: int = viz.DPI) -> Any:
    """Rows: true class, columns: predicted; colour is the share of the row, numbers are counts."""
    import numpy as np

    m = np.asarray(confusion, dtype=np.float64)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = viz.figure(7.0, 6.4, dpi)
    ax = fig.add_axes((0.14, 0.12, 0.7, 0.76))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    n = len(classes)
    if n <= 30:
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels([str(c)[:12] for c in classes], rotation=45 if n > 10 else 0, ha="right" if n > 10 else "center",
                           fontsize=7)
        ax.set_yticklabels([str(c)[:12] for c in classes], fontsize=7)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "#222222")
    ax.set_xlabel("predicted", fontsize=9)
    ax.set_ylabel("true", fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, cax=fig.add_axes((0.87, 0.12, 0.025, 0.76))).ax.tick_params(labelsize=7)
    return fig


def write_confusion(ev: dict[str, Any], output: str | Path, dpi: int = viz.DPI) -> Path:
    """The confusion matrix of an ``eval`` result as an image."""
    viz.require_matplotlib("eval --confusion-image")
    if ev["confusion"] is None:  # over evaluate.MAX_CONFUSION classes only per-class counts are kept
        from cnndsl.errors import error
        raise error(f"no confusion matrix for {len(ev['classes']):,} classes", None,
                    "evaluation keeps the full matrix up to 2,048 classes; see per_class_acc in --json")
    title = f"{ev.get('split', 'val')}: accuracy {ev['acc']:.2%} ({ev['n']} images)"
    return viz.save(confusion_figure(ev["confusion"], ev["classes"], title, dpi), viz.check_output(output))


def run(args: Any) -> int:
    viz.require_matplotlib("plot")
    out = plot_runs(args.runs, args.output, args.dpi)
    print(f"wrote {out}")
    return 0
