"""Which models and weights exist: torchvision's (and timm's) catalogue, cached on disk.

The catalogue is read once per library version (importing torchvision, a few seconds) and kept in
the translation cache, so checking a model or weights name — with a did-you-mean — does not import
torch afterwards.
"""

from __future__ import annotations

from typing import Any

from ..errors import Span, did_you_mean, error
from ..translate import cache

TORCHVISION_PACKAGES = ("torch", "torchvision")
TIMM_PACKAGES = ("torch", "torchvision", "timm")


def _need(package: str, span: Span | None):
    return error(f"this backbone needs {package}, which is not installed", span,
                 f"pip install {package}" + (" (or: pip install 'cnndsl[timm]')" if package == "timm" else ""))


def torchvision_catalog(span: Span | None = None) -> dict[str, Any]:
    """``{"models": [...], "weights": {model: {NAME: url}}, "default": {model: NAME}}``."""
    versions = cache.library_versions(*TORCHVISION_PACKAGES)
    if versions["torchvision"] == "absent":
        raise _need("torchvision", span)
    digest = cache.key({"catalog": "torchvision", **versions})
    data = cache.load("catalog", digest)
    if data is not None:
        return data
    import torchvision
    from torchvision.models import get_model_weights, list_models

    models = sorted(list_models(module=torchvision.models))
    weights: dict[str, dict[str, str]] = {}
    default: dict[str, str] = {}
    for m in models:
        try:
            enum = get_model_weights(m)
        except (ValueError, KeyError):
            continue
        weights[m] = {w.name: w.url for w in enum}
        if "DEFAULT" in enum.__members__:
            default[m] = enum.__members__["DEFAULT"].name
    data = {"models": models, "weights": weights, "default": default}
    cache.store("catalog", digest, data)
    return data


def timm_catalog(span: Span | None = None) -> dict[str, Any]:
    """``{"models": [...]}`` of timm."""
    versions = cache.library_versions(*TIMM_PACKAGES)
    if versions["timm"] == "absent":
        raise _need("timm", span)
    digest = cache.key({"catalog": "timm", **versions})
    data = cache.load("catalog", digest)
    if data is not None:
        return data
    import timm

    data = {"models": sorted(timm.list_models())}
    cache.store("catalog", digest, data)
    return data


def check_model(source: str, model: str, span: Span | None) -> None:
    """Refuse a model name the library does not have, with a did-you-mean."""
    cat = torchvision_catalog(span) if source == "torchvision" else timm_catalog(span)
    if model in cat["models"]:
        return
    hint = did_you_mean(model, cat["models"])
    if hint is None:
        sample = ", ".join(cat["models"][:12])
        hint = (f"torchvision's classification models: {sample}, ... (torchvision.models.list_models())"
                if source == "torchvision" else "see timm.list_models()")
    if source == "torchvision":
        hint += " (a timm model is written timm.NAME, another cnndsl spec as a quoted path: \"pretrain.cnn\")"
    raise error(f"unknown {source} model '{model}'", span, hint)


def weights_url(model: str, name: str, span: Span | None) -> tuple[str, str]:
    """(canonical weights name, download URL) of a torchvision model's named weights."""
    cat = torchvision_catalog(span)
    names = cat["weights"].get(model, {})
    canonical = cat["default"].get(model) if name == "DEFAULT" else name
    if canonical is None or canonical not in names:
        valid = ["DEFAULT", *names] if names else []
        if not valid:
            raise error(f"torchvision has no pretrained weights for {model}", span,
                        "leave weights out (random initialisation) or give a file")
        raise error(f"unknown weights '{name}' for {model}", span,
                    (did_you_mean(name, valid) or "") + (" " if did_you_mean(name, valid) else "")
                    + "valid: " + ", ".join(valid))
    return canonical, names[canonical]
