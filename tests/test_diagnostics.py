"""Golden diagnostics: the exact stderr of ``cnndsl check`` for each malformed spec in tests/golden/.

Each ``NAME.cnn`` / ``NAME.yaml`` in tests/golden/ is checked and its stderr compared with
``NAME.expected``. Inputs that cannot live in the repository (an oversized file, a binary file,
a directory, a missing file, 100,000-deep YAML) are made in a temporary folder by GENERATED; their
``.expected`` files are in tests/golden/ too. Regenerate after an intended wording change with

    pytest tests/test_diagnostics.py --update-golden        (or UPDATE_GOLDEN=1 pytest ...)

and review the diff. Besides the exact text, every case must follow the project standard:
``file:line:col: error: message``, the source line with a caret, a hint, exit code 2, no traceback.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest

import cnndsl
from cnndsl import CnnError
from cnndsl.syntax.examples import SYNTAX_EXAMPLES

GOLDEN = Path(__file__).resolve().parent / "golden"

# Extra command-line arguments for a case.
ARGS: dict[str, list[str]] = {
    "set_unknown_param": ["--set", "num_clases=5"],
}


def _write(name: str, data: bytes) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        (d / name).write_bytes(data)
        return name
    return make


def _directory(d: Path) -> str:
    (d / "directory.cnn").mkdir()
    return "directory.cnn"


GENERATED: dict[str, Callable[[Path], str]] = {
    "missing_file": lambda d: "missing_file.cnn",
    "empty_file": _write("empty_file.cnn", b""),
    "binary_file": _write("binary_file.cnn", b"network N {\x00\x01\x02\xff}\n"),
    "oversized_file": _write("oversized_file.cnn",
                             b"# padding\n" * 110_000 + b"network N {\n    input 3x8x8\n}\n"),
    "directory": _directory,
    "yaml_deep_flow": _write("yaml_deep_flow.yaml", b"[" * 100_000 + b"]" * 100_000 + b"\n"),
}

# Errors about a whole file or about the command line: there is no source line to point at, so
# the message names the file (or the --set option) instead of file:line:col and a caret.
NO_SOURCE_LINE = {"missing_file", "empty_file", "binary_file", "oversized_file", "directory",
                  "set_unknown_param"}

# Inputs that must be refused fast (generous bound; no other test here measures time).
REFUSED_FAST = {"yaml_billion_laughs", "yaml_python_tag", "yaml_deep_flow", "nested_repeat_bomb",
                "parameter_budget", "oversized_file", "repeat_5000", "nesting_too_deep", "parens_too_deep"}

# Diagnostics that have no hint yet; the code that raises them is outside the front end.
# strict xfail: when a hint is added, the XPASS says to drop the entry (and --update-golden).
MISSING_HINT: dict[str, str] = {}

STORED = sorted(p.stem for p in GOLDEN.iterdir() if p.suffix in (".cnn", ".yaml"))
CASES = STORED + sorted(GENERATED)

LOCATION = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+): error: \S")
CARET = re.compile(r"^ +\| *\^~*$", re.M)


def _prepare(name: str, tmp_path: Path) -> str:
    """Put the case's input in tmp_path (the checks run there: nothing can touch the repo)."""
    if name in GENERATED:
        return GENERATED[name](tmp_path)
    src = next(p for p in GOLDEN.glob(name + ".*") if p.suffix in (".cnn", ".yaml"))
    shutil.copy(src, tmp_path / src.name)
    return src.name


def _run_check(name: str, tmp_path: Path, monkeypatch, cli) -> tuple[str, int, str, str, float]:
    filename = _prepare(name, tmp_path)
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    rc, out, err = cli("check", filename, *ARGS.get(name, []))
    return filename, rc, out, err, time.perf_counter() - t0


