"""Reading one image file as uint8 C×H×W: regular files only (a FIFO or /dev/zero is refused at once),
size-capped, and every pixel format converted to 8 bits by its meaning — 16-bit grey and colour are
scaled (65535 → 255), never clipped; palette, alpha, CMYK, 1-bit and LA are converted as torchvision's
loader does (alpha dropped); formats without a fixed range (32-bit integer or float) are refused."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch

from cnndsl.errors import CnnError, error
from cnndsl.files import file_span, read_regular_file

MAX_IMAGE_BYTES = 256 << 20  # larger image files are refused before decoding
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}


def _scale16(im):
    """A 16-bit grey image → 8-bit 'L', rounding v · 255 / 65535."""
    from PIL import Image

    a = np.asarray(im).astype(np.uint32)
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")


def to_8bit(im, channels: int, path: str):
    """A PIL image in any mode → 'L' (channels 1) or 'RGB' (channels 3), 8 bits per channel."""
    mode = im.mode
    if mode in _SIXTEEN_BIT or (mode == "I" and im.format == "PNG"):  # PNG greys are at most 16 bits
        im = _scale16(im)
    elif mode in ("I", "F"):
        kind = "32-bit integer" if mode == "I" else "floating-point"
        raise error(f"this image has {kind} pixels (mode {mode}), which have no fixed range", file_span(path),
                    "save it as an 8- or 16-bit PNG or JPEG")
    elif mode in ("P", "PA") and ("transparency" in im.info or mode == "PA"):
        im = im.convert("RGBA")  # apply the palette and its transparency before dropping alpha
    if channels == 1:
        return im.convert("RGB").convert("L") if im.mode in ("LAB", "HSV") else im.convert("L")
    return im.convert("RGB")


def read_image(path: str, size: tuple[int, int] | None, channels: int) -> torch.Tensor:
    """Read one image file as uint8 C × H × W, resized to ``size`` (H, W) if given."""
    from PIL import Image

    data = read_regular_file(path, MAX_IMAGE_BYTES, "image", where=file_span(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                rgb = to_8bit(im, channels, path)
                if size is not None and (rgb.height, rgb.width) != tuple(size):
                    rgb = rgb.resize((size[1], size[0]), Image.BILINEAR)
                arr = np.asarray(rgb, dtype=np.uint8)
    except CnnError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise error(f"cannot read this image: {type(exc).__name__}: {exc}", file_span(path),
                    "is it a PNG, JPEG, BMP, GIF, WebP or TIFF file?") from None
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()
