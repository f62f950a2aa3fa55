"""An on-disk cache of translations and model catalogues (JSON), so a repeated ``cnndsl check``
of a backbone spec neither traces nor imports torch.

Location: ``$CNNDSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnndsl``, else ``~/.cache/cnndsl``. An
entry is keyed by the sha256 of everything its content depends on — the source and model, the cut,
the input size, the model's arguments and the versions of torch, torchvision/timm and of the
translation format — so a library upgrade is a miss, never a stale hit. Library versions are read
from package metadata (``importlib.metadata``), which does not import the packages. Entries are
written atomically; an unreadable or corrupt entry is a miss; a cache that cannot be written
(read-only home) is skipped silently — the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .records import FORMAT

ENV = "CNNDSL_CACHE_DIR"


def cache_dir() -> Path:
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnndsl"


def library_versions(*packages: str) -> dict[str, str]:
    """Installed versions (without importing the packages); the translator's format too."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"cnndsl-translation": str(FORMAT)}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    return out


def key(parts: dict[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def path_for(kind: str, digest: str) -> Path:
    return cache_dir() / kind / f"{digest}.json"


def load(kind: str, digest: str) -> dict[str, Any] | None:
    p = path_for(kind, digest)
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def store(kind: str, digest: str, data: dict[str, Any]) -> Path | None:
    p = path_for(kind, digest)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True, separators=(",", ":"))
        os.replace(tmp, p)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        return None
    return p
