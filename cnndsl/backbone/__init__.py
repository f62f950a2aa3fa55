"""Backbones: existing models (torchvision, timm, other cnndsl specs) as items of a spec.

``syntax`` reads and writes the item; ``expand`` splices a backbone's translated graph into the
network's graph (see :mod:`cnndsl.translate`); ``catalog`` knows the model and weights names;
``lower`` and ``runtime`` build it as one module (torchvision's ``create_feature_extractor``).
Only ``lower``/``runtime`` import torch, and ``expand`` on a translation-cache miss.
"""
