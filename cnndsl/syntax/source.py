"""Reading specs: files or text, either syntax, with imports resolved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import error
from ..files import SPEC_SUFFIXES, YAML_SUFFIXES, read_regular_file
from ..ir import NetworkDef, Spec
from .limits import MAX_FILE_BYTES
from .parse import parse_cnn



def read_file(path: str | os.PathLike) -> str:
    """A spec file's text; refuses missing, oversized, binary and non-UTF-8 files, and anything
    that is not a regular file (``/dev/zero``, a FIFO), before parsing."""
    p = Path(path)
    shown = str(path)
    if not p.exists():
        from .. import library

        if library.is_name(shown):
            raise error(f"no such file or shipped spec: {shown}", None, library.unknown_hint(shown))
        hint = None
        parent = p.parent if str(p.parent) else Path(".")
        if parent.is_dir():
            near = sorted(x.name for x in parent.iterdir() if x.suffix in SPEC_SUFFIXES)
            from ..errors import did_you_mean
            hint = did_you_mean(p.name, near) or (f"spec files in {parent}: " + ", ".join(near[:8]) if near else None)
        if hint is None:
            hint = (f"the folder {parent} does not exist either" if not parent.is_dir()
                    else "check the path (relative paths start from the current directory)")
        raise error(f"no such file: {shown}", None, hint)
    if p.is_dir():
        near = sorted(x.name for x in p.iterdir() if x.suffix in SPEC_SUFFIXES)[:8]
        raise error(f"{shown} is a directory, not a spec file", None,
                    "name a spec file" + (f", e.g. one of: {', '.join(near)}" if near else ", e.g. specs/resnet18.cnn"))
    data = read_regular_file(p, MAX_FILE_BYTES, "spec", "is this really a spec? split large specs with 'import'")
    if b"\x00" in data[:8192]:
        raise error(f"{shown} is a binary file, not a spec", None, "cnndsl reads .cnn text and YAML files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{shown} is not UTF-8 text (byte {exc.start})", None,
                    "save the spec as UTF-8 (plain ASCII is fine)") from None
    return text


def shipped_or_path(source: str | os.PathLike) -> str | os.PathLike:
    """``source`` itself when it names a file (or is not a name); else the shipped spec of that
    name (``resnet18`` → the installed ``specs/resnet18.cnn``)."""
    from .. import library

    text = os.fspath(source)
    if os.path.exists(text) or not library.is_name(text):
        return source
    return library.find(text) or source


def detect_format(text: str, name: str = "") -> str:
    if name.endswith(YAML_SUFFIXES):
        return "yaml"
    if name.endswith(".cnn"):
        return "cnn"
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        first = s.split()[0]
        if first.endswith(":"):  # `network:` / `train:` open a YAML mapping
            return "yaml"
        return "cnn" if first in ("network", "block", "import", "train") else "yaml"
    return "cnn"


def parse_text(text: str, filename: str = "<string>", fmt: str | None = None) -> Spec:
    """Parse spec text (no imports resolved)."""
    fmt = fmt or detect_format(text, filename)
    if fmt == "yaml":
        from .yaml_load import parse_yaml  # PyYAML is imported only for YAML specs

        return parse_yaml(text, filename)
    return parse_cnn(text, filename)


def load_spec(source: str | os.PathLike, fmt: str | None = None) -> Spec:
    """A path or spec text → a Spec with imported block definitions merged in."""
    if isinstance(source, os.PathLike) or ("\n" not in str(source) and "{" not in str(source)
                                           and str(source).strip() != ""):
        path = str(shipped_or_path(source))
        spec = parse_text(read_file(path), path, fmt)
        base = Path(path).parent
    else:
        spec = parse_text(str(source), "<string>", fmt)
        base = Path(".")
    return resolve_imports(spec, base)


def resolve_imports(spec: Spec, base: Path, read: Callable[[Path], str] = read_file) -> Spec:
    """Merge the blocks and networks of imported files (transitively) into ``spec``; refuses cycles
    and clashes (an imported network is used like a block, by its name: one namespace).
    ``read`` gives a file's text (the language server passes one that prefers unsaved buffers)."""
    if not spec.imports:
        return spec
    blocks = {b.name: b for b in spec.blocks}
    networks: dict[str, NetworkDef] = {}
    seen: set[Path] = set()
    if spec.path and Path(spec.path).exists():
        seen.add(Path(spec.path).resolve())
    pending = [(imp, base, (spec.path or "<string>",)) for imp in spec.imports]
    while pending:
        imp, where, chain = pending.pop(0)
        target = _import_target(imp, where)
        if not target.exists():
            raise error(f"cannot import '{imp.path}': no such file ({target})", imp.span,
                        "import paths are relative to the importing file")
        resolved = target.resolve()
        if str(resolved) in {str(Path(c).resolve()) for c in chain if Path(c).exists()}:
            raise error("circular import: " + " → ".join([*chain, str(target)]), imp.span)
        if resolved in seen:
            continue
        seen.add(resolved)
        sub = parse_text(read(target), str(target))
        for b in sub.blocks:
            if b.name in blocks and blocks[b.name] is not b:
                raise error(f"block '{b.name}' is defined twice", b.span,
                            notes=[(blocks[b.name].span, "also defined here")])
            blocks[b.name] = b
        if sub.network is not None:
            other = networks.setdefault(sub.network.name, sub.network)
            if other is not sub.network:
                raise error(f"two imported files define a network '{other.name}'", sub.network.span,
                            "an imported network is used by its name: rename one of them",
                            notes=[(other.span, "the other one")])
        pending += [(i, target.parent, chain + (str(target),)) for i in sub.imports]
    for name, net in networks.items():
        if name in blocks:
            raise error(f"'{name}' is both a block and an imported network", blocks[name].span,
                        "an imported network is used like a block, by its name: rename one of them",
                        notes=[(net.span, "the network")])
    return spec.model_copy(update={"blocks": tuple(blocks.values()), "networks": tuple(networks.values())})


def _import_target(imp, where: Path) -> Path:
    """The file an import names: a path (relative to the importing file's folder), or a shipped
    spec's name without a suffix (``import "resnet_blocks"``, ``import "resnet18"``)."""
    from .. import library

    if library.is_name(imp.path):
        found = library.find(imp.path)
        if found is None:
            raise error(f"cannot import '{imp.path}': no shipped spec has this name", imp.span,
                        library.unknown_hint(imp.path) + " (a file is imported by its path, with its "
                        "suffix: import \"lib/blocks.cnn\")")
        return found
    target = where / imp.path
    _check_import_suffix(imp, target)
    return target


def _check_import_suffix(imp, target: Path) -> None:
    """Imports name spec files: a file of another kind is never read, so never quoted in an error
    (``import "/etc/passwd"``); a link is judged by what it points to as well."""
    for name in (target.name, target.resolve().name if target.is_symlink() else target.name):
        if not name.endswith(SPEC_SUFFIXES):
            raise error(f"cannot import '{imp.path}': imports take spec files ending in .cnn, .yaml or .yml",
                        imp.span, "an import names another spec file whose blocks this one uses, e.g. "
                        "import \"lib/resnet_blocks.cnn\" (relative to the importing file)")
