"""``cnndsl import`` of the torchvision families the language's newer constructs unblocked: RegNet
(quoted module names, ``"block1-0"``), EfficientNet and EfficientNet-v2 (``stochastic_depth``),
ConvNeXt (``layernorm2d``, channels-last blocks with ``permute``, ``layer_scale``), MNASNet
(``x.mean([2, 3])`` → ``global_avgpool`` + ``flatten``) and ShuffleNetV2 (``channel_shuffle`` fused
from view/transpose/view, ``narrow`` for the parts of ``chunk``). Each imports a width-reduced
model of the family at a small input and proves the round trip against torchvision itself: the
same state_dict keys and shapes in the same order, a strict load, equal eval outputs. The
transformers stay blocked, and the error names what blocks them."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torchvision.models import convnext, efficientnet, regnet  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.canonical import canonical_spec  # noqa: E402
from cnndsl.cli import main  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.syntax.format import format_cnn, format_yaml  # noqa: E402
from cnndsl.translate.importer import import_spec, parse_factory  # noqa: E402
from test_import import SMALL as SHAPE, assert_round_trip  # noqa: E402



def imported(model: torch.nn.Module, shape: tuple[int, ...] = SHAPE) -> str:
    """The spec of ``model`` (traced on the CPU, as made), formatter-clean in both syntaxes."""
    text = format_cnn(import_spec(parse_factory("tests:tiny"), shape, model=model.eval()))
    spec = cnndsl.parse(text)
    assert format_cnn(spec) == text
    assert canonical_spec(cnndsl.parse(format_yaml(spec), format="yaml")) == canonical_spec(spec)
    return text


def test_regnet_module_names_are_quoted():
    torch.manual_seed(0)
    params = regnet.BlockParams.from_init_params(depth=5, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=0.25)
    model = regnet.RegNet(params, num_classes=10, stem_width=8)
    text = imported(model)
    assert '"block1-0": ResBottleneckBlock(' in text            # trunk_output.block1.block1-0
    assert '"block2-{i + 1}": ResBottleneckBlock_2 x2 as i' in text   # block2-1, block2-2: a computed name
    keys = cnndsl.build(cnndsl.parse(text)).state_dict()
    assert "trunk_output.block1.block1-0.proj.0.weight" in keys and "trunk_output.block2.block2-2.f.c.1.bias" in keys
    assert_round_trip(text, model)


def test_efficientnet_mbconv_and_fused_mbconv_with_stochastic_depth():
    torch.manual_seed(1)
    setting = [efficientnet.MBConvConfig(1, 3, 1, 8, 8, 1, width_mult=1.0, depth_mult=1.0),
               efficientnet.MBConvConfig(4, 3, 2, 8, 16, 2, width_mult=1.0, depth_mult=1.0),
               efficientnet.FusedMBConvConfig(4, 3, 1, 16, 16, 2)]
    model = efficientnet.EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.2, num_classes=10)
    text = imported(model)
    assert "stochastic_depth: stochastic_depth(p)" in text and "residual {" in text
    assert "block FusedMBConv" in text and "block MBConv" in text and "silu" in text
    assert_round_trip(text, model)


def test_convnext_channels_last_blocks_and_layer_scale():
    torch.manual_seed(2)
    setting = [convnext.CNBlockConfig(16, 32, 1), convnext.CNBlockConfig(32, None, 2)]
    model = convnext.ConvNeXt(setting, stochastic_depth_prob=0.1, layer_scale=0.5, num_classes=10)
    text = imported(model)
    assert "layernorm2d(eps=1e-06)" in text                                 # torchvision's LayerNorm2d
    assert "permute(0, 2, 3, 1)" in text and "layernorm(dims=1, eps=1e-06)" in text and "permute(0, 3, 1, 2)" in text
    assert "layer_scale: layer_scale(0.5)" in text                           # the parameter's value, read
    built = cnndsl.build(cnndsl.parse(text))
    assert tuple(built.state_dict()["features.1.0.layer_scale"].shape) == (16, 1, 1)
    with torch.no_grad():                                                    # a trained scale, not the init
        for k, v in model.state_dict().items():
            if k.endswith("layer_scale"):
                v.uniform_(0.5, 1.5)
    assert_round_trip(text, model)


def test_mnasnet_mean_becomes_pool_and_flatten():
    torch.manual_seed(3)
    model = torchvision.models.MNASNet(0.25, num_classes=10)
    text = imported(model)
    assert "    }\n    global_avgpool\n    flatten\n    classifier: { dropout(0.2)  linear(num_classes) }\n}" in text
    assert_round_trip(text, model)


def test_shufflenet_channel_shuffle_and_chunk(tmp_path, capsys):
    """Through the command, with literal factory arguments: ``--check`` proves the round trip."""
    out = tmp_path / "shuffle.cnn"
    call = "torchvision.models:ShuffleNetV2([2, 1, 1], [8, 16, 32, 64, 128], num_classes=10)"
    assert main(["import", call, "-o", str(out), "--input", "3x32x32", "--check"]) == 0
    assert "round trip ok: state_dict same keys and shapes, strict load ok" in capsys.readouterr().err
    text = out.read_text()
    assert text.count("channel_shuffle(2)") == 2                 # one per block definition
    assert re.search(r"\n    (\w+): narrow\(0, 8\)\n    from input\n    narrow\(8, 8\)\n    branch2: \{", text)
    assert re.search(r"\n    from getitem_\d\n    concat\(branch2\)\n    channel_shuffle\(2\)\n", text)
    torch.manual_seed(4)
    assert_round_trip(text, torchvision.models.ShuffleNetV2([2, 1, 1], [8, 16, 32, 64, 128], num_classes=10))


def test_transformers_name_what_blocks_them():
    with torch.device("meta"):
        model = torchvision.models.swin_t()
    with pytest.raises(CnnError) as err:
        import_spec(parse_factory("torchvision:swin_t"), (3, 224, 224), model=model)
    message = err.value.diagnostics[0].message
    assert "no cnndsl op for parameter relative_position_bias_table (×12), buffer relative_position_index (×12)" in message
    assert "torchvision.models.swin_transformer.shifted_window_attention (×12)" in message
    assert "node(s) after them refuse inputs those nodes make" in message


class Named(torch.nn.Module):
    """A model whose submodules have the given names (any text torch accepts)."""

    def __init__(self, *names: str):
        super().__init__()
        for i, name in enumerate(names):
            self.add_module(name, torch.nn.Conv2d(3 if i == 0 else 4, 4, 1))

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x


def test_dashed_module_names_are_quoted():
    torch.manual_seed(5)
    model = Named("stage-1", "2a", "stage-2")
    text = imported(model, (3, 8, 8))
    assert '"stage-1": conv(4, k=1)\n    "2a": conv(4, k=1)\n    "stage-2": conv(num_classes, k=1)' in text
    assert_round_trip(text, model, (3, 8, 8))


@pytest.mark.parametrize("name, why", [
    ("a+b", "the module name 'a+b' is not a spec name ('a+b' contains the character '+')"),
    ("a b", "is not a spec name ('a b' contains the character ' ')"),
    ("input", "node 'input': the module name 'input' names the network's input in a spec"),
])
def test_module_names_a_spec_cannot_hold_are_refused(name, why):
    with pytest.raises(CnnError) as err:
        import_spec(parse_factory("x:Named"), (3, 8, 8), model=Named(name).eval())
    assert why in err.value.diagnostics[0].message
