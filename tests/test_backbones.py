"""Backbones: the item in both syntaxes, the traced model's static analysis against hand-written
specs, torchvision and torchinfo, the on-disk cache (a second check imports no torch), building
with create_feature_extractor (outputs equal torchvision's), taps as names, and diagnostics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402
from cnndsl.ops import REGISTRY  # noqa: E402
from cnndsl.analysis.rows import summary_rows  # noqa: E402
from cnndsl.canonical import canonical_spec, spec_hash  # noqa: E402
from cnndsl.syntax.format import format_cnn, format_yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

RECIPE = """
network Pets(num_classes = 5) {
    input 3x224x224
    backbone: backbone resnet18
    head: linear(num_classes)
    freeze "backbone"
}
"""


def _spec(tmp_path: Path, text: str, name: str = "net.cnn") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _stage_rows(analysis, depth: int, prefix: str = "") -> dict[str, tuple]:
    """{stage name without ``prefix``: (shape, params, MACs, RF size, RF stride)}."""
    out = {}
    for r in summary_rows(analysis, depth):
        if r.name.startswith(prefix):
            rf = (r.rf.text("size"), r.rf.text("stride")) if r.rf else None
            out[r.name[len(prefix):]] = (r.shape, r.params, r.macs, rf)
    return out


# ----------------------------------------------------------------------------- the tutorial's recipe


def test_tutorial_recipe_totals_and_trainable_column(tmp_path, cli):
    analysis = cnndsl.analyze(_spec(tmp_path, RECIPE))
    assert analysis.params == 11_179_077 and analysis.trainable_params == 2_565
    with torch.device("meta"):
        model = cnndsl.build(analysis)
    assert sum(p.numel() for p in model.parameters()) == 11_179_077
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 2_565
    rc, out, _ = cli("compile", str(tmp_path / "net.cnn"), "--summary")
    assert rc == 0
    header = next(line for line in out.splitlines() if line.startswith("name"))
    assert header.split() == ["name", "op", "output", "params", "trainable", "MACs", "RF", "RF", "stride", "global"]
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("backbone.", "head"))}
    assert list(rows) == ["backbone.conv1", "backbone.bn1", "backbone.relu", "backbone.maxpool",
                          "backbone.layer1", "backbone.layer2", "backbone.layer3", "backbone.layer4",
                          "backbone.avgpool", "backbone.flatten", "head"]        # one row per stage
    assert rows["backbone.layer4"][1:5] == ["Sequential†", "512×7×7", "8,393,728", "0"]
    assert rows["head"][1:5] == ["linear", "5", "2,565", "2,565"]
    assert rows["backbone.layer4"][-1] == "-" and rows["backbone.avgpool"][-1] == "yes"  # after the global pool
    assert "params: 11,179,077 (trainable 2,565, frozen 11,176,512)" in out
    assert "† traced from the model" in out
    rc, js, _ = cli("compile", str(tmp_path / "net.cnn"), "--format", "json")
    data = json.loads(js)
    assert data["backbones"] == [{"path": "backbone", "source": "torchvision", "model": "resnet18", "outputs": ["flatten"],
                                  "weights": None, "strict": True, "cached": True, "opaque_layers": 0}]
    assert sum(layer["traced"] for layer in data["layers"]) == 68 and not data["layers"][-1]["traced"]
    rc, deeper, _ = cli("compile", str(tmp_path / "net.cnn"), "--summary", "--depth", "3")
    assert "backbone.layer1.0" in deeper and "backbone.layer1.1" in deeper and "BasicBlock†" in deeper


# ----------------------------------------------------------------------------- static parity


def test_traced_resnet18_stages_equal_the_handwritten_spec(tmp_path):
    traced = cnndsl.analyze(_spec(tmp_path, RECIPE.replace("backbone resnet18", "backbone resnet18(until = layer4)")
                                  .replace("head: linear(num_classes)", "")))
    ours = cnndsl.analyze(SPECS / "resnet18.cnn")
    a = _stage_rows(traced, 2, "backbone.")
    b = _stage_rows(ours, 1)
    for stage in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
        assert a[stage] == b[stage], stage
    assert a["layer4"][3] == ("435", "32")
    # node by node inside the stages: the same ops, shapes, parameters, MACs and receptive fields
    inside = {l.name[len("backbone."):]: l for l in traced.layers}
    same = [l for l in ours.layers if l.name in inside]    # conv1, layer1.0.bn2, layer2.0.downsample.0, ...
    assert len(same) == 50
    for l in same:
        t = inside[l.name]
        assert (t.op, t.shape, t.cost.params, t.cost.macs, t.rf) == (l.op, l.shape, l.cost.params, l.cost.macs, l.rf)


RESNET50 = """
import "lib/resnet_blocks.cnn"
network ResNet50 {
    input 3x64x64
    conv1: conv(64, k=7, s=2, p=3, bias=false)  bn1: batchnorm  relu: relu  maxpool: maxpool(3, s=2, p=1)
    layer1: Bottleneck(64) x3
    layer2: Bottleneck(128, stride = 2 if i == 0 else 1) x4 as i
    layer3: Bottleneck(256, stride = 2 if i == 0 else 1) x6 as i
    layer4: Bottleneck(512, stride = 2 if i == 0 else 1) x3 as i
    avgpool: global_avgpool  flatten: flatten
}
"""

VGG16 = """
network VGG16 {
    input 3x64x64
    features: {
        { conv(64, k=3, p=1) relu } x2  maxpool(2)
        { conv(128, k=3, p=1) relu } x2  maxpool(2)
        { conv(256, k=3, p=1) relu } x3  maxpool(2)
        { conv(512, k=3, p=1) relu } x3  maxpool(2)
        { conv(512, k=3, p=1) relu } x3  maxpool(2)
    }
    avgpool: adaptive_avgpool(7)  flatten: flatten
    classifier: { linear(4096) relu dropout(0.5) linear(4096) relu dropout(0.5) }
}
"""


@pytest.mark.slow
@pytest.mark.parametrize("model,handwritten,stage", [("resnet50", RESNET50, "layer1"), ("vgg16", VGG16, "features.16")])
def test_traced_resnet50_and_vgg16_match_torchvision_torchinfo_and_a_handwritten_spec(tmp_path, model, handwritten,
                                                                                        stage):
    from test_receptive_field import empirical_rf

    (tmp_path / "lib").symlink_to(SPECS / "lib", target_is_directory=True)
    traced = cnndsl.analyze(_spec(tmp_path, f"network T {{ input 3x64x64  b: backbone {model} }}", "t.cnn"))
    ours = cnndsl.analyze(_spec(tmp_path, handwritten, "h.cnn"))
    depth = 1 if model == "resnet50" else 2
    a, b = _stage_rows(traced, depth + 1, "b."), _stage_rows(ours, depth)
    assert a == b
    with torch.device("meta"):         # values do not matter below: skip torchvision's initialisation
        ref = getattr(torchvision.models, model)().eval()
    ref = ref.to_empty(device="cpu")
    dropped = sum(p.numel() for n, p in ref.named_parameters() if n.startswith(("fc.", "classifier.6.")))
    assert traced.params == sum(p.numel() for p in ref.parameters()) - dropped == ours.params
    # torchinfo: every conv's and linear's output shape, parameters and MACs
    torchinfo = pytest.importorskip("torchinfo")
    stats = torchinfo.summary(ref, input_size=(1, 3, 64, 64), verbose=0, device="cpu", depth=20,
                              col_names=("output_size", "num_params", "mult_adds"))
    names = {id(m): n for n, m in ref.named_modules()}
    by_name = {names[id(l.module)]: l for l in stats.summary_list if id(l.module) in names}
    checked = 0
    for info in traced.layers:
        name = info.name[len("b."):]
        module = ref.get_submodule(name) if info.node.registered else None
        if not isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            continue
        ti = by_name[name]
        bias = 0 if module.bias is None else module.bias.numel() * (
            info.shape[1] * info.shape[2] if isinstance(module, torch.nn.Conv2d) else 1)
        assert (tuple(ti.output_size[1:]), ti.num_params, ti.macs) == (info.shape, info.cost.params, info.cost.macs + bias)
        checked += 1
    assert checked == {"resnet50": 53, "vgg16": 15}[model]
    # the receptive field of a stage, measured with torch's gradients on the model up to that stage
    rf = traced.layer(next(l.name for l in reversed(traced.layers) if l.name.startswith(f"b.{stage}"))).rf
    head, _, last = stage.rpartition(".")
    parent = ref.get_submodule(head) if head else ref
    names = list(parent._modules)
    trunk = torch.nn.Sequential(*list(parent._modules.values())[:names.index(last) + 1])
    (r0, r1), (c0, c1), (i, j) = empirical_rf(trunk, str(names.index(last)), (3, 96, 96))
    for (lo, hi), u, axis in (((r0, r1), i, 0), ((c0, c1), j, 1)):
        centre = rf.start[axis] + u * rf.jump[axis]
        assert (lo, hi) == (centre - rf.size[axis] / 2, centre + rf.size[axis] / 2 - 1)


def test_untranslatable_layers_are_opaque_with_unknown_receptive_field(tmp_path, cli):
    spec = _spec(tmp_path, "network C { input 3x64x64  b: backbone swin_t  head: linear(3) }")
    analysis = cnndsl.analyze(spec)
    with torch.device("meta"):
        ref = torchvision.models.swin_t()
    assert analysis.params == sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("head.")) + 2307
    opaque = [l for l in analysis.layers if l.op not in REGISTRY]        # attention: no cnndsl op
    assert opaque and all(l.rf is None for l in opaque) and analysis.final_rf is None
    first = analysis.layers.index(opaque[0])
    assert all(l.rf is not None for l in analysis.layers[:first])     # known until the first opaque node
    # the permute back to C×H×W reads an opaque node, whose axes are unknown: it stays opaque too
    assert analysis.layer("b.permute").op not in REGISTRY
    rc, out, _ = cli("compile", str(spec), "--summary")
    assert rc == 0 and "their MACs are not counted" in out and "receptive field: unknown" in out
    stage = ".".join(opaque[0].name.split(".")[:2])                    # b.features
    row = next(line.split() for line in out.splitlines() if line.startswith(stage + ".1 "))
    assert row[-2:] == ["?", "?"]


def test_convnext_translates_whole(tmp_path):
    """Channels-last blocks (permute, layernorm over the channels, linear per position), layer
    scale (a parameter read outside a module call), LayerNorm2d and stochastic depth all have ops."""
    analysis = cnndsl.analyze(_spec(tmp_path, "network C { input 3x64x64  b: backbone convnext_tiny }"))
    with torch.device("meta"):
        ref = torchvision.models.convnext_tiny()
    assert analysis.params == sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("classifier.2"))
    assert all(l.op in REGISTRY for l in analysis.layers)
    scale = analysis.layer("b.features.1.0.layer_scale")
    assert scale.op == "layer_scale" and scale.cost.param_shapes == {"": (96, 1, 1)}   # <block>.layer_scale
    assert analysis.layer("b.features.1.0.block.2").shape == (16, 16, 96)   # layernorm on H×W×C
    assert analysis.final_rf is not None


def test_stochastic_depth_keeps_the_receptive_field(tmp_path):
    analysis = cnndsl.analyze(_spec(tmp_path, "network E { input 3x64x64  b: backbone efficientnet_b0 }"))
    with torch.device("meta"):
        ref = torchvision.models.efficientnet_b0()
    assert analysis.params == sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("classifier.1"))
    depth = [l for l in analysis.layers if l.op == "stochastic_depth"]
    assert len(depth) == 9 and all(l.rf is not None for l in depth)
    assert analysis.layer("b.features.8.2").rf is not None     # the last conv stage: known receptive field


# ----------------------------------------------------------------------------- cache


def test_second_check_uses_the_cache_and_imports_no_torch(tmp_path, monkeypatch):
    spec = _spec(tmp_path, RECIPE)
    monkeypatch.setenv("CNNDSL_CACHE_DIR", str(tmp_path / "cache"))
    first = cnndsl.analyze(spec)                                   # a miss: traced (torch is loaded here)
    assert [d.cached for d in first.graph.backbones.values()] == [False]
    entries = list((tmp_path / "cache" / "translation").glob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["model"] == "resnet18"
    probe = ("import sys; from cnndsl.cli import main; rc = main(['check', sys.argv[1]]); "
             "print('torch' in sys.modules, rc)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    second = subprocess.run([sys.executable, "-c", probe, str(spec)], capture_output=True, text=True, env=env,
                            check=False)
    assert second.stdout.split()[-2:] == ["False", "0"], second.stderr   # a hit does not import torch
    assert "ok: " in second.stdout and "11,179,077 params" in second.stdout
    assert [d.cached for d in cnndsl.analyze(spec).graph.backbones.values()] == [True]
    assert {p.name for p in tmp_path.iterdir()} == {"net.cnn", "cache"}    # nothing next to the spec
    entries[0].write_text("{not json")                             # a corrupt entry is a miss, not an error
    assert cnndsl.analyze(spec).params == first.params


def test_translation_is_deterministic_and_keyed_by_input_and_cut():
    from cnndsl.translate.fx import translate

    with torch.device("meta"):
        model = torchvision.models.resnet18()
    a = translate(model, (3, 64, 64), ["layer2", "layer4"], name="resnet18")
    b = translate(model, (3, 64, 64), ["layer2", "layer4"], name="resnet18")
    assert a.dumps() == b.dumps()
    assert a.outputs == ("layer2.1.relu_1", "layer4.1.relu_1") and a.queries == ("layer2", "layer4")
    assert a.record("layer4.1.relu_1").shape == (512, 2, 2)
    assert "fc.weight" in a.dropped and not any(r.name.startswith(("avgpool", "fc")) for r in a.records)


# ----------------------------------------------------------------------------- building


TAPS = """
network Taps {
    input 3x64x64
    features: backbone resnet18(taps = [layer2, layer3, layer4])
    top: conv(64, k=1)
    from features.layer2
    side: conv(64, k=1)
    output top, side
}
"""


def test_taps_are_names_and_the_built_backbone_is_torchvisions_feature_extractor(tmp_path):
    from torchvision.models.feature_extraction import create_feature_extractor

    analysis = cnndsl.analyze(_spec(tmp_path, TAPS))
    assert analysis.output_shapes == [(64, 2, 2), (64, 8, 8)]
    model = cnndsl.build(analysis).eval()
    ref = torchvision.models.resnet18().eval()
    assert model.features.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}) is not None
    extractor = create_feature_extractor(ref, ["layer2", "layer3", "layer4"]).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        top, side = model(x)
        feats = extractor(x)
        torch.testing.assert_close(top, model.top(feats["layer4"]))
        torch.testing.assert_close(side, model.side(feats["layer2"]))
    assert analysis.state_dict_shapes() == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert "features.layer1.0.conv1.weight" in model.state_dict()    # torchvision's names under the item's


def test_unknown_tap_reference_names_the_taps(tmp_path):
    with pytest.raises(cnndsl.CnnError) as exc:
        cnndsl.analyze(_spec(tmp_path, TAPS.replace("from features.layer2", "from features.layer1")))
    assert "'features' has no member 'layer1'" in str(exc.value)


def test_fpn_example_chooses_its_backbone_by_parameter():
    """(tests/test_specs.py builds and runs it like every shipped spec)"""
    random = cnndsl.analyze(SPECS / "fpn_resnet18.cnn", width=32, num_classes=3)
    assert random.output_shapes == [(3, 224, 224)]
    assert [(d.queries, d.weights) for d in random.graph.backbones.values()] == [(("layer2", "layer3", "layer4"), None)]
    pretrained = cnndsl.analyze(SPECS / "fpn_resnet18.cnn", pretrained=True)
    assert [d.weights.describe() for d in pretrained.graph.backbones.values()] == ["torchvision resnet18.IMAGENET1K_V1"]


PRE = """
network Pre(num_classes = 10) {
    input 1x28x28
    stem: conv(8, k=3, p=1)  batchnorm  relu  maxpool(2)
    body: { conv(16, k=3, p=1)  relu }
    global_avgpool
    flat: flatten
    fc: linear(num_classes)
}
"""


def test_a_cnndsl_spec_with_a_run_checkpoint_as_backbone(tmp_path):
    (tmp_path / "pre.cnn").write_text(PRE)
    pre = cnndsl.build(tmp_path / "pre.cnn").eval()
    run = tmp_path / "runs" / "pre" / "20250101-000000"
    run.mkdir(parents=True)
    torch.save({"model": pre.state_dict(), "epoch": 3}, run / "best.pt")
    spec = _spec(tmp_path, """
