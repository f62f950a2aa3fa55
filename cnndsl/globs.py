"""The one rule for name patterns, everywhere in cnndsl (no torch).

A pattern names parameters (and the modules that hold them) by their full dotted names, the
``state_dict`` keys of the built network (``layer1.0.conv1.weight``, ``features.layer4.1.bn2.bias``):

- it is an ``fnmatch`` glob (``*`` also crosses dots, ``?``, ``[seq]``), matched from the start of
  the name;
- it matches a name when it matches the whole name **or a module above it**: ``layer1`` matches
  ``layer1.0.conv1.weight`` (as ``layer1.*`` does), ``*.bias`` every bias, ``layer4.?.bn*`` the
  norms of layer4's blocks; ``conv1`` matches the stem's ``conv1.weight`` but not
  ``layer1.0.conv1.weight`` (write ``*conv1`` for every conv1);
- ``all`` is a keyword for every parameter (the same as ``*``).

The spec's ``freeze``/``unfreeze``, and the train section's ``param_groups``, ``freeze_after`` and
``stages`` all use :func:`matches`; a pattern that matches nothing is a warning with the nearest
names (:func:`nearest`).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence

ALL = "all"
WILDCARDS = "*?["


def _glob(pattern: str) -> str:
    return "*" if pattern == ALL else pattern


def matches(name: str, pattern: str) -> bool:
    """Does ``pattern`` match ``name`` or one of the modules above it (its dotted prefixes)?"""
    p = _glob(pattern)
    return fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, p + ".*")


def match_any(name: str, patterns: Iterable[str]) -> bool:
    return any(matches(name, p) for p in patterns)


def as_list(patterns: str | Sequence[str] | None) -> list[str]:
    """A pattern field of the train section (one glob or a list) as a list."""
    if patterns is None:
        return []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def modules_of(names: Iterable[str]) -> list[str]:
    """Every name and every module above it (``layer1``, ``layer1.0``, ``layer1.0.conv1``, ...)."""
    out: dict[str, None] = {}
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            out[".".join(parts[:k])] = None
    return list(out)


def nearest(pattern: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The module or parameter names closest to a pattern that matches nothing (maybe none)."""
    candidates = modules_of(names)
    close = difflib.get_close_matches(pattern, candidates, n=n, cutoff=0.6)
    literal = pattern
    for w in WILDCARDS:
        literal = literal.split(w)[0]
    literal = literal.rstrip(".")
    if not close and literal and literal != pattern:   # `layr4.*`: the part before the wildcard
        close = difflib.get_close_matches(literal, candidates, n=n, cutoff=0.6)
    return close


def no_match_hint(pattern: str, names: Sequence[str]) -> str:
    """The hint of a "matches nothing" warning: the nearest names, else the top-level ones."""
    if not names:
        return "the network has no parameters"
    near = nearest(pattern, names)
    if near:
        lead = "did you mean " + " or ".join(f"'{c}'" for c in near) + "?"
    else:
        tops = [c for c in modules_of(names) if "." not in c]
        lead = "the top-level names are " + ", ".join(tops[:10]) + (", ..." if len(tops) > 10 else "") + "."
    return f"{lead} Patterns are globs over full names like '{names[0]}'; a module's name matches everything in it"


def frozen(name: str, freeze: Sequence[str], unfreeze: Sequence[str]) -> bool:
    """The spec's rule: frozen when a ``freeze`` pattern matches and no ``unfreeze`` pattern does
    (every ``unfreeze`` applies after every ``freeze``: it makes exceptions)."""
    return match_any(name, freeze) and not match_any(name, unfreeze)


def apply(trainable: dict[str, bool], freeze: Sequence[str], unfreeze: Sequence[str]) -> list[str]:
    """Change ``{name: trainable}`` as a stage says (its ``freeze`` first, then ``unfreeze`` makes
    exceptions, as the spec's statements); returns the names that became trainable."""
    joined = []
    for name, on in trainable.items():
        if match_any(name, unfreeze):
            if not on:
                joined.append(name)
            trainable[name] = True
        elif match_any(name, freeze):
            trainable[name] = False
    return joined
