"""Image reading for predict and image folders (issue 6, item 21; item 3 for special files): every
bit depth and mode converted by its meaning, or refused; FIFOs and devices refused without blocking."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cnndsl.errors import CnnError
from cnndsl.train.run import run_predict, run_train
from cnndsl.train.images import read_image
from helpers import synthetic_train, tiny_spec


def png16(path, array: np.ndarray) -> None:
    """A real 16-bit PNG (grey: H×W, RGB: H×W×3, RGBA: H×W×4), written by hand: Pillow cannot
    write 16-bit colour, and the reader must not depend on how Pillow writes."""
    h, w = array.shape[:2]
    colour = 0 if array.ndim == 2 else (2 if array.shape[2] == 3 else 6)
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def gradient16(h=16, w=16, channels=0):
    base = (np.arange(h * w).reshape(h, w) * (65535 // (h * w - 1))).astype(np.uint16)
    return base if not channels else np.stack([base, base[::-1], 65535 - base, base][:channels], -1)


def to8(a16: np.ndarray) -> np.ndarray:
    return ((a16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def test_16_bit_grey_png_is_scaled_not_saturated(tmp_path):
    """Reproducer: 99.6 % of the pixels of a 16-bit PNG read as 255."""
    a = gradient16()
    png16(tmp_path / "g.png", a)
    got = read_image(str(tmp_path / "g.png"), None, 1)[0].numpy()
    assert (got == 255).mean() < 0.01 and np.abs(got.astype(int) - to8(a)).max() <= 1
    rgb = read_image(str(tmp_path / "g.png"), None, 3).numpy()
    assert all(np.array_equal(rgb[i], got) for i in range(3))


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png(tmp_path, channels):
    a = gradient16(channels=channels)
    png16(tmp_path / "c.png", a)
    got = read_image(str(tmp_path / "c.png"), None, 3).permute(1, 2, 0).numpy()
    assert np.abs(got.astype(int) - to8(a[..., :3])).max() <= 1


def _rgb():
    return np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "CMYK", "1", "L", "PA"])
def test_8_bit_modes_match_pillows_own_conversion(tmp_path, mode):
    """Palette, alpha, CMYK, 1-bit, LA: what torchvision's loader does (convert, alpha dropped)."""
    im = Image.fromarray(_rgb()).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "PA") else "x.png")
    im.save(path)
    want = np.asarray(Image.open(path).convert("RGBA" if mode in ("P", "PA") else mode).convert("RGB"))
    got = read_image(str(path), None, 3).permute(1, 2, 0).numpy()
    assert np.array_equal(got, want)


def test_palette_with_transparency(tmp_path):
    im = Image.fromarray(_rgb()).convert("P")
    im.info["transparency"] = 0
    im.save(tmp_path / "t.png", transparency=0)
    want = np.asarray(Image.open(tmp_path / "t.png").convert("RGBA").convert("RGB"))
    assert np.array_equal(read_image(str(tmp_path / "t.png"), None, 3).permute(1, 2, 0).numpy(), want)


def test_float_images_have_no_range_and_are_refused(tmp_path):
    Image.fromarray(np.ones((4, 4), np.float32) * 3.5, "F").save(tmp_path / "f.tif")
    with pytest.raises(CnnError, match="floating-point pixels"):
        read_image(str(tmp_path / "f.tif"), None, 3)


def test_fifo_and_devices_are_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opened for reading with no writer, it would block forever
    with pytest.raises(CnnError, match="FIFO") as ei:
        read_image(str(fifo), None, 3)
    assert ei.value.span.file == str(fifo)
    with pytest.raises(CnnError, match="character device"):
        read_image("/dev/zero", None, 3)
    with pytest.raises(CnnError, match="a directory"):
        read_image(str(tmp_path), None, 3)


def test_predict_on_a_16_bit_png_agrees_with_its_8_bit_version(tmp_path):
    """The top class of a 16-bit image and of the same image in 8 bits are the same."""
    spec = tiny_spec(synthetic_train(epochs=1))
    run_train(spec, run_dir=str(tmp_path / "run"), progress=False)
    a = (np.random.default_rng(1).integers(0, 65536, (8, 8))).astype(np.uint16)  # grey, as in the report
    png16(tmp_path / "x16.png", a)
    Image.fromarray(to8(a), "L").save(tmp_path / "x8.png")
    r16, r8 = run_predict(spec, tmp_path / "run", [tmp_path / "x16.png", tmp_path / "x8.png"], top_k=4)
    assert [t["class"] for t in r16["top"]] == [t["class"] for t in r8["top"]]
    assert [t["prob"] for t in r16["top"]] == pytest.approx([t["prob"] for t in r8["top"]], abs=0.02)
