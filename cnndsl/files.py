"""Reading user-named files safely: regular files only, never more than a limit.

``/dev/zero`` would be read until memory runs out, a FIFO would block forever, and ``/proc`` files
report a size of 0. So the file is opened without blocking, checked on the open descriptor (no
race between a check and the open), and read to at most ``limit + 1`` bytes.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import error

_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_regular_file(path: str | os.PathLike, limit: int, what: str = "file",
                      too_large_hint: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; CnnError otherwise
    (missing, unreadable, a directory, device, FIFO or socket, or larger than ``limit``).
    ``what`` names the file in messages ("spec", "image")."""
    shown = os.fspath(path)
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise error(f"no such file: {shown}", None, "check the path") from None
    except PermissionError:
        raise error(f"cannot read {shown}: permission denied", None,
                    f"check the permissions of the {what} (ls -l)") from None
    except OSError as exc:
        raise error(f"cannot open {shown}: {exc.strerror or exc}", None) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise error(f"{shown} is {kind}, not a {what}", None,
                        f"cnndsl reads a {what} only from a regular file")
        if info.st_size > limit:
            raise error(f"{shown} is too large ({info.st_size:,} bytes; {what}s are limited to {limit:,})", None,
                        too_large_hint)
        chunks, size = [], 0
        while size <= limit:
            try:
                chunk = os.read(fd, limit + 1 - size)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise error(f"{shown} cannot be read without waiting", None) from None
                raise error(f"cannot read {shown}: {exc.strerror or exc}", None) from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew, or it reports no size (/proc)
            raise error(f"{shown} is too large (more than {limit:,} bytes; {what}s are limited to {limit:,})",
                        None, too_large_hint)
        return b"".join(chunks)
    finally:
        os.close(fd)
