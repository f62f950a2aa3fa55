"""Every spec in specs/ checked against torch: static shapes, parameter counts and state_dict
shapes equal what the built module has and produces; the module traces with torch.fx; every YAML
twin has the canonical form (and hash) of its .cnn; and the torchvision-compatible specs load
torchvision's weights and compute the same outputs."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

import cnndsl
from cnndsl.canonical import canonical_spec, spec_hash

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL = sorted([*SPECS.glob("*.cnn"), *SPECS.glob("*.yaml"), *SPECS.glob("*.yml")])
TWINS = sorted(p for p in ALL if p.suffix in (".yaml", ".yml"))
IDS = [p.name for p in ALL]

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _signature(analysis) -> list[tuple]:
    """The expanded graph, node by node: path, op with its arguments, inputs, shape, registration."""
    return [(n.path, None if n.op is None else n.op.describe(), n.inputs, n.shape, n.registered)
            for n in analysis.graph.nodes]


def _twin_of(path: Path) -> Path | None:
    """The .cnn twin of a YAML spec, when it has the same canonical form."""
    twin = path.with_suffix(".cnn")
    if path.suffix == ".cnn" or not twin.exists():
        return None
    return twin if spec_hash(cnndsl.load(path)) == spec_hash(cnndsl.load(twin)) else None


@functools.lru_cache(maxsize=None)
def _compiled(path: Path):
    """(analysis, eval-mode model, input batch of 2, outputs, shapes seen by forward hooks).

    A YAML twin whose expanded graph equals its .cnn's node for node shares the .cnn's model and
    forward pass (the compiler builds from the graph alone), which keeps VGG-sized specs cheap.
    """
    analysis = cnndsl.analyze(cnndsl.load(path))
    twin = _twin_of(path)
    if twin is not None:
        base = _compiled(twin)
        assert _signature(analysis) == _signature(base[0])
        return (analysis, *base[1:])
    torch.manual_seed(0)
    model = cnndsl.build(analysis).eval()
    x = torch.randn(2, *analysis.input_shape)
    seen: dict[str, list[tuple[int, ...]]] = {}
    handles = []
    for info in analysis.layers:
        if not info.node.registered or info.node.op.bare_parameter:   # layer_scale: a parameter, no module
            continue
        module = model.get_submodule(info.name)

        def hook(mod, args, out, name=info.name):
            seen.setdefault(name, []).append(tuple(out.shape))

        handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        out = model(x)
    for h in handles:
        h.remove()
    return analysis, model, x, out, seen


def _as_tuple(out) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def test_specs_exist():
    names = {p.name for p in ALL}
    for required in ("cnn_bn.cnn", "mobilenetv2.cnn", "inception.cnn", "unet.cnn", "resnet18.cnn",
                     "vgg11_bn.cnn", "simple_cnn.cnn", "simple_cnn.yaml", "resnet18.yaml", "unet.yaml"):
        assert required in names


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_analysis_clean(path):
    analysis = cnndsl.analyze(path)
    assert analysis.params > 0 and analysis.macs > 0
    assert len(analysis.layers) > 0
    # warnings are allowed (receptive field notes), but no 'never used' layers in shipped specs
    assert not [w for w in analysis.warnings if "never used" in w.message]


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_static_shapes_match_torch(path):
    analysis, model, x, out, seen = _compiled(path)
    for info in analysis.layers:
        if not info.node.registered or info.node.op.bare_parameter:
            continue  # implicit merges (the '+' of a residual), layer scales: checked through what consumes them
        assert info.name in seen, f"module {info.name} never ran"
        assert seen[info.name] == [(2, *info.shape)], info.name
    outs = _as_tuple(out)
    assert [tuple(o.shape[1:]) for o in outs] == [tuple(s) for s in analysis.output_shapes]
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_params_and_state_dict(path):
    analysis = cnndsl.analyze(path)
    with torch.device("meta"):        # shapes only: no memory, no initialisation
        model = cnndsl.build(analysis)
    assert analysis.params == sum(p.numel() for p in model.parameters())
    assert analysis.state_dict_shapes() == {k: tuple(v.shape) for k, v in model.state_dict().items()}


@functools.lru_cache(maxsize=None)
def _fx_checked(path: Path) -> None:
    """Trace the compiled model with torch.fx and compare the traced outputs. A YAML twin sharing
    its .cnn's model shares this check."""
    twin = _twin_of(path)
    if twin is not None:
        return _fx_checked(twin)
    analysis, model, x, out, _ = _compiled(path)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        again = traced(x)
    for a, b in zip(_as_tuple(again), _as_tuple(out), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_fx_trace(path):
    _fx_checked(path)


@pytest.mark.parametrize("path", TWINS, ids=[p.name for p in TWINS])
def test_yaml_twin(path):
    twin = path.with_suffix(".cnn")
    assert twin.exists(), f"{path.name} has no .cnn twin"
    a, b = cnndsl.load(path), cnndsl.load(twin)
    assert canonical_spec(a) == canonical_spec(b)
    assert spec_hash(a) == spec_hash(b)


# ----------------------------------------------------------------------------- CNNWithBatchNorm


class CNNWithBatchNorm(nn.Module):
    """The tutorial's model, written by hand."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64)
        self.conv3, self.bn3 = nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.bn4 = nn.Linear(128 * 4 * 4, 256), nn.BatchNorm1d(256)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.pool(torch.relu(self.bn3(self.conv3(x))))
        x = torch.flatten(x, 1)
        x = self.dropout(torch.relu(self.bn4(self.fc1(x))))
        return self.fc2(x)


def _randomise_bn_stats(model: nn.Module) -> None:
    """Non-trivial running statistics, so eval-mode parity really tests the normalisation."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_cnn_bn_matches_handwritten_module():
    ref = CNNWithBatchNorm().eval()
    assert sum(p.numel() for p in ref.parameters()) == 621_322   # the count in specs/cnn_bn.cnn
    analysis = cnndsl.analyze(SPECS / "cnn_bn.cnn")
    assert analysis.params == 621_322
    model = cnndsl.build(analysis).eval()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    _randomise_bn_stats(ref)
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


# ----------------------------------------------------------------------------- torchvision parity

torchvision = pytest.importorskip("torchvision")


def _parity(spec: str, reference: nn.Module, image: int, **params) -> None:
    """Same state_dict keys and shapes; torchvision's weights load strictly; same outputs (eval)."""
    reference.eval()
    if any(p.is_meta for p in reference.parameters()):   # skipped initialisation: random weights
        reference = reference.to_empty(device="cpu")
        g = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for m in reference.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_parameters()
                elif hasattr(m, "weight"):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / m.weight[0].numel()) ** 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.01)
    model = cnndsl.build(SPECS / spec, **params).eval()
    ref_sd = reference.state_dict()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape) for k, v in ref_sd.items()}
    _randomise_bn_stats(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(1, 3, image, image)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)


