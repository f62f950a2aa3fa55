"""Export a network to a file other tools read (ONNX, torch.export, TorchScript, safetensors).

Every export is written into a temporary folder next to the destination, read back with the
format's own loader, run on random inputs of two batch sizes other than the traced one and compared
with the PyTorch network; only then is it moved into place. An exporter failure is reported as the
spec layer it failed on (:mod:`cnndsl.export.blame`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..canonical import spec_hash
from ..errors import CnnError, error
from .formats import EXAMPLE_BATCH, FORMATS, Format, Job
from .weights import Weights, load_state, read_weights

if TYPE_CHECKING:
    from ..analysis import Analysis
    from ..expand import Limits
    from ..ir import Spec

VERIFY_BATCHES = (1, 3)
ATOL, RTOL = 1e-4, 1e-3
EXTERNAL_DATA_BYTES = 1 << 31  # ONNX protobufs hold at most 2 GB: weights beyond go to a side file


@dataclass
class ExportResult:
    """What was written and how it was checked."""

    path: Path
    format: str
    files: list[Path]
    input_shape: tuple[int, ...]
    outputs: list[tuple[str, tuple[int, ...]]]
    verified: list[tuple[int, float]] | None  # (batch size, max |difference|) per checked batch
    checker: str                              # what ran the exported file
    notes: list[str] = field(default_factory=list)


def output_path(fmt_name: str | None, output: str | None, spec_path: str | None) -> tuple[Format, Path]:
    """The format (named, or from the file suffix) and a writable destination; errors name the flag."""
    by_suffix = {f.suffix: f for f in FORMATS.values()}
    if fmt_name is None:
        suffix = Path(output).suffix if output else ""
        if suffix not in by_suffix:
            raise error("--format is required" + (f" (the suffix of '{output}' names no format)" if output else ""),
                        None, "choose one of: " + ", ".join(FORMATS))
        fmt_name = by_suffix[suffix].name
    fmt = FORMATS[fmt_name]
    out = Path(output) if output else Path(Path(spec_path or "network").stem + fmt.suffix)
    other = by_suffix.get(out.suffix)
    if other is not None and other is not fmt:
        raise error(f"-o/--output: '{out}' has the suffix of the {other.name} format, but --format is {fmt.name}",
                    None, f"name the file '{out.with_suffix(fmt.suffix).name}', or use --format {other.name}")
    if out.is_dir():
        raise error(f"-o/--output: '{out}' is a directory", None, f"name a file, e.g. {out / ('model' + fmt.suffix)}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"-o/--output: the folder '{parent}' does not exist", None, "create it first, or write elsewhere")
    if not os.access(parent, os.W_OK):
        raise error(f"-o/--output: the folder '{parent}' is not writable", None, "write the file elsewhere")
    return fmt, out


def require(fmt: Format) -> None:
    """Refuse early (before building anything) when the format's Python packages are missing."""
    missing = [m for m in fmt.requires if importlib.util.find_spec(m) is None]
    if missing:
        raise error(f"the {fmt.name} format needs {', '.join(missing)}, which is not installed", None,
                    "pip install 'cnndsl[export]'")


def export_network(spec: "Spec", fmt_name: str | None, output: str | None = None, *,
                   checkpoint: str | os.PathLike | None = None, ema: bool = False,
                   params: dict[str, Any] | None = None, limits: "Limits | None" = None,
                   verify: bool = True) -> ExportResult:
    """Build ``spec``'s network with the weights of ``checkpoint`` (random ones when None) and write
    it as ``fmt_name`` to ``output`` (default: the spec's stem with the format's suffix)."""
    fmt, out = output_path(fmt_name, output, spec.path)
    require(fmt)
    weights = read_weights(checkpoint, ema=ema) if checkpoint is not None else None
    notes: list[str] = []
    analysis = _analysis(spec, params or {}, weights, limits, notes)
    import torch

    from ..api import build

    if weights is None:
        torch.manual_seed(0)
        notes.append("no --checkpoint: the weights are randomly initialised (seed 0) — fine for shape and "
                     "deployment tests, not for predictions")
    model = build(analysis).eval()
    if weights is not None:
        load_state(model, weights.state, weights.source)
        if weights.spec_hash and weights.spec_hash != spec_hash(spec):
            notes.append(f"{weights.source} was written for another version of the spec; its weights fit "
                         "this network's layout")
    job = _job(model, analysis, spec, weights)
    job.external_data = fmt.name == "onnx" and analysis.params * 4 >= EXTERNAL_DATA_BYTES
    with torch.no_grad():
        return _write_verified(fmt, job, out, analysis, verify, notes)


def _analysis(spec: "Spec", params: dict[str, Any], weights: Weights | None, limits: Any,
              notes: list[str]) -> "Analysis":
    from ..api import analyze

    declared = {p.name for p in spec.network.params} if spec.network else set()
    recorded = {k: v for k, v in (weights.params if weights else {}).items() if k in declared and k not in params}
    if recorded:
        shown = ", ".join(f"{k}={v}" for k, v in recorded.items())
        notes.append(f"network parameters recorded with the weights: {shown}")
    return analyze(spec, limits=limits, **{**recorded, **params})


