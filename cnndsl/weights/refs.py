"""What a weights reference names, checked without torch: a torchvision weights name, a file, a
run directory. Loading them is :mod:`cnndsl.weights.load`'s job (at build time)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import Span, did_you_mean, error

FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
RUN_FILES = ("best.pt", "last.pt", "checkpoints/best.pt", "checkpoints/last.pt")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class WeightsRef:
    """Resolved weights: named torchvision weights (``model``, ``name``, ``url``) or a file (``path``)."""

    text: str                   # as written
    span: Span | None = None    # where it is written (None for a command-line flag)
    flag: str | None = None     # the flag it came from ("--init-from")
    model: str | None = None    # torchvision model, for named weights
    name: str | None = None     # canonical weights name (IMAGENET1K_V1 for DEFAULT)
    url: str | None = None
    path: str | None = None     # a file (a run directory is resolved to its best.pt / last.pt)

    @property
    def named(self) -> bool:
        return self.url is not None

    def where(self) -> str:
        """How diagnostics name it: ``weights 'x'`` or ``--init-from 'x'``."""
        return f"{self.flag} {self.text}" if self.flag else self.text

    def describe(self) -> str:
        """As written (a run directory: with the checkpoint chosen in it, ``runs/x/TIME/best.pt``)."""
        return f"torchvision {self.model}.{self.name}" if self.named else self.text


def is_weights_name(text: str) -> bool:
    """``DEFAULT``, ``IMAGENET1K_V1``: an identifier (a file is written with a suffix or a path)."""
    return bool(_NAME.match(text))


def _err(message: str, ref_text: str, span: Span | None, flag: str | None, hint: str | None = None):
    if flag:
        return error(f"{flag} {ref_text}: {message}", None, hint)
    return error(message, span, hint)


def file_ref(text: str, span: Span | None = None, base: str | os.PathLike | None = None,
             flag: str | None = None) -> WeightsRef:
    """A weights file or run directory; a relative path is looked up next to the spec (``base``),
    then in the current directory."""
    p = Path(os.path.expanduser(text))
    tried = [p] if p.is_absolute() or base is None else [Path(base) / p, p]
    found = next((t for t in tried if t.exists()), None)
    if found is None:
        shown = " or ".join(str(t) for t in dict.fromkeys(tried))
        near = _near(tried[-1])
        raise _err(f"weights file {text} does not exist (looked for {shown})", text, span, flag,
                   near or "give a .pt / .pth / .safetensors file or a run directory (runs/NAME/TIME)")
    if found.is_dir():
        inner = next((f for f in RUN_FILES if (found / f).is_file()), None)
        if inner is None:
            raise _err(f"{found} is a directory without a checkpoint ({', '.join(RUN_FILES[:2])})", text, span,
                       flag, "a run directory of 'cnndsl train' holds best.pt and last.pt")
        return WeightsRef(f"{text.rstrip('/')}/{inner}", span, flag, path=str(found / inner))
    return WeightsRef(text, span, flag, path=str(found))


def _near(p: Path) -> str | None:
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        return None
    names = [x.name for x in parent.iterdir()]
    hint = did_you_mean(p.name, names)
    return hint


def named_ref(model: str, name: str, span: Span | None = None, flag: str | None = None) -> WeightsRef:
    from ..backbone.catalog import check_model, weights_url

    try:
        check_model("torchvision", model, span)
        canonical, url = weights_url(model, name, span)
    except Exception as exc:
        from ..errors import CnnError

        if flag and isinstance(exc, CnnError):
            d = exc.diagnostics[0]
            raise _err(d.message, f"torchvision:{model}.{name}", None, flag, d.hint) from None
        raise
    return WeightsRef(f"{model}.{name}", span, flag, model=model, name=canonical, url=url)


def init_ref(text: str, span: Span | None = None, base: str | os.PathLike | None = None,
             flag: str | None = None) -> WeightsRef:
    """``torchvision:resnet18.IMAGENET1K_V1`` (``torchvision:resnet18`` = its DEFAULT) or a path."""
    if text.startswith("torchvision:"):
        model, _, name = text[len("torchvision:"):].partition(".")
        return named_ref(model, name or "DEFAULT", span, flag)
    return file_ref(text, span, base, flag)
