"""``cnndsl export``: argparse registration (imports no torch) and the command."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

FORMAT_NAMES = ("onnx", "pt2", "safetensors", "torchscript")


def register(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser("export", parents=list(parents), help="write the network as ONNX, pt2, TorchScript or safetensors",
                       description="Export the network a spec describes, with trained weights, to a file other "
                                   "tools read. The file is read back and checked against PyTorch before it is "
                                   "moved into place.")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="weights: a checkpoint, a run directory or a .safetensors file "
                        "(default: random weights, for shape and deployment tests)")
    p.add_argument("--format", choices=FORMAT_NAMES, help="output format (default: from the -o suffix)")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: <spec name>.<format suffix>)")
    p.add_argument("--ema", action="store_true", help="export the EMA weights stored in the checkpoint")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip reading the file back and comparing its outputs with PyTorch")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..api import load
    from .core import export_network

    spec = load(args.spec)
    res = export_network(spec, args.format, args.output, checkpoint=args.checkpoint, ema=args.ema,
                         params=args.params, limits=args.limits, verify=args.verify)
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    size = sum(f.stat().st_size for f in res.files)
    shape = "×".join(["N", *map(str, res.input_shape)])
    outs = ", ".join(f"'{n}' " + "×".join(["N", *map(str, s)]) for n, s in res.outputs)
    extra = f" (+ {', '.join(f.name for f in res.files if f != res.path)})" if len(res.files) > 1 else ""
    print(f"wrote {res.path}{extra}: {res.format}, {_size(size)}; input 'input' {shape} → {outs}")
    if res.verified:
        diffs = ", ".join(f"{d:.2g} at batch {b}" for b, d in res.verified)
        print(f"verified with {res.checker}: max |difference| from PyTorch {diffs}")
    else:
        print(f"checked: {res.checker}")
    return 0


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)
