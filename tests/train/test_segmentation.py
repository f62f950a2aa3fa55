"""Per-pixel classification: a U-Net-like spec trains on synthetic masks with per-pixel cross-entropy."""

import json
import textwrap

import pytest

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.train.run import run_train

SPEC = textwrap.dedent("""
    network TinySeg(num_classes = 3) {
        input 3x16x16
        enc: { conv(8, k=3, p=1) batchnorm relu }
        maxpool(2)
        conv(16, k=3, p=1) relu
        conv_transpose(8, k=2, s=2)
        concat(enc)
        head: conv(num_classes, k=1)
    }
    train {
        data: synthetic(task = segmentation, num_train = 96, num_val = 32, num_classes = 3)
        epochs: 6
        batch_size: 16
        optimizer: adam(lr = 0.01)
        device: cpu
    }
""")


def test_per_pixel_cross_entropy_learns_the_masks(tmp_path):
    spec = cnndsl.parse(SPEC)
    res = run_train(spec, run_dir=str(tmp_path / "r"), quiet=True, progress=False)
    assert res.status == "completed"
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_acc"] > 0.9          # per-pixel accuracy; chance is 1/3
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_spatial_augmentation_of_masks_is_refused(tmp_path):
    spec = cnndsl.parse(SPEC.replace("device: cpu", "device: cpu\n    augment: [hflip]"))
    with pytest.raises(CnnError, match="per-pixel targets"):
        run_train(spec, run_dir=str(tmp_path / "r"), quiet=True, progress=False)


def test_classifier_on_per_pixel_targets_is_refused(tmp_path):
    spec = cnndsl.parse(SPEC.replace("head: conv(num_classes, k=1)", "global_avgpool flatten linear(3)"))
    with pytest.raises(CnnError, match="per-pixel targets"):
        run_train(spec, run_dir=str(tmp_path / "r"), quiet=True, progress=False)
