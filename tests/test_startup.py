"""Start-up: ``cnndsl --version`` / ``--help`` import nothing heavy, ``check`` imports no torch, and
the import layers hold (ops never import the back ends; ``cnndsl.nn`` is a leaf). Each case runs in
a fresh interpreter and inspects ``sys.modules``; timings are in bench/check_time.py."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from cnndsl.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""

HEAVY = ("torch", "pydantic", "pydantic_core", "lark", "yaml", "numpy")


def _modules(argv: list[str]) -> tuple[int, set[str], str]:
    r = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    data = json.loads(r.stdout.strip().splitlines()[-1])
    return data["code"], {m.split(".")[0] for m in data["modules"]}, r.stdout


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["check", "--help"], ["train", "--help"]])
def test_version_and_help_import_nothing_heavy(argv):
    code, roots, out = _modules(argv)
    assert code == 0
    assert not roots & set(HEAVY), sorted(roots & set(HEAVY))
    assert "cnndsl 0.1.0" in out if argv == ["--version"] else "usage:" in out


def test_check_imports_no_torch():
    code, roots, out = _modules(["check", "specs/resnet18.cnn"])
    assert code == 0 and "ok: specs/resnet18.cnn" in out
    assert "torch" not in roots and "yaml" not in roots      # .cnn specs need no YAML reader either


def test_check_builds_no_pydantic_model(tmp_path):
    """``check`` of a correct .cnn spec needs neither pydantic's model machinery (``pydantic.main``,
    schema generation, the plugin scan) nor pydantic-core: the IR nodes are plain records, and op
    arguments that are plainly valid pass the quick check (cnndsl.ops.args). Importing those was
    most of what ``check`` paid over ``import pydantic, lark``. A wrong argument is still worded
    by pydantic-core, which is then imported."""
    def modules(spec: str) -> tuple[str, set[str]]:
        r = subprocess.run([sys.executable, "-c", PROBE.format(argv=["check", spec])],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
        return r.stdout + r.stderr, set(json.loads(r.stdout.strip().splitlines()[-1])["modules"])

    out, loaded = modules("specs/resnet18.cnn")
    assert "ok: specs/resnet18.cnn" in out
    assert not {m for m in loaded if m.split(".")[0] in ("pydantic", "pydantic_core")}, sorted(loaded)
    bad = tmp_path / "bad.cnn"
    bad.write_text("network N {\n  input 3x8x8\n  conv(8, k=0)\n}\n")
    out, loaded = modules(str(bad))
    assert "argument 'kernel' of conv must be" in out and "pydantic_core" in loaded
    assert "pydantic.main" not in loaded


def test_import_cnndsl_is_lazy():
    r = subprocess.run([sys.executable, "-c", "import cnndsl, sys; print(cnndsl.__version__, "
                        "'pydantic' in sys.modules, 'lark' in sys.modules); cnndsl.analyze; "
                        "print('cnndsl.api' in sys.modules, sorted(set(cnndsl.__all__) - set(dir(cnndsl))))"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.stdout.split() == ["0.1.0", "False", "False", "True", "[]"], r.stderr


def _imports(path: Path) -> set[str]:
    """Modules a source file imports (relative imports resolved against the cnndsl package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            out.add(f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module)
    return out


def test_ops_do_not_import_the_back_ends_and_nn_is_a_leaf():
    for path in sorted((ROOT / "cnndsl" / "ops").glob("*.py")):
        bad = {m for m in _imports(path) if m.startswith(("cnndsl.emit", "cnndsl.analysis", "cnndsl.train"))}
        assert not bad, (path.name, bad)
    assert {m for m in _imports(ROOT / "cnndsl" / "nn.py") if m.startswith("cnndsl")} == set()
    assert not (ROOT / "cnndsl" / "emit" / "layers.py").exists()


LOAD = """
import logging, lark
lark.logger.setLevel(logging.DEBUG)
from cnndsl.syntax.grammar import cache_file, parser
parser().parse("network N {{ input 3x8x8 relu }}", start="start")
print(cache_file())
"""


def test_parse_tables_are_cached_in_the_user_cache_folder(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "", "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", LOAD.format()], capture_output=True, text=True, env=env,
                           timeout=60, cwd=ROOT) for _ in range(2)]
    path = Path(runs[0].stdout.split()[-1])
    assert path.parent == tmp_path / "cnndsl" and path.is_file(), runs[0].stderr
    assert f"Saving grammar to cache: {path}" in runs[0].stderr
    assert f"Loading grammar from cache: {path}" in runs[1].stderr
    path.write_bytes(b"damaged")                            # a stale or damaged file is rebuilt
    again = subprocess.run([sys.executable, "-c", LOAD.format()], capture_output=True, text=True, env=env,
                           timeout=60, cwd=ROOT)
    assert again.returncode == 0 and path.read_bytes() != b"damaged"
    blocked = tmp_path / "file"
    blocked.write_text("")                                  # the cache folder cannot be created
    env["XDG_CACHE_HOME"] = str(blocked)
    r = subprocess.run([sys.executable, "-c", LOAD.format()], capture_output=True, text=True, env=env,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.split()[-1] == "True"


SCAN_PROBE = """
import importlib.metadata as md, json, os, sys
os.environ.pop("PYDANTIC_DISABLE_PLUGINS", None)
calls = []
real = md.distributions
md.distributions = lambda *a, **k: calls.append(1) or real(*a, **k)
from cnndsl.cli import main
code = main(["check", "specs/resnet18.cnn"])
print(json.dumps({"code": code, "scans": len(calls)}))
"""


def test_check_does_not_scan_installed_packages_for_pydantic_plugins():
    """pydantic looks for observability plugins in every installed distribution when the first model
    is built (≈ 40 ms of a ≈ 300 ms check); the command line switches that off unless the user set it."""
    r = subprocess.run([sys.executable, "-c", SCAN_PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    data = json.loads(r.stdout.strip().splitlines()[-1])
    assert data == {"code": 0, "scans": 0}, r.stdout + r.stderr


def test_the_parser_does_not_import_the_training_api():
    """``cnndsl.train`` is callable (``cnndsl.train(spec)``), but registering ``cnndsl train`` with
    the parser must not import the API behind it (it costs ≈ 10 ms of every ``--version``)."""
    r = subprocess.run([sys.executable, "-c", PROBE.format(argv=["--version"])], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    modules = set(json.loads(r.stdout.strip().splitlines()[-1])["modules"])
    assert "cnndsl.train.cli" in modules and "cnndsl.train.api" not in modules


REGEX_PROBE = """
import json, re._compiler as rc
compiled = []
real = rc.compile
rc.compile = lambda p, flags=0: compiled.append(p) or real(p, flags)
from cnndsl.syntax.grammar import cache_file, parser
from cnndsl.syntax.regex_cache import cache_path
before = len(compiled)
tree = parser().parse(open("specs/resnet18.cnn").read(), start="start")
print(json.dumps({"compiled": len(compiled) - before, "file": str(cache_path(cache_file())),
                  "tree": tree.pretty()}))
"""


def test_lexer_regexes_are_cached_beside_the_parse_tables(tmp_path):
    """The lexer's ~80 regular expressions (15-20 ms of compiling per process) are recorded once
    and preloaded afterwards: a second process compiles none; a damaged file is recorded again,
    and the parse is the same every time."""
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "", "PYTHONPATH": str(ROOT)}

    def run() -> dict:
        r = subprocess.run([sys.executable, "-c", REGEX_PROBE], capture_output=True, text=True, env=env,
                           timeout=120, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    path = Path(first["file"])
    assert path.parent == tmp_path / "cnndsl" and path.is_file()
    assert first["compiled"] > 20 and second["compiled"] == 0, (first["compiled"], second["compiled"])
    path.write_bytes(b"damaged")
    third = run()
    assert third["compiled"] > 20 and path.read_bytes() != b"damaged"
    assert first["tree"] == second["tree"] == third["tree"]
    assert not list(path.parent.glob("*.tmp"))
