"""Issue 9, "Names that can reproduce real models" and channel splits into named parts.

Computed names in repeats (``denselayer{i + 1}: ... x6 as i``), quoted names (``"block1-0"``),
references by position refused with a hint, and ``x1, x2: chunk(2)`` / ``a, b: split(16, 48)`` —
in both syntaxes, checked against torch (state_dict keys, outputs, emitted source).
"""

from __future__ import annotations

import pytest
import torch

import cnndsl
from cnndsl import CnnError
from cnndsl.canonical import canonical_spec
from cnndsl.emit.python import python_source
from cnndsl.syntax.format import format_cnn, format_yaml


def refused(text: str, fmt: str = "cnn") -> CnnError:
    with pytest.raises(CnnError) as ei:
        cnndsl.analyze(cnndsl.parse(text, format=fmt))
    return ei.value


def emitted_matches(text: str, x: torch.Tensor) -> None:
    """``--emit python`` of ``text`` loads the built model's state dict strictly and agrees with it."""
    model = cnndsl.build(text).eval()
    namespace: dict = {}
    analysis = cnndsl.analyze(text)
    exec(compile(python_source(analysis), "emitted.py", "exec"), namespace)  # our own output
    twin = namespace[analysis.name]().eval()   # the network's class (the file has one per block too)
    twin.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x))


# ----------------------------------------------------------------------------- computed names

DENSE = """
block DenseLayer(growth) {
    concat { | norm1: batchnorm  relu1: relu  conv1: conv(growth, k=1, bias=false) }
}
network Dense(layers = 3) {
    input 4x8x8
    denseblock1: { denselayer{i + 1}: DenseLayer(2) x(layers) as i }
    "block{layers}-0": conv(3, k=1)
}
"""
DENSE_YAML = """
blocks:
  DenseLayer:
    params: {growth: null}
    layers:
      - merge: concat
        parallel:
          - []
          - [{name: norm1, batchnorm: null}, {name: relu1, relu: null}, {name: conv1, conv: [growth, {k: 1, bias: false}]}]
network:
  name: Dense
  params: {layers: 3}
  input: 4x8x8
  layers:
    - name: denseblock1
      group:
        - {name: 'denselayer{i+1}', DenseLayer: 2, repeat: layers, as: i}
    - {name: 'block{layers}-0', conv: [3, {k: 1}]}
"""


def test_computed_names_give_torchvision_paths_in_both_syntaxes():
    keys = list(cnndsl.build(DENSE).state_dict())
    assert "denseblock1.denselayer1.norm1.running_mean" in keys and "denseblock1.denselayer3.conv1.weight" in keys
    assert "block3-0.weight" in keys and not any(".0." in k for k in keys)  # no repeat container
    spec, twin = cnndsl.parse(DENSE), cnndsl.parse(DENSE_YAML, format="yaml")
    assert canonical_spec(spec) == canonical_spec(twin)  # {i+1} is read as {i + 1}
    assert list(cnndsl.build(twin).state_dict()) == keys
    shapes = [l.shape for l in cnndsl.analyze(DENSE).layers]
    assert shapes[-1] == (3, 8, 8) and (10, 8, 8) in shapes  # 4 + 3 × 2 channels
    emitted_matches(DENSE, torch.randn(2, 4, 8, 8))


def test_computed_names_round_trip_through_the_formatter():
    spec = cnndsl.parse(DENSE)
    for text, fmt in ((format_cnn(spec), "cnn"), (format_yaml(spec), "yaml")):
        assert canonical_spec(cnndsl.parse(text, format=fmt)) == canonical_spec(spec)
    assert "denselayer{i + 1}: DenseLayer(2) x(layers) as i" in format_cnn(spec)
    assert '"block{layers}-0": conv(3, k=1)' in format_cnn(spec)


@pytest.mark.parametrize("text, message", [
    ("network N { input 3x8x8  d{j}: relu x2 as i }", "unknown name 'j' in the computed name 'd{j}'"),
    ("network N { input 3x8x8  d{i * 0}: relu x2 as i }", "name 'd0' is used twice"),
    ('network N(s = "forward") { input 3x8x8  "{s}": relu }', "'forward' cannot be used"),
    ('network N(s = "a.b") { input 3x8x8  "x{s}": relu }', "contains a dot"),
    ("network N { input 3x8x8  d{1.5}: relu }", "whole numbers or text"),
])
def test_computed_names_meet_the_name_rule(text, message):
    err = refused(text)
    assert message in err.diagnostics[0].message and err.span.line == 1


def test_a_bad_expression_in_a_computed_name_points_into_it():
    err = refused("network N {\n  input 3x8x8\n  d{i+}: relu x2 as i\n}")
    assert err.span.line == 3 and err.span.col >= 5


# ----------------------------------------------------------------------------- quoted names

REGNET_LIKE = """
network RegNetish {
    input 3x8x8
    trunk_output: {
        block1: { "block1-0": { conv(4, k=3, p=1, bias=false)  batchnorm  relu }
                  "block1-1": conv(4, k=1) }
    }
    add(trunk_output.block1."block1-0")
}
"""


def test_regnet_block_names_quoted():
    """Before: `unexpected '-'` with a hint about ':'."""
    keys = list(cnndsl.build(REGNET_LIKE).state_dict())
    assert "trunk_output.block1.block1-0.0.weight" in keys and "trunk_output.block1.block1-1.weight" in keys
    emitted_matches(REGNET_LIKE, torch.randn(2, 3, 8, 8))
    spec = cnndsl.parse(REGNET_LIKE)
    yaml_text = format_yaml(spec)
    assert "name: block1-0" in yaml_text
    assert canonical_spec(cnndsl.parse(yaml_text, format="yaml")) == canonical_spec(spec)


