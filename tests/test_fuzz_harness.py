"""CI's share of bench/fuzz.py (issue 6, "keep them closed"): a fixed-seed subset of mutated shipped
specs, YAML twins and generated networks, through the API, the in-process CLI and real processes,
with the four zeros — no other exception, no hang, no check-accepted-then-torch-failed, no shape
mismatch (and no crash). The full run is `python bench/fuzz.py --n 10000 --seed 0`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _load("fuzz")


def test_fixed_seed_subset_has_the_four_zeros():
    report = fuzz.run(n=200, seed=0, jobs=1, timeout=60, cli_every=10, subprocesses=2, budget=(300_000, 12_000_000))
    text = report.table() + "".join(f"\n  input {o.index}: {o.kind}: {o.detail}" for o in report.failures)
    assert report.bugs == 0, text
    # it reaches both sides (the shares move with the seed corpus: every spec in specs/ is a seed)
    assert report.counts["trained"] >= 12 and report.counts["refused"] >= 100, text


def test_inputs_are_reproducible_from_seed_and_index():
    seeds = fuzz.seed_texts()
    a, b = fuzz.make_input(3, 17, seeds), fuzz.make_input(3, 17, seeds)
    assert (a.text, a.edits) == (b.text, b.edits)
    assert len({fuzz.make_input(3, i, seeds).text for i in range(30)}) > 20


def test_the_harness_sees_a_planted_shape_bug(monkeypatch, tmp_path):
    """Not vacuous: a wrong static shape rule is reported as a mismatch, an exception as 'other'."""
    from cnndsl.ops import REGISTRY

    monkeypatch.setattr(REGISTRY["relu"], "infer", lambda self, ins: (ins[0][0] + 1, *ins[0][1:]))
    inp = fuzz.Input(0, "network N {\n  input 3x8x8\n  conv(4, k=1)  relu  flatten  linear(2)\n}\n", "cnn", "planted")
    fuzz._prepare(tmp_path)
    assert fuzz.run_one(inp, tmp_path, cli=False, real=False, timeout=20).kind in ("mismatch", "torch_failed")
    monkeypatch.setattr(REGISTRY["relu"], "infer", lambda self, ins: {}["boom"])
    assert fuzz.run_one(inp, tmp_path, cli=True, real=False, timeout=20).kind == "other"


@pytest.mark.parametrize("index", [0, 5])
def test_show_prints_an_input(capsys, index):
    assert fuzz.main(["--show", str(index), "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith(f"# input {index}:")
