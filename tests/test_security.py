"""Nothing a spec says can execute code, reach the terminal raw, or read files it should not.

Issue 6 items 1, 3, 4, 6, 7, 14 and 22 (emit part): the name rule (:mod:`cnndsl.names`, enforced by
the IR for both syntaxes), the emitter's handling of spec text (string literals via ``repr``,
comments and docstrings escaped; a property over arbitrary text in every string field), escaped
control characters in diagnostics and summaries, and regular-file-only reading with spec-only
imports.
"""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl import CnnError
from cnndsl.emit.module import Container
from cnndsl.emit.python import python_source
from cnndsl.names import NN_MODULE_ATTRIBUTES, check_module_name

ROOT = Path(__file__).resolve().parents[1]
PROPERTY = settings(deadline=None, derandomize=True, database=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def refused(text: str, fmt: str) -> CnnError:
    """Parse + analyze: must raise CnnError (a diagnostic, never another exception)."""
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(cnndsl.parse(text, format=fmt))
    return ei.value


# ----------------------------------------------------------------------------- item 1: injection

PWNED_NAME = """\
network:
  name: "X\\nimport pathlib; pathlib.Path('PWNED').touch()\\n#"
  input: 3x8x8
  layers:
    - conv: [4, {k: 1}]
"""
PWNED_LAYER = """\
network:
  input: 3x8x8
  layers:
    - {name: "a\\" if getattr(__import__('os'),'system')('touch PWNED')==0 else \\"", conv: [4, {k: 1}]}
"""
PWNED_PARAM = """\
network:
  params: {"w\\nimport os; os.system('touch PWNED')\\n": 4}
  input: 3x8x8
  layers:
    - conv: [4, {k: 1}]
"""


@pytest.mark.parametrize("text, line", [(PWNED_NAME, 2), (PWNED_LAYER, 4), (PWNED_PARAM, 2)])
def test_injected_names_are_refused_at_the_name(text, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = refused(text, "yaml")
    assert err.span.line == line and "invalid" in err.diagnostics[0].message
    (tmp_path / "evil.yaml").write_text(text)
    from cnndsl.cli import main

    assert main(["compile", "evil.yaml", "--emit", "python", "-o", "out.py"]) == 2
    assert not (tmp_path / "out.py").exists() and not (tmp_path / "PWNED").exists()


def test_an_injected_freeze_glob_stays_in_a_comment(tmp_path, monkeypatch):
    """Globs are free text: the emitter must keep them inert (escaped, in a comment)."""
    monkeypatch.chdir(tmp_path)
    evil = "*\nimport pathlib; pathlib.Path('PWNED').touch()\n#\"\"\"\\"
    spec = yaml.safe_dump({"network": {"input": "3x8x8", "layers": [{"name": "c", "conv": [4, {"k": 1}]}],
                                       "freeze": ["c.*", evil]}})
    source = python_source(cnndsl.analyze(cnndsl.parse(spec, format="yaml")), source="x\n__import__('os')")
    assert_emitter_shape(source)
    namespace: dict = {"__name__": "emitted"}
    exec(compile(source, "emitted.py", "exec"), namespace)  # noqa: S102  (the point of the test)
    model = namespace["Network"]()
    assert not model.c.weight.requires_grad and not (tmp_path / "PWNED").exists()


def test_a_nul_in_a_yaml_string_still_emits_python():
    """Item 22: a NUL in a YAML string (here a glob, and the spec path) made a file that does not compile."""
    spec = "network:\n  input: 3x8x8\n  layers: [{name: c, conv: [4, {k: 1}]}]\n  freeze: [\"c.*\", \"a\\0b\"]\n"
    analysis = cnndsl.analyze(cnndsl.parse(spec, format="yaml"))
    assert analysis.graph.freeze[1][0] == "a\x00b"
    assert_emitter_shape(python_source(analysis, source="spec\x00.yaml"))


# ----------------------------------------------------------------------------- items 6/7: the name rule

BAD_SPELLINGS = ["a.b", "", "a b", "a\nb", "a\x00b", "1a", "é", "a-b", "a\x1b[31m"]
RESERVED = ["forward", "training", "parameters", "state_dict", "to", "eval", "__init__", "_modules",
            "spec_name", "input_shape", "__getitem__", "_plan", "input"]


def _yaml(network: dict, blocks: dict | None = None) -> str:
    doc = {"network": {"input": "3x8x8", **network}}
    if blocks:
        doc["blocks"] = blocks
    return yaml.safe_dump(doc, allow_unicode=True)


# every place a name is written, as a YAML document built around NAME
NAME_PLACES = {
    "layer": lambda n: _yaml({"layers": [{"name": n, "conv": [4, {"k": 1}]}]}),
    "group": lambda n: _yaml({"layers": [{"name": n, "group": ["relu"]}]}),
    "shortcut": lambda n: _yaml({"layers": [{"residual": ["relu"], "shortcut": {"name": n, "layers": ["relu"]}}]}),
    "parameter": lambda n: _yaml({"params": {n: 4}, "layers": ["relu"]}),
    "repeat index": lambda n: _yaml({"layers": [{"relu": None, "repeat": 2, "as": n}]}),
    "argument": lambda n: _yaml({"layers": [{"conv": {"out": 4, n: 1}}]}),
    "block": lambda n: _yaml({"layers": ["relu"]}, {n: {"layers": ["relu"]}}),
    "network": lambda n: _yaml({"name": n, "layers": ["relu"]}),
    "reference": lambda n: _yaml({"layers": [{"name": "a", "relu": None}, {"concat": n}]}),
}
MODULE_PLACES = ("layer", "group", "shortcut")


QUOTED_OK = ("1a", "a-b")  # quoted names (issue 9): fine where a name is a module path part, nowhere else
PATH_PLACES = (*MODULE_PLACES, "reference")


@pytest.mark.parametrize("place, name", [(p, n) for p in sorted(NAME_PLACES) for n in BAD_SPELLINGS
                                         if not (p == "reference" and n == "a.b")  # a path there
                                         and not (p in PATH_PLACES and n in QUOTED_OK)])
def test_yaml_names_must_be_identifiers(place, name):
    err = refused(NAME_PLACES[place](name), "yaml")
    d = err.diagnostics[0]
    assert "invalid" in d.message and d.span is not None and d.hint, d.message
    assert "\x00" not in err.render() and "\x1b" not in err.render()


@pytest.mark.parametrize("place", MODULE_PLACES)
@pytest.mark.parametrize("name", QUOTED_OK)
def test_quoted_names_are_module_names_in_yaml(place, name):
    model = cnndsl.build(cnndsl.parse(NAME_PLACES[place](name), format="yaml"))
    assert any(k.startswith(name + ".") for k in model.state_dict()) or name in dict(model.named_modules())


@pytest.mark.parametrize("text", [
    'network N {{ input 3x8x8  "{n}": conv(4, k=1) }}',
    'network N {{ input 3x8x8  g: {{ "{n}": relu }} }}',
    'network N {{ input 3x8x8  residual {{ relu }} shortcut "{n}" {{ relu }} }}',
    'network N {{ input 3x8x8  "{n}{{i}}": relu x2 as i }}',
])
@pytest.mark.parametrize("name", ["a.b", "a b", "a\\nb", "a\x01b", "é", "a'b", "a\\\"b", "", "7",
                                  "forward", "__x", "input"])
def test_quoted_cnn_names_outside_the_rule_are_refused(text, name):
    """Quoted names hold letters, digits, '_' and '-' only: no dots, spaces, quotes, control
    characters or escapes, no positions, no module attributes."""
    if "{i}" in text and name in ("forward", "input", "7"):
        text = text.replace("{n}{{i}}", "{n}")  # forward0, input1, 70 are fine computed names
    err = refused(text.format(n=name), "cnn")
    assert err.span is not None and "\x01" not in err.render()


@pytest.mark.parametrize("place", MODULE_PLACES)
@pytest.mark.parametrize("name", RESERVED)
def test_yaml_module_names_must_not_shadow_module_attributes(place, name):
    d = refused(NAME_PLACES[place](name), "yaml").diagnostics[0]
    assert f"'{name}' cannot be used" in d.message and d.span.line >= 3 and "rename" in d.hint


@pytest.mark.parametrize("text", [
    "network N {{ input 3x8x8  {n}: conv(4, k=1) }}",
    "network N {{ input 3x8x8  {n}: {{ relu }} }}",
    "network N {{ input 3x8x8  g: {{ {n}: relu }} }}",
    "network N {{ input 3x8x8  residual {{ relu }} shortcut {n} {{ relu }} }}",
    "block B {{ {n}: relu }}\nnetwork N {{ input 3x8x8  B }}",
])
@pytest.mark.parametrize("name", ["forward", "training", "to", "eval", "state_dict", "_modules", "__init__",
                                  "spec_name", "__getitem__"])
def test_cnn_module_names_must_not_shadow_module_attributes(text, name):
    """Before: `check` passed and `compile` died with KeyError "attribute 'forward' already exists"."""
    d = refused(text.format(n=name), "cnn").diagnostics[0]
    assert f"'{name}' cannot be used" in d.message and d.span is not None
    assert d.span.col == text.format(n=name).splitlines()[d.span.line - 1].index(name) + 1


@pytest.mark.parametrize("text", [
    "network:\n  input: 3x8x8\n  layers:\n    - {name: a.b, group: [relu]}\n",   # was KeyError
    "network:\n  input: 3x8x8\n  layers:\n    - {name: '', conv: [4, {k: 1}]}\n",  # was IndexError
    "network:\n  input: 3x8x8\n  layers:\n    - {name: null, conv: [4, {k: 1}]}\n",  # was the name 'None'
    "network:\n  input: 3x8x8\n  layers:\n    - {name: 7, conv: [4, {k: 1}]}\n",
])
def test_issue_reproducers_for_yaml_names(text):
    assert refused(text, "yaml").span.line == 4


def test_reserved_names_cover_torch_and_cnndsl_modules():
    """The hard-coded set (so `check` needs no torch) against the installed torch and the modules
    cnndsl builds: every attribute a spec name could collide with is reserved."""
    torch_names = set(dir(torch.nn.Module()))
    assert {n for n in torch_names if not n.startswith("__")} <= NN_MODULE_ATTRIBUTES  # the hard-coded list
    model = cnndsl.build("network N { input 3x8x8  g: { c: conv(4, k=1) }  relu }")
    children = set(model._modules) | set(model._parameters) | set(model._buffers)
    attributes = torch_names | (set(dir(model)) - children) | (set(dir(model.g)) - set(model.g._modules)) \
        | set(dir(Container()))
    for name in attributes:
        with pytest.raises(CnnError, match="cannot be used"):
            check_module_name(name, None)


def test_reserved_words_remain_fine_as_parameters_and_other_names():
    a = cnndsl.analyze("network forward(training = 2) { input 3x8x8  conv(training * 2, k=1) x2 as to }")
    assert a.name == "forward" and a.layers[0].shape == (4, 8, 8)


# ----------------------------------------------------------------------------- item 14


def test_a_bare_merge_is_not_a_layer():
    err = refused("network:\n  input: 3x8x8\n  layers: [relu, concat]\n", "yaml")  # was TypeError in the RF pass
    d = err.diagnostics[0]
    assert "'concat' merges several inputs" in d.message and "concat { a | b }" in d.hint
    assert (d.span.line, d.span.col) == (3, 18)


# ----------------------------------------------------------------------------- the emitter property

_STATEMENTS = {ast.Assign, ast.ClassDef, ast.Expr, ast.FunctionDef, ast.If, ast.Import, ast.ImportFrom,
               ast.Return, ast.With, ast.For}
_CALL_ROOTS = {"nn", "torch", "self", "super", "getattr", "isinstance", "model", "p", "print", "str", "sum",
               "tuple", "layers", "Scope", "min"}


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def assert_emitter_shape(source: str) -> None:
    """The emitted file compiles and holds only what the emitter writes: its statement kinds, the
    two torch imports, calls rooted at torch/nn/self/the class and a few builtins, no dunder
    attribute but ``__init__``."""
    tree = ast.parse(source)
    compile(tree, "emitted.py", "exec")
    classes = {c.name for c in tree.body if isinstance(c, ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            assert type(node) in _STATEMENTS, ast.dump(node)[:200]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert ast.unparse(node) in ("import torch", "from torch import nn"), ast.unparse(node)
        if isinstance(node, ast.Call):
            root = _root(node.func)
            ok = (isinstance(root, ast.Name) and root.id in _CALL_ROOTS | classes) or \
                (isinstance(root, ast.Constant) and root.value == ", ")
            assert ok, ast.unparse(node)[:200]
            if isinstance(node.func, ast.Name) and node.func.id == "getattr":
                assert isinstance(node.args[1], ast.Constant), ast.unparse(node)
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            assert node.attr == "__init__", ast.unparse(node)
    assert [type(s) for s in tree.body][:3] == [ast.Expr, ast.Import, ast.ImportFrom]
    assert all(isinstance(s, (ast.ClassDef, ast.If)) for s in tree.body[3:])


ANY_TEXT = st.text(max_size=12)
NAME_FIELDS = ("net", "layer", "group", "shortcut", "param", "index", "kwarg", "block")
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
QUOTED = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,5}", fullmatch=True)  # module names may be quoted ones


@PROPERTY
@given(names=st.fixed_dictionaries({f: QUOTED if f in ("layer", "group", "shortcut") else IDENT
                                    for f in NAME_FIELDS}), bad=st.sampled_from((None, *NAME_FIELDS)),
       bad_text=ANY_TEXT, value=ANY_TEXT, glob=ANY_TEXT, imp=ANY_TEXT, train=ANY_TEXT, path=ANY_TEXT)
def test_any_text_in_any_string_field_is_refused_or_emits_safe_source(names, bad, bad_text, value, glob, imp,
                                                                       train, path):
    """Free-text fields (a string parameter's value, globs, an import path, train strings, the spec
    path) always hold arbitrary text; the name fields hold identifiers but one of them (or none)
    arbitrary text, so most examples get through to the emitter."""
    n = {**names, **({bad: bad_text} if bad else {})}
    string = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'  # a .cnn string literal
    doc = {
        "imports": [imp],
        "blocks": {n["block"]: {"params": {n["kwarg"]: 4}, "layers": [{"conv": {"out": n["kwarg"], "k": 1}}]}},
        "network": {
            "name": n["net"], "params": {n["param"]: string}, "input": "3x8x8",
            "layers": [
                {"name": n["layer"], "conv": {"out": 4, "k": 3, "p": 1, "padding_mode": '"reflect"'}},
                {"name": n["group"], "group": [{"relu": None, "repeat": 2, "as": n["index"]},
                                              {n["block"]: {n["kwarg"]: 4}}]},
                {"residual": ["relu"], "shortcut": {"name": n["shortcut"], "layers": ["relu"]}},
            ],
            "freeze": [glob], "unfreeze": [glob + "*"],
        },
        "train": {"data": train, "optimizer": {"type": train}},
    }
    try:
        analysis = cnndsl.analyze(cnndsl.parse(yaml.safe_dump(doc, allow_unicode=True), format="yaml"))
        source = python_source(analysis, source=path)
    except CnnError:
        return
    assert_emitter_shape(source)


SAMPLE = """
block Unit(c) { conv: conv(c, k=3, p=1)  bn: batchnorm  relu }
network Sample(width = 4, mode = "zeros") {
    input 3x8x8
    stem: conv(width, k=1, init=kaiming)
    stage: { u: Unit(width) x2  keys: relu }
    residual { conv(width, k=1) } shortcut proj { conv(width, k=1) }
    freeze "stem.*"
}
"""
_PART = st.text(st.characters(blacklist_characters="."), max_size=10)


@PROPERTY
@given(parts=st.lists(_PART, min_size=40, max_size=40), name=st.text(max_size=20),
       labels=st.lists(st.text(max_size=10), min_size=10, max_size=10), globs=st.lists(st.text(max_size=10)),
       params=st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), st.integers())),
       path=st.text(max_size=20))
