"""Images/s of the cnndsl training runner against a minimal hand-written PyTorch loop.

Same model, same data (synthetic, CIFAR-shaped, device-resident), same batch size, same optimizer;
no augmentation, so the difference is the runner's own overhead. Prints a ratio (target >= 0.95).

    python bench/train_overhead.py [--epochs 4] [--batch-size 128] [--n 4096] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402


NET = """network Bench {
    input 3x32x32
    conv(32, k = 3, p = 1, bias = false)  batchnorm  relu  maxpool(2)
    conv(64, k = 3, p = 1, bias = false)  batchnorm  relu  maxpool(2)
    conv(128, k = 3, p = 1, bias = false)  batchnorm  relu  global_maxpool  flatten  linear(10)
}
"""


def make_model() -> nn.Module:
    """The network of NET, built by cnndsl (plain torch modules, the same for both sides)."""
    import cnndsl
    torch.manual_seed(0)
    return cnndsl.build(cnndsl.parse(NET))


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
    """The same training through ``cnndsl.train`` (a real spec: NET with a train section)."""
    import cnndsl
    train = (f"train {{ data: synthetic(num_train = {n}, num_val = 0, shape = [3, 32, 32], num_classes = 10) "
             f"epochs: {epochs} batch_size: {bs} device: cpu loader: device log_every: 10000 "
             "optimizer: sgd(lr = 0.05, momentum = 0.9, nesterov = true) }")
    with tempfile.TemporaryDirectory() as d:
        res = cnndsl.train(cnndsl.parse(NET + train), run_dir=d, progress=False)
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