@pytest.mark.parametrize("name", CASES)
def test_golden(name, tmp_path, monkeypatch, cli, update_golden):
    filename, rc, out, err, elapsed = _run_check(name, tmp_path, monkeypatch, cli)
    expected_path = GOLDEN / f"{name}.expected"
    if update_golden:
        expected_path.write_text(err, encoding="utf-8")
    assert expected_path.exists(), f"no {expected_path.name}: run pytest with --update-golden"

    assert rc == 2, f"exit code {rc}, stderr:\n{err}"
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    first = err.splitlines()[0]
    if name in NO_SOURCE_LINE:
        assert first.startswith(("cnndsl: error: ", f"{filename}:1:1: error: ")), first
        assert filename in first or "--set" in first or "parameter" in first
    else:
        m = LOCATION.match(first)
        assert m, f"no file:line:col at the start of: {first!r}"
        assert m["file"] == filename
        assert CARET.search(err), f"no caret line in:\n{err}"
    if name in REFUSED_FAST:
        assert elapsed < 2.0, f"took {elapsed:.2f}s to refuse"
    assert {p.name for p in tmp_path.iterdir()} - {filename} == set(), "checking a spec wrote files"
    if not update_golden:
        assert err == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=MISSING_HINT[n]))
                                  if n in MISSING_HINT else n for n in CASES])
def test_every_diagnostic_has_a_hint(name, tmp_path, monkeypatch, cli):
    _, rc, _, err, _ = _run_check(name, tmp_path, monkeypatch, cli)
    assert rc == 2 and "\n  hint: " in err, err


def test_no_orphan_expected_files():
    expected = {p.stem for p in GOLDEN.glob("*.expected")}
    assert expected == set(CASES), "an .expected file without an input, or an input without .expected"


# ----------------------------------------------------------------------------- specific content


def _golden_err(name: str) -> str:
    return (GOLDEN / f"{name}.expected").read_text(encoding="utf-8")


@pytest.mark.parametrize("name, fragments", [
    ("unknown_op", ["unknown op or block 'rellu'", "did you mean 'relu'"]),
    ("unknown_kwarg", ["no argument 'kernal'", "did you mean 'kernel'"]),
    ("unknown_name_in_expression", ["unknown name 'widht'", "did you mean 'width'"]),
    ("yaml_unknown_key", ["unknown key 'layer'", "did you mean 'layers'"]),
    ("recursive_blocks", ["A → B → A", "'A' calls 'B'", "'B' calls 'A'"]),
    ("self_recursive_block", ["A → A"]),
    ("residual_without_projection", ["16×32×32", "3×32×32", "the shortcut ends at 'input'"]),
    ("concat_spatial_mismatch", ["8×16×16", "8×32×32", "'a' (conv)", "'b' (conv)"]),
    ("parameter_budget", ["1.51e+14", "budget is 1e+09", "--max-params"]),
    ("nested_repeat_bomb", ["1,000,000,000,000 layers", "limit of 10,000"]),
    ("yaml_duplicate_key", ["yaml_duplicate_key.yaml:6:3", "yaml_duplicate_key.yaml:2:3: note: first here"]),
    ("yaml_python_tag", ["python/object/apply:os.system", "not allowed"]),
    ("yaml_billion_laughs", ["anchors/aliases are not allowed"]),
    ("unclosed_brace_at_eof", ["unexpected end of file", "this '{' is never closed"]),
    ("truncated_file", ["unexpected end of file", "this '(' is never closed"]),
    ("set_unknown_param", ["no parameter 'num_clases'", "did you mean 'num_classes'"]),
])
def test_golden_content(name, fragments):
    err = _golden_err(name)
    for f in fragments:
        assert f in err


def test_billion_laughs_is_the_small_classic():
    assert (GOLDEN / "yaml_billion_laughs.yaml").stat().st_size < 400


# ----------------------------------------------------------------------------- the API raises the same


@pytest.mark.parametrize("name", [n for n in STORED if n not in ARGS])
def test_api_raises_cnnerror_with_a_span(name, monkeypatch, tmp_path):
    filename = _prepare(name, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(cnndsl.load(filename))
    assert ei.value.span is not None and ei.value.span.file == filename
    assert ei.value.span.line >= 1 and ei.value.span.col >= 1


# ----------------------------------------------------------------------------- lark example labels


@pytest.mark.parametrize("label, snippet", [(label, s) for label, snippets in SYNTAX_EXAMPLES.items()
                                            for s in snippets])
def test_syntax_examples_get_their_label(label, snippet):
    """Each labelled snippet in cnndsl/syntax/examples.py produces exactly its own hint."""
    with pytest.raises(CnnError) as ei:
        cnndsl.parse(snippet, format="cnn")
    d = ei.value.diagnostics[0]
    assert d.hint == label
    assert d.span is not None and d.span.line == 1
