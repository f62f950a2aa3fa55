"""``cnndsl import``: torchvision models → specs whose compiled networks load torchvision's
state_dict strictly and give torchvision's outputs; blocks and repeats; formatter-clean text in
both syntaxes; errors (unknown module / factory, arguments that are not literals, untraceable and
inexpressible models) as diagnostics with exit code 2; the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402
from cnndsl.canonical import canonical_spec  # noqa: E402
from cnndsl.cli import main  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.syntax.format import format_cnn, format_yaml  # noqa: E402
from cnndsl.translate.importer import import_spec, parse_factory  # noqa: E402

SMALL = (3, 32, 32)


def imported(call: str, shape: tuple[int, ...] = SMALL) -> str:
    return format_cnn(import_spec(parse_factory(call), shape))


def assert_round_trip(text: str, model: torch.nn.Module, shape: tuple[int, ...] = SMALL) -> None:
    """The compiled spec has the model's state_dict layout, loads it strictly, gives its outputs."""
    built = cnndsl.build(cnndsl.parse(text)).eval()
    want = model.state_dict()
    assert [(k, tuple(v.shape)) for k, v in built.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in want.items()]
    built.load_state_dict(want, strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model.eval()(x))


@pytest.fixture(scope="module")
def resnet18_text() -> str:
    return imported("torchvision:resnet18")


def test_resnet18_round_trips(resnet18_text):
    torch.manual_seed(0)
    assert_round_trip(resnet18_text, torchvision.models.resnet18())


def test_resnet18_blocks_and_repeats(resnet18_text):
    text = resnet18_text
    assert "block BasicBlock(out) {" in text               # the identity-shortcut block, width a parameter
    assert "block BasicBlock_2(out) {" in text             # the downsampling block (its own structure)
    assert "layer1: BasicBlock(64) x2" in text              # layer1 as a repeat
    assert "layer2: { BasicBlock_2(128)  BasicBlock(128) }" in text
    assert "} shortcut downsample { conv(out, k=1, s=2, bias=false)  batchnorm }" in text   # a residual
    assert "    residual {\n        conv1: conv(out, k=3, p=1, bias=false)" in text
    assert "network resnet18(num_classes = 1000) {" in text and "fc: linear(num_classes)" in text
    assert text.count("\n") < 45


def test_resnet18_text_is_fmt_clean_in_both_syntaxes(resnet18_text):
    spec = cnndsl.parse(resnet18_text)
    assert format_cnn(spec) == resnet18_text
    yaml_text = format_yaml(spec)
    assert format_yaml(cnndsl.parse(yaml_text, format="yaml")) == yaml_text
    assert canonical_spec(cnndsl.parse(yaml_text, format="yaml")) == canonical_spec(spec)


@pytest.mark.parametrize("call, build", [
    ("torchvision.models:mobilenet_v2(num_classes=10)", lambda: torchvision.models.mobilenet_v2(num_classes=10)),
    ("torchvision:squeezenet1_1", torchvision.models.squeezenet1_1),
    ("torchvision:mobilenet_v3_small", torchvision.models.mobilenet_v3_small),   # SE: multiply(input); 'block:'
])
def test_other_families_round_trip(call, build):
    text = imported(call)
    assert text.startswith("block ")                        # repeated modules became block definitions
    torch.manual_seed(1)
    assert_round_trip(text, build())


def test_factory_arguments_reach_the_model():
    text = imported("torchvision:resnet18(num_classes=7)")
    assert "network resnet18(num_classes = 7)" in text
    assert cnndsl.analyze(cnndsl.parse(text)).output_shapes == [(7,)]


