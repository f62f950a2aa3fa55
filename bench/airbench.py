"""specs/airbench94.cnn: time-to-94% on CIFAR-10 with a GPU and the dataset files; otherwise a CPU
smoke run of the whole recipe on synthetic CIFAR-shaped data (it checks that it runs, not accuracy).

    python bench/airbench.py [--data-root DIR] [--runs N] [--cpu]

Timing follows airbench: the clock covers whitening init, training and the final (TTA) evaluation;
it excludes loading the dataset. torch.compile is off (airbench94 without compile: 3.83 s on an A100).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="force the CPU smoke run")
    a = ap.parse_args()

    import torch
    import cnndsl
    from cnndsl.train.run import run_train
    from cnndsl.train.data import _missing

    spec = cnndsl.load(str(ROOT / "specs" / "airbench94.cnn"))
    have_files = not _missing("cifar10", Path(a.data_root))
    if torch.cuda.is_available() and have_files and not a.cpu:
        accs, times = [], []
        for i in range(a.runs + 1):  # the first run warms up cuDNN autotuning and is not counted
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                res = run_train(spec, overrides={"seed": i, "val_every": 100, "device": "cuda",
                                                 "data.download": False},
                                data_root=a.data_root, run_dir=d, progress=False)
                total = time.perf_counter() - t0
            if i:
                accs.append(res.val_acc)
                times.append(res.seconds)
            print(f"run {i}{' (warm-up)' if not i else ''}: val acc (TTA) {res.val_acc:.4f}, "
                  f"fit {res.seconds:.2f}s (incl. whitening + final TTA eval), total with data load {total:.2f}s")
        print(f"{torch.cuda.get_device_name()}: mean acc {statistics.mean(accs):.4f} over {len(accs)} runs, "
              f"median time {statistics.median(times):.2f}s (airbench94 reference: 94.01% in 3.83 s on A100)")
        return 0
    why = "no CUDA device" if not torch.cuda.is_available() else f"no CIFAR-10 files under {a.data_root}"
    print(f"CPU smoke run ({why}): the full airbench94 recipe on synthetic 3x32x32 data")
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_train(spec, overrides={"data": {"type": "synthetic", "num_train": 1024, "num_val": 256},
                                         "epochs": 4, "batch_size": 256, "eval_batch_size": 256,
                                         "precision": "fp32", "channels_last": False, "device": "cpu"},
                        run_dir=d, progress=False)
        dt = time.perf_counter() - t0
    for r in res.history:
        print(f"  epoch {r['epoch']}: train loss {r['train_loss']:.3f} acc {r['train_acc']:.3f}, "
              f"val acc {r.get('val_acc', float('nan')):.3f}, {r['images_per_s']:.0f} img/s")
    print(f"status {res.status}, {res.steps} steps in {dt:.1f}s, final val acc (TTA) {res.val_acc:.3f}")
    return 0 if res.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
