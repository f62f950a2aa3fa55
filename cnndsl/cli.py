"""The ``cnndsl`` command line. Thin: parse arguments, call one library function, return an exit code.

torch is imported only by commands that build a module (``compile`` without ``--summary``,
``--torchinfo``, ``train``...): ``cnndsl check`` and ``cnndsl --help`` stay fast.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, Sequence

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


# ----------------------------------------------------------------------------- shared options


def parse_set(items: Sequence[str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """``--set name=value`` → (network parameters, train overrides keyed ``a.b`` without 'train.')."""
    from .errors import error
    from .expr import Env, Symbol, evaluate
    from .syntax.parse import parse_expr

    params: dict[str, Any] = {}
    train: dict[str, str] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise error(f"--set expects NAME=VALUE, got '{item}'", None, "e.g. --set num_classes=10")
        if name.startswith("train."):
            train[name[len("train."):]] = text.strip()
            continue
        value = evaluate(parse_expr(text.strip(), "--set"), Env({}))
        params[name] = str(value) if isinstance(value, Symbol) else value
    return params, train


def limits_from(args: argparse.Namespace):
    from .expand import Limits

    kw = {}
    if getattr(args, "max_params", None) is not None:
        kw["max_params"] = int(args.max_params)
    if getattr(args, "max_layers", None) is not None:
        kw["max_layers"] = args.max_layers
    return Limits(**kw)


def number_type(kind: type, low: float, inclusive: bool = True) -> Any:
    """An argparse type: a finite ``kind`` ≥ ``low`` (> ``low`` unless ``inclusive``); nan, inf and
    1e400 are refused with a message that argparse prefixes with the flag."""
    word = "a whole number" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {word}: {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"expected a finite {word[2:]} {'≥' if inclusive else '>'} {low:g}, "
                                             f"got {text!r}")
        return value
    parse.__name__ = word  # argparse names the type in "invalid ... value"
    return parse


def add_common(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files, or folders of them")
    else:
        p.add_argument("spec", help="a .cnn or .yaml spec file")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override a network parameter (repeatable); 'train.x.y=v' overrides the train section")
    p.add_argument("--max-params", type=number_type(float, 1), metavar="N", help="parameter budget (default 1e9)")
    p.add_argument("--max-layers", type=number_type(int, 1), metavar="N", help="limit on expanded layers (default 10000)")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    add_plugin_option(p)


def add_plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", metavar="MODULE", default=[],
                   help="enable the ops a Python module defines (a module name or a .py file; repeatable)")


def prepare(args: argparse.Namespace) -> None:
    """Fill ``args.params`` / ``args.train_overrides`` from ``--set`` and ``args.limits`` from
    ``--max-params`` / ``--max-layers`` (used by every command)."""
    if getattr(args, "plugin", None):
        from .plugins import enable

        enable(args.plugin)
    args.params, args.train_overrides = parse_set(getattr(args, "set", None))
    args.limits = limits_from(args)


def _analysis(args: argparse.Namespace, train: bool = False):
    """(spec, analysis, preflight); with ``train``, the train section and every ``--set train.*``
    are checked against the network too (no torch), their warnings joining the analysis's."""
    from .api import analyze, load

    spec = load(args.spec)
    a = analyze(spec, limits=args.limits, **args.params)
    return spec, a, _train_check(spec, a, args) if train else None


def _train_check(spec, a, args: argparse.Namespace):
    """The train section and every ``--set train.*`` checked against the network (no torch); its
    warnings join the analysis's. None when there is no train section."""
    if spec.train is None and not args.train_overrides:
        return None
    from .train.preflight import preflight

    pf = preflight(spec, a, args.train_overrides)
    a.warnings.extend(pf.warnings)
    return pf


def _stages(pf, a) -> list:
    """The train section's stages with the trainable parameters from each on (none without stages)."""
    if pf is None or not pf.config.stages:
        return []
    from .train.parts import trainable_by_stage

    return trainable_by_stage(pf.config, a)


def _print_warnings(analysis, quiet: bool = False) -> None:
    from .errors import use_color

    if quiet:
        return
    color = use_color(sys.stderr)
    for w in analysis.warnings:
        print(w.render(color=color), file=sys.stderr)


# ----------------------------------------------------------------------------- commands


def cmd_check(args: argparse.Namespace) -> int:
    """Check each spec (a folder: the specs under it); the exit status is the worst of them."""
    from .errors import CnnError, use_color
    from .syntax.cli import spec_files

    files = spec_files(args.specs)
    if len(files) == 1:
        args.spec = files[0]
        return _check_one(args)
    worst = EXIT_OK
    for path in files:
        args.spec = path
        try:
            worst = max(worst, _check_one(args))
        except CnnError as exc:
            if args.debug:
                raise
            print(exc.render(color=use_color(sys.stderr)), file=sys.stderr)
            worst = EXIT_USER
    return worst


