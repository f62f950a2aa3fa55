"""Evaluation (loss, accuracy, per-class accuracy, confusion matrix) and data-dependent init."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import augment as A

MAX_CONFUSION = 2048  # classes up to which evaluation keeps the full confusion matrix (k² counters)


def outputs(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def compute_loss(out: Any, y: torch.Tensor, loss_cfg: Any) -> torch.Tensor:
    """Cross-entropy (per pixel for N x C x H x W outputs), summed over outputs with weights."""
    outs = outputs(out)
    weights = loss_cfg.output_weights or [1.0] * len(outs)
    total = None
    for w, o in zip(weights, outs):
        o = o.float()
        if y.is_floating_point():  # soft targets (mixup / cutmix)
            t = y
            if loss_cfg.label_smoothing:
                t = t * (1 - loss_cfg.label_smoothing) + loss_cfg.label_smoothing / o.shape[1]
            per = -(t * F.log_softmax(o, dim=1)).sum(dim=1)
            term = per.sum() if loss_cfg.reduction == "sum" else per.mean()
        else:
            term = F.cross_entropy(o, y, label_smoothing=loss_cfg.label_smoothing,
                                   reduction=loss_cfg.reduction)
        term = term * w
        total = term if total is None else total + term
    return total  # type: ignore[return-value]


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Any, loss_cfg: Any, num_classes: int, *, tta: str = "none",
             autocast: Any = None, reduce: Any = None) -> dict[str, Any]:
    """Evaluate in eval mode under inference_mode; statistics stay on the device until the end."""
    was_training = model.training
    model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
    # the full confusion matrix is k² counters: above MAX_CONFUSION classes only its diagonal and row sums
    full = num_classes <= MAX_CONFUSION
    confusion = torch.zeros(num_classes * num_classes if full else 2 * num_classes, device=dev, dtype=torch.int64)
    try:
        for x, y in loader.epoch(0):
            with autocast() if autocast else _null():
                logits = A.tta_logits(model, x, tta)
            logits = logits.float()
            per = F.cross_entropy(logits, y, reduction="sum")
            loss_sum += per.double()
            pred = logits.argmax(1)
            if full:
                confusion += torch.bincount((y * num_classes + pred).flatten(), minlength=num_classes ** 2)
            else:  # [correct per class, count per class]
                y, hit = y.flatten(), (pred == y).flatten().long()
                confusion += torch.cat([torch.bincount(y, hit, num_classes), torch.bincount(y, minlength=num_classes)]).long()
    finally:
        model.train(was_training)
    if reduce is not None:
        loss_sum, confusion = reduce(loss_sum), reduce(confusion)
    if full:
        conf = confusion.view(num_classes, num_classes).cpu()
        hits, counts = conf.diag(), conf.sum(1)
    else:
        conf, (hits, counts) = None, confusion.view(2, num_classes).cpu()
    n, correct = int(counts.sum()), int(hits.sum())
    per_class = (hits.double() / counts.clamp_min(1).double()).tolist()
    return {"loss": float(loss_sum) / max(n, 1), "acc": correct / max(n, 1), "n": n,
            "per_class_acc": per_class, "confusion": conf.tolist() if conf is not None else None}


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


@torch.no_grad()
def init_whitening(model: nn.Module, images: torch.Tensor, eps: float = 5e-4) -> list[str]:
    """Initialise every conv marked ``cnndsl_init = "whiten"`` from patch statistics of ``images``
    (normalized, N x C x H x W): eigenvectors of the patch covariance / sqrt(eigval + eps),
    concatenated with their negation (airbench). Returns the names initialised."""
    done = []
    for name, m in model.named_modules():
        if not (isinstance(m, nn.Conv2d) and getattr(m, "cnndsl_init", None) == "whiten"):
            continue
        kh, kw = m.kernel_size
        c = m.in_channels
        if images.shape[1] != c:
            continue
        x = images[:5000].to(m.weight.device, torch.float32)
        patches = F.unfold(x, (kh, kw)).transpose(1, 2).reshape(-1, c * kh * kw)
        cov = patches.T @ patches / max(patches.shape[0] - 1, 1)
        evals, evecs = torch.linalg.eigh(cov.double())
        order = evals.argsort(descending=True)
        evals, evecs = evals[order].float(), evecs[:, order].float()
        filt = (evecs.T / torch.sqrt(evals.clamp_min(0) + eps)[:, None]).reshape(-1, c, kh, kw)
        half = m.out_channels // 2
        w = torch.cat([filt[:half], -filt[:half]])
        if w.shape[0] < m.out_channels:  # odd or wider than 2 * C * k * k: keep the default init
            w = torch.cat([w, m.weight[w.shape[0]:].float()])
        m.weight.copy_(w.to(m.weight.dtype))
        done.append(name)
    return done
