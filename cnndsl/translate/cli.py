"""``cnndsl import MODULE:FACTORY(ARGS) -o FILE``: argparse registration (imports only argparse)
and the command (which imports torch and the named module)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence


def register(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add the ``import`` subcommand (it takes a model, not a spec)."""
    p = sub.add_parser(
        "import", help="write a PyTorch model (torchvision:resnet18, pkg.module:factory(...)) as a spec",
        description="Trace a model made by a Python factory with torch.fx and write it as a cnndsl spec: "
                    "repeated modules become blocks and repeats, module names are kept so the model's "
                    "state_dict loads into the compiled spec. The factory's module is imported and the "
                    "factory called: name only code you trust (as with python -c). Arguments are read "
                    "as Python literals, never evaluated.")
    p.add_argument("model", metavar="MODEL",
                   help="MODULE:FACTORY or MODULE:FACTORY(ARGS), e.g. torchvision:resnet18, "
                        "torchvision.models:mobilenet_v2(num_classes=10)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write FILE (.cnn, or .yaml/.yml for YAML) instead of printing the .cnn text")
    p.add_argument("--input", metavar="CxHxW", default="3x224x224",
                   help="input size the spec declares and the model is traced at (default: 3x224x224)")
    p.add_argument("--check", action="store_true",
                   help="compile the written spec, load the model's state_dict strictly and compare outputs")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    p.set_defaults(func=cmd_import)


def input_shape(text: str) -> tuple[int, ...]:
    """``3x224x224`` → (3, 224, 224); an error names the flag."""
    from ..errors import error

    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise error(f"--input: expected CxHxW with whole numbers, got {text!r}", None, "e.g. --input 3x224x224")
    return tuple(int(p) for p in parts)


def cmd_import(args: argparse.Namespace) -> int:
    from ..errors import error
    from ..syntax.format import format_cnn, format_yaml
    from .importer import import_spec, make_model, parse_factory, round_trip

    shape = input_shape(args.input)
    out = args.output
    fmt = "yaml" if out and out.lower().endswith((".yaml", ".yml")) else "cnn"
    if out and fmt == "cnn" and not out.endswith(".cnn"):
        raise error(f"-o/--output: {out!r} must end in .cnn, .yaml or .yml", None, "e.g. -o resnet18.cnn")
    factory = parse_factory(args.model)
    spec = import_spec(factory, shape)
    text = (format_yaml if fmt == "yaml" else format_cnn)(spec)
    text = _header(factory) + text
    if out:
        try:
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise error(f"-o/--output: cannot write {out}: {exc.strerror or exc}", None,
                        "check that the folder exists and is writable") from None
    else:
        sys.stdout.write(text)
    lines = text.count("\n")
    blocks = len(spec.blocks)
    where = f"wrote {out}" if out else "spec"
    print(f"{where}: {lines} lines, {blocks} block definition(s), network {spec.network.name}",  # type: ignore[union-attr]
          file=sys.stderr)
    if args.check:
        res = round_trip(text, make_model(factory, "cpu"), shape, fmt)
        verdict = "ok" if res["layout"] and res["outputs"] else "MISMATCH"
        print(f"round trip {verdict}: state_dict {'same keys and shapes' if res['layout'] else 'differs'}, "
              f"strict load ok, max |output difference| {res['max_diff']:.2e}", file=sys.stderr)
        if verdict != "ok":
            return 1
    return 0


def _header(factory: Any) -> str:
    return f"# Imported from {factory} by cnndsl import; its state_dict loads into this network.\n"
