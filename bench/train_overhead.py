"""Images/s of the cnndsl training runner against a minimal hand-written PyTorch loop.

Same model, same data (synthetic, CIFAR-shaped, device-resident), same batch size, same optimizer;
no augmentation, so the difference is the runner's own overhead. Prints a ratio (target >= 0.95).

    python bench/train_overhead.py [--epochs 4] [--batch-size 128] [--n 4096] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402


def make_model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
        nn.Flatten(), nn.Linear(128, 10))
    m.cnndsl_input_shape = (3, 32, 32)
    return m


class BenchSpec:
    def __init__(self, train: dict):
        self.train, self.path = train, None

    def train_span(self, path):
        return None

    def hash(self) -> str:
        return hashlib.sha256(repr(self.train).encode()).hexdigest()


def hand_loop(x: torch.Tensor, y: torch.Tensor, epochs: int, bs: int) -> list[float]:
    """The minimal loop: randperm, slice, forward, CE, zero_grad, backward, step; per-epoch img/s."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    model.train()
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        n = 0
        for i in range(len(x) // bs):
            idx = perm[i * bs:(i + 1) * bs]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += bs
        rates.append(n / (time.perf_counter() - t0))
    return rates


def runner(n: int, epochs: int, bs: int) -> list[float]:
    from cnndsl.train.commands import run_train
    spec = BenchSpec({"data": {"type": "synthetic", "num_train": n, "num_val": 0, "shape": [3, 32, 32],
                               "num_classes": 10}, "epochs": epochs, "batch_size": bs, "device": "cpu",
                      "loader": "device", "log_every": 10_000,
                      "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}})
    with tempfile.TemporaryDirectory() as d:
        res = run_train(spec, build=lambda s, **k: make_model(), run_dir=d, progress=False)
    return [r["images_per_s"] for r in res.history]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(a.n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (a.n,), generator=g)
    hand, ours = [], []
    for _ in range(a.repeats):  # interleave to share thermal/noise conditions
        hand += hand_loop(x, y, a.epochs, a.batch_size)[1:]  # drop the warm-up epoch
        ours += runner(a.n, a.epochs, a.batch_size)[1:]
    h, o = statistics.median(hand), statistics.median(ours)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch_size}, "
          f"{a.n} images x {a.epochs - 1} timed epochs x {a.repeats} repeats")
    print(f"hand-written loop : {h:8.1f} img/s (median of {len(hand)} epochs)")
    print(f"cnndsl train      : {o:8.1f} img/s (median of {len(ours)} epochs)")
    print(f"ratio             : {o / h:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
