"""Memory estimates made before large allocations (datasets, synthetic data, evaluation tables), so
that a typo such as ``num_train=1000000000000`` is a diagnostic, not an allocator crash or a swap storm."""

from __future__ import annotations

import os

from cnndsl.errors import Span, error

FRACTION = 0.5  # refuse an allocation estimated above this share of the memory available now
FALLBACK = 8 << 30  # when the platform does not say how much is available


def available_bytes() -> int:
    """Memory available to a new allocation: MemAvailable on Linux, free pages elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return FALLBACK


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PiB"


def check_alloc(nbytes: int, what: str, span: Span | None = None, hint: str | None = None) -> None:
    """Refuse an allocation of about ``nbytes`` that cannot fit in the memory available now."""
    avail = available_bytes()
    if nbytes > FRACTION * avail:
        raise error(f"{what} would need about {human_bytes(nbytes)} of memory, more than half of the "
                    f"{human_bytes(avail)} available", span, hint or "make it smaller")
