"""``cnndsl fmt``: format spec files (or convert them between the two syntaxes), like black.

Registration imports only argparse; the writers are imported when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_CHANGED, EXIT_USER = 0, 1, 2


def spec_files(paths: list[str]) -> list[str]:
    """The files named, a directory standing for the spec files under it (recursively, hidden
    folders skipped, sorted); ``-`` is standard input."""
    from ..files import SPEC_SUFFIXES

    out: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            found = sorted(str(f) for f in Path(p).rglob("*") if f.suffix in SPEC_SUFFIXES and f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                from ..errors import error

                raise error(f"{p} holds no spec files (.cnn, .yaml)", None,
                            "name a spec file, e.g. specs/resnet18.cnn, or a folder that holds some")
            out += found
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``fmt`` (it takes none of the ``parents``' options: formatting binds no parameters)."""
    c = sub.add_parser("fmt", help="format specs, keeping comments (like black); --to converts the syntax",
                       description="Format spec files in canonical style, keeping comments and the items "
                                   "written on one line; or convert a spec to the other syntax with --to.")
    c.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or folders of them ('-': standard input)")
    c.add_argument("--to", choices=("cnn", "yaml"), help="output syntax (default: the input's)")
    c.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout (one input)")
    c.add_argument("-w", "--write", action="store_true", help="rewrite the files in place (atomically)")
    c.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would be reformatted")
    c.add_argument("--diff", action="store_true", help="write nothing; print a unified diff of the changes")
    c.add_argument("--standalone", action="store_true",
                   help="write the imported blocks instead of the import lines (a self-contained spec)")
    c.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    c.set_defaults(func=cmd_fmt)


def _refuse(message: str, hint: str):
    from ..errors import error

    return error(message, None, hint)


def cmd_fmt(args: argparse.Namespace) -> int:
    files = spec_files(args.specs)
    if args.output and len(files) > 1:
        raise _refuse("-o/--output takes one input file", "use --write to rewrite several files in place")
    if args.output:  # a missing folder, a directory, /proc: refused before any work
        from ..files import check_output_file
        check_output_file(args.output, "-o")
    if args.write and (args.to or args.output):
        raise _refuse("--write rewrites each file in its own syntax",
                      "to convert, write elsewhere: cnndsl fmt SPEC --to yaml -o OUT.yaml")
    if args.write and "-" in files:
        raise _refuse("--write cannot rewrite standard input", "drop --write to print the result")
    if (args.check or args.diff) and args.to:
        raise _refuse("--check and --diff compare a file with its own formatting", "drop --to")
    if len(files) > 1 and not (args.check or args.diff or args.write):
        raise _refuse("several inputs need --check, --diff or --write",
                      "format one file to stdout, or rewrite them all with --write")
    worst, changed, failed = EXIT_OK, [], 0
    for path in files:
        try:
            status = _one(path, args)
        except Exception as exc:  # noqa: BLE001 - a user error in one file: report it, go on with the rest
            from ..errors import CnnError, use_color

            if not isinstance(exc, CnnError) or args.debug or len(files) == 1:
                raise
            print(exc.render(color=use_color(sys.stderr)), file=sys.stderr)
            failed, worst = failed + 1, EXIT_USER
            continue
        if status == EXIT_CHANGED:
            changed.append(path)
            worst = max(worst, EXIT_CHANGED if args.check else EXIT_OK)
    if args.check or args.write or len(files) > 1:
        print(_summary(len(files), len(changed), failed, args), file=sys.stderr)
    return worst


def _summary(total: int, changed: int, failed: int, args: argparse.Namespace) -> str:
    def files(n: int) -> str:
        return f"{n} file{'s' if n != 1 else ''}"

    verb = "reformatted" if args.write else "would be reformatted"
    parts = [f"{files(changed)} {verb}"] if changed else []
    parts.append(f"{files(total - changed - failed)} {'left unchanged' if args.write else 'already formatted'}")
    if failed:
        parts.append(f"{files(failed)} could not be formatted")
    return ", ".join(parts)


def _one(path: str, args: argparse.Namespace) -> int:
    """Format one file as ``args`` asks; EXIT_CHANGED when its text differs from the result."""
    from ..files import YAML_SUFFIXES
    from .source import detect_format, load_spec, parse_text, read_file

    text = sys.stdin.read() if path == "-" else read_file(path)
    shown = "<stdin>" if path == "-" else path
    fmt = "yaml" if shown.endswith(YAML_SUFFIXES) else detect_format(text, shown)
    spec = load_spec(path, fmt) if args.standalone and path != "-" else parse_text(text, shown, fmt)
    to = args.to or fmt
    result = render(spec, to, shown, args.standalone)
    if "\r\n" in text:
        result = result.replace("\n", "\r\n")
    same = result == text
    if args.diff and not same:
        import difflib

        sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), result.splitlines(True),
                                                   f"{shown} (original)", f"{shown} (formatted)"))
    if args.check or args.diff:
        if not same and args.check:
            print(f"would reformat {shown}", file=sys.stderr)
        return EXIT_OK if same else EXIT_CHANGED
    if args.write:
        if not same:
            _replace(path, result)
            print(f"reformatted {shown}", file=sys.stderr)
        return EXIT_OK if same else EXIT_CHANGED
    _emit(result, args.output)
    return EXIT_OK


def render(spec, to: str, shown: str, standalone: bool = False) -> str:
    """The spec's text in syntax ``to``; a value that syntax cannot hold is a CnnError at its item."""
    from ..errors import Span, error
    from .format import format_cnn, format_yaml
    from .spelling import Unwritable

    if standalone and spec.networks:  # a file holds one network: the imported ones stay imported
        names = ", ".join(n.name for n in spec.networks)
        raise error(f"cannot write {shown} standalone: it imports the network(s) {names}, and a file holds "
                    "one network", Span(shown, 1, 1), "format it without --standalone (the imports stay)")
    try:
        return (format_yaml if to == "yaml" else format_cnn)(spec, standalone=standalone)
    except ValueError as exc:
        span = getattr(exc, "span", None) if isinstance(exc, Unwritable) else None
        other = "cnn" if to == "yaml" else "yaml"
        raise error(f"cannot write {shown} as {to}: {exc}", span or Span(shown, 1, 1),
                    f"the {other} syntax can hold it (cnndsl fmt {shown} --to {other}); "
                    "see docs/language.md") from None


def _replace(path: str, text: str) -> None:
    """Rewrite ``path`` atomically: a temporary file in the same folder, then a rename."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cnndsl-fmt-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _emit(text: str, output: str | None) -> None:
    if not output:
        sys.stdout.write(text)
        return
    from ..files import writing  # a full disk or a read-only folder: a diagnostic naming the file

    with writing(output):
        _replace(output, text) if os.path.exists(output) else _new(output, text)
    print(f"wrote {output}", file=sys.stderr)


def _new(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
