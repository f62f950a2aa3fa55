"""Export: a network with its weights → ONNX, torch.export (.pt2), TorchScript or safetensors.

    from cnndsl.export import export_network, load_safetensors
    export_network(cnndsl.load("spec.cnn"), "onnx", "model.onnx", checkpoint="runs/spec/2024-…")

Importing this package imports no torch; the functions do when they run.
"""

from __future__ import annotations

from typing import Any


def export_network(*args: Any, **kwargs: Any):
    """See :func:`cnndsl.export.core.export_network`."""
    from .core import export_network as run

    return run(*args, **kwargs)


def load_safetensors(model: Any, path: Any):
    """Load a safetensors file into a built network, strictly (a mismatch table on error)."""
    from .weights import load_safetensors as run

    return run(model, path)


def save_safetensors(model: Any, path: Any, metadata: dict[str, str] | None = None):
    """Write a network's state_dict as safetensors."""
    from .weights import save_safetensors as run

    return run(model, path, metadata)


__all__ = ["export_network", "load_safetensors", "save_safetensors"]
