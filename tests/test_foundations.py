"""The foundations of issue 7 item 6: diagnostics carry their own source, IR equality has one
meaning, and the spec hash (what ``--resume`` compares) is defined once, versioned and pinned."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnndsl
from cnndsl import CnnError, canonical, errors
from cnndsl.canonical import canonical_spec, spec_hash

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


# ----------------------------------------------------------------------------- sources


A = "network A {\n    input 3x8x8\n    conv(8, kernal=3)\n}\n"
B = "network B {\n    input 3x8x8\n    relu\n    relu\n}\n"


def test_a_diagnostic_quotes_its_own_spec_not_the_last_one_parsed():
    """parse A, parse B, analyze A: both are "<string>"; the error in A was shown under B's line."""
    a = cnndsl.parse(A)
    cnndsl.parse(B)
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(a)
    quoted = ei.value.render().splitlines()[1]
    assert "conv(8, kernal=3)" in quoted and "relu" not in quoted
    assert not hasattr(errors, "_SOURCES") and not hasattr(errors, "remember_source")


def test_a_diagnostic_quotes_the_text_that_was_parsed_even_if_the_file_changed(tmp_path):
    p = tmp_path / "a.cnn"
    p.write_text(A)
    spec = cnndsl.load(p)
    p.write_text("# rewritten\n" * 5)
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(spec)
    assert "conv(8, kernal=3)" in ei.value.render() and "rewritten" not in ei.value.render()


def test_yaml_values_and_set_values_quote_their_own_text(cli, tmp_path):
    y = "network:\n  input: 3x8x8\n  layers:\n    - conv: [8, {k: 3, s: 'oops +'}]\n"
    with pytest.raises(CnnError) as ei:
        cnndsl.parse(y, format="yaml")
    assert "s: 'oops +'" in ei.value.render()
    (tmp_path / "n.cnn").write_text("network N(c = 4) { input 3x8x8  conv(c, k=1) }\n")
    rc, _, err = cli("check", str(tmp_path / "n.cnn"), "--set", "c=4 +")
    assert rc == 2 and " | 4 +" in err


# ----------------------------------------------------------------------------- equality


def test_ir_equality_includes_the_item_kind():
    plain = cnndsl.parse("block B { { relu } }").blocks[0]
    residual = cnndsl.parse("block B { residual { relu } }").blocks[0]
    assert plain != residual
    assert canonical_spec(cnndsl.parse("block B { { relu } }")) != canonical_spec(
        cnndsl.parse("block B { residual { relu } }"))


def test_ir_equality_ignores_positions_only():
    here = cnndsl.parse("block B { conv(8, k=3) relu }")
    there = cnndsl.parse("\n\n# moved\nblock B {\n    conv(8, k=3)\n    relu\n}\n")
    assert here == there and here.blocks[0].span != there.blocks[0].span
    assert here != cnndsl.parse("block B { conv(8, 3) relu }")  # structurally different ...
    assert spec_hash(here) == spec_hash(cnndsl.parse("block B { conv(8, 3) relu }"))  # ... same meaning


# ----------------------------------------------------------------------------- the spec hash

PINNED = """
block Unit(c, s = 1) { conv(c, k=3, s=s, p=1, bias=false) batchnorm relu }
network Pinned(width = 16) {
    input 3x32x32
    stem: Unit(width)
    stage: { Unit(width * 2, s=2) x2 as i }
    residual { conv(width * 2, k=1) } shortcut proj when in.channels != width * 2 { conv(width * 2, k=1) }
    global_avgpool flatten
    head: linear(10)
    freeze "stem.*"
}
train { epochs: 2, optimizer: sgd(lr=0.1, momentum=0.9) }
"""
# Changing this value means every saved run refuses --resume: bump canonical.HASH_VERSION with it.
PINNED_HASH = "e6773ce1ca545c43d0e2eeb0c7726eb6a87bc8c8322fff244ae1201237ac7f00"


def test_the_hash_of_a_fixed_spec_is_pinned():
    assert spec_hash(cnndsl.parse(PINNED)) == PINNED_HASH


def test_the_hash_is_versioned(monkeypatch):
    before = spec_hash(cnndsl.parse(PINNED))
    monkeypatch.setattr(canonical, "HASH_VERSION", canonical.HASH_VERSION + 1)
    assert spec_hash(cnndsl.parse(PINNED)) != before


@pytest.mark.parametrize("twin", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_the_hash_is_the_same_in_both_syntaxes(twin):
    assert spec_hash(cnndsl.load(SPECS / f"{twin}.cnn")) == spec_hash(cnndsl.load(SPECS / f"{twin}.yaml"))


def test_the_hash_ignores_layout_comments_and_argument_spelling():
    spelled_out = "conv(out=c, kernel=3, stride=s,\n    padding=1, bias=false)"
    reformatted = ("# the same network, written differently\n" + PINNED
                   .replace("conv(c, k=3, s=s, p=1, bias=false)", spelled_out)
                   .replace("    ", "\t").replace("head: linear(10)", "head: linear(out=10)  # ten classes"))
    assert reformatted != PINNED
    assert spec_hash(cnndsl.parse(reformatted)) == spec_hash(cnndsl.parse(PINNED))


@pytest.mark.parametrize("change", [
    ("x2 as i", "x3 as i"), ("{ Unit", "residual { Unit"), ("lr=0.1", "lr=0.2"), ('"stem.*"', '"stage.*"'),
    ("network Pinned", "network Other"),
])
def test_the_hash_sees_every_change_of_meaning(change):
    assert spec_hash(cnndsl.parse(PINNED.replace(*change))) != spec_hash(cnndsl.parse(PINNED))


def test_the_ir_does_not_depend_on_the_ops():
    """ir.py neither imports canonical nor offers a hash of its own (one definition, in canonical)."""
    tree = ast.parse((ROOT / "cnndsl" / "ir.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and ("canonical" in m or m.startswith("ops"))}, imported
    spec = cnndsl.parse(PINNED)
    assert not hasattr(spec, "hash") and not hasattr(spec, "canonical")
