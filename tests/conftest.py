"""Shared fixtures for the cnndsl tests (keep this small)."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.expected from the current output (or set UPDATE_GOLDEN=1)")


@pytest.fixture
def update_golden(request) -> bool:
    return bool(request.config.getoption("--update-golden")) or os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture
def cli(capsys):
    """Run ``cnndsl.cli.main`` in-process: ``rc, out, err = cli("check", "x.cnn")``."""
    from cnndsl.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture(scope="session", autouse=True)
def _translation_cache(tmp_path_factory):
    """Backbone translations are cached in a directory of the test session, not the user's cache
    (subprocesses inherit it); tests that need an empty cache set CNNDSL_CACHE_DIR themselves."""
    if "CNNDSL_CACHE_DIR" not in os.environ:
        os.environ["CNNDSL_CACHE_DIR"] = str(tmp_path_factory.mktemp("cnndsl-cache"))
    yield