def test_mobilenet_blocks_get_defaults_and_repeats():
    text = imported("torchvision:mobilenet_v2")
    assert "block Conv2dNormActivation(out, kernel = 3, stride = 1, padding = 1, groups = 1) {" in text
    assert "InvertedResidual_3(384) x3" in text
    assert "block InvertedResidual_3(out, conv_out = 64) {\n    residual {\n        conv: {" in text


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("model, message, hint", [
    ("nosuch.mod:f", "cannot import module 'nosuch.mod'", "installed"),
    ("torchvision:resnet19", "has no factory 'resnet19'", "resnet18"),
    ("torchvision", "expected MODULE:FACTORY", "torchvision.models:resnet18"),
    ("torchvision:resnet18(", "cannot read", "MODULE:FACTORY"),
    ("torchvision:resnet18(num_classes=int('3'))", "must be literals", "never evaluated"),
    ("torchvision:resnet18(**{'num_classes': 3})", "unpacks arguments", "each argument"),
    ("torchvision:resnet18(num_classes='x')", "failed: TypeError", "arguments"),
    ("torch.nn:PixelShuffle(2)", "node 'pixel_shuffle': no cnndsl op for torch.pixel_shuffle", "op"),
])
def test_bad_models_are_diagnostics(model, message, hint, capsys):
    assert main(["import", model, "--input", "4x8x8"]) == 2
    err = capsys.readouterr().err
    assert message in err and hint in err and "Traceback" not in err


def test_arguments_are_never_evaluated(tmp_path, capsys):
    marker = tmp_path / "ran"
    call = f"torchvision:resnet18(num_classes=__import__('pathlib').Path({str(marker)!r}).touch())"
    assert main(["import", call]) == 2
    assert not marker.exists()
    assert "must be literals" in capsys.readouterr().err


def test_untraceable_model_names_the_cause(tmp_path, monkeypatch, capsys):
    (tmp_path / "branchy.py").write_text(
        "import torch\n"
        "class Branchy(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 4, 3)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x) if x.sum() > 0 else x\n"
        "def make():\n"
        "    return Branchy()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["import", "branchy:make", "--input", "3x8x8"]) == 2
    err = capsys.readouterr().err
    assert "torch.fx cannot trace branchy:make" in err and "control flow" in err
    sys.modules.pop("branchy", None)


def test_shared_weights_are_refused():
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    with pytest.raises(CnnError, match="module 'conv' is called twice"):
        import_spec(parse_factory("x:Twice"), (4, 8, 8), model=Twice())


# ----------------------------------------------------------------------------- the CLI


def test_cli_writes_cnn_and_yaml_that_round_trip(tmp_path, capsys):
    cnn, yml = tmp_path / "r.cnn", tmp_path / "r.yaml"
    for out in (cnn, yml):
        assert main(["import", "torchvision:resnet18(num_classes=10)", "-o", str(out), "--input", "3x32x32",
                     "--check"]) == 0
    err = capsys.readouterr().err
    assert f"wrote {cnn}:" in err and "round trip ok: state_dict same keys and shapes" in err
    assert cnn.read_text().startswith("# Imported from torchvision:resnet18(num_classes=10) by cnndsl import")
    assert main(["fmt", "--check", str(cnn), str(yml)]) == 0
    assert canonical_spec(cnndsl.load(cnn)) == canonical_spec(cnndsl.load(yml))


@pytest.mark.parametrize("argv, message", [
    (["--input", "3x32"], "--input: expected CxHxW"),
    (["-o", "out.txt"], "-o/--output: 'out.txt' must end in .cnn, .yaml or .yml"),
])
def test_cli_bad_flags(argv, message, capsys):
    assert main(["import", "torchvision:resnet18", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_prints_to_stdout(capsys):
    assert main(["import", "torchvision:squeezenet1_1(num_classes=3)", "--input", "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "network squeezenet1_1 {" in out and "classifier: { dropout  conv(3, k=1)  relu  global_avgpool }" in out
    assert "block Fire(out, expand1x1_out = 64) {" in out and "Fire(16) x2" in out


def test_registration_imports_no_torch():
    code = ("import sys, argparse; from cnndsl.translate.cli import register; "
            "p = argparse.ArgumentParser(); register(p.add_subparsers()); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    import subprocess

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={"PYTHONPATH": str(root)})
