"""Semantics of the language constructs: naming, repeats, conditions, references, blocks, imports."""

from __future__ import annotations

import textwrap

import pytest

import cnndsl
from cnndsl.canonical import canonical_spec, spec_hash
from cnndsl import CnnError


def analyze(text: str, **params):
    return cnndsl.analyze(cnndsl.parse(textwrap.dedent(text)), **params)


def paths(a) -> list[str]:
    return [l.name for l in a.layers]


def test_names_and_positions_like_sequential():
    a = analyze("""
        network N { input 3x8x8
            conv1: conv(4, k=3, p=1) relu maxpool(2)
            features: { conv(8, k=3, p=1) batchnorm relu }
            flatten fc: linear(2) }
    """)
    assert paths(a) == ["conv1", "1", "2", "features.0", "features.1", "features.2", "4", "fc"]
    assert a.layer("features.1").op == "batchnorm"
    assert a.output_shapes == [(2,)]


def test_repeat_index_and_named_repeat():
    a = analyze("""
        network N { input 3x16x16
            stage: conv(4 * (i + 1), k=3, s=2 if i == 0 else 1, p=1) x3 as i }
    """)
    assert paths(a) == ["stage.0", "stage.1", "stage.2"]
    assert [l.shape for l in a.layers] == [(4, 8, 8), (8, 8, 8), (12, 8, 8)]


def test_unnamed_group_repeat_inlines_and_in_shape_is_incoming():
    a = analyze("""
        network N { input 2x8x8
            { conv(in.channels * 2, k=1) relu } x3 }
    """)
    assert [l.shape[0] for l in a.layers if l.op == "conv"] == [4, 8, 16]
    assert paths(a) == [str(i) for i in range(6)]


def test_when_skips_items_and_uses_parameters():
    text = """
        network N(deep = false) { input 3x8x8
            conv(4, k=1)
            extra: conv(4, k=3, p=1) when deep
            flatten }
    """
    assert "extra" not in paths(analyze(text))
    assert "extra" in paths(analyze(text, deep=True))


def test_residual_identity_and_projection():
    a = analyze("""
        block B(c, s = 1) {
            residual { conv1: conv(c, k=3, s=s, p=1) bn1: batchnorm }
            shortcut proj when s != 1 or in.channels != c { conv(c, k=1, s=s) }
            relu
        }
        network N { input 4x8x8  b1: B(4)  b2: B(8, s=2) }
    """)
    names = paths(a)
    assert "b1.proj.0" not in names and "b2.proj.0" in names
    assert a.layer("b2.add").shape == (8, 4, 4)
    assert a.layer("b2.add").node.registered is False
    # the identity shortcut of b1 feeds the add directly from the block input
    add1 = a.layer("b1.add").node
    assert a.graph.nodes[add1.inputs[1]].path == "input"


def test_parallel_concat_branches_and_identity_branch():
    a = analyze("""
        network N { input 8x8x8
            mixed: concat { conv(4, k=1) | { conv(2, k=1) conv(6, k=3, p=1) } | maxpool(3, s=1, p=1) | } }
    """)
    assert a.output_shapes == [(4 + 6 + 8 + 8, 8, 8)]
    assert paths(a)[:3] == ["mixed.0", "mixed.1", "mixed.2"]


def test_skip_connections_by_name_and_dotted_references():
    a = analyze("""
        network U { input 1x16x16
            enc: { c1: conv(4, k=3, p=1) relu }
            maxpool(2)
            mid: conv(8, k=3, p=1)
            up: conv_transpose(4, k=2, s=2)
            concat(enc)
            add(enc.c1, enc.c1) when false
            head: conv(3, k=1) }
    """)
    assert a.layer("4").shape == (8, 16, 16)        # concat(up, enc): 4 + 4 channels
    assert a.output_shapes == [(3, 16, 16)]


