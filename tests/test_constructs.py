"""Adding a construct touches one place per stage (issue 9), and forgetting one fails here.

A construct is a kind of IR item (a member of :data:`cnndsl.ir.Item`). Each stage has one method
per construct, found by name:

- the YAML reader: ``yaml_<kind>`` (:class:`cnndsl.syntax.yaml_load._SpecBuilder`); the .cnn
  reader is the grammar (``cnn.lark``) and its transformer, checked by reading an example;
- the writers: ``_item_<kind>`` (.cnn, :mod:`cnndsl.syntax.format_items`) and ``_yitem_<kind>``
  (YAML, :mod:`cnndsl.syntax.format_yaml_items`);
- the canonical form: ``canonical_<kind>`` (:mod:`cnndsl.canonical`);
- expansion: ``expand_<kind>`` and ``estimate_<kind>`` (:class:`cnndsl.expand.Expander`).

Every construct also needs an example below, in both syntaxes, that reads to that construct,
round-trips through both writers and expands. See docs/contributing.md.
"""

from __future__ import annotations

import pytest

import cnndsl
from cnndsl import canonical
from cnndsl.canonical import canonical_spec
from cnndsl.expand import Expander
from cnndsl.ir import ITEM_KINDS, iter_items
from cnndsl.syntax.format import format_cnn, format_yaml
from cnndsl.syntax.format_items import ItemWriter
from cnndsl.syntax.format_yaml_items import YamlItems
from cnndsl.syntax.yaml_load import _SpecBuilder

# kind → (.cnn network body, the same in YAML layers), each holding the construct
EXAMPLES = {
    "layer": ("c1: conv(8, k=3, p=1) x2 as i", "- {name: c1, conv: [8, {k: 3, p: 1}], repeat: 2, as: i}"),
    "group": ("g: { conv(8, k=1)  relu }", "- {name: g, group: [{conv: [8, {k: 1}]}, relu]}"),
    "residual": ("residual { conv(3, k=1) } shortcut s { conv(3, k=1) }",
                 "- {residual: [{conv: [3, {k: 1}]}], shortcut: {name: s, layers: [{conv: [3, {k: 1}]}]}}"),
    "parallel": ("concat { relu | conv(2, k=1) | }", "- {merge: concat, parallel: [[relu], [{conv: [2, {k: 1}]}], []]}"),
    "merge": ("a: relu  conv(3, k=1)  add(a)", "- {name: a, relu: null}\n    - {conv: [3, {k: 1}]}\n    - {add: a}"),
    "from": ("a: relu  conv(3, k=1)  from a  relu",
             "- {name: a, relu: null}\n    - {conv: [3, {k: 1}]}\n    - {from: a}\n    - relu"),
    "backbone": ("b: backbone resnet18(until = layer1)", "- {name: b, backbone: {model: resnet18, until: layer1}}"),
    "split": ("x1, x2: split(1, 2)  from x1  concat(x2)",
              "- {names: [x1, x2], split: [1, 2]}\n    - {from: x1}\n    - {concat: x2}"),
}
SLOW = {"backbone"}  # expanding traces a torchvision model


def _specs(kind: str) -> tuple:
    body, layers = EXAMPLES[kind]
    cnn = cnndsl.parse(f"network N {{\n    input 3x16x16\n    {body}\n}}\n")
    yml = cnndsl.parse(f"network:\n  name: N\n  input: 3x16x16\n  layers:\n    {layers}\n", format="yaml")
    return cnn, yml


def test_every_construct_has_an_example():
    assert sorted(EXAMPLES) == sorted(ITEM_KINDS)


@pytest.mark.parametrize("kind", ITEM_KINDS)
def test_every_stage_has_a_method_for_the_construct(kind):
    missing = [where for where, ok in [
        (f"cnndsl/syntax/yaml_load.py: _SpecBuilder.yaml_{kind}", hasattr(_SpecBuilder, f"yaml_{kind}")),
        (f"cnndsl/syntax/format_items.py: ItemWriter._item_{kind}", hasattr(ItemWriter, f"_item_{kind}")),
        (f"cnndsl/syntax/format_yaml_items.py: YamlItems._yitem_{kind}", hasattr(YamlItems, f"_yitem_{kind}")),
        (f"cnndsl/canonical.py: canonical_{kind}", hasattr(canonical, f"canonical_{kind}")),
        (f"cnndsl/expand.py: Expander.expand_{kind}", hasattr(Expander, f"expand_{kind}")),
        (f"cnndsl/expand.py: Expander.estimate_{kind}", hasattr(Expander, f"estimate_{kind}")),
    ] if not ok]
    assert not missing, f"the construct '{kind}' lacks: " + ", ".join(missing) + " (see docs/contributing.md)"


@pytest.mark.parametrize("kind", ITEM_KINDS)
def test_every_construct_reads_writes_and_round_trips_in_both_syntaxes(kind):
    cnn, yml = _specs(kind)
    for spec in (cnn, yml):
        assert kind in {it.kind for it in iter_items(spec.network.body)}
    assert canonical_spec(cnn) == canonical_spec(yml)
    for spec in (cnn, yml):
        for text, fmt in ((format_cnn(spec), "cnn"), (format_yaml(spec), "yaml")):
            assert canonical_spec(cnndsl.parse(text, format=fmt)) == canonical_spec(cnn), text


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in ITEM_KINDS])
def test_every_construct_expands(kind):
    analysis = cnndsl.analyze(_specs(kind)[0])
    assert analysis.layers and analysis.output_shapes


def test_the_generic_walk_reaches_every_nested_item():
    spec = cnndsl.parse("""
block B { residual { a: relu } shortcut s { b: relu }  concat { c: relu | d: { e: relu } } }
network N { input 3x8x8  f: { B  x1, x2: chunk(3) } }
""")
    names = [getattr(it, "name", None) for it in iter_items((spec.blocks[0].body, spec.network.body))]
    assert [n for n in names if n] == ["a", "b", "c", "d", "e", "f"]
    kinds = [it.kind for it in iter_items(spec.network.body)]
    assert kinds == ["group", "layer", "split"]
