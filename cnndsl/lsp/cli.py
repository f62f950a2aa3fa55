"""``cnndsl lsp``: argparse registration (imports no pygls, no torch) and the command."""

from __future__ import annotations

import argparse
from typing import Any, Sequence


def register(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add the ``lsp`` subcommand (it takes no spec: the editor sends the documents)."""
    p = sub.add_parser("lsp", help="run the language server (stdio) for editors",
                       description="Language server for .cnn and cnndsl YAML files, on stdin/stdout: "
                                   "diagnostics, hover with shapes, inlay hints, completion, go to definition. "
                                   "See docs/editors.md.")
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default; for editors that pass it)")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_lsp)


def cmd_lsp(args: argparse.Namespace) -> int:
    import importlib.util

    from ..errors import error

    if importlib.util.find_spec("pygls") is None or importlib.util.find_spec("lsprotocol") is None:
        raise error("the language server needs pygls and lsprotocol, which are not installed", None,
                    "pip install 'cnndsl[lsp]'")
    from .server import main

    main()
    return 0
