"""'did you forget ``import "lib/resnet_blocks.cnn"``?' — find an unknown block in nearby spec files.

Looked up only when a name is unknown, and cheaply: the spec's folder and its ``lib/`` subfolder,
then the specs shipped with cnndsl; only ``.cnn`` / ``.yaml`` / ``.yml`` files, at most
:data:`MAX_FILES` of them, each at most :data:`MAX_BYTES`; a text search, not a parse.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..files import SPEC_SUFFIXES

MAX_FILES = 200
MAX_BYTES = 256 * 1024


def _defines(text: str, name: str, yaml: bool) -> bool:
    if yaml:
        return "blocks:" in text and re.search(rf"^\s*-?\s*name:\s*['\"]?{re.escape(name)}['\"]?\s*$",
                                               text, re.MULTILINE) is not None
    return re.search(rf"^\s*block\s+{re.escape(name)}\b", text, re.MULTILINE) is not None


def _candidates(base: Path) -> list[Path]:
    """Spec files to search, nearest first; of the shipped ones, the block libraries first."""
    from ..library import specs_dir

    shipped = specs_dir()
    out: list[Path] = []
    folders = (base, base / "lib") + ((shipped / "lib", shipped) if shipped is not None else ())  # libraries first
    for folder in folders:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.suffix in SPEC_SUFFIXES and p not in out:
                out.append(p)
            if len(out) >= MAX_FILES:
                return out
    return out


def import_hint(name: str, spec_path: str | None) -> str | None:
    """A hint naming the import that would define block ``name``, or None."""
    real = spec_path if spec_path and os.path.isfile(spec_path) else None
    base = Path(real).resolve().parent if real else Path.cwd()
    own = Path(real).resolve() if real else None
    for path in _candidates(base):
        try:
            if path.resolve() == own or not path.is_file() or path.stat().st_size > MAX_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _defines(text, name, path.suffix != ".cnn"):
            from .. import library

            near = path.parent.resolve() in (base.resolve(), (base / "lib").resolve())
            if not near and library.find(path.stem) == path:
                return f'did you forget `import "{path.stem}"`? it defines block {name} (a spec that ships with cnndsl)'
            try:
                rel = os.path.relpath(path.resolve(), base)
            except ValueError:  # another drive (Windows)
                rel = str(path.resolve())
            return f'did you forget `import "{rel}"`? it defines block {name}'
    return None