def test_the_emitter_writes_any_text_inertly(parts, name, labels, globs, params, path):
    """Below the name rule: whatever text a graph carries (names, labels, globs, parameter values,
    the spec path), the emitted file compiles to the emitter's own statements only."""
    analysis = cnndsl.analyze(SAMPLE)
    g = analysis.graph
    rename: dict[str, str] = {}
    for n in g.nodes[1:]:
        n.path = ".".join(rename.setdefault(p, f"{parts[len(rename) % len(parts)]}{len(rename)}")  # injective
                          for p in n.path.split("."))
    containers = {}
    for (key, c), label in zip(g.containers.items(), labels * 10):
        c.path, c.label = ".".join(rename.setdefault(p, f"{parts[0]}{len(rename)}") for p in key.split(".")), label
        containers[c.path] = c
    g.containers = containers
    g.name, g.params = name, params
    g.freeze, g.unfreeze = [(x, None) for x in ["stem.*", *globs]], [(x, None) for x in globs]
    assert_emitter_shape(python_source(analysis, source=path))


# ----------------------------------------------------------------------------- terminal output

ESC = "\x1b[2J\x1b[31m"


def test_diagnostics_escape_control_characters_from_the_spec():
    text = f'network N {{ input 3x8x8  conv(4, k=1, padding_mode="{ESC}\u202e") }}'
    rendered = refused(text, "cnn").render()
    assert "\x1b" not in rendered and "\u202e" not in rendered and "\\x1b[2J" in rendered
    quoted, caret = rendered.splitlines()[1:3]
    assert caret.index("^") == quoted.index('"\\x1b') and caret.rindex("~") == quoted.rindex('"')