def test_from_and_several_outputs():
    a = analyze("""
        network Two { input 3x8x8
            trunk: conv(4, k=3, p=1)
            cls: { global_avgpool flatten linear(5) }
            from trunk
            seg: conv(2, k=1)
            output cls, seg }
    """)
    assert a.output_shapes == [(5,), (2, 8, 8)]
    model = cnndsl.build(a)
    import torch

    out = model(torch.zeros(1, 3, 8, 8))
    assert isinstance(out, tuple) and out[0].shape == (1, 5) and out[1].shape == (1, 2, 8, 8)


def test_block_defaults_use_earlier_params_and_closed_scope():
    a = analyze("""
        block Wide(c, w = c * 2) { conv(w, k=1) }
        network N(c = 3) { input 3x4x4  Wide(c) }
    """)
    assert a.output_shapes == [(6, 4, 4)]
    with pytest.raises(CnnError, match="unknown name 'c'"):
        analyze("""
            block Leak() { conv(c, k=1) }
            network N(c = 3) { input 3x4x4  Leak }
        """)


def test_freeze_patterns_count_trainable_params():
    a = analyze("""
        network N { input 3x8x8
            stem: conv(4, k=3) bn: batchnorm head: { flatten linear(2) }
            freeze "stem", "*.bias"
            unfreeze "head.*" }
    """)
    stem = a.layer("stem").cost
    assert stem.trainable == 0 and a.layer("bn").cost.trainable == 4    # bn.weight only
    assert a.trainable_params == a.params - stem.params - 4


def test_parameters_override_and_expressions():
    a = analyze("""
        network N(width = 8, ratio = 0.5) { input 3x8x8
            conv(int(width * ratio), k=3, p=same) conv(max(width // 3, 1), k=1) }
    """, width=16)
    assert [l.shape[0] for l in a.layers] == [8, 5]


def test_cnn_and_yaml_front_ends_give_one_ir(tmp_path):
    cnn = cnndsl.parse(textwrap.dedent("""
        block B(c, s = 1) { residual { conv(c, k=3, s=s, p=1) } shortcut down when s != 1 { conv(c, kernel=1, stride=s) } }
        network N(n = 10) { input 3x32x32  stage: B(8, s=2) x2  flatten  fc: linear(n) }
        train { epochs: 2 optimizer: sgd(lr = 0.1) }
    """))
    yml = cnndsl.parse(textwrap.dedent("""
        blocks:
          B:
            params: {c: null, s: 1}
            layers:
              - residual:
                  - conv: [c, {k: 3, s: s, p: 1}]
                shortcut: {name: down, when: "s != 1", layers: [{conv: {out: c, k: 1, s: s}}]}
        network:
          name: N
          params: {n: 10}
          input: 3x32x32
          layers:
            - {name: stage, B: [8, {s: 2}], repeat: 2}
            - flatten
            - {name: fc, linear: n}
        train: {epochs: 2, optimizer: {type: sgd, lr: 0.1}}
    """), format="yaml")
    assert canonical_spec(cnn) == canonical_spec(yml)
    assert spec_hash(cnn) == spec_hash(yml)
    assert cnndsl.analyze(cnn).params == cnndsl.analyze(yml).params


def test_imports_resolve_relative_to_the_importing_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.cnn").write_text("block CBR(c) { conv(c, k=3, p=1) batchnorm relu }\n")
    (tmp_path / "net.cnn").write_text('import "lib/blocks.cnn"\nnetwork N { input 3x8x8 a: CBR(4) }\n')
    a = cnndsl.analyze(cnndsl.load(tmp_path / "net.cnn"))
    assert paths(a) == ["a.0", "a.1", "a.2"]


def test_train_section_is_plain_data_with_spans():
    spec = cnndsl.parse('network N { input 3x8x8 flatten }\n'
                        'train { epochs: 3 optimizer: sgd(lr = 0.1, nesterov = true) augment: [hflip, crop(32, padding=4)] }')
    assert spec.train == {"epochs": 3, "optimizer": {"type": "sgd", "lr": 0.1, "nesterov": True},
                          "augment": ["hflip", {"type": "crop", "args": [32], "padding": 4}]}
    assert type(spec.train["augment"][0]) is str
    span = spec.train_span(("optimizer", "lr"))
    assert (span.line, span.col) == (2, 39)   # the value 0.1
