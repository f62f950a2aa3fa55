"""Forward+backward time of the cnndsl ResNet-18 against torchvision's, on CPU.

Both models hold the same weights (torchvision's state_dict loaded into the cnndsl module; outputs
are checked equal first), train mode, batch 16 at 224×224 (``--quick``: batch 8 at 112×112), same
input, loss = output.sum(). Repetitions alternate between the two models (A B B A ...) so drift in
machine load hits both; the headline is the median over repetitions of the ratio of the two adjacent
timings (robust to load drifts on a shared machine), with the ratio of medians and of minima beside it
(target 1.00 ± 0.03). Also reports forward-only (no_grad, eval) times.

    python bench/forward_backward.py [--quick] [--reps 10] [--batch 16] [--size 224] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchvision  # noqa: E402

import cnndsl  # noqa: E402


def step(model: torch.nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    model(x).sum().backward()
    el = time.perf_counter() - t
    for p in model.parameters():
        p.grad = None
    return el


def fwd(model: torch.nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - t


def bench(a, b, fn, x, reps: int) -> tuple[list[float], list[float]]:
    ta, tb = [], []
    fn(a, x), fn(b, x)  # warm-up
    for i in range(reps):
        order = ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta))
        for m, acc in order:
            acc.append(fn(m, x))
    return ta, tb


def _load() -> str:
    import os
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    load0 = _load()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="batch 8 at 112×112, 6 repetitions")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-forward", action="store_true", help="skip the forward-only measurement")
    args = ap.parse_args()
    batch = args.batch or (8 if args.quick else 16)
    size = args.size or (112 if args.quick else 224)
    reps = args.reps or (6 if args.quick else 10)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tv = torchvision.models.resnet18()
    ours = cnndsl.build(ROOT / "specs/resnet18.cnn")
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(batch, 3, size, size)
    tv.eval(), ours.eval()
    with torch.no_grad():
        diff = (tv(x) - ours(x)).abs().max().item()
    assert diff == 0.0, f"outputs differ by {diff}"

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch} × 3×{size}×{size}, "
          f"{reps} interleaved repetitions, median")
    if not args.no_forward:
        to, tt = bench(ours, tv, fwd, x, reps)
        mo, mt = statistics.median(to), statistics.median(tt)
        print(f"  forward (eval, no_grad)   cnndsl {mo * 1e3:8.1f} ms   torchvision {mt * 1e3:8.1f} ms   "
              f"ratio {mo / mt:.3f}")
    tv.train(), ours.train()
    to, tt = bench(ours, tv, step, x, reps)
    mo, mt = statistics.median(to), statistics.median(tt)
    paired = statistics.median(a / b for a, b in zip(to, tt))
    r = paired
    print(f"  forward+backward (train)  cnndsl {mo * 1e3:8.1f} ms   torchvision {mt * 1e3:8.1f} ms   "
          f"ratio of medians {mo / mt:.3f}; median of paired ratios {paired:.3f}; min/min {min(to) / min(tt):.3f}")
    print(f"ratio (median of paired ratios: robust to machine load) {r:.3f}: target 1.00 ± 0.03: {'PASS' if abs(r - 1) <= 0.03 else 'OUTSIDE'}")
    print(f"load average before/after: {load0} / {_load()} (2 cores: above ~2 the figures are noisy)")


if __name__ == "__main__":
    main()