def test_an_unquoted_dash_says_to_quote_the_name():
    err = refused("network N { input 3x8x8  block1-0: conv(4, k=1) }")
    d = err.diagnostics[0]
    assert d.message == "unexpected '-'" and '"block1-0": conv' in d.hint and (d.span.line, d.span.col) == (1, 32)


def test_quoted_keywords_are_names():
    a = cnndsl.analyze('network N { input 3x8x8  "from": conv(4, k=1)  "when": relu  concat("from") }')
    assert [l.node.path for l in a.layers][:2] == ["from", "when"]


# ----------------------------------------------------------------------------- references by position

@pytest.mark.parametrize("text", [
    "network N { input 3x8x8  conv(4, k=1)  relu  concat(0) }",
    "network N { input 3x8x8  conv(4, k=1)  from 0  relu }",
    "network N { input 3x8x8  a: conv(4, k=1)  relu  output a, 1 }",
])
def test_a_reference_by_position_is_refused_with_a_hint_to_name_it(text):
    """Before: a bare "unexpected number"."""
    d = refused(text).diagnostics[0]
    assert "is a position: items are referred to by name" in d.message and "name the item" in d.hint


def test_a_yaml_reference_by_position_is_refused_too():
    d = refused("network:\n  input: 3x8x8\n  layers:\n    - relu\n    - {concat: 0}\n", "yaml").diagnostics[0]
    assert "is a position" in d.message and "name the item" in d.hint and d.span.line == 5


def test_positions_inside_a_named_scope_still_work():
    a = cnndsl.analyze("network N { input 3x8x8  g: { conv(4, k=1)  relu }  output g.0 }")
    assert a.graph.nodes[a.graph.outputs[0]].path == "g.0"


# ----------------------------------------------------------------------------- chunk / split

SHUFFLE = """
network Shuffle {
    input 8x6x6
    x1, x2: chunk(2)
    branch2: { conv(4, k=1)  relu }
    from x1
    concat(branch2)
    lo, hi: split(3, 5)
    from lo
    concat(hi)
}
"""


def test_chunk_and_split_match_torch():
    model = cnndsl.build(SHUFFLE).eval()
    x = torch.randn(2, 8, 6, 6)
    x1, x2 = x.chunk(2, dim=1)
    b = torch.relu(model.branch2[0](x2))
    mid = torch.cat((x1, b), dim=1)
    lo, hi = mid.split([3, 5], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.cat((lo, hi), dim=1))
    assert list(model.state_dict()) == ["branch2.0.weight", "branch2.0.bias"]  # the parts are no modules
    emitted_matches(SHUFFLE, x)


def test_split_parts_have_shapes_costs_and_receptive_fields():
    a = cnndsl.analyze(SHUFFLE)
    parts = {l.node.path: l for l in a.layers if l.node.op.name == "narrow"}
    assert {p: l.shape for p, l in parts.items()} == {"x1": (4, 6, 6), "x2": (4, 6, 6), "lo": (3, 6, 6),
                                                      "hi": (5, 6, 6)}
    assert all(l.cost.params == 0 and l.cost.macs == 0 for l in parts.values())
    assert parts["x1"].rf.size == (1, 1)


def test_split_round_trips_in_both_syntaxes():
    spec = cnndsl.parse(SHUFFLE)
    assert "x1, x2: chunk(2)" in format_cnn(spec) and "{names: [x1, x2], chunk: 2}" in format_yaml(spec)
    for text, fmt in ((format_cnn(spec), "cnn"), (format_yaml(spec), "yaml")):
        assert canonical_spec(cnndsl.parse(text, format=fmt)) == canonical_spec(spec)


@pytest.mark.parametrize("text, message", [
    ("network N { input 6x4x4  a, b: chunk(4) }", "chunk(4) gives 4 parts but 2 names"),
    ("network N { input 5x4x4  a, b: chunk(2) }", "not divisible by 2"),
    ("network N { input 6x4x4  a, b: split(2, 3) }", "add up to 5 channels but the input has 6"),
    ("network N { input 6x4x4  a, b: conv(3) }", "several names label the parts of a chunk or split"),
    ("network N { input 6x4x4  a, a: chunk(2) }", "'a' is given twice"),
    ("network N { input 6x4x4  a, b: chunk(2) x2 }", "cannot be repeated"),
    ("network N { input 6x4x4  a: relu  a, b: chunk(2) }", "name 'a' is used twice"),
    ("network:\n  input: 6x4x4\n  layers:\n    - {names: [a, b], conv: 3}\n", "'names' does not belong to 'conv'"),
    ("network:\n  input: 6x4x4\n  layers:\n    - {names: [a, b], chunk: 3}\n", "chunk(3) gives 3 parts"),
])
def test_bad_splits_are_diagnosed(text, message):
    err = refused(text, "yaml" if text.startswith("network:") else "cnn")
    assert message in err.diagnostics[0].message and err.span is not None


def test_a_yaml_computed_name_that_reads_as_a_mapping_says_to_quote_it():
    d = refused("network:\n  input: 3x8x8\n  layers:\n    - {name: {i}, relu: null, repeat: 2, as: i}\n",
                "yaml").diagnostics[0]
    assert "got a mapping" in d.message and "quote a computed name" in d.hint and d.span.line == 4
