"""Validation accuracy after every epoch of a mnist5k recipe, over several seeds.

Each run is ``cnndsl train specs/mnist5k.cnn --seed S --set ...`` in its own process, one at a time,
to the end of its schedule (no target). Prints, per seed, the validation accuracy after each epoch,
the first epoch at or above the target and the final accuracy, then the mean ± sd over seeds; with
``--jsonl FILE`` also appends one JSON line per run. Epoch counts and accuracies do not depend on the
machine's load (runs are seeded), so this is the figure to compare recipes by on a shared machine.

    python bench/recipe_seeds.py [--seeds 0 1 2] [--threads 1] [--target 0.98] [--name NAME]
        [--jsonl FILE] [--set train.epochs=7 --set train.ema.decay=0.995 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(seed: int, sets: list[str], threads: int) -> dict:
    """One full run; the per-epoch validation accuracies from its metrics.jsonl."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory(prefix="recipe-") as tmp:
        cmd = [sys.executable, "-m", "cnndsl", "train", "specs/mnist5k.cnn", "--device", "cpu", "--seed", str(seed),
               "--run-dir", str(Path(tmp) / "run"), "--quiet"]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        lines = (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
        accs = [json.loads(line)["val_acc"] for line in lines]
    return {"seed": seed, "val_acc": accs, "seconds": seconds}


def first_at(accs: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy reaches the target."""
    return next((i + 1 for i, a in enumerate(accs) if a >= target - 1e-9), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--name", default="", help="a label for the recipe (printed and saved)")
    ap.add_argument("--jsonl", type=Path, help="append one JSON line per run to this file")
    a = ap.parse_args()
    name = a.name or (" ".join(a.sets) or "shipped")
    print(f"recipe: {name}", flush=True)
    finals, firsts = [], []
    for seed in a.seeds:
        r = run(seed, a.sets, a.threads)
        first = first_at(r["val_acc"], a.target)
        finals.append(r["val_acc"][-1])
        firsts.append(first)
        print(f"  seed {seed}: {', '.join(f'{x:.1%}' for x in r['val_acc'])}  first >= {a.target:.0%}: "
              f"{first or 'never'}  final {r['val_acc'][-1]:.2%}  ({r['seconds']:.0f} s wall)", flush=True)
        if a.jsonl:
            with a.jsonl.open("a") as f:
                f.write(json.dumps({"name": name, "sets": a.sets, "first": first, **r}) + "\n")
    sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"  final: mean {statistics.mean(finals):.2%} ± {sd:.2%}; first >= {a.target:.0%}: "
          f"{', '.join(str(f or 'never') for f in firsts)}")


if __name__ == "__main__":
    main()