def test_cli_escapes_control_characters_in_file_names(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = f"net{ESC}.cnn"
    rc, out, err = cli("check", name)
    assert rc == 2 and "\x1b" not in err and "net\\x1b[2J" in err
    Path(name).write_text("network N { input 3x8x8  global_avgpool }\n")
    rc, out, err = cli("check", name)
    assert rc == 0 and "\x1b" not in out + err and "net\\x1b[2J" in out


def test_summary_tables_escape_control_characters():
    from cnndsl.analysis.report import to_markdown, to_text

    analysis = cnndsl.analyze("network N { input 3x8x8  c: conv(4, k=1) }")
    analysis.graph.name = f"N{ESC}"
    analysis.layers[0].node.path = f"c{ESC}\n"
    for text in (to_text(analysis), to_markdown(analysis)):
        assert "\x1b" not in text and "\\x1b" in text


# ----------------------------------------------------------------------------- items 3, 4: files


def _check_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`cnndsl check` in a subprocess with a timeout: a regression that blocks on a FIFO fails here
    instead of hanging the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cnndsl", "check", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60, check=False)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_special_files_are_refused_as_specs(tmp_path):
    fifo = tmp_path / "pipe.cnn"
    os.mkfifo(fifo)
    for target, kind in (("/dev/zero", "a character device"), (str(fifo), "a FIFO")):
        with pytest.raises(CnnError, match=kind):
            cnndsl.load(target)
    r = _check_cli(str(fifo), cwd=tmp_path)
    assert r.returncode == 2 and "FIFO" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_files_are_refused_as_imports(tmp_path):
    os.mkfifo(tmp_path / "lib.cnn")
    (tmp_path / "zero.cnn").symlink_to("/dev/zero")
    for imp, why in (("lib.cnn", "is a FIFO (named pipe), not a spec"), ("zero.cnn", "imports take spec files")):
        spec = tmp_path / "net.cnn"
        spec.write_text(f'import "{imp}"\nnetwork N {{ input 3x8x8  relu }}\n')
        r = _check_cli(str(spec), cwd=tmp_path)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_imports_take_spec_files_only_and_never_quote_others(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:TOP-SECRET\n")
    (tmp_path / "alias.cnn").symlink_to(secret)
    for imp in ("/etc/passwd", str(secret), "/dev/zero", "alias.cnn"):
        (tmp_path / "net.cnn").write_text(f'import "{imp}"\nnetwork N {{ input 3x8x8  relu }}\n')
        with pytest.raises(CnnError) as ei:
            cnndsl.load(tmp_path / "net.cnn")
        text = ei.value.render()
        assert "imports take spec files" in text and ei.value.span.line == 1
        assert "root:" not in text and "TOP-SECRET" not in text


def test_an_unreadable_spec_or_import_is_a_diagnostic(tmp_path, monkeypatch):
    (tmp_path / "lib.cnn").write_text("block B { relu }\n")
    (tmp_path / "net.cnn").write_text('import "lib.cnn"\nnetwork N { input 3x8x8  B }\n')
    real_open = os.open

    def deny(path, *a, **kw):
        if str(path).endswith("lib.cnn"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(CnnError, match="permission denied"):
        cnndsl.load(tmp_path / "net.cnn")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_spec_really_is_a_diagnostic(tmp_path):
    p = tmp_path / "net.cnn"
    p.write_text("network N { input 3x8x8  relu }\n")
    p.chmod(0)
    try:
        r = _check_cli(str(p), cwd=tmp_path)
    finally:
        p.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert r.returncode == 2 and "permission denied" in r.stderr and "Traceback" not in r.stderr
