"""The transfer recipe of specs/transfer_resnet18.cnn through the Python API, with your own loop:
a frozen ResNet-18 and a new head (stage 1, Adam at 1e-3), then layer4 unfrozen and fine-tuned
with the head at 1e-4 (stage 2) — the spec decides what is frozen and which learning rates apply.

    python examples/transfer.py                   # random backbone, a few synthetic images, 64×64
    python examples/transfer.py --pretrained      # torchvision's ImageNet weights (cached in $TORCH_HOME)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import cnndsl

SPEC = Path(__file__).resolve().parent.parent / "specs" / "transfer_resnet18.cnn"

ap = argparse.ArgumentParser()
ap.add_argument("--pretrained", action="store_true")
ap.add_argument("--size", type=int, default=64)
args = ap.parse_args()

spec = cnndsl.load(SPEC)
info = cnndsl.analyze(spec, size=args.size, pretrained=args.pretrained)   # no torch, no weights loaded
print(f"{info.name}: {info.params:,} parameters, {info.trainable_params:,} trainable")

torch.manual_seed(0)
model = cnndsl.build(spec, size=args.size, pretrained=args.pretrained)   # `features` frozen by the spec
images = torch.randn(40, 3, args.size, args.size)          # stand-ins for your images and labels
labels = torch.arange(40) % 5
images += labels.view(-1, 1, 1, 1) * 0.5                   # something to learn


def train(opt: torch.optim.Optimizer, epochs: int) -> None:
    for epoch in range(epochs):
        model.train()             # the frozen BatchNorms stay in eval mode: their statistics do not move
        losses = []
        for x, y in zip(images.split(10), labels.split(10)):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"  epoch {epoch + 1}: mean training loss {sum(losses) / len(losses):.3f}")


stem_stats = model.features.bn1.running_mean.clone()
# Stage 1: the groups of epoch 1 (the head only, Adam at the spec's 1e-3).
groups = cnndsl.param_groups(model, spec)
print("stage 1:", [(g["names"], g["lr"]) for g in groups])
train(torch.optim.Adam(groups), epochs=2)

# Stage 2: the spec's `stages` entry starts at epoch 3 — param_groups applies its `unfreeze` to the
# model and gives every trainable part the stage's lr (1e-4). The runner (`cnndsl train`) instead adds
# the new groups to its optimizer; a loop of your own can simply make a new one.
groups = cnndsl.param_groups(model, spec, epoch=3)
print("stage 2:", [(f"{len(g['names'])} tensors from {g['names'][0]} to {g['names'][-1]}", g["lr"]) for g in groups])
train(torch.optim.Adam(groups), epochs=2)

trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"trainable now: {trained:,} (layer4 + head); frozen stem BatchNorm statistics unchanged: "
      f"{torch.equal(stem_stats, model.features.bn1.running_mean)}")
