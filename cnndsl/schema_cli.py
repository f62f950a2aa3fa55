"""argparse registration of ``cnndsl schema`` (imports only argparse: the schema's pydantic models
load when the command runs, so ``cnndsl --help`` stays light)."""

from __future__ import annotations

from typing import Any


def register(sub: Any, parents: Any = ()) -> None:
    """Add the ``schema`` subcommand (it takes no spec)."""
    p = sub.add_parser("schema", help="write the JSON Schema of the YAML syntax (for editors)",
                       description="The JSON Schema of cnndsl's YAML syntax, generated from the op registry "
                                   "and the train section's models. Point a YAML file at it with a first line "
                                   "'# yaml-language-server: $schema=cnndsl.schema.json'.")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    p.set_defaults(func=cmd_schema)


def cmd_schema(args: Any) -> int:
    import sys

    from .errors import error
    from .schema import write_schema

    try:
        text = write_schema(args.output)
    except OSError as exc:
        raise error(f"-o/--output: cannot write {args.output}: {exc.strerror or exc}", None,
                    "check that the folder exists and is writable") from None
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
