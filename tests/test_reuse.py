"""A network used from another spec: extended (`network Taps extends ResNet18 { output ... }`, the
layers keep their names) or called as a block (`a: ResNet18(num_classes = 10)`), in both syntaxes."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnndsl
from cnndsl.canonical import spec_hash
from cnndsl.cli import main
from cnndsl.errors import CnnError
from cnndsl.syntax.format import format_cnn, format_yaml

TAPS = 'import "resnet18"\n\nnetwork ResNet18Taps extends ResNet18 {\n    output fc, layer1.0\n}\n'
TAPS_YAML = "imports: [resnet18]\nnetwork:\n  name: ResNet18Taps\n  extends: ResNet18\n  outputs: [fc, layer1.0]\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_extended_resnet18_loads_torchvision_weights_and_returns_both_outputs(tmp_path):
    import torch
    import torchvision

    spec = cnndsl.load(_write(tmp_path, "taps.cnn", TAPS))
    assert spec_hash(spec) == spec_hash(cnndsl.load(_write(tmp_path, "taps.yaml", TAPS_YAML)))
    a = cnndsl.analyze(spec, size=64)
    assert a.output_shapes == [(1000,), (64, 16, 16)]
    model = cnndsl.build(a).eval()
    reference = torchvision.models.resnet18().eval()
    model.load_state_dict(reference.state_dict(), strict=True)   # the names of resnet18.cnn, unchanged
    seen = {}
    reference.layer1[0].register_forward_hook(lambda m, i, o: seen.setdefault("layer1.0", o))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fc, layer1 = model(x)
        expected = reference(x)
    torch.testing.assert_close(fc, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer1, seen["layer1.0"], rtol=1e-4, atol=1e-4)


def test_parameters_are_inherited_passed_on_or_fixed(tmp_path, capsys):
    taps = _write(tmp_path, "taps.cnn", TAPS)
    a = cnndsl.analyze(taps, num_classes=7, size=96)   # the base's parameters, set on the extension
    assert a.input_shape == (3, 96, 96) and a.output_shapes[0] == (7,)
    own = _write(tmp_path, "own.cnn", 'import "resnet18"\n\nnetwork Pets(num_classes = 5) extends ResNet18 {\n'
                                      "    from layer4\n    mask: conv(1, k=1)\n    output fc, mask\n}\n")
    a = cnndsl.analyze(own, size=64)   # its own num_classes goes to the base
    assert a.output_shapes == [(5,), (1, 2, 2)] and a.graph.params["num_classes"] == 5
    fixed = _write(tmp_path, "fixed.cnn", 'import "resnet18"\n\nnetwork Small extends ResNet18(size=32) {\n}\n')
    assert cnndsl.analyze(fixed).input_shape == (3, 32, 32)
    assert main(["check", str(fixed), "--set", "size=64"]) == 2
    err = capsys.readouterr().err
    assert "error: network Small has no parameter 'size'" in err and "hint: parameters: num_classes" in err


def test_a_chain_of_extensions_inherits_input_outputs_and_freeze(tmp_path):
    _write(tmp_path, "base.cnn", "network Base(width = 8, hidden = 2 * width) {\n    input 3x16x16\n"
                                 "    stem: conv(width, k=3, p=1)\n    body: conv(hidden, k=3, p=1)\n"
                                 "    freeze \"stem\"\n}\n")
    _write(tmp_path, "mid.cnn", 'import "base.cnn"\n\nnetwork Mid extends Base(width=4) {\n'
                                "    head: conv(2, k=1)\n}\n")
    top = _write(tmp_path, "top.cnn", 'import "mid.cnn"\n\nnetwork Top extends Mid {\n    output body, head\n}\n')
    a = cnndsl.analyze(top)
    assert a.input_shape == (3, 16, 16)
    assert a.output_shapes == [(8, 16, 16), (2, 16, 16)]     # hidden = 2 * width, width fixed to 4
    assert [l.name for l in a.layers] == ["stem", "body", "head"]
    assert cnndsl.analyze(top, hidden=6).output_shapes[0] == (6, 16, 16)
    model = cnndsl.build(a)
    assert not model.stem.weight.requires_grad and model.body.weight.requires_grad


def test_an_imported_network_called_as_a_block(tmp_path):
    import torch

    spec = _write(tmp_path, "twin.cnn", 'import "resnet18"\n\nnetwork Twin {\n    input 3x64x64\n'
                                        "    a: ResNet18(num_classes=10)\n    from input\n    b: ResNet18(20)\n"
                                        "    output a, b\n}\n")
    a = cnndsl.analyze(spec)
    assert a.output_shapes == [(10,), (20,)]
    model = cnndsl.build(a)
    keys = model.state_dict().keys()
    assert "a.conv1.weight" in keys and "b.layer4.1.bn2.running_var" in keys and "b.fc.weight" in keys
    assert sum(p.numel() for p in model.parameters()) == a.params
    assert model.a(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_reuse_errors(tmp_path):
    taps = _write(tmp_path, "taps.cnn", TAPS)
    both = _write(tmp_path, "both.cnn", f'import "{taps.name}"\n\nnetwork Both {{\n    input 3x64x64\n'
                                        "    t: ResNet18Taps\n}\n")
    with pytest.raises(CnnError) as e:
        cnndsl.analyze(both)
    text = e.value.render(color=False)
    assert "both.cnn:5:8: error: network ResNet18Taps has 2 outputs (fc, layer1.0); called as a block" in text
    assert "keep its outputs with 'network Mine extends ResNet18Taps'" in text
    block = _write(tmp_path, "block.cnn", 'import "resnet_blocks"\n\nnetwork B extends BasicBlock {\n}\n')
    with pytest.raises(CnnError, match="'BasicBlock' is a block, not a network"):
        cnndsl.analyze(block)
    unknown = _write(tmp_path, "unknown.cnn", 'import "resnet18"\n\nnetwork U extends ResNet81 {\n}\n')
    with pytest.raises(CnnError) as e:
        cnndsl.analyze(unknown)
    text = e.value.render(color=False)
    assert "unknown.cnn:3:19: error: no imported network is called 'ResNet81'" in text
    assert "did you mean 'ResNet18'" in text


def test_both_writers_keep_extends(tmp_path):
    spec = cnndsl.parse('import "resnet18"\n\nnetwork P(n = 5) extends ResNet18(num_classes=n, size=64) {\n'
                        "    from layer4\n    mask: conv(1, k=1)\n    output fc, mask\n}\n")
    text = format_cnn(spec)
    assert "network P(n = 5) extends ResNet18(num_classes=n, size=64) {" in text
    yaml_text = format_yaml(spec)
    assert "  extends: {ResNet18: {num_classes: n, size: 64}}" in yaml_text
    assert spec_hash(cnndsl.parse(yaml_text, format="yaml")) == spec_hash(spec) == spec_hash(cnndsl.parse(text))


def test_standalone_formatting_keeps_imported_networks_imported(tmp_path, capsys):
    taps = _write(tmp_path, "taps.cnn", TAPS)
    assert main(["fmt", "--standalone", str(taps)]) == 2
    assert "it imports the network(s) ResNet18, and a file holds one network" in capsys.readouterr().err


def test_comments_of_an_extension_survive_both_syntaxes():
    text = ('import "resnet18"  # shipped\n\n# the network\nnetwork Taps(n = 5) extends ResNet18(num_classes=n) {'
            "  # header\n    # a head\n    from layer4\n    mask: conv(1, k=1)  # 1 channel\n    output fc, mask  # both\n}\n")
    spec = cnndsl.parse(text, filename="taps.cnn")
    assert format_cnn(spec) == text
    yaml_text = format_yaml(spec)
    assert "network:  # header" in yaml_text and "    # a head\n" in yaml_text and "  # 1 channel" in yaml_text
    assert format_cnn(cnndsl.parse(yaml_text, format="yaml", filename="taps.yaml")) == text
