"""Input limits: hostile or absurd inputs are refused with a clear message, quickly, before the work
they bound is done (no expansion, no allocation, no deep recursion, no code execution).

Timing assertions are generous upper bounds (a refusal takes milliseconds; the bounds catch
"seconds" and hangs, not small regressions).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cnndsl
from cnndsl import CnnError, Limits
from cnndsl.expand import Expander
from cnndsl.syntax.limits import MAX_FILE_BYTES, MAX_NESTING, check_text
from cnndsl.syntax.source import read_file

ROOT = Path(__file__).resolve().parents[1]

FAST = 2.0  # seconds: generous bound for "refused fast"


def refuse(text: str, fmt: str = "cnn", limits: Limits | None = None, **params) -> CnnError:
    """Parse + analyze ``text``; it must raise CnnError within FAST seconds of CPU time (CPU, not wall
    time, so a loaded CI machine does not make the bound flaky). Returns the error."""
    t0 = time.process_time()
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(cnndsl.parse(text, format=fmt), limits=limits, **params)
    assert time.process_time() - t0 < FAST
    rendered = ei.value.render()
    assert "error:" in rendered
    return ei.value


def accept(text: str, fmt: str = "cnn", limits: Limits | None = None, **params):
    return cnndsl.analyze(cnndsl.parse(text, format=fmt), limits=limits, **params)


def net(body: str, shape: str = "3x8x8", params: str = "") -> str:
    return f"network N{params} {{\n    input {shape}\n    {body}\n}}\n"


# ----------------------------------------------------------------------------- files


def test_file_size_limit_boundary():
    check_text("#" * (MAX_FILE_BYTES - 1) + "\n", "at_limit.cnn")  # exactly the limit: fine
    with pytest.raises(CnnError, match="too large"):
        check_text("#" * MAX_FILE_BYTES + "\n", "over.cnn")


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.cnn"
    with open(big, "wb") as f:  # sparse: 64 MiB on paper, nothing to read
        f.seek(64 * MAX_FILE_BYTES)
        f.write(b"\n")
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read an oversized file"))
    t0 = time.perf_counter()
    with pytest.raises(CnnError, match="too large") as ei:
        read_file(big)
    assert time.perf_counter() - t0 < FAST
    assert ei.value.diagnostics[0].hint


@pytest.mark.parametrize("data, fragment", [
    (b"", "empty"),
    (b"  \n\n\t\n", "empty"),
    (b"network N {\x00}", "binary"),
    (b"network N { input 3x8x8 \xff\xfe }", "not UTF-8"),
])
def test_unusable_files(tmp_path, data, fragment):
    p = tmp_path / "spec.cnn"
    p.write_bytes(data)
    with pytest.raises(CnnError, match=fragment) as ei:
        cnndsl.load(p)
    assert ei.value.diagnostics[0].hint


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CnnError, match="no such file"):
        cnndsl.load(tmp_path / "nope.cnn")
    with pytest.raises(CnnError, match="is a directory"):
        cnndsl.load(tmp_path)


# ----------------------------------------------------------------------------- nesting


def test_nesting_up_to_the_limit_is_fine():
    depth = MAX_NESTING - 2  # the network body and the group count too
    a = accept(net("{ " * depth + "relu" + " }" * depth))
    assert len(a.layers) == 1


@pytest.mark.parametrize("open_, close, wrap", [
    ("{", "}", lambda s: net(s)),                              # groups
    ("(", ")", lambda s: net(f"conv({s}, k=1)")),              # parenthesised expression
    ("[", "]", lambda s: net(f"conv(8, k={s})")),              # lists
])
@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 100_000])
def test_deep_brackets_are_refused_fast(open_, close, wrap, depth):
    inner = "8" if open_ != "{" else "relu"
    err = refuse(wrap(open_ * depth + inner + close * depth))
    assert f"nesting deeper than {MAX_NESTING}" in err.diagnostics[0].message
    assert err.span is not None and err.span.line == 3


@pytest.mark.parametrize("expr", [
    "+".join(["1"] * 2000),          # a long left-leaning chain
    "-" * 10_000 + "8",              # unary chain (20,000 would hit the token limit first)
    "**".join(["1"] * 2000),         # right-leaning power chain
    "not " * 5000 + "true",
    "1 if true else " * 2000 + "1",  # conditional chain
])
def test_long_expression_chains_are_refused_not_recursed(expr):
    err = refuse(net(f"conv({expr}, k=1)"))
    assert "nesting deeper" in err.diagnostics[0].message


def test_deep_yaml_flow_nesting_in_a_subprocess(tmp_path):
    """100,000-deep '[[[...]]]': exit code 2 (no segfault, no RecursionError), fast, no traceback."""
    p = tmp_path / "deep.yaml"
    p.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", str(p)], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "nesting depth" in r.stderr
    assert cpu < 3.0  # CPU seconds, interpreter start-up included


@pytest.mark.parametrize("text", [
    "a: " + "[" * 100_000,                                              # unclosed flow
    "a: " + "{a: " * 50_000,                                            # flow mappings
    "".join(" " * i + "-\n" for i in range(1000)),                      # block sequences
    "".join(" " * i + f"k{i}:\n" for i in range(1000)),                 # block mappings
])
def test_deep_yaml_is_refused_fast(text):
    err = refuse(text, "yaml")
    assert "YAML" in err.diagnostics[0].message and err.span is not None


# ----------------------------------------------------------------------------- YAML hazards

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]) + "\n"


def test_billion_laughs_refused_fast():
    assert len(BILLION_LAUGHS) < 400
    err = refuse(BILLION_LAUGHS, "yaml")
    assert "anchors/aliases" in err.diagnostics[0].message


@pytest.mark.parametrize("text", [
    "network: &n {input: 3x8x8}\n",
    "x: &x 1\nnetwork: {input: [*x, 8, 8]}\n",
    "network:\n  <<: {input: 3x8x8}\n",
])
def test_anchors_aliases_and_merge_keys_refused(text):
    refuse(text, "yaml")


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/name:os.system", "!!python/module:os", "!!binary", "!!set",
                                 "!custom", "!!omap"])
def test_non_standard_tags_refused_without_running(tag, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setattr("os.system", lambda *a: pytest.fail("os.system was called"))
    text = f'network:\n  name: {tag} ["touch {marker}"]\n  input: 3x8x8\n'
    err = refuse(text, "yaml")
    assert "tag" in err.diagnostics[0].message and err.span.line == 2
    assert not marker.exists()


@pytest.mark.parametrize("text, fragment", [
    ("network:\n  input: 3x8x8\n---\nnetwork:\n  input: 3x8x8\n", "more than one document"),
    ("- relu\n", "must be a mapping"),
    ("42\n", "must be a mapping"),
    ("network:\n  input: 3x8x8\n  input: 3x9x9\n", "duplicate key"),
    ("network:\n  layers:\n    - conv: {out: 8, out: 9, k: 3}\n  input: 3x8x8\n", "duplicate key"),
    ("# only comments\n", "empty"),
])
def test_yaml_structure_errors(text, fragment):
    err = refuse(text, "yaml")
    assert fragment in err.diagnostics[0].message


# ----------------------------------------------------------------------------- repeats and expansion


@pytest.mark.parametrize("count", ["x(0)", "x(-1)", "x(2.5)", "x1001", "x5000", "x(true)", "x(\"3\")"])
def test_repeat_count_out_of_range(count):
    err = refuse(net(f"relu {count}"))
    assert "repeat count must be a whole number from 1 to 1000" in err.diagnostics[0].message


def test_repeat_count_bounds_are_inclusive():
    assert len(accept(net("relu x1")).layers) == 1
    assert len(accept(net("relu x1000")).layers) == 1000


def _count_add_node(monkeypatch) -> list[int]:
    calls = [0]
    original = Expander.add_node

    def counting(self, *a, **kw):
        calls[0] += 1
        return original(self, *a, **kw)

    monkeypatch.setattr(Expander, "add_node", counting)
    return calls


@pytest.mark.parametrize("body", [
    "{ { { relu x1000 } x1000 } x1000 } x1000",
    "{ relu x100 } x101",
    "conv(8, k=1, p=0) { relu x1000 } x11",
])
def test_nested_repeat_bomb_refused_without_expanding(body, monkeypatch):
    calls = _count_add_node(monkeypatch)
    err = refuse(net(body))
    msg = err.diagnostics[0].message
    assert "layers, above the limit of 10,000" in msg
    assert calls[0] <= 1  # refused before the repeat expanded anything


def test_repeat_bomb_through_blocks(monkeypatch):
    calls = _count_add_node(monkeypatch)
    text = ("block A { relu x1000 }\nblock B { A x1000 }\n" + net("B x1000"))
    err = refuse(text)
    assert "above the limit" in err.diagnostics[0].message
    assert calls[0] == 0


def test_layer_limit_boundary_and_max_layers():
    limits = Limits(max_layers=100)
    assert len(accept(net("{ relu x10 } x9"), limits=limits).layers) == 90
    refuse(net("{ relu x10 } x11"), limits=limits)
    refuse(net("relu x60 relu x60"), limits=limits)  # the total counts, not one repeat


def test_block_nesting_limit():
    chain = "".join(f"block B{i} {{ B{i + 1} }}\n" for i in range(80)) + "block B80 { relu }\n"
    err = refuse(chain + net("B0"))
    assert "nested deeper than 64" in err.diagnostics[0].message


@pytest.mark.parametrize("blocks, cycle", [
    ("block A { A }\n", "A → A"),
    ("block A { relu B }\nblock B { { residual { A } } }\n", "A → B → A"),
    ("block A { B }\nblock B { C }\nblock C { concat { relu | A } }\n", "A → B → C → A"),
])
def test_recursive_blocks_show_the_cycle(blocks, cycle):
    err = refuse(blocks + net("A"))
    assert cycle in err.diagnostics[0].message
    assert len(err.diagnostics[0].notes) == cycle.count("→")


# ----------------------------------------------------------------------------- parameter budget

BIG_LINEAR = net("flatten\n    linear(1000000000)", shape="3x224x224")


def test_parameter_budget_shows_estimate_and_budget(monkeypatch):
    calls = _count_add_node(monkeypatch)
    err = refuse(BIG_LINEAR)
    d = err.diagnostics[0]
    assert "1.51e+14" in d.message and "1e+09" in d.message and "--max-params" in d.hint
    assert calls[0] == 2  # flatten, then the linear that broke the budget: nothing built


def test_max_params_raises_the_budget():
    a = accept(BIG_LINEAR, limits=Limits(max_params=200_000_000_000_000))
    assert a.params == 150528 * 10**9 + 10**9


def test_budget_counts_the_whole_network():
    body = "flatten\n    " + "\n    ".join(["linear(100)"] * 5)
    a = accept(net(body, shape="100"))
    refuse(net(body, shape="100"), limits=Limits(max_params=a.params - 1))


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("value, fragment", [
    ("10 ** 30", "too large"),
    ("2 ** 2 ** 2 ** 2 ** 2", "too large"),
    ("1e308 * 10", "gives inf"),
    ("c / 0", "division by zero"),
    ("c // 0", "division by zero"),
    ("c % 0", "division by zero"),
    ("sqrt(-1)", "sqrt"),
    ("nosuchfn(1)", "unknown function"),
])
def test_bad_values_in_expressions(value, fragment):
    err = refuse(net(f"conv({value}, k=1)", params="(c = 8)"))
    assert fragment in err.diagnostics[0].message
    assert err.span is not None and err.span.line == 3