def test_resnet18_matches_torchvision():
    # the network is fully convolutional up to its global average pool: 64×64 inputs run on both
    _parity("resnet18.cnn", torchvision.models.resnet18(), 64)


def test_resnet18_yaml_matches_torchvision():
    _parity("resnet18.yaml", torchvision.models.resnet18(num_classes=10), 64, num_classes=10)


def test_vgg11_bn_matches_torchvision():
    with torch.device("meta"):        # skip torchvision's 2 s initialisation of 129M weights
        reference = torchvision.models.vgg11_bn(num_classes=10)
    _parity("vgg11_bn.cnn", reference, 64, num_classes=10)


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_mobilenetv2_matches_torchvision(width):
    _parity("mobilenetv2.cnn", torchvision.models.mobilenet_v2(width_mult=width), 64, width=width,
            size=64)


def test_googlenet_matches_torchvision():
    ref = torchvision.models.GoogLeNet(num_classes=100, aux_logits=False, init_weights=False)
    _parity("inception.cnn", ref, 96, num_classes=100)


# ----------------------------------------------------------------------------- parameterised variants


def test_unet_bilinear_variant():
    analysis = cnndsl.analyze(SPECS / "unet.cnn", transposed=False, num_classes=5)
    assert analysis.output_shapes == [(5, 64, 64)]
    assert analysis.graph.containers["up3"].kind == "group"
    model = cnndsl.build(analysis).eval()
    assert isinstance(model.get_submodule("up3.0"), nn.Upsample)
    assert analysis.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5, 64, 64)


def test_unet_skip_connections_concatenate_encoder_features():
    analysis = cnndsl.analyze(SPECS / "unet.cnn")
    by_name = {l.name: l for l in analysis.layers}
    cat = by_name["cat1"]
    sources = [analysis.graph.nodes[i].path for i in cat.node.inputs]
    assert sources[0] == "up1" and sources[1].startswith("enc1.")
    assert cat.shape[0] == by_name["up1"].shape[0] + by_name[sources[1]].shape[0]


def test_mobilenetv2_width_multiplier():
    # make_divisible keeps every width a multiple of 8, and the last conv never shrinks below 1280
    small = cnndsl.analyze(SPECS / "mobilenetv2.cnn", width=0.35, size=32)
    widths = [l.shape[0] for l in small.layers if l.op == "conv"]
    assert all(c % 8 == 0 for c in widths)
    assert small.layer("features.18.0").shape[0] == 1280
    assert small.params == sum(p.numel() for p in torchvision.models.mobilenet_v2(width_mult=0.35).parameters())


def test_inception_size_parameter():
    assert cnndsl.analyze(SPECS / "inception.cnn", size=224).layer("inception5b.branch1.conv").shape == (384, 7, 7)


# ----------------------------------------------------------------------------- docs/language.md

DOC = SPECS.parent / "docs" / "language.md"


def _doc_examples() -> list[tuple[str, str, int]]:
    """(fence language, text, line) of every ```cnn / ```yaml block of the language reference."""
    out, lines = [], DOC.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        lang = lines[i].strip()[3:] if lines[i].startswith("```") else ""
        if lang in ("cnn", "yaml"):
            j = lines.index("```", i + 1)
            out.append((lang, "\n".join(lines[i + 1:j]) + "\n", i + 1))
            i = j
        i += 1
    return out


@pytest.mark.skipif(not DOC.exists(), reason="no docs/language.md")
def test_language_doc_examples(tmp_path):
    """Every example of the reference checks, and each YAML example is the twin of the .cnn before it."""
    (tmp_path / "lib").symlink_to(SPECS / "lib", target_is_directory=True)
    examples = _doc_examples()
    assert len(examples) >= 30
    previous = None
    for n, (lang, text, line) in enumerate(examples):
        path = tmp_path / f"example{n}.{lang}"
        path.write_text(text, encoding="utf-8")
        try:
            spec = cnndsl.load(path)
            cnndsl.analyze(spec)
        except cnndsl.CnnError as exc:
            pytest.fail(f"docs/language.md:{line}: {lang} example fails:\n{exc.render()}")
        if lang == "yaml":
            assert previous is not None and previous[0] == "cnn", f"docs/language.md:{line}: YAML without .cnn"
            assert canonical_spec(spec) == canonical_spec(previous[1]), f"docs/language.md:{line}: not the twin of line {previous[2]}"
            assert spec_hash(spec) == spec_hash(previous[1])
        previous = (lang, spec, line)
