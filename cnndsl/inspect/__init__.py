"""Seeing inside a network: feature maps, filters, receptive fields, Grad-CAM, diagrams, curves.

One module per command (``features``, ``filters``, ``rf``, ``cam``, ``diagram``, ``curves``), shared
pieces in ``taps`` (capture any layer's value), ``subject`` (spec + weights + input image),
``images`` (image files and tiling) and ``viz`` (matplotlib, headless). Importing this package
imports neither torch nor matplotlib; ``cli.register`` adds the subcommands.
"""
