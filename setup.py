"""Package discovery for setuptools (the rest of the configuration is in pyproject.toml).

Every ``cnndsl*`` package (``cnndsl/emit`` and ``cnndsl/syntax`` are namespace packages), plus
``cnndsl.specs``: the top-level ``specs/`` folder, mapped in pyproject.toml, so that a wheel ships
the networks and block libraries that ``cnndsl check resnet18`` and ``import "resnet_blocks"`` name.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["cnndsl", "cnndsl.*"]), "cnndsl.specs", "cnndsl.specs.lib"])
