"""Transfer learning on real digits, offline: does a network pretrained on MNIST help on
scikit-learn's digits when only a few labels are known?

1. Pretrain ``specs/mnist5k.cnn`` on mnist5k (5,000 real MNIST digits, 28×28) with ``cnndsl train``.
2. For k labelled digits per class (scikit-learn's 8×8 digits, resized to 28×28 by the train
   section's ``resize``) and several seeds, train three networks with ``cnndsl train`` and report the
   accuracy on the held-out half of the digits (≈ 900 images, never trained on; the last epoch's
   accuracy, no model selection on it):

   - ``scratch``: the same architecture (``backbone "mnist5k.cnn"`` without weights) and head,
     everything trained from random weights;
   - ``frozen``: the pretrained backbone, frozen (its BatchNorms keep their statistics), a new head;
   - ``fine-tuned``: as frozen for the first half of the steps, then a stage unfreezes the
     backbone and everything trains at a tenth of the learning rate.

Every run does the same number of optimizer steps, with Adam; the new head learns at
``--head-lr-scale`` × the lr in every method (a linear head on frozen features at 1e-3 is still far
from converged after 200 steps). Run from the repository root:

    .venv/bin/python bench/transfer.py [--ks 5 20] [--seeds 0 1 2] [--steps 200] [--out DIR]
    .venv/bin/python bench/transfer.py --pretrained runs/mnist5k/<time>/best.pt   # skip step 1
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

import cnndsl  # noqa: E402
from cnndsl.train import run_train  # noqa: E402

SPEC = """
network DigitsTransfer(num_classes = 10) {{
    input 1x28x28
    features: backbone "{backbone}"({weights})      # mnist5k.cnn without its last linear: 128 features
    head: linear(num_classes)
    {freeze}
}}

train {{
    data: digits(val_fraction = 0.5, per_class = {k}, split_seed = {seed})
    epochs: {epochs}
    batch_size: {batch}
    optimizer: adam(lr = {lr})
    augment: [resize(28), random_crop(padding = 2)]
    seed: {seed}
    device: cpu
    val_every: {epochs}
    param_groups: [{{match: head, lr_scale: {head_scale:g}}}]
    {stages}
}}
"""
METHODS = ("scratch", "frozen", "fine-tuned")


def pretrain(out: Path, epochs: int | None) -> tuple[Path, float]:
    spec = cnndsl.load(ROOT / "specs" / "mnist5k.cnn")
    over = {"device": "cpu", **({"epochs": epochs} if epochs else {})}
    res = run_train(spec, run_dir=str(out / "pretrain"), overrides=over, quiet=True, progress=False)
    return out / "pretrain" / "best.pt", res.best_val_acc or 0.0


def transfer_spec(method: str, weights: Path, k: int, seed: int, steps: int, batch: int, lr: float,
                  head_scale: float) -> str:
    epochs = max(1, steps * batch // (10 * k))   # 10 classes × k images, `batch` per step
    stage = ""
    if method == "fine-tuned":
        stage = f'stages: [{{at_epoch: {epochs // 2 + 1}, unfreeze: features, lr: {lr / 10:g}}}]'
    return SPEC.format(backbone=ROOT / "specs" / "mnist5k.cnn", k=k, seed=seed, epochs=epochs, batch=batch, lr=lr,
                       head_scale=head_scale,
                       weights="" if method == "scratch" else f'weights = "{weights}"',
                       freeze="" if method == "scratch" else "freeze features", stages=stage)


def run(method: str, weights: Path, k: int, seed: int, args: argparse.Namespace, out: Path) -> float:
    name = f"{method}-k{k}-s{seed}"
    path = out / f"{name}.cnn"
    path.write_text(transfer_spec(method, weights, k, seed, args.steps, args.batch, args.lr, args.head_lr_scale))
    res = run_train(cnndsl.load(path), run_dir=str(out / name), quiet=True, progress=False)
    return res.val_acc or 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 20], help="labelled digits per class")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps per run")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--head-lr-scale", type=float, default=10.0, help="the new head's lr, × --lr")
    ap.add_argument("--pretrain-epochs", type=int, default=None, help="default: the spec's (8)")
    ap.add_argument("--pretrained", type=Path, default=None, help="a best.pt of specs/mnist5k.cnn: skip pretraining")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if args.pretrained:
            weights = args.pretrained
            print(f"pretrained specs/mnist5k.cnn: {weights}")
        else:
            weights, acc = pretrain(out, args.pretrain_epochs)
            print(f"pretrained specs/mnist5k.cnn on mnist5k: val acc {acc:.2%} ({time.perf_counter() - t0:.0f}s)")
        table: dict[tuple[str, int], list[float]] = {}
        for k in args.ks:
            for seed in args.seeds:
                for method in METHODS:
                    a = run(method, weights, k, seed, args, out)
                    table.setdefault((method, k), []).append(a)
                    print(f"k={k:<3} seed={seed} {method:<10} test acc {a:.2%}", flush=True)
        print(f"\n{args.steps} steps of batch {args.batch} per run, adam lr {args.lr:g} (the head × {args.head_lr_scale:g}); "
              f"test: the held-out half of scikit-learn's digits; mean ± sd over seeds {args.seeds}; "
              f"{time.perf_counter() - t0:.0f}s in all\n")
        print("| labels per class | " + " | ".join(METHODS) + " |")
        print("|---|" + "---|" * len(METHODS))
        for k in args.ks:
            cells = []
            for method in METHODS:
                xs = table[(method, k)]
                sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                cells.append(f"{statistics.mean(xs):.1%} ± {sd:.1%}")
            print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
