"""Image files for a network's input (channel conversion and resizing, said out loud), and mosaics.

No torch here: images are numpy ``uint8`` arrays H x W x C; mosaics are float arrays.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from ..errors import error

_MODE_NAMES = {"1": "black-and-white", "L": "grayscale", "LA": "grayscale with alpha", "P": "palette",
               "RGB": "RGB", "RGBA": "RGB with alpha", "CMYK": "CMYK", "I;16": "16-bit grayscale",
               "I": "32-bit grayscale", "F": "floating-point grayscale", "YCbCr": "YCbCr"}
_TARGET_MODE = {1: "L", 3: "RGB"}


def read_for_network(path: str | os.PathLike, shape: Sequence[int], flag: str = "--image"
                     ) -> tuple[np.ndarray, list[str]]:
    """Read ``path`` as a ``uint8`` H x W x C image for a network whose input is ``shape`` (C, H, W).

    Returns the image and notes saying what was changed (channels converted, resized and cropped).
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = (int(v) for v in shape)
    if c not in _TARGET_MODE:
        raise error(f"{flag}: the network takes {c}-channel input; image files give 1 (grayscale) or 3 (RGB)",
                    None, "use --sample N to take an input from the spec's dataset")
    try:
        with Image.open(path) as im:
            im.load()
            src_mode = im.mode
            img = _convert(im, c)
    except FileNotFoundError:
        raise error(f"{flag}: image {path} does not exist", None, "check the path") from None
    except IsADirectoryError:
        raise error(f"{flag}: {path} is a directory, not an image", None, "give an image file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise error(f"{flag}: cannot read image {path}: {exc}", None,
                    "give a PNG, JPEG, BMP, GIF, TIFF or WebP file") from None
    notes = []
    src_channels = len(Image.new(src_mode, (1, 1)).getbands()) if src_mode in _MODE_NAMES else None
    wanted = _TARGET_MODE[c]
    if src_mode != wanted:
        what = _MODE_NAMES.get(src_mode, src_mode)
        count = f" ({src_channels} channels)" if src_channels and src_channels > 1 else ""
        into = "grayscale" if c == 1 else "RGB"
        notes.append(f"{path} is {what}{count}; the network takes {c} channel{'s' if c > 1 else ''}: "
                     f"converted to {into}")
    if (img.height, img.width) != (h, w):
        notes.append(f"{path} is {img.width}×{img.height}; resized to cover {w}×{h} and cropped the centre")
        img = _cover_crop(img, h, w)
    arr = np.asarray(img, dtype=np.uint8)
    return (arr[:, :, None] if arr.ndim == 2 else arr).copy(), notes


def _convert(im, channels: int):
    """Grayscale or RGB; alpha is composited on white, palettes are expanded first."""
    from PIL import Image

    if im.mode in ("I;16", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        im = Image.fromarray(((a - lo) / (hi - lo or 1) * 255).round().astype(np.uint8), "L")
    if im.mode == "P" or im.mode in ("LA", "RGBA", "PA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert(_TARGET_MODE[channels])


def _cover_crop(img, h: int, w: int):
    from PIL import Image

    scale = max(h / img.height, w / img.width)
    nh, nw = max(h, round(img.height * scale)), max(w, round(img.width * scale))
    img = img.resize((nw, nh), Image.BILINEAR)
    top, left = (nh - h) // 2, (nw - w) // 2
    return img.crop((left, top, left + w, top + h))


def normalize_each(maps: np.ndarray) -> np.ndarray:
    """Scale each map (first axis) to [0, 1] on its own; constant maps become 0."""
    m = maps.astype(np.float64)
    axes = tuple(range(1, m.ndim))
    lo, hi = m.min(axis=axes, keepdims=True), m.max(axis=axes, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (m - lo) / span, 0.0)


def columns_for(n: int, tile_h: int, tile_w: int, box_aspect: float) -> int:
    """The column count that draws ``n`` tiles largest in a box of width/height ``box_aspect``;
    among layouts within 15 % of the largest, the one with the fewest empty cells."""
    def scale(cols: int) -> float:
        rows = math.ceil(n / cols)
        return min(box_aspect / (cols * (tile_w + 1)), 1 / (rows * (tile_h + 1)))

    best = max(scale(c) for c in range(1, n + 1))
    good = [c for c in range(1, n + 1) if scale(c) >= 0.85 * best]
    return min(good, key=lambda c: (math.ceil(n / c) * c - n, -scale(c)))


def tile(maps: np.ndarray, cols: int, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """Arrange maps (N x h x w, or N x h x w x 3) in a grid with ``pad`` pixels of ``fill`` between."""
    n, th, tw = maps.shape[:3]
    rows = math.ceil(n / cols)
    extra = maps.shape[3:]
    out = np.full((rows * (th + pad) - pad, cols * (tw + pad) - pad, *extra), fill, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (th + pad): r * (th + pad) + th, c * (tw + pad): c * (tw + pad) + tw] = maps[i]
    return out