network Digits {
    input 1x28x28
    features: backbone "pre.cnn"(weights = "runs/pre/20250101-000000")
    head: linear(3)
    freeze "features"
}
""")
    analysis = cnndsl.analyze(spec)
    assert analysis.params == cnndsl.analyze(tmp_path / "pre.cnn").params - 170 + 51      # its fc dropped, a head
    assert analysis.trainable_params == 51
    model = cnndsl.build(analysis).eval()
    seen = {}
    pre.flat.register_forward_hook(lambda m, i, o: seen.setdefault("features", o))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        pre(x)
        torch.testing.assert_close(model(x), model.head(seen["features"]))
    assert not model.features.stem.weight.requires_grad and model.head.weight.requires_grad
    taps = cnndsl.analyze(_spec(tmp_path, """
network Taps {
    input 1x28x28
    features: backbone "pre.cnn"(taps = [stem, body])
    a: conv(4, k=1)
    from features.stem
    b: conv(4, k=1)
    output a, b
}
""", "taps.cnn"))
    assert taps.output_shapes == [(4, 14, 14), (4, 28, 28)]
    with torch.no_grad():
        assert [tuple(o.shape) for o in cnndsl.build(taps)(x)] == [(2, 4, 14, 14), (2, 4, 28, 28)]
    with pytest.raises(cnndsl.CnnError, match="Pre has no node 'bdy'"):
        cnndsl.analyze(_spec(tmp_path, 'network T { input 1x28x28  b: backbone "pre.cnn"(until = bdy) }', "t.cnn"))


def test_a_timm_backbone_matches_timms_own_feature_extraction(tmp_path):
    timm = pytest.importorskip("timm")
    analysis = cnndsl.analyze(_spec(tmp_path, "network T { input 3x64x64  b: backbone timm.resnet18(taps = [layer3, layer4]) }"))
    ref = timm.create_model("resnet18", features_only=True, out_indices=(3, 4)).eval()
    assert analysis.params == sum(p.numel() for p in ref.parameters())
    assert [m["module"] for m in ref.feature_info.get_dicts()] == ["layer3", "layer4"]
    model = cnndsl.build(analysis).eval()
    model.b.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x)[-1])
    with pytest.raises(cnndsl.CnnError, match="feature_info"):
        cnndsl.analyze(_spec(tmp_path, "network T { input 3x64x64  b: backbone timm.resnet18(until = stage9) }", "u.cnn"))


# ----------------------------------------------------------------------------- syntax


def test_backbone_and_init_round_trip_between_the_syntaxes():
    text = """
