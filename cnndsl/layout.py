"""Which axis of a per-sample shape is which: channels, height, width (a leaf: no imports).

Shapes are tuples without the batch dimension. A plain tuple of rank 3 is a C×H×W map and one of
rank 1 a vector of features (channels); every op the language had before ``permute`` and
``reshape`` makes one of those. ``permute`` moves the axes (ConvNeXt's ``permute(0, 2, 3, 1)`` gives
H×W×C) and ``reshape`` to a rank other than 1 or 3 makes axes with no meaning; their outputs are
:class:`AxesShape` tuples that carry the layout, so later ops can refuse a layout they would
misread (a convolution over H×W×C) and the receptive-field analysis can follow H and W wherever
they moved. Ops that keep their input's shape return it unchanged, so the layout flows through
activations and norms by itself.
"""

from __future__ import annotations

STANDARD = {1: "C", 3: "CHW"}


class AxesShape(tuple):
    """A shape whose axes are not the standard C×H×W (or a vector): ``axes`` names each one — C, H,
    W, or ? (unknown, after a reshape). Compares equal to the plain tuple of the same sizes."""

    axes: str

    def __new__(cls, dims, axes: str) -> "AxesShape":
        obj = super().__new__(cls, dims)
        if len(axes) != len(obj):
            raise ValueError(f"{len(obj)} dimensions but axes {axes!r}")
        obj.axes = axes
        return obj

    def __getnewargs__(self):  # pickling and copying keep the layout
        return tuple(self), self.axes


def axes_of(shape: tuple[int, ...]) -> str:
    """One letter per axis: ``CHW`` for a plain map, ``C`` for a vector, ``HWC`` after permute."""
    axes = getattr(shape, "axes", None)
    return axes if axes is not None else STANDARD.get(len(shape), "?" * len(shape))


def laid_out(dims: tuple[int, ...], axes: str) -> tuple[int, ...]:
    """``dims`` with the layout ``axes``: a plain tuple when that is the standard one."""
    dims = tuple(dims)
    return dims if STANDARD.get(len(dims)) == axes else AxesShape(dims, axes)


def is_standard(shape: tuple[int, ...]) -> bool:
    return axes_of(shape) == STANDARD.get(len(shape))


def axes_text(shape: tuple[int, ...]) -> str:
    """``H×W×C`` for a permuted shape, ``axes unknown`` after a reshape, ``""`` for standard ones."""
    if is_standard(shape):
        return ""
    axes = axes_of(shape)
    return "axes unknown" if "?" in axes else "×".join(axes)


def spatial_extent(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(H, W) of a shape that has both axes, wherever they are."""
    axes = axes_of(shape)
    if "H" in axes and "W" in axes:
        return shape[axes.index("H")], shape[axes.index("W")]
    return None


def to_standard(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The dims (batch included) of the ``permute`` that restores C×H×W, if the axes are known."""
    axes = axes_of(shape)
    if sorted(axes) != sorted("CHW"):
        return None
    return (0, *(axes.index(a) + 1 for a in "CHW"))
