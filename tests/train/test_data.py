"""Datasets in their real on-disk formats, read through the real code path."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from cnndsl.errors import CnnError
from cnndsl.train import config as C
from cnndsl.train.data import load


def _cfg(**kw):
    return C.TrainConfig.model_validate({"data": kw}).data


def write_cifar(root, n=20, kind="cifar10"):
    rng = np.random.default_rng(0)
    if kind == "cifar10":
        d = root / "cifar-10-batches-py"
        names, key = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels"
    else:
        d = root / "cifar-100-python"
        names, key = ["train", "test"], "fine_labels"
    d.mkdir(parents=True)
    for name in names:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, n))
        with open(d / name, "wb") as f:
            pickle.dump({"data": data, key: [int(v) for v in labels], "filenames": ["x"] * n}, f)
    return d


def write_idx(path, arr, gz=False):
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    opener = gzip.open if gz else open
    with opener(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(header + arr.tobytes())


def write_mnist(root, sub="MNIST", n=30, gz=False):
    raw = root / sub / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n), gz)


def test_cifar10_pickle_batches(tmp_path):
    write_cifar(tmp_path)
    d = load(_cfg(type="cifar10", root=str(tmp_path), download=False))
    assert d.train.images.shape == (100, 3, 32, 32) and d.train.images.dtype == torch.uint8
    assert d.val.images.shape == (20, 3, 32, 32) and d.num_classes == 10
    # the pixel layout is CIFAR's: 1024 red, then green, then blue values, row-major
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f)
    assert torch.equal(d.train.images[0, 1].flatten(), torch.from_numpy(raw["data"][0, 1024:2048]))
    assert d.train.labels[:20].tolist() == raw["labels"]


def test_svhn_mat_files(tmp_path):
    """SVHN's .mat layout: X is H x W x C x N, labels 1..10 with 10 meaning the digit 0."""
    savemat = pytest.importorskip("scipy.io").savemat
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (32, 32, 3, 12), dtype=np.uint8)
    y = np.array([[10], [1], [2], [3], [4], [5], [6], [7], [8], [9], [10], [1]], dtype=np.uint8)
    for split in ("train", "test"):
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
    d = load(_cfg(type="svhn", root=str(tmp_path), download=False))
    assert d.train.images.shape == (12, 3, 32, 32) and d.num_classes == 10
    assert torch.equal(d.train.images[3], torch.from_numpy(x[:, :, :, 3]).permute(2, 0, 1))
    assert d.train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_cifar100_and_val_fraction(tmp_path):
    write_cifar(tmp_path, n=40, kind="cifar100")
    d = load(_cfg(type="cifar100", root=str(tmp_path), download=False, val_fraction=0.25))
    assert len(d.train) + len(d.val) == 40 and len(d.val) >= 8 and d.test is not None
    assert d.num_classes == 100


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("kind, sub", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_mnist_idx_files(tmp_path, gz, kind, sub):
    write_mnist(tmp_path, sub, gz=gz)
    d = load(_cfg(type=kind, download=False), data_root=str(tmp_path))
    assert d.train.images.shape == (30, 1, 28, 28) and d.val.labels.shape == (30,)


def test_missing_files_error_names_files_and_root(tmp_path):
    with pytest.raises(CnnError) as ei:
        load(_cfg(type="cifar10", root=str(tmp_path / "nowhere"), download=False))
    text = ei.value.render()
    assert "data_batch_1" in text and "test_batch" in text and "nowhere" in text and "--data-root" in text


def test_corrupt_idx_is_a_clear_error(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "MNIST/raw/train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03junk")
    with pytest.raises(CnnError, match="train-images-idx3-ubyte"):
        load(_cfg(type="mnist", root=str(tmp_path), download=False))


def test_cifar_unpickler_refuses_code(tmp_path):
    d = write_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(CnnError, match="not allowed"):
        load(_cfg(type="cifar10", root=str(tmp_path), download=False))
    assert not marker.exists()


def test_digits_and_mnist5k_offline():
    d = load(_cfg(type="digits"))
    assert d.train.images.shape[1:] == (1, 8, 8) and len(d.train) + len(d.val) == 1797
    m = load(_cfg(type="mnist5k", val_fraction=0.2))
    assert len(m.train) == 4000 and len(m.val) == 1000
    assert torch.bincount(m.val.labels).tolist() == [100] * 10  # stratified
    m2 = load(_cfg(type="mnist5k", val_fraction=0.2))
    assert torch.equal(m.val.labels, m2.val.labels) and torch.equal(m.val.images, m2.val.images)



def test_per_class_keeps_k_training_images_and_the_same_val_split():
    """Few-label runs (bench/transfer.py): k training digits per class, drawn from the full
    training split, a different draw per split_seed; the validation split does not change."""
    full = load(_cfg(type="digits", val_fraction=0.5, split_seed=1))
    few = load(_cfg(type="digits", val_fraction=0.5, split_seed=1, per_class=5))
    assert torch.bincount(few.train.labels).tolist() == [5] * 10
    assert torch.equal(few.val.images, full.val.images) and torch.equal(few.val.labels, full.val.labels)
    rows = {tuple(x.flatten().tolist()) for x in full.train.images}
    assert all(tuple(x.flatten().tolist()) in rows for x in few.train.images)
    other = load(_cfg(type="digits", val_fraction=0.5, split_seed=2, per_class=5))
    assert not torch.equal(other.train.images, few.train.images)
    with pytest.raises(ValueError):
        _cfg(type="digits", per_class=0)

def test_synthetic_uses_network_shape():
    d = load(_cfg(type="synthetic", num_train=10, num_val=4), shape=(1, 12, 12), num_classes=3)
    assert d.train.images.shape == (10, 1, 12, 12) and d.num_classes == 3


def test_imagefolder_split_and_loading(tmp_path):
    from PIL import Image
    for c, color in (("cat", 40), ("dog", 200)):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.new("RGB", (10 + i, 12), (color, color, color)).save(tmp_path / c / f"{i}.png")
    d = load(_cfg(type="imagefolder", root=str(tmp_path), size=8, val_fraction=0.4))
    assert d.classes == ["cat", "dog"] and len(d.train) == 6 and len(d.val) == 4
    from cnndsl.train.data import read_image
    img = read_image(d.train.files[0], d.train.size, 3)
    assert img.shape == (3, 8, 8) and img.dtype == torch.uint8
