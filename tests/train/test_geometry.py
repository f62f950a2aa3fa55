"""Geometry that adapts data to the network applies to every split (issue 7, item 3): resize and
the grayscale/rgb conversions run on training, validation, eval and predict images alike."""

import numpy as np
import pytest
import torch

import cnndsl
from cnndsl.train import augment as A
from cnndsl.train import config as C
from cnndsl.train.run import run_train
from cnndsl.train.data import Split
from cnndsl.train.loader import make_loader

# the reproducer, on 8×8 images: a network whose flatten/linear needs exactly 16×16
RESIZE = """network Net {
    input 1x16x16
    conv(8, k=3, p=1) relu maxpool(2)
    flatten
    linear(10)
}
train {
    data: synthetic(num_train = 96, num_val = 48, shape = [1, 8, 8], num_classes = 10)
    epochs: 1
    batch_size: 32
    augment: [resize(16)]
    device: cpu
}
"""


@pytest.mark.parametrize("loader", ["dataloader", "device"])
def test_resize_applies_to_validation_too(tmp_path, loader):
    """Training used to resize and validation not: a full epoch, then a RuntimeError in validation."""
    res = run_train(cnndsl.parse(RESIZE), overrides={"loader": loader}, run_dir=str(tmp_path), progress=False)
    assert res.status == "completed" and res.val_acc is not None and res.steps == 3


def test_rgb_feeds_gray_data_to_a_colour_network(tmp_path):
    spec = cnndsl.parse(RESIZE.replace("1x16x16", "3x8x8").replace("[resize(16)]", "[rgb]")
                        .replace("maxpool(2)", "maxpool(2) conv(8, k=1)"))
    res = run_train(spec, run_dir=str(tmp_path), progress=False)
    assert res.status == "completed" and res.model.get_submodule("0").in_channels == 3


def _items(*raw):
    return C.validate({"data": "digits", "augment": list(raw)}).augment


def test_the_sample_and_batch_paths_agree_at_evaluation():
    """Validation may run either loader; predict uses the batch path: all give the same images."""
    items = _items({"type": "resize", "size": 16}, "rgb")
    imgs = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    mean, std = (0.3,), (0.4,)
    batch = A.eval_images(imgs, items, mean, std)
    pipe = A.SamplePipeline(items, mean, std, train=False)
    sample = torch.stack([pipe(im, 0, 0) for im in imgs])
    assert batch.shape == sample.shape == (4, 3, 16, 16)
    assert torch.allclose(batch, sample, atol=0.03)


def test_grayscale_is_pils_luminance():
    from PIL import Image
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    ours = A.ToChannels(1)(torch.from_numpy(rgb).permute(2, 0, 1))
    pil = np.asarray(Image.fromarray(rgb).convert("L"))
    assert ours.shape == (1, 9, 7) and np.abs(ours[0].numpy().astype(int) - pil.astype(int)).max() <= 1


def test_normalization_statistics_follow_the_conversion():
    assert A.norm_stats(_items("rgb"), [0.5], [0.2]) == ([0.5] * 3, [0.2] * 3)
    mean, std = A.norm_stats(_items("grayscale"), [1.0, 0.0, 0.0], [0.1, 0.1, 0.1])
    assert mean == [pytest.approx(0.299)] and std == [pytest.approx(0.1)]
    assert A.norm_stats(_items("rgb", {"type": "normalize", "mean": [0.1], "std": [0.2]}), [0.5], [0.2]) \
        == ([0.1], [0.2])


def test_random_geometry_has_a_deterministic_counterpart_at_evaluation():
    imgs = torch.arange(2 * 10 * 10, dtype=torch.uint8).view(2, 1, 10, 10)
    crop = A.eval_images(imgs, _items({"type": "random_crop", "size": 6}), [0.0], [1.0])
    assert torch.equal(crop, imgs[..., 2:8, 2:8].float() / 255)  # the centre
    rrc = A.eval_images(imgs, _items({"type": "random_resized_crop", "size": 4}), [0.0], [1.0])
    assert rrc.shape == (2, 1, 4, 4)
    pipe = A.SamplePipeline(_items({"type": "random_resized_crop", "size": 4}), [0.0], [1.0], train=False)
    assert pipe(imgs[0], 0, 0).shape == (1, 4, 4)


def test_validation_loader_sees_the_networks_size_whichever_path():
    split = Split(torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8), torch.arange(8) % 2)
    items = _items({"type": "resize", "size": 16}, "rgb")
    for kind in ("auto", "dataloader", "device"):
        ld = make_loader(split, items, [0.5], [0.2], kind=kind, batch_size=4, train=False, drop_last=False,
                         seed=0, device=torch.device("cpu"))
        x, _ = next(iter(ld.epoch(0)))
        assert x.shape == (4, 3, 16, 16), kind
