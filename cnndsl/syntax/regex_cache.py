"""The lexer's compiled regular expressions, cached on disk next to the parse tables.

lark's contextual lexer compiles an alternation of terminals for each parser state it meets, and
checks each terminal when the parser is loaded: ~80 compilations for a typical spec, 15–20 ms of
every ``cnndsl check`` (Python's ``re`` parses and compiles patterns in Python code; only the last
step, ``_sre.compile``, is C). The compiled program is deterministic for a pattern, its flags and
the interpreter, so it is recorded once — what ``re`` hands to ``_sre.compile`` while the parser is
loaded and every scanner is built — and, in later processes, put into ``re``'s own cache before the
parser loads, where lark's ``re.compile`` calls find it.

The file is our own build artefact, plain data written with ``marshal`` (strings, ints, lists, a
dict), named after the grammar's cache key, the exact interpreter version and the regex engine's MAGIC, and
written atomically. A file that cannot be read, has the wrong shape, or holds a program the regex
engine refuses (``_sre.compile`` validates it) is ignored and recorded again. Where ``re``'s
internals are not the ones this relies on (its cache dict, ``_compiler.compile``), nothing is done.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

try:
    import _sre
    from re import _compiler
except ImportError:  # another interpreter: no cache
    _sre = _compiler = None  # type: ignore[assignment]

FORMAT = 1
_RECORDING = threading.Lock()   # recording swaps functions inside re: one recording at a time


def supported() -> bool:
    return (_sre is not None and isinstance(getattr(re, "_cache", None), dict)
            and callable(getattr(_compiler, "compile", None)) and getattr(_compiler, "_sre", None) is _sre)


def cache_path(tables: str | bool) -> Path | None:
    """The regex cache beside the parse-table file ``tables`` (None where there is no such file)."""
    if not isinstance(tables, str) or not supported():
        return None
    tag = f"{sys.implementation.name}-{sys.hexversion:x}-{_sre.MAGIC}-f{FORMAT}"   # the exact interpreter
    return Path(tables).with_name(Path(tables).stem + f"-re-{tag}.marshal")


def preload(path: Path) -> bool:
    """Put the recorded programs into ``re``'s cache; False if the file is missing or unusable."""
    try:
        records = marshal.loads(path.read_bytes())
        if not (isinstance(records, list) and all(isinstance(r, tuple) and len(r) == 3 for r in records)):
            raise ValueError("not a regex cache")
        compiled = {(str, pattern, flags): _sre.compile(*args) for pattern, flags, args in records}
    except Exception:  # unreadable, damaged, from another build: record again
        return False
    if len(re._cache) + len(compiled) < getattr(re, "_MAXCACHE", 0):   # never evict the caller's patterns
        re._cache.update(compiled)
    return True


def record(build: Callable[[], Any], path: Path) -> Any:
    """Run ``build`` while recording every pattern ``re`` compiles; save them to ``path``."""
    records: list[tuple[str, int, tuple]] = []

    def compile_recorded(p: Any, flags: int = 0) -> Any:
        if not isinstance(p, str):
            return original(p, flags)
        seen: list[tuple] = []
        _compiler._sre = _Recorder(seen)
        try:
            result = original(p, flags)
        finally:
            _compiler._sre = _sre
        if len(seen) == 1:   # else another thread compiled meanwhile: not recorded
            # as plain data: the program's opcodes are int subclasses
            pattern, final_flags, code, groups, groupindex, indexgroup = seen[0]
            records.append((p, int(flags), (pattern, int(final_flags), [int(c) for c in code], int(groups),
                                            dict(groupindex), tuple(indexgroup))))
        return result

    with _RECORDING:
        original: Callable = _compiler.compile
        _compiler.compile = compile_recorded
        try:
            result = build()
        finally:
            _compiler.compile = original
    _save(records, path)
    return result


def _save(records: list, path: Path) -> None:
    """Write atomically; any failure (a read-only folder, say) only means recording again next time."""
    tmp = None
    try:
        data = marshal.dumps(records)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except Exception:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


class _Recorder:
    """Stands in for ``_sre`` inside ``re._compiler`` while a pattern compiles: notes the arguments
    of ``_sre.compile``, forwards everything."""

    def __init__(self, seen: list[tuple]):
        self.seen = seen

    def compile(self, *args: Any) -> Any:
        self.seen.append(args)
        return _sre.compile(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(_sre, name)
