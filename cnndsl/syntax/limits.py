"""Input limits, checked before anything expensive runs."""

from __future__ import annotations

from ..errors import Span, error

MAX_FILE_BYTES = 1 << 20     # 1 MiB: larger spec files are refused before parsing
MAX_NESTING = 64             # nested groups / branches / blocks bodies / brackets
MAX_EXPR_DEPTH = 400         # depth of any syntax tree (long expression chains)


def check_text(text: str, filename: str) -> None:
    """Refuse empty, binary or oversized source text with a clear message."""
    size = len(text.encode("utf-8", errors="replace")) if len(text) > MAX_FILE_BYTES // 4 else len(text)
    if size > MAX_FILE_BYTES:
        raise error(f"spec is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})",
                    Span(filename, 1, 1), "split it into files and use 'import'")
    if "\x00" in text:
        raise error("spec looks like a binary file (it contains NUL bytes)", Span(filename, 1, 1),
                    "cnndsl reads .cnn text files and YAML documents")
    if not text.strip():
        raise error("spec is empty", Span(filename, 1, 1),
                    "a spec needs at least 'network Name { input 3x32x32 ... }'")
