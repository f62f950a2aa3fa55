"""Whole-process wall time to a validation accuracy on mnist5k: ``cnndsl train specs/mnist5k.cnn``
against the plain hand-written PyTorch loop of bench/hand_loop_mnist5k.py on the same network.

Each side is a fresh process (start-up, data, training, evaluation after every epoch, exit), both
stop as soon as a validation reaches the target; seeds are interleaved (cnndsl, hand, cnndsl, ...)
so both sides see the same machine load. The table gives time, epochs and the accuracy reached per
seed, and the ratio cnndsl / hand (target ≤ 0.75 at 98 %).

    python bench/time_to_accuracy.py [--seeds 0 1 2] [--target 0.98] [--threads 2]
        [--cnndsl-args "--set train.batch_size=64"] [--hand-args "--batch-size 128"] [--full]

``--full`` also runs each side to the end of its schedule (no target) for every seed and prints the
final validation accuracies and their mean, the "accuracy reached at the end" the recipe is judged
by (the hand loop runs the recipe mnist5k shipped with before issue 12).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("CNNDSL_COLOR", None)
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the process, the finished process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return seconds, cpu, proc


def run_cnndsl(seed: int, target: float | None, extra: list[str], env: dict[str, str]) -> dict:
    """``cnndsl train`` in its own process; epochs and accuracy from the run's summary.json."""
    with tempfile.TemporaryDirectory(prefix="tta-") as tmp:
        cmd = [sys.executable, "-m", "cnndsl", "train", "specs/mnist5k.cnn", "--seed", str(seed),
               "--run-dir", str(Path(tmp) / "run"), "--quiet", *extra]
        if target is not None:
            cmd += ["--target-acc", str(target)]
        seconds, cpu, _ = _timed(cmd, env)
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
    return {"seconds": seconds, "cpu": cpu, "epochs": summary["epochs_completed"], "val_acc": summary["val_acc"],
            "reached": summary["ended_by"] == "target_acc" or (target is not None and (summary["val_acc"] or 0) >= target)}


def run_hand(seed: int, target: float | None, extra: list[str], env: dict[str, str]) -> dict:
    """bench/hand_loop_mnist5k.py in its own process (it prints one JSON line)."""
    cmd = [sys.executable, str(ROOT / "bench" / "hand_loop_mnist5k.py"), "--seed", str(seed),
           "--target-acc", str(target if target is not None else 2.0), *extra]
    seconds, cpu, proc = _timed(cmd, env)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "cpu": cpu, "epochs": out["epochs"], "val_acc": out["val_acc"], "reached": out["reached"]}


def _cell(r: dict, target: bool = True) -> str:
    mark = "" if r["reached"] or not target else " (not reached)"
    return f"{r['seconds']:6.1f} s ({r['cpu']:6.1f} s CPU)  {r['epochs']} ep  {r['val_acc']:.2%}{mark}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--threads", type=int, default=2, help="OMP/MKL threads of both sides")
    ap.add_argument("--cnndsl-args", default="", help="extra flags for cnndsl train (a shell-quoted string)")
    ap.add_argument("--hand-args", default="", help="extra flags for the hand loop")
    ap.add_argument("--full", action="store_true", help="also the final accuracy of each full schedule (every seed)")
    a = ap.parse_args()
    env = _env(a.threads)
    c_extra, h_extra = shlex.split(a.cnndsl_args), shlex.split(a.hand_args)
    print(f"time to {a.target:.0%} validation accuracy on mnist5k, whole process, {a.threads} thread(s); "
          f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    print(f"cnndsl: cnndsl train specs/mnist5k.cnn {shlex.join(c_extra)}".rstrip())
    print(f"hand:   bench/hand_loop_mnist5k.py {shlex.join(h_extra)}".rstrip())
    print(f"{'seed':>4}  {'cnndsl: wall (CPU), epochs, val acc':<44}  {'hand loop':<44}  ratio wall (CPU)",
          flush=True)
    rows = []
    for seed in a.seeds:
        c = run_cnndsl(seed, a.target, c_extra, env)
        h = run_hand(seed, a.target, h_extra, env)
        rows.append((c, h))
        print(f"{seed:>4}  {_cell(c):<44}  {_cell(h):<44}  {c['seconds'] / h['seconds']:.3f} "
              f"({c['cpu'] / h['cpu']:.3f})", flush=True)
    for key, what in (("seconds", "wall"), ("cpu", "CPU")):
        cs, hs = [c[key] for c, _ in rows], [h[key] for _, h in rows]
        paired = statistics.median(c[key] / h[key] for c, h in rows)
        print(f"{what}: median cnndsl {statistics.median(cs):.1f} s, hand loop {statistics.median(hs):.1f} s; "
              f"ratio of medians {statistics.median(cs) / statistics.median(hs):.3f}, median of paired ratios "
              f"{paired:.3f} (target ≤ 0.75)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if a.full:
        finals = []
        for seed in a.seeds:
            c = run_cnndsl(seed, None, c_extra, env)
            h = run_hand(seed, None, h_extra, env)
            finals.append((c["val_acc"], h["val_acc"]))
            print(f"full schedule, seed {seed}: cnndsl {_cell(c, False)}; hand loop {_cell(h, False)}", flush=True)
        print(f"final accuracy, mean over seeds {a.seeds}: cnndsl {statistics.mean(c for c, _ in finals):.2%}, "
              f"hand loop {statistics.mean(h for _, h in finals):.2%}")


if __name__ == "__main__":
    main()
