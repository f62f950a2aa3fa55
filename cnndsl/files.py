"""The file-system edges of cnndsl's commands: user-named files read safely (regular files only,
never more than a limit), outputs checked before anything is written, writes that fail as
diagnostics naming the path and the cause.

``/dev/zero`` would be read until memory runs out, a FIFO would block forever, and ``/proc`` files
report a size of 0. So a file is opened without blocking, checked on the open descriptor (no
race between a check and the open), and read to at most ``limit + 1`` bytes.

No torch here: the CLI checks ``-o`` and ``--run-dir`` with these before a command does any work.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import CnnError, Span, error

YAML_SUFFIXES = (".yaml", ".yml")
SPEC_SUFFIXES = (".cnn", *YAML_SUFFIXES)   # .cnn first: of two twins with one stem, the .cnn is read

_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_regular_file(path: str | os.PathLike, limit: int, what: str = "file",
                      too_large_hint: str | None = None, where: Span | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; CnnError otherwise
    (missing, unreadable, a directory, device, FIFO or socket, or larger than ``limit``).
    ``what`` names the file in messages ("spec", "image"); ``where`` locates them (file_span)."""
    shown = os.fspath(path)
    article = "an" if what[:1] in "aeiou" else "a"
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise error(f"no such file: {shown}", where, "check the path") from None
    except PermissionError:
        raise error(f"cannot read {shown}: permission denied", where,
                    f"check the permissions of the {what} (ls -l)") from None
    except OSError as exc:
        raise error(f"cannot open {shown}: {exc.strerror or exc}", where) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise error(f"{shown} is {kind}, not {article} {what}", where,
                        f"cnndsl reads {article} {what} only from a regular file")
        if info.st_size > limit:
            raise error(f"{shown} is too large ({info.st_size:,} bytes; {what}s are limited to {limit:,})", where,
                        too_large_hint)
        chunks, size = [], 0
        while size <= limit:
            try:
                chunk = os.read(fd, limit + 1 - size)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise error(f"{shown} cannot be read without waiting", where) from None
                raise error(f"cannot read {shown}: {exc.strerror or exc}", where) from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew, or it reports no size (/proc)
            raise error(f"{shown} is too large (more than {limit:,} bytes; {what}s are limited to {limit:,})",
                        where, too_large_hint)
        return b"".join(chunks)
    finally:
        os.close(fd)


# errno → the words a user needs (the rest: the system's own message)
_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large (a file-size limit such as `ulimit -f` applies)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a parent is not a directory",
    errno.ENOENT: "no such file or directory",
    errno.EIO: "input/output error",
}

# Virtual file systems: nothing cnndsl writes belongs there.
_VIRTUAL = ("/proc", "/sys", "/dev")


def file_span(path: str | os.PathLike) -> Span:
    """A location that names a file without a line (checkpoints, images, run directories)."""
    return Span(str(path), 0, 0)


def os_cause(exc: BaseException) -> str:
    """What went wrong, in words: an OSError's errno, also when wrapped by torch (whose writer raises
    RuntimeError('unexpected pos ...') with the OSError of the failed write as its context)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno is not None:
            return _CAUSES.get(seen.errno) or seen.strerror or str(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "unexpected pos" in text or "file write failed" in text:
        return f"the write was cut short ({text}); the disk may be full or a file-size limit applies"
    return text


@contextmanager
def writing(path: str | os.PathLike, what: str = "write") -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into a diagnostic naming it and the cause."""
    try:
        yield
    except CnnError:
        raise
    except OSError as exc:
        raise error(f"could not {what}: {os_cause(exc)}", file_span(path)) from None


def _virtual(path: Path) -> str | None:
    real = os.path.realpath(path)
    for root in _VIRTUAL:
        if real == root or real.startswith(root + "/"):
            return root
    return None


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """``-o FILE``: refuse a directory, a missing or non-directory parent, a virtual file system."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise error(f"{flag} {path}: is a directory", None, f"name a file, e.g. {flag} {p / 'out.txt'}")
    root = _virtual(p)
    if root:
        raise error(f"{flag} {path}: cannot write under {root} (a virtual file system)", None,
                    "write to a regular directory")
    if not parent.exists():
        raise error(f"{flag} {path}: the directory {parent} does not exist", None,
                    f"create it first (mkdir -p {parent})")
    if not parent.is_dir():
        raise error(f"{flag} {path}: {parent} is not a directory", None, "name a file in a directory")
    return p


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``--run-dir DIR`` (created if missing): refuse an existing file, a path under a file or under
    /proc, /sys, /dev, and a location that cannot be written — before anything is written."""
    p = Path(path)
    root = _virtual(p)
    if root:
        raise error(f"{flag} {path}: cannot write under {root} (a virtual file system)", None,
                    "choose a directory on a regular disk")
    if p.exists() and not p.is_dir():
        raise error(f"{flag} {path}: exists and is not a directory", None, "choose a new or an existing directory")
    ancestor = p
    while not ancestor.exists():  # the deepest existing ancestor must be a writable directory
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise error(f"{flag} {path}: {ancestor} is a file, so the directory cannot be created", None,
                    "choose a path whose parents are directories")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise error(f"{flag} {path}: {ancestor} is not writable", None, "choose a directory you can write to")
    return p