network N(pretrained = false) {
    input 3x64x64
    b: backbone resnet18(weights = IMAGENET1K_V1, taps = [layer3, "layer4.1.relu_1"], strict = false) when pretrained
    b: backbone timm.resnet18(until = layer4) when not pretrained
    c: backbone "lib/pre.cnn"(weights = "runs/pre/best.pt", num_classes = 10)
    flatten
    init "runs/x/best.pt" (strict = false)
}
"""
    spec = cnndsl.parse(text)
    assert spec.network.body[0].taps == ("layer3", "layer4.1.relu_1")
    assert spec.network.body[2].args == (("num_classes", 10),)
    assert spec.network.init.source == "runs/x/best.pt" and not spec.network.init.strict
    cnn, yaml_text = format_cnn(spec), format_yaml(spec)
    assert canonical_spec(cnndsl.parse(cnn)) == canonical_spec(spec)
    assert spec_hash(cnndsl.parse(yaml_text, format="yaml")) == spec_hash(spec)
    assert format_cnn(cnndsl.parse(cnn)) == cnn
    # `backbone` and `init` stay ordinary names elsewhere
    names = cnndsl.parse("network N { input 3x8x8  backbone: { init: conv(4, k=1, init=kaiming) }  from backbone }")
    assert names.network.body[0].name == "backbone" and names.network.body[0].body[0].name == "init"


def test_yaml_schema_knows_backbones_and_init():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from cnndsl.schema import json_schema

    validator = jsonschema.Draft7Validator(json_schema())
    good = yaml.safe_load((SPECS / "fpn_resnet18.yaml").read_text())
    good["network"]["init"] = {"source": "runs/x/best.pt", "strict": False}
    assert [e.message for e in validator.iter_errors(good)] == []
    bad = yaml.safe_load((SPECS / "fpn_resnet18.yaml").read_text())
    bad["network"]["layers"][0]["backbone"]["wieghts"] = "DEFAULT"
    assert any("wieghts" in e.message for e in validator.iter_errors(bad))


def test_yaml_args_hold_no_options():
    """``args`` are the model's arguments: an option there used to replace the option silently."""
    text = "network:\n  input: 3x64x64\n  layers:\n    - backbone: {model: resnet18, weights: DEFAULT, args: {weights: X}}\n"
    with pytest.raises(cnndsl.CnnError, match="'weights' is an option of the backbone, not an argument") as exc:
        cnndsl.parse(text, format="yaml")
    assert (exc.value.span.line, exc.value.span.col) == (4, 60)