def _check_one(args: argparse.Namespace) -> int:
    from .api import analyze, load

    spec = load(args.spec)
    if spec.network is None and spec.blocks:  # a block library: read, imports resolved
        print(f"ok: {args.spec}: library of {len(spec.blocks)} block(s): " + ", ".join(b.name for b in spec.blocks))
        return EXIT_OK
    a = analyze(spec, limits=args.limits, **args.params)
    pf = _train_check(spec, a, args)
    _print_warnings(a, args.quiet)
    from .analysis.report import human
    from .errors import printable

    n = len(a.layers)
    print(f"ok: {printable(args.spec, False)}: {a.name}, {n} layers, {a.params:,} params, {human(a.macs)} MACs, "
          f"output {', '.join('×'.join(map(str, s)) for s in a.output_shapes)}"
          + (f", {len(a.warnings)} warning(s)" if a.warnings else "") + (f"; {pf.summary()}" if pf else ""))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from .analysis.report import FORMATS
    from .files import check_output_file

    if args.output:  # before any work
        check_output_file(args.output, "-o")
    summary = args.summary or args.format != "text"
    spec, a, pf = _analysis(args, train=summary)
    _print_warnings(a, args.format == "json")
    if args.emit == "python":
        from .emit.python import python_source

        _write(python_source(a, spec=spec), args.output)
        return EXIT_OK
    if args.graph:
        print(a.graph)
    if summary:
        print(FORMATS[args.format](a, depth=getattr(args, "depth", None), stages=_stages(pf, a)))
    if args.torchinfo or not (summary or args.graph):
        from .api import build

        model = build(a)
        if args.torchinfo:
            _torchinfo(model, a)
        else:
            print(model)
            print(f"{a.name}: {sum(p.numel() for p in model.parameters()):,} parameters")
    return EXIT_OK


def _write(text: str, output: str | None) -> None:
    """Print ``text``, or write it to ``output`` atomically."""
    if not output:
        sys.stdout.write(text)
        return
    from .files import writing

    tmp = f"{output}.tmp"
    with writing(output):
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    print(f"wrote {output}", file=sys.stderr)


def _torchinfo(model, a) -> None:
    import torchinfo

    stats = torchinfo.summary(model, input_size=(1, *a.input_shape), verbose=0, device="cpu",
                              col_names=("output_size", "num_params", "mult_adds"), depth=8)
    print(stats)
    total = stats.total_params
    status = "match" if total == a.params else "MISMATCH"
    print(f"cross-check: cnndsl counts {a.params:,} parameters, torchinfo {total:,} — {status}")


def cmd_ops(args: argparse.Namespace) -> int:
    from .ops.help import describe, listing, lookup, markdown

    if args.markdown and args.name:
        from .errors import error

        raise error("--markdown prints the table of every op; leave out the op name", None,
                    f"cnndsl ops {args.name} shows one op")
    if args.name:
        print(describe(lookup(args.name)))
        return EXIT_OK
    if args.markdown:
        print(markdown())
        return EXIT_OK
    from .library import blocks_listing
    from .plugins import load_installed

    load_installed()
    print(listing() + "\n\n" + blocks_listing())
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="cnndsl", description="Check, compile and train CNNs written in the cnndsl language.")
    p.add_argument("--version", action="version", version=f"cnndsl {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    add_common(common)

    many = argparse.ArgumentParser(add_help=False)
    add_common(many, many=True)
    c = sub.add_parser("check", parents=[many], help="validate specs and infer shapes (fast, no torch)")
    c.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    c.set_defaults(func=cmd_check)

    c = sub.add_parser("compile", parents=[common], help="build the network; --summary prints the per-layer table")
    c.add_argument("--summary", action="store_true", help="per-layer shapes, params, MACs, receptive fields")
    c.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="summary format")
    c.add_argument("--depth", type=int, metavar="N",
                   help="summary rows for names of at most N levels (default: every layer, one row per backbone stage)")
    c.add_argument("--graph", action="store_true", help="print the expanded graph, one line per node")
    c.add_argument("--torchinfo", action="store_true", help="also print torchinfo's summary of the built module")
    c.add_argument("--emit", choices=("python",), help="write standalone PyTorch source for the network")
    c.add_argument("-o", "--output", metavar="FILE", help="with --emit: write to FILE instead of stdout")
    c.set_defaults(func=cmd_compile)

    from .syntax.cli import register as register_fmt  # argparse only

    register_fmt(sub, parents=[common])

    c = sub.add_parser("ops", help="list the built-in ops, or show one op's arguments (cnndsl ops conv)")
    c.add_argument("name", nargs="?", help="an op: its arguments with types, ranges, defaults and an example")
    c.add_argument("--markdown", action="store_true", help="print the op table of docs/language.md")
    c.add_argument("--debug", action="store_true")
    add_plugin_option(c)
    c.set_defaults(func=cmd_ops)

    from .library import register as register_specs  # argparse only

    register_specs(sub, parents=[common])
    from .train.cli import register  # argparse only; the runner imports torch when a command runs

    register(sub, parents=[common])
    from .export.cli import register as register_export
    from .inspect.cli import register as register_inspect
    from .lsp.cli import register as register_lsp
    from .schema_cli import register as register_schema

    register_export(sub, parents=[common])
    register_schema(sub, parents=[common])
    register_lsp(sub, parents=[common])
    register_inspect(sub, parents=[common])
    from .translate.cli import register as register_import

    register_import(sub, parents=[common])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("CNNDSL_DEBUG") == "1"
    # pydantic scans every installed distribution for its observability plugins when the first model
    # is built (≈ 40 ms); the command line validates specs, it has nothing to report to them. A user
    # who wants them sets PYDANTIC_DISABLE_PLUGINS to something else (e.g. an empty string).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        args = build_parser().parse_args(argv)
        prepare(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - a user error (CnnError), else a bug in cnndsl
        from .errors import CnnError, use_color  # here, so --version and --help import nothing more

        if debug:
            raise
        if isinstance(exc, CnnError):
            print(exc.render(color=use_color(sys.stderr)), file=sys.stderr)
            return EXIT_USER
        print(f"cnndsl: internal error: {type(exc).__name__}: {exc}\n"
              "  this is a bug in cnndsl; run again with --debug for the traceback and report it",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
