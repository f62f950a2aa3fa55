"""Bombs: inputs built to take time or memory are refused (or accepted) fast and small.

Issue 6 items 2, 3, 8, 12, 13, 19, 20 and 23 (the repeat hint). Each bomb runs ``cnndsl check`` in a
fresh process that reports its own CPU time and peak RSS, so the figures are per input and do not
depend on how busy the machine is (wall time does). Bounds are generous for a loaded CI machine;
the real figures are printed by

    python tests/test_bombs.py          (a table: CPU seconds, wall seconds, peak MB, exit code)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest

import cnndsl
from cnndsl import CnnError

ROOT = Path(__file__).resolve().parents[1]
MAX_CPU_S = 2.0     # the work after start-up, in CPU seconds (measured: < 0.1 s for each bomb below)
MAX_RSS_MB = 100    # peak resident memory of the whole process, interpreter included

# The child imports what `check` needs, then times only the command (start-up is not the bomb's).
_CHILD = """
import json, resource, sys, time
from cnndsl.cli import main
import cnndsl.api, cnndsl.analysis.report, cnndsl.syntax.yaml_load
from cnndsl.syntax.grammar import parser
parser()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def peak_mb():  # VmHWM: this program's peak (ru_maxrss keeps the parent's across fork and exec)
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
c, t = cpu(), time.perf_counter()
rc = main(sys.argv[1:])
out = {"rc": rc, "cpu_s": cpu() - c, "wall_s": time.perf_counter() - t, "peak_mb": peak_mb()}
print("\\nBOMB " + json.dumps(out), file=sys.stderr)
"""


def _net(body: str, params: str = "") -> str:
    return f"network N{params} {{\n    input 3x8x8\n    {body}\n}}\n"


def _fifo(d: Path) -> str:
    os.mkfifo(d / "pipe.cnn")
    return "pipe.cnn"


def _file(name: str, text: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        (d / name).write_text(text)
        return name
    return make


# name → (how to make the input in a folder, extra CLI args, what stderr must say; None: accepted)
BOMBS: dict[str, tuple[Callable[[Path], str], list[str], str | None]] = {
    "round(1, -10**8) in a condition": (_file("b.cnn", _net("relu when round(1, -100000000) == 0")), [], None),
    "round(1, -10**18)": (_file("b.cnn", _net("relu when round(1, -1000000000000000000) == 0")), [], None),
    "round(1, -10**8) via --set": (_file("b.cnn", _net("relu x(n)", "(n = 1)")),
                                   ["--set", "n=round(1, -100000000) + 1"], None),
    "p0=[1,1] … p26=p25+p25": (_file("b.cnn", _net("relu", "(" + ", ".join(
        ["p0 = [1, 1]"] + [f"p{i} = p{i - 1} + p{i - 1}" for i in range(1, 27)]) + ")")), [], "value too large"),
    "p0=[1,1] … p26=[p25, p25]": (_file("b.cnn", _net("relu", "(" + ", ".join(
        ["p0 = [1, 1]"] + [f"p{i} = [p{i - 1}, p{i - 1}]" for i in range(1, 27)]) + ")")), [], "value too large"),
    "200,000 × relu (1 MB)": (_file("b.cnn", _net("relu\n" * 200_000)), [], "more than 20,000 tokens"),
    "100,000-term 1+1+…": (_file("b.cnn", _net("conv(" + "+".join(["1"] * 100_000) + ", k=1)")), [],
                           "more than 20,000 tokens"),
    "100,000-item YAML flow list": (_file("b.yaml", "network:\n  input: 3x8x8\n  layers: ["
                                          + ", ".join(["relu"] * 100_000) + "]\n"), [], "YAML values"),
    "30,000 block definitions": (_file("b.cnn", "".join(f"block B{i} {{ relu }}\n" for i in range(30_000))
                                       + _net("relu")), [], "more than 20,000 tokens"),
    "3,900 block definitions (under the token limit)": (
        _file("b.cnn", "".join(f"block B{i} {{ relu }}\n" for i in range(3_900)) + _net("relu")), [], None),
    "15,000 × relu (under the token limit)": (_file("b.cnn", _net("relu\n" * 15_000)), [], "above the limit"),
    "5,000-digit literal": (_file("b.cnn", _net("conv(" + "9" * 5000 + ", k=1)")), [], "too large"),
    "5,000-digit --set": (_file("b.cnn", _net("conv(c, k=1)", "(c = 4)")), ["--set", "c=" + "9" * 5000],
                          "too large"),
    "/dev/zero as the spec": (lambda d: "/dev/zero", [], "character device"),
    "a FIFO as the spec": (_fifo, [], "FIFO"),
}


def run_bomb(name: str) -> tuple[dict, str]:
    """Make the bomb in a temporary folder, run it; (figures, stderr)."""
    make, args, _ = BOMBS[name]
    with tempfile.TemporaryDirectory() as d:
        target = make(Path(d))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, "-c", _CHILD, "check", target, *args], capture_output=True,
                           text=True, cwd=d, env=env, timeout=120, check=False)
    line = next((text for text in r.stderr.splitlines() if text.startswith("BOMB ")), None)
    assert line is not None, r.stderr[-2000:]
    return json.loads(line[5:]), r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="POSIX only")
@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_are_handled_fast_and_small(name):
    figures, stderr = run_bomb(name)
    expected = BOMBS[name][2]
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    if expected is None:
        assert figures["rc"] == 0, stderr[-2000:]
    else:
        assert figures["rc"] == 2 and expected in stderr, stderr[-2000:]
    assert figures["cpu_s"] < MAX_CPU_S and figures["peak_mb"] < MAX_RSS_MB, figures


# ----------------------------------------------------------------------------- literals (in-process)

BIG = "1" + "0" * 27                 # 10**27, written out
HUGE = "9" * 5000                    # more digits than int() converts


@pytest.mark.parametrize("text, fmt", [
    (_net(f"conv(4, k=1, s={BIG})"), "cnn"),                              # passed check, forward TypeError
    (_net("relu").replace("3x8x8", f"3x{BIG}x10"), "cnn"),                # input 3x10^27x10 accepted
    (_net(f"conv({HUGE}, k=1)"), "cnn"),                                  # lark VisitError
    (_net(f"relu x{HUGE}"), "cnn"),                                       # VisitError in 'repeat'
    (_net(f"relu x({HUGE})"), "cnn"),
    (_net("mul(1e999)"), "cnn"), (_net("mul(-1e999)"), "cnn"), (_net("mul(1e400 * 0)"), "cnn"),
    (f"network:\n  input: 3x8x8\n  layers:\n    - conv: [4, {{k: 1, s: {BIG}}}]\n", "yaml"),
    (f"network:\n  input: 3x8x8\n  layers:\n    - conv: [{HUGE}, {{k: 1}}]\n", "yaml"),   # ValueError
    (f"network:\n  input: 3x{BIG}x8\n  layers: [relu]\n", "yaml"),
    (f"network:\n  input: [3, {BIG}, 8]\n  layers: [relu]\n", "yaml"),
    (f"network:\n  input: 3x8x8\n  layers:\n    - relu: null\n      repeat: {HUGE}\n", "yaml"),
    ("network:\n  input: 3x8x8\n  layers:\n    - mul: .inf\n", "yaml"),
    ("network:\n  input: 3x8x8\n  layers:\n    - mul: -.inf\n", "yaml"),
    ("network:\n  input: 3x8x8\n  layers:\n    - mul: .nan\n", "yaml"),
    ("network:\n  input: 3x8x8\n  layers: [relu]\ntrain:\n  epochs: .inf\n", "yaml"),
    ("network N { input 3x8x8  relu }\ntrain { lr: 1e999 }\n", "cnn"),
])
def test_literals_beyond_the_limits_are_refused_where_written(text, fmt):
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(cnndsl.parse(text, format=fmt))
    d = ei.value.diagnostics[0]
    assert d.span is not None and d.span.line > 1 and ("too large" in d.message or "finite" in d.message
                                                        or "overflows" in d.message), d.message


@pytest.mark.parametrize("value", [HUGE, BIG, "1e999", "[" + ",".join(["1"] * 20_000) + "]"])
def test_set_values_beyond_the_limits_are_refused(cli, tmp_path, value):
    spec = tmp_path / "n.cnn"
    spec.write_text(_net("conv(c, k=1)", "(c = 4)"))
    rc, _, err = cli("check", str(spec), "--set", f"c={value}")
    assert rc == 2 and "--set:1:" in err and "Traceback" not in err, err


def test_api_parameters_beyond_the_limits_are_refused():
    """A 400-digit channel count through the Python API: a diagnostic, not an OverflowError
    while formatting the parameter budget."""
    with pytest.raises(CnnError, match="too large"):
        cnndsl.analyze(_net("conv(c, k=1)", "(c = 4)"), c=int("9" * 400))


def test_the_largest_values_are_still_fine():
    a = cnndsl.analyze(_net("relu when c == 1000000000000000000 and f > 1e308",
                            "(c = 1000000000000000000, f = 1.5e308)"))
    assert a.layers


# ----------------------------------------------------------------------------- expression bounds


@pytest.mark.parametrize("expr, fragment", [
    ("round(1, -100000000)", None), ("round(7, -18)", None),
    ("2 ** 1000000000", "too large"), ("10 ** 19", "too large"),
    ("int(1e300)", "too large"), ("max([1] + [2])", None),
])
def test_expressions_stay_bounded(expr, fragment):
    text = _net(f"relu when {expr} >= 0")
    if fragment is None:
        assert cnndsl.analyze(text).layers
    else:
        with pytest.raises(CnnError, match=fragment):
            cnndsl.analyze(text)


def test_work_is_bounded_per_evaluation():
    """An expression tree that shares one large list (small in memory, costly to evaluate): the
    step budget stops it, whatever the operators."""
    from cnndsl import expr as E

    big = E.ListExpr(tuple(E.Num(1) for _ in range(E.MAX_ITEMS // 2)))
    test: E.Expr = E.BinOp("==", big, big)
    for _ in range(10):
        test = E.BinOp("and", test, E.BinOp("==", big, big))
    with pytest.raises(CnnError, match="steps"):
        E.evaluate(test, E.Env({}))


# ----------------------------------------------------------------------------- items 20, 23


def test_duplicate_blocks_are_found_in_linear_time():
    text = "".join(f"block B{i} {{ relu }}\n" for i in range(3_000)) + "block B7 { relu }\n" + _net("relu")
    with pytest.raises(CnnError, match="block 'B7' is defined twice") as ei:
        cnndsl.parse(text)
    assert ei.value.span.line == 3_001 and ei.value.diagnostics[0].notes[0][0].line == 8


def test_the_repeat_limit_counts_what_is_already_expanded():
    """The check fires at an inner repeat because the total is over: say so (was: the inner count)."""
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(_net("{ relu x(1000 if i > 0 else 1) } x12 as i"))
    assert "about 1,000 more layers, 10,00" in ei.value.diagnostics[0].message


def test_a_spec_without_a_network_names_its_file(tmp_path):
    p = tmp_path / "blocks.cnn"
    p.write_text("block B { relu }\n")
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(p)
    assert str(ei.value.span).startswith(str(p)) and "defines no network" in ei.value.render()


if __name__ == "__main__":  # the figures for docs/reliability.md
    print(f"{'input':52s} {'exit':>4s} {'CPU s':>6s} {'wall s':>7s} {'peak MB':>8s}")
    for bomb in BOMBS:
        f, _ = run_bomb(bomb)
        print(f"{bomb:52s} {f['rc']:4d} {f['cpu_s']:6.3f} {f['wall_s']:7.3f} {f['peak_mb']:8.1f}")
