"""Fixtures for the inspect commands: tiny specs, a run directory in the runner's real formats,
image files of several kinds, and a reader that checks a written picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

TINY = """
block Res(c) {
    residual {
        conv1: conv(c, k=3, p=1)
        bn: batchnorm
        relu
        conv2: conv(c, k=3, p=1)
    }
    relu
}

network Tiny(num_classes = 3) {
    input 3x16x16
    conv1: conv(4, k=3, p=1)
    bn1: batchnorm
    relu
    stage: Res(4) x2
    pool: maxpool(2)
    conv2: conv(6, k=3, p=1)
    relu
    global_avgpool
    flatten
    fc: linear(num_classes)
}

train {
    data: synthetic(num_train = 16, num_val = 8)
    epochs: 1
    batch_size: 8
    device: cpu
}
"""

GRAY = """
network Gray {
    input 1x12x12
    conv1: conv(3, k=3, p=1)
    relu
    conv2: conv(4, k=3, s=2, p=1)
    relu
    global_avgpool
    flatten
    fc: linear(2)
}
"""


@pytest.fixture(scope="session")
def resnet_pair():
    """cnndsl's specs/resnet18.cnn and torchvision's resnet18 with the same (random) weights, eval mode."""
    import torch
    import torchvision

    import cnndsl

    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    ours = cnndsl.build(Path(__file__).resolve().parents[2] / "specs" / "resnet18.cnn").eval()
    ours.load_state_dict(tv.state_dict())
    return ours, tv


@pytest.fixture(scope="session")
def specs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("specs")
    out = {}
    for name, text in (("tiny", TINY), ("gray", GRAY)):
        (d / f"{name}.cnn").write_text(text)
        out[name] = d / f"{name}.cnn"
    return out


def _metrics(run: Path, epochs: int, seed: int) -> None:
    from cnndsl.train.metrics import RunLogger

    rng = np.random.default_rng(seed)
    log = RunLogger(run)
    for e in range(1, epochs + 1):
        log.log_epoch({"epoch": e, "step": 2 * e, "train_loss": 1.5 / e + rng.random() * 0.1,
                       "train_acc": 1 - 0.6 / e, "lr": 0.1 * (1 - e / (epochs + 1)), "images_per_s": 100.0,
                       "seconds": 0.5, "val_loss": 1.4 / e, "val_acc": 1 - 0.5 / e})
    log.close()


@pytest.fixture(scope="session")
def run_dir(specs, tmp_path_factory) -> Path:
    """A run directory like ``cnndsl train`` writes: last.pt (a checkpoint of the tiny network with
    its weights changed from the initial ones), data.json and metrics.jsonl/csv."""
    import torch

    import cnndsl
    from cnndsl.train.checkpoint import save_atomic

    d = tmp_path_factory.mktemp("runs") / "tiny" / "20260101-000000"
    d.mkdir(parents=True)
    torch.manual_seed(1)
    model = cnndsl.build(cnndsl.load(specs["tiny"]))
    with torch.no_grad():
        model.fc.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))  # class 1 wins: a checkable "trained" network
    save_atomic({"model": model.state_dict(), "epoch": 3}, d / "last.pt")
    (d / "data.json").write_text(json.dumps({"name": "synthetic", "classes": ["cat", "dog", "bird"],
                                             "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                                             "shape": [3, 16, 16], "params": {}}))
    _metrics(d, 4, 0)
    return d


@pytest.fixture(scope="session")
def other_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("runs") / "other" / "20260102-000000"
    d.mkdir(parents=True)
    _metrics(d, 6, 1)
    return d


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    """rgb (20x24), gray (16x16), rgba (16x16), corrupt (not an image)."""
    from PIL import Image

    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:20, 0:24]
    rgb = np.stack([xx * 10, yy * 12, (xx + yy) * 5], axis=2).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(d / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8), "L").save(d / "gray.png")
    Image.fromarray(rng.integers(0, 255, (16, 16, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return {p.stem: p for p in d.iterdir()}


@pytest.fixture
def picture():
    """``picture(path, width, height)``: read back a written PNG, check its size and that it is not
    blank; returns the pixels."""
    def check(path: Path, width: int, height: int) -> np.ndarray:
        import matplotlib.image

        assert path.is_file() and path.stat().st_size > 0
        pixels = matplotlib.image.imread(str(path))
        assert pixels.shape[:2] == (height, width), pixels.shape
        assert float(pixels[..., :3].std()) > 0.01, "the picture is (nearly) one colour"
        return pixels
    return check
