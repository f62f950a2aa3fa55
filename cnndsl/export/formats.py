"""The export formats, one table entry each: how to write a network, and how to read the file back
and run it (the round trip every export is verified with).

All four keep the batch dimension dynamic; channels and spatial sizes are the spec's static ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch
    from torch import nn

EXAMPLE_BATCH = 2  # traced with batch 2: torch.export specialises sizes 0 and 1


@dataclass
class Job:
    """What a writer needs: the network in eval mode, an example input, tensor names, metadata."""

    model: "nn.Module"
    example: "torch.Tensor"
    input_name: str
    output_names: list[str]
    metadata: dict[str, str]
    build: Callable[[], "nn.Module"]  # a fresh, randomly initialised network (for reloading weights)
    external_data: bool = False       # ONNX: weights in a side file (needed above 2 GB)


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    title: str
    requires: tuple[str, ...]                                  # Python modules the format needs
    write: Callable[[Job, Path], None]
    run: Callable[[Job, Path], Callable[["torch.Tensor"], list["torch.Tensor"]] | None]  # reload → a callable


def _outputs(value: Any) -> list["torch.Tensor"]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _batch_dim() -> dict[int, Any]:
    import torch

    return {0: torch.export.Dim("batch", min=1)}


def export_program(job: Job) -> "torch.export.ExportedProgram":
    """``torch.export`` with a dynamic batch dimension (shared by pt2 and onnx)."""
    import torch

    return torch.export.export(job.model, (job.example,), dynamic_shapes=(_batch_dim(),))


# ----------------------------------------------------------------------------- onnx


def _write_onnx(job: Job, path: Path) -> None:
    import torch

    program = export_program(job)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, (job.example,), input_names=[job.input_name],
                                         output_names=job.output_names, verbose=False, dynamo=True)
    model = onnx_program.model_proto
    for key, value in job.metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=job.external_data,
                    location=path.name + ".data" if job.external_data else None)
    onnx.checker.check_model(str(path))


def _run_onnx(job: Job, path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        return None  # the file was checked with onnx.checker only
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: [torch.from_numpy(y) for y in session.run(None, {name: x.numpy()})]


# ----------------------------------------------------------------------------- pt2


def _write_pt2(job: Job, path: Path) -> None:
    import torch

    torch.export.save(export_program(job), str(path), extra_files={"cnndsl.json": _json(job.metadata)})


def _run_pt2(job: Job, path: Path):
    import torch

    module = torch.export.load(str(path)).module()
    return lambda x: _outputs(module(x))


# ----------------------------------------------------------------------------- torchscript


def _write_torchscript(job: Job, path: Path) -> None:
    """``torch.jit.trace``: the network's forward runs a Python plan over its layers, which
    ``torch.jit.script`` cannot compile; tracing records the tensor operations. Every cnndsl layer
    is batch-independent, and the round trip checks two other batch sizes."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript in favour of export
        traced = torch.jit.trace(job.model, (job.example,), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"cnndsl.json": _json(job.metadata)})


def _run_torchscript(job: Job, path: Path):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return lambda x: _outputs(module(x))


# ----------------------------------------------------------------------------- safetensors


def _write_safetensors(job: Job, path: Path) -> None:
    from .weights import save_safetensors

    save_safetensors(job.model, path, job.metadata)


def _run_safetensors(job: Job, path: Path):
    from .weights import load_safetensors

    module = load_safetensors(job.build(), path).eval()
    return lambda x: _outputs(module(x))


def _json(meta: dict[str, str]) -> str:
    import json

    return json.dumps(meta, sort_keys=True)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ".onnx", "ONNX", ("onnx", "onnxscript"), _write_onnx, _run_onnx),
    Format("pt2", ".pt2", "torch.export", (), _write_pt2, _run_pt2),
    Format("torchscript", ".torchscript", "TorchScript", (), _write_torchscript, _run_torchscript),
    Format("safetensors", ".safetensors", "safetensors", ("safetensors",), _write_safetensors, _run_safetensors),
)}
