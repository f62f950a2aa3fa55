"""All ops, one registry. Importing this package registers every op family."""

from . import act, conv, linear, merge, norm, pool, reshape, residual, split  # noqa: F401  (registration)
from .base import REGISTRY, Op, Shape, ShapeError

__all__ = ["REGISTRY", "Op", "Shape", "ShapeError"]
