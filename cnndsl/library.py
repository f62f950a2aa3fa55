"""The specs that ship with cnndsl: networks built by name, block libraries imported by name.

The source tree keeps them in the top-level ``specs/`` folder (networks) and ``specs/lib/`` (block
libraries); a wheel installs the same folder as ``cnndsl/specs`` (``setup.py`` maps the package
``cnndsl.specs`` onto ``specs/``). Either way a spec is named by its file stem: ``resnet18``,
``resnet_blocks``. A name is looked up only where a name is allowed — ``cnndsl check resnet18``
when no file ``resnet18`` exists, ``cnndsl.load("resnet18")``, ``import "resnet_blocks"`` — so a
path always means the file it names. No torch, no parsing: a listing of the folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .files import SPEC_SUFFIXES
from .names import IDENTIFIER



def specs_dir() -> Path | None:
    """The folder of shipped specs: the installed package's ``cnndsl/specs``, else a source
    checkout's ``specs/`` (next to ``pyproject.toml``); None when neither exists."""
    package = Path(__file__).resolve().parent
    installed = package / "specs"
    if installed.is_dir():
        return installed
    checkout = package.parent / "specs"
    if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    return None


@lru_cache(maxsize=1)
def catalog() -> dict[str, Path]:
    """``{name: file}`` of every shipped spec, networks first, then libraries; a ``.cnn`` file
    stands for its YAML twin."""
    root = specs_dir()
    found: dict[str, Path] = {}
    if root is None:
        return found
    for folder in (root, root / "lib"):
        for suffix in SPEC_SUFFIXES:  # .cnn first: the twin with the same stem is the same spec
            for path in sorted(folder.glob(f"*{suffix}")):
                if path.is_file():
                    found.setdefault(path.stem, path)
    return found


def is_name(text: str) -> bool:
    """Whether ``text`` has the form of a shipped spec's name (an identifier: no suffix, no folder)."""
    return IDENTIFIER.fullmatch(text) is not None


def find(name: str) -> Path | None:
    """The shipped spec called ``name``, or None."""
    return catalog().get(name) if is_name(name) else None


def is_library(path: Path) -> bool:
    """A block library (under ``lib/``) rather than a network."""
    return path.parent.name == "lib"


def unknown_hint(name: str) -> str:
    """A hint for a name that is no shipped spec: a did-you-mean, else the list."""
    from .errors import did_you_mean

    names = list(catalog())
    return did_you_mean(name, names) or ("shipped specs: " + ", ".join(names) + " (cnndsl specs lists them)"
                                         if names else "this installation ships no specs")


# ----------------------------------------------------------------------------- listing (cnndsl specs)


def _signature(name: str, params) -> str:
    from .expr import format_expr

    return f"{name}(" + ", ".join(p.name if p.default is None else f"{p.name}={format_expr(p.default)}"
                                  for p in params) + ")"


def _about(text: str, width: int = 96) -> str:
    """The first line of the file's leading comment, shortened to ``width``."""
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("#"):
            break
        s = s.lstrip("#").strip().rstrip(".")
        if s:
            return s if len(s) <= width else s[:width - 1].rstrip() + "…"
    return ""


def entries() -> list[dict[str, str]]:
    """One entry per shipped spec: name, kind (network / library), signature (the network's, or
    the library's blocks), about (its leading comment) and path. Parsed, not expanded: no torch."""
    from .syntax.source import parse_text, read_file

    out = []
    for name, path in catalog().items():
        text = read_file(path)
        spec = parse_text(text, str(path))
        if spec.network is not None:
            kind, sig = "network", _signature(spec.network.name, spec.network.params)
        else:
            kind, sig = "library", ", ".join(_signature(b.name, b.params) for b in spec.blocks)
        out.append({"name": name, "kind": kind, "signature": sig, "about": _about(text), "path": str(path)})
    return out


def listing() -> str:
    """``cnndsl specs``: the shipped networks and block libraries, and how to use them."""
    rows = entries()
    width = max((len(r["name"]) for r in rows), default=0) + 2
    out = ['networks — cnndsl check NAME, cnndsl.build("NAME"), import "NAME" to use one as a block:']
    out += [f"  {r['name']:{width}}{r['signature']}\n  {'':{width}}{r['about']}" for r in rows
            if r["kind"] == "network"]
    out.append('block libraries — import "NAME":')
    out += [f"  {r['name']:{width}}{r['signature']}" for r in rows if r["kind"] == "library"]
    out.append(f"folder: {specs_dir()}")
    return "\n".join(out)


def blocks_listing() -> str:
    """The blocks of the shipped libraries, for ``cnndsl ops``."""
    rows = [r for r in entries() if r["kind"] == "library"]
    lines = ['blocks of the shipped libraries (import "NAME"; cnndsl specs lists the networks):']
    lines += [f"  {r['name']:18s} {r['signature']}" for r in rows]
    return "\n".join(lines)


def cmd_specs(args) -> int:
    if not args.name:
        print(listing())
        return 0
    from .errors import error

    path = find(args.name)
    if path is None:
        raise error(f"no shipped spec is called '{args.name}'", None, unknown_hint(args.name))
    if args.path:
        print(path)
    else:
        from .syntax.source import read_file

        print(read_file(path), end="")
    return 0


def register(sub, parents) -> None:
    """``cnndsl specs [NAME] [--path]`` (argparse only)."""
    c = sub.add_parser("specs", help="list the networks and block libraries that ship with cnndsl, or print one",
                       description="The specs installed with cnndsl: networks built by name "
                                   "(cnndsl check resnet18) and block libraries imported by name "
                                   "(import \"resnet_blocks\"). With NAME: print that spec's source "
                                   "(cnndsl specs resnet18 > mine.cnn starts a copy).")
    c.add_argument("name", nargs="?", help="a shipped spec: print its source")
    c.add_argument("--path", action="store_true", help="print the file's path instead of its source")
    c.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    c.set_defaults(func=cmd_specs)