# ----------------------------------------------------------------------------- diagnostics


@pytest.mark.parametrize("item,where,message,hint", [
    ("backbone resnt18", "3:17", "unknown torchvision model 'resnt18'", "did you mean 'resnet18'"),
    ("backbone resnet18(weights = IMAGENET_V1)", "3:36", "unknown weights 'IMAGENET_V1' for resnet18",
     "did you mean 'IMAGENET1K_V1'? valid: DEFAULT, IMAGENET1K_V1"),
    ("backbone resnet18(taps = [layer2, layr3])", "3:42", "resnet18 has no node 'layr3'",
     "did you mean 'layer3'"),
    ("backbone resnet18(until = avgpol)", "3:34", "resnet18 has no node 'avgpol'", "nodes of resnet18: conv1"),
    ("backbone resnet18(weights = \"missing.pth\")", "3:36", "weights file missing.pth does not exist", None),
    ("backbone resnet18 x2", "3:26", "a backbone cannot be repeated", None),
    ("backbone resnet18(weights = w * 2)", "3:36", "options take plain values", None),
])
def test_bad_backbones_are_diagnosed_at_their_position(tmp_path, cli, item, where, message, hint):
    spec = _spec(tmp_path, f"network N {{\n    input 3x64x64\n    b: {item}\n    flatten\n}}\n")
    rc, _, err = cli("check", str(spec))
    assert rc == 2 and "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"{spec}:{where}: error: ") and message in first, err
    assert hint is None or hint in err
    assert {p.name for p in tmp_path.iterdir()} == {"net.cnn"}


def test_backbone_input_that_the_model_refuses(tmp_path, cli):
    spec = _spec(tmp_path, "network N { input 1x28x28  b: backbone resnet18 }")
    rc, _, err = cli("check", str(spec))
    assert rc == 2 and "resnet18 cannot run on a 1×28×28 input" in err and "3-channel" in err


def test_python_source_writes_a_torchvision_backbone(tmp_path, cli):
    """--emit python writes the backbone as cnndsl builds it (torchvision's feature extractor),
    frozen as the spec says (tests/test_emit_python.py checks keys and outputs)."""
    out = tmp_path / "pets.py"
    rc, _, err = cli("compile", str(_spec(tmp_path, RECIPE)), "--emit", "python", "-o", str(out))
    src = out.read_text()
    assert rc == 0, err
    assert 'create_feature_extractor(\n            torchvision.models.get_model("resnet18", weights=None)' in src
    assert '"backbone.conv1.weight",' in src and "self.get_parameter(name).requires_grad_(False)" in src
