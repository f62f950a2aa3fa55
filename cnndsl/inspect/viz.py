"""matplotlib without pyplot: headless figures (the Agg canvas, never a window) and atomic saving.

matplotlib is the optional ``viz`` extra; when it is missing every command says what to install.
Figures are ``matplotlib.figure.Figure`` objects, so drawing never touches pyplot's global state
(a notebook's backend stays as it was).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import error

VIZ_INSTALL = "pip install 'cnndsl[viz]'   (or just: pip install matplotlib)"
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
DPI = 100


def require_matplotlib(command: str) -> None:
    """Raise a CnnError saying what to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise error(f"cnndsl {command} draws with matplotlib, which is not installed", None,
                    f"install the viz extra: {VIZ_INSTALL}") from None


def check_output(path: str | os.PathLike, flag: str = "-o", suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    """Validate an output path before any work is done: known suffix, writable parent."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise error(f"{flag}: cannot write '{p.name}': unknown file type '{p.suffix or '(none)'}'", None,
                    "use one of " + ", ".join(suffixes))
    if p.is_dir():
        raise error(f"{flag}: '{p}' is a directory", None, "give a file name, e.g. out.png")
    return p


def figure(width_in: float, height_in: float, dpi: int = DPI) -> Any:
    """A new figure of exactly ``width_in`` x ``height_in`` inches on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: str | os.PathLike) -> Path:
    """Write the figure (format from the suffix) through a temp file and ``os.replace``."""
    p = check_output(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fmt = p.suffix.lower().lstrip(".").replace("jpg", "jpeg")
    import matplotlib

    try:
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable, small)
            fig.savefig(tmp, format=fmt, dpi=fig.dpi, facecolor="white")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(f"cannot write {p}: {exc.strerror or exc}", None, "check the directory and permissions") from None
    return p


def hide_axes(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