def _job(model: Any, analysis: "Analysis", spec: "Spec", weights: Weights | None) -> Job:
    import torch

    from ..api import build
    from .. import __version__

    graph = analysis.graph
    names = _unique([graph.nodes[i].path for i in graph.outputs])
    meta = {"cnndsl_version": __version__, "network": graph.name,
            "spec": Path(spec.path).name if spec.path else "<string>", "spec_hash": spec_hash(spec),
            "params": json.dumps(graph.params, sort_keys=True, default=str),
            "input_shape": "x".join(map(str, graph.input.shape)), "outputs": json.dumps(names),
            "weights": Path(weights.source).name if weights else "random-init"}
    example = torch.randn(EXAMPLE_BATCH, *graph.input.shape, generator=torch.Generator().manual_seed(1))
    return Job(model, example, "input", names, meta, lambda: build(analysis))


def _unique(names: list[str]) -> list[str]:
    """Output names for the file (the same layer listed twice gets a suffix)."""
    out: list[str] = []
    for n in names:
        k, i = n, 1
        while k in out or k == "input":
            k, i = f"{n}_{i}", i + 1
        out.append(k)
    return out


def _write_verified(fmt: Format, job: Job, out: Path, analysis: "Analysis", verify: bool,
                    notes: list[str]) -> ExportResult:
    parent = out.parent if str(out.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=".cnndsl-export-", dir=parent))
    try:
        staged = tmp / out.name
        try:
            fmt.write(job, staged)
        except CnnError:
            raise
        except OSError as exc:
            raise error(f"could not write {out}: {exc.strerror or exc}", None, "check the disk and the folder") from None
        except Exception as exc:  # noqa: BLE001 - an exporter failure: name the layer
            raise _blame(exc, fmt, job, analysis) from None
        verified, checker = None, "not checked (--no-verify)"
        if verify:
            verified, checker = _verify(fmt, job, staged)
        files = []
        mode = _file_mode()
        for f in sorted(tmp.iterdir()):
            target = parent / f.name
            os.chmod(f, mode)  # as any new file (some writers create 0600 files)
            os.replace(f, target)
            files.append(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    graph = analysis.graph
    outputs = [(name, graph.nodes[i].shape) for name, i in zip(job.output_names, graph.outputs)]
    return ExportResult(out, fmt.name, files, graph.input.shape, outputs, verified, checker, notes)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _verify(fmt: Format, job: Job, path: Path) -> tuple[list[tuple[int, float]] | None, str]:
    """Reload the file with the format's loader and compare its outputs with the network's."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = fmt.run(job, path)
    if run is None:
        return None, "onnx.checker (onnxruntime is not installed, outputs not compared)"
    checker = _checker_name(fmt)
    gen = torch.Generator().manual_seed(2)
    results = []
    for batch in VERIFY_BATCHES:
        x = torch.randn(batch, *job.example.shape[1:], generator=gen)
        want = job.model(x)
        want = list(want) if isinstance(want, (tuple, list)) else [want]
        try:
            got = run(x)
        except Exception as exc:  # noqa: BLE001 - the file does not run at this batch size
            from .blame import first_line

            raise error(f"the exported {fmt.name} file does not run at batch size {batch}: {first_line(exc)}", None,
                        "the batch dimension may have been fixed while exporting; report this with --debug") from None
        worst = 0.0
        for name, a, b in zip(job.output_names, got, want):
            if tuple(a.shape) != tuple(b.shape):
                raise error(f"the exported {fmt.name} file gives output '{name}' of shape {tuple(a.shape)} at batch "
                            f"{batch}; PyTorch gives {tuple(b.shape)}")
            diff = (a.float() - b.float()).abs()
            bound = ATOL + RTOL * b.float().abs()
            if bool((diff > bound).any()):
                raise error(f"the exported {fmt.name} file differs from PyTorch: output '{name}' at batch {batch} "
                            f"by up to {diff.max().item():.3g} (tolerance {ATOL:g} + {RTOL:g}·|value|)", None,
                            "nothing was written; rerun with --no-verify to keep the file anyway")
            worst = max(worst, diff.max().item())
        results.append((batch, worst))
    return results, checker


def _checker_name(fmt: Format) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = {"onnx": "onnxruntime", "safetensors": "safetensors"}.get(fmt.name, "torch")
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return package


def _blame(exc: Exception, fmt: Format, job: Job, analysis: "Analysis") -> CnnError:
    """Find the layer an exporter failed on, and in which other formats that layer exports."""
    from .blame import export_error, from_program, probe_layers
    from .formats import export_program

    program = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = export_program(job)
    except Exception:  # noqa: BLE001 - torch.export itself failed; probing will find the layer
        pass
    node, op = from_program(exc, program, analysis)

    def attempt(f: Format):
        def run(j: Job) -> None:
            with tempfile.TemporaryDirectory() as d:
                f.write(j, Path(d) / ("probe" + f.suffix))
        return run

    def make_job(module: Any, example: Any, names: list[str]) -> Job:
        return Job(module, example, "input", names, {}, lambda: module)

    if node is None:
        node = probe_layers(analysis, job.model, attempt(fmt), make_job)
    works_in: list[str] = []
    if node is not None:
        for other in FORMATS.values():
            if other is fmt or other.name == "safetensors":
                continue
            if any(importlib.util.find_spec(m) is None for m in other.requires):
                continue
            if probe_layers(analysis, job.model, attempt(other), make_job, only=node.id) is None:
                works_in.append(other.name)
    return export_error(exc, fmt, analysis, node, op, works_in)

