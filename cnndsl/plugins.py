"""Ops defined in Python: the registration API for plugin authors, and how plugins are enabled.

A plugin is a Python module that defines :class:`Op` subclasses — the argument schema as
annotated attributes, and the rules ``infer`` (shape), ``rf`` (receptive field), ``param_shapes``
/ ``buffer_shapes``, ``macs`` and ``build`` (the torch module) — and registers each with
:func:`register`. docs/plugins.md is the guide.

Plugins run code, so they are enabled only by the person running cnndsl, never by a spec:

- an **installed package** declares its ops in the entry-point group ``cnndsl.ops``
  (``cbam = "mypkg.ops:CBAM"``: the name is the op's name); the entry point is loaded the first
  time a spec uses that name;
- ``--plugin MODULE`` on the command line (a module name, or a ``.py`` file), or
  ``cnndsl.load(spec, plugins=["MODULE"])`` / :func:`enable` from Python.

A spec that uses an op nobody enabled is refused with a hint naming ``--plugin``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Iterable

from .errors import CnnError, error
from .ops.base import (REGISTRY, Adaptive, Bounds, Dense, NonNegInt, NonNegPair, Op, Pointwise, PosFloat, PosInt,
                       PosPair, Prob, Shape, ShapeError, Transposed, Unknown, Upsample, Window, need_map, pair,
                       prod, window_out)

__all__ = ["GROUP", "register", "enable", "origin", "Op", "Shape", "ShapeError", "Window", "Transposed",
           "Upsample", "Pointwise", "Adaptive", "Dense", "Unknown", "PosInt", "NonNegInt", "PosPair",
           "NonNegPair", "Prob", "PosFloat", "Bounds", "need_map", "pair", "prod", "window_out"]

GROUP = "cnndsl.ops"
NOT_ENABLED_HINT = ("an op defined in Python must be enabled: --plugin MODULE on the command line, "
                    "cnndsl.load(..., plugins=[\"MODULE\"]) in Python, or install its package "
                    "(entry points 'cnndsl.ops'); 'cnndsl ops' lists the ops")
_ORIGIN: dict[str, str] = {}   # plugin op name → where it came from ("module cbam_ops", "package x 1.0")
_SCANNED: dict[tuple[str, ...], dict] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make a plugin op available in specs under ``cls.name``.

    Refuses (as a CnnError) a class that is no :class:`Op`, a name that is not an identifier, and a
    name already taken by a built-in op or another plugin's op. Registering the same class again
    (its module imported twice) changes nothing.
    """
    from .names import check_name

    if not (isinstance(cls, type) and issubclass(cls, Op)) or cls is Op:
        raise error(f"plugin: {cls!r} is not a subclass of cnndsl.plugins.Op", None,
                    "an op is a class deriving from Op with a 'name', its arguments as annotated attributes, "
                    "and its rules (see docs/plugins.md)")
    check_name(cls.name or "", None, "op name")
    where = f"module {cls.__module__}"
    old = REGISTRY.get(cls.name, fallback=False)
    if old is not None:
        if (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__):
            return old
        owner = _ORIGIN.get(cls.name, "a built-in op")
        raise error(f"plugin op '{cls.name}' ({where}) clashes with {owner} of that name", None,
                    "give the plugin's op another name")
    REGISTRY[cls.name] = cls
    _ORIGIN.setdefault(cls.name, where)
    return cls


def origin(name: str) -> str | None:
    """Where a plugin op came from (``module cbam_ops``), or None for a built-in op."""
    return _ORIGIN.get(name)


def enable(modules: Iterable[str], flag: str = "--plugin") -> list[str]:
    """Import each plugin module (a module name, or a path to a ``.py`` file); returns the names
    of the ops they registered. A module that cannot be imported is a CnnError naming ``flag``."""
    before = set(REGISTRY)
    for name in modules:
        _import(str(name), flag)
    return sorted(set(REGISTRY) - before)


def _import(name: str, flag: str) -> None:
    try:
        if name.endswith(".py"):
            _import_file(name, flag)
        else:
            importlib.import_module(name)
    except ImportError as exc:
        raise error(f"{flag} {name}: cannot import it: {exc}", None,
                    "a plugin is a module name (installed, or on PYTHONPATH) or a path to a .py file") from None
    except CnnError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's own bug: name it, no traceback
        raise error(f"{flag} {name}: importing it failed: {type(exc).__name__}: {exc}", None,
                    "the error is in the plugin module; run with --debug for the traceback") from None


def _import_file(path: str, flag: str) -> None:
    """A plugin given as a file; it joins ``sys.modules`` under its file name, so that importing it
    by name later (an entry point) finds the same module."""
    if not os.path.isfile(path):
        raise error(f"{flag} {path}: no such file", None, "give the path to the plugin's .py file")
    stem = os.path.splitext(os.path.basename(path))[0]
    loaded = sys.modules.get(stem)
    if loaded is not None and os.path.abspath(getattr(loaded, "__file__", "") or "") == os.path.abspath(path):
        return
    spec = importlib.util.spec_from_file_location(stem, path)
    if spec is None or spec.loader is None:
        raise error(f"{flag} {path}: not a Python module", None, "give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(stem, module)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if sys.modules.get(stem) is module:
            del sys.modules[stem]
        raise


def _entry_points() -> dict:
    """``{op name: entry point}`` of the installed packages (scanned once per ``sys.path``)."""
    key = tuple(sys.path)
    if key not in _SCANNED:
        from importlib.metadata import entry_points

        _SCANNED.clear()
        _SCANNED[key] = {ep.name: ep for ep in entry_points(group=GROUP)}
    return _SCANNED[key]


def entry_point_op(name: str) -> type[Op] | None:
    """The op an installed package declares under ``name`` (loaded and registered now), or None."""
    ep = _entry_points().get(name)
    if ep is None:
        return None
    where = f"entry point {GROUP}:{name} ({ep.value})"
    try:
        cls = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin package: say which, never a traceback
        raise error(f"plugin op '{name}': loading {where} failed: {type(exc).__name__}: {exc}", None,
                    "reinstall or uninstall the package that declares it") from None
    if getattr(cls, "name", None) != name:
        raise error(f"plugin op '{name}': {where} gives {cls!r}, whose name is not '{name}'", None,
                    "an entry point of the group 'cnndsl.ops' is named after its op")
    cls = register(cls)
    dist = getattr(ep, "dist", None)
    _ORIGIN[name] = f"package {dist.name} {dist.version}" if dist is not None else where
    return cls


def load_installed() -> list[str]:
    """Load every op installed packages declare (for listings: ``cnndsl ops``); their names."""
    return [name for name in sorted(_entry_points()) if entry_point_op(name) is not None]
