"""The standalone PyTorch source from ``cnndsl.emit.python``: it parses, imports nothing from cnndsl,
and its class has cnndsl's state_dict keys and shapes, loads cnndsl's weights strictly, computes the
same outputs, keeps frozen parameters frozen and traces with torch.fx — for every spec in specs/,
the examples of docs/language.md, a spec using every other op, and random specs."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import cnndsl
from cnndsl.emit.python import RUNTIME_NAMES, python_source

ROOT = Path(__file__).resolve().parents[1]
# every shipped spec (backbones: written with torchvision's create_feature_extractor); the YAML
# twins are checked to emit the same file
SPECS = sorted((ROOT / "specs").glob("*.cnn"))

# specs not in specs/: the language reference's examples and one spec for the remaining ops
PARALLEL = """
network Parallel {
    input 3x32x32
    stem: conv(32, k=3, p=1)  relu
    mixed: concat {
        b1: conv(16, k=1)
      | b2: { conv(16, k=1)  conv(32, k=3, p=1) }
      | b3: { maxpool(3, s=1, p=1)  conv(16, k=1) }
      |
    }
    se: multiply {
      | global_avgpool  conv(24, k=1)  relu  conv(96, k=1)  sigmoid
    }
    add { conv(96, k=3, p=1) | conv(96, k=1) }
    global_avgpool  flatten  linear(10)
}
"""

SKIPS = """
network Skips {
    input 3x32x32
    enc1: { c: conv(16, k=3, p=1)  relu }
    pool: maxpool(2)
    enc2: conv(32, k=3, p=1)  relu
    up: conv_transpose(16, k=2, s=2)
    cat: concat(enc1)
    conv(16, k=3, p=1)
    add(enc1.c)
    concat(input)
    head: conv(2, k=1)
}
"""

TWO_HEADS = """
network TwoHeads(num_classes = 10) {
    input 3x32x32
    features: { conv(32, k=3, p=1) relu  conv(64, k=3, s=2, p=1) relu }
    global_avgpool  flatten
    logits: linear(num_classes)
    from features
    mask: conv(1, k=1)
    output logits, mask
}
"""

ALL_OPS = """
block Unit(out) {
    conv: conv(out, k=3, p=same, padding_mode=reflect, init=kaiming)
    norm: groupnorm(2, eps=1e-6)
    act: prelu(per_channel=true, init=0.1)
}

network AllOps(width = 8) {
    input 3x16x16
    stem: conv(width, k=[3, 1], s=[1, 2], p=[1, 0], d=1, bias=false, init=dirac)
    inorm: instancenorm(affine=true)
    leaky_relu(0.2)
    narrow(1, 6)
    u1: Unit(width)
    u2: Unit(width)
    ln: layernorm(dims=2, eps=1e-4)
    celu(0.5)  elu(2.0)  gelu(approximate=tanh)  hardswish  hardsigmoid  softplus  mish  silu  tanh
    dw: dwconv(3, p=1, m=2)
    ct: conv_transpose(8, k=3, s=2, p=1, output_padding=1)
    upsample(size=[20, 24], mode=bilinear, align_corners=true)
    avgpool(3, s=2, p=1, count_include_pad=false, ceil_mode=true)
    maxpool(2, d=1)
    adaptive_maxpool([3, 4])
    dropout2d(0.1)
    up: upsample(2)
    adaptive_avgpool(2)
    global_maxpool
    flatten
    fc1: linear(16)
    bn: batchnorm(momentum=0.2, eps=1e-3)
    relu6
    dropout(0.25)
    fc2: linear(5, bias=false)
    mul(0.5)
    sm: log_softmax
    freeze "stem", "u1.*.weight"
    unfreeze "u1.act.weight"
}
"""

# layer names that are methods of nn.ModuleDict, digits at the top level, a name that is a keyword
CLASHES = """
network Clashes {
    input 3x8x8
    s: { keys: conv(4, k=1)  update: batchnorm  relu  t: { values: conv(4, k=1) } }
    relu
    flatten
    items: linear(2)
}
"""

# a required block parameter after one with a default (its default an expression): keyword-only
LATE = """
block B(a = 2, b = in.channels) { conv(b, k=1)  conv(a * 4, k=1) }
network Late { input 3x8x8  x1: B()  x2: B(3, b=5)  x3: B(b=6) }
"""

# a bare parameter frozen by name and by a glob (frozen under the layer's own path)
BARE_FROZEN = """
block Scaled(out) { conv(out, k=3, p=1)  residual { dwconv(3, p=1)  ls: layer_scale(0.5) } }
network BareFrozen(width = 4) { input 3x8x8  stage0: Scaled(width) x2  freeze "stage0.0.ls", "stage0.1.*" }
"""

EXTRA = {"bare_frozen": BARE_FROZEN, "late": LATE, "clashes": CLASHES, "parallel": PARALLEL, "skips": SKIPS, "two_heads": TWO_HEADS, "all_ops": ALL_OPS}


def _load(source: str, name: str = "generated"):
    """Exec generated source in a fresh namespace (the package itself never executes it)."""
    ns: dict = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102  (the point of the test)
    return ns


def _class(ns: dict, analysis):
    """The network's class (the file holds one class per block and stage class too)."""
    return ns[analysis.name]


def _norm(v):
    """(2, 2) and 2 configure a 2-D module alike."""
    if isinstance(v, (tuple, list)) and v and len(set(v)) == 1:
        return _norm(v[0])
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _attrs(m) -> dict:
    """A module's configuration: its public plain attributes (kernel_size, eps, inplace, ...)."""
    return {k: _norm(v) for k, v in vars(m).items() if not k.startswith("_") and k != "training"}


RUFF = Path(sys.executable).with_name("ruff")


def _ruff(source: str) -> None:
    """The file passes ``ruff check`` (default rules) and ``ruff format --check``."""
    if not RUFF.exists():  # ruff ships in the dev extra; the venv of `make test` has it
        return
    for args in (["check", "--isolated", "-"], ["format", "--isolated", "--check", "-"]):
        out = subprocess.run([str(RUFF), *args], input=source, capture_output=True, text=True, check=False)
        assert out.returncode == 0, (args, out.stdout + out.stderr)


def _check(analysis, batch: int = 2, spec=None, ruff: bool = True):
    """The generated module equals cnndsl's: keys, shapes, strict load, outputs, frozen flags, fx."""
    src = python_source(analysis, spec=spec)
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            allowed = ("torch", "torchvision") if analysis.graph.backbones else ("torch",)
            assert all(m.split(".")[0] in allowed for m in mods), mods
    assert "import cnndsl" not in src and "from cnndsl" not in src
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "cnndsl"]
    if ruff:
        _ruff(src)

    torch.manual_seed(0)
    ref = cnndsl.build(analysis).eval()
    cls = _class(_load(src), analysis)
    assert cls.__name__ == analysis.name
    model = cls().eval()
    _same_model(ref, model, analysis.input_shape, batch)
    return src, model


def _same_model(ref, model, input_shape, batch: int = 2) -> None:
    ref_sd, sd = ref.state_dict(), model.state_dict()
    assert list(sd) == list(ref_sd)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in ref_sd.items()}
    model.load_state_dict(ref_sd, strict=True)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == \
        {n: p.requires_grad for n, p in ref.named_parameters()}
    # every module holding state sits at the same path; only cnndsl's stateless merges may be missing
    ref_mods, mods = dict(ref.named_modules()), dict(model.named_modules())
    for path, m in mods.items():
        if path and not list(m.children()) and path in ref_mods:  # layers, not their containers
            ref_type = type(ref_mods[path])  # cnndsl.nn's classes are copies in the generated file
            assert type(m) is ref_type or (ref_type.__name__ in RUNTIME_NAMES and type(m).__name__ == ref_type.__name__
                                           and type(m).__module__ != ref_type.__module__), path
            assert _attrs(m) == _attrs(ref_mods[path]), path
    for path, m in ref_mods.items():
        if path not in mods:
            assert not list(m.parameters()) and not list(m.buffers()), path
    # containers are modules at the same paths: model.layer1[0] is the block it is in cnndsl
    for path, m in ref_mods.items():
        if path and list(m.children()) and list(m.parameters()):
            assert path in mods, path

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *input_shape, generator=g)
    with torch.no_grad():
        want, got = ref(x), model(x)
        traced = torch.fx.symbolic_trace(model)
        got_fx = traced(x)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    got_fx = got_fx if isinstance(got_fx, tuple) else (got_fx,)
    for w, o, f in zip(want, got, got_fx, strict=True):
        torch.testing.assert_close(o, w, rtol=0, atol=0)
        torch.testing.assert_close(f, w, rtol=0, atol=0)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_specs(path):
    spec = cnndsl.load(path)
    analysis = cnndsl.analyze(spec)
    big = analysis.input_shape[-1] >= 224
    _check(analysis, batch=1 if big else 2, spec=spec)


YAML = sorted(p for p in (ROOT / "specs").glob("*.yaml") if p.with_suffix(".cnn").exists())


@pytest.mark.parametrize("path", YAML, ids=[p.stem for p in YAML])
def test_yaml_specs_emit_the_source_of_their_cnn_twins(path):
    """The YAML syntax gives the same file (so test_specs covers it), up to the spec's file name."""
    emitted = []
    for p in (path, path.with_suffix(".cnn")):
        spec = cnndsl.load(p)
        emitted.append(python_source(cnndsl.analyze(spec), spec=spec).replace(p.name, "SPEC"))
    assert emitted[0] == emitted[1]


def _other(value):
    return value * 3 if isinstance(value, int) else value / 4


def _shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_network_parameters_change_the_model_as_in_cnndsl(path):
    """Each constructor argument of the network class, at another value, builds what
    cnndsl.build(spec, NAME=value) builds (state_dict on the meta device; outputs too for the small
    specs); parameters that are not arguments are named in the header."""
    spec = cnndsl.load(path)
    analysis = cnndsl.analyze(spec)
    src = python_source(analysis, spec=spec)
    cls = _class(_load(src), analysis)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert set(params) <= set(analysis.graph.params)
    for name in set(analysis.graph.params) - set(params):
        assert f"{name}=" in src.split('"""')[1], name     # "Fixed when compiled: width=1.0"
    for name in params:
        value = _other(analysis.graph.params[name])
        with torch.device("meta"):
            assert _shapes(cls(**{name: value})) == _shapes(cnndsl.build(spec, **{name: value})), name
        if analysis.input_shape[-1] <= 64 and not analysis.graph.backbones:
            torch.manual_seed(0)
            ref = cnndsl.build(spec, **{name: value}).eval()
            _same_model(ref, cls(**{name: value}).eval(), analysis.input_shape)
    if path.stem == "resnet18":
        assert params == ["num_classes"]
        with torch.device("meta"):
            assert cls(num_classes=10).fc.out_features == 10


def test_resnet18_reads_like_torchvision():
    spec = cnndsl.load(ROOT / "specs" / "resnet18.cnn")
    analysis = cnndsl.analyze(spec)
    src = python_source(analysis, spec=spec)
    ns = _load(src)
    head = src.split('"""')[1]
    assert "resnet18.cnn" in head and str(ROOT) not in src and src.count("cnndsl") <= 2
    assert "class BasicBlock(nn.Module):" in src and "class ResNet18(nn.Module):" in src
    assert "def __init__(self, num_classes: int = 1000) -> None:" in src
    assert "self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)" in src
    assert "self.layer1 = nn.Sequential(" in src and "BasicBlock(64, 64),  # (B, 64, 56, 56)" in src
    assert "self.bn1 = nn.BatchNorm2d(planes)" in src
    model = ns["ResNet18"]()
    assert isinstance(model.layer1, torch.nn.Sequential) and type(model.layer1[0]).__name__ == "BasicBlock"
    block = inspect.signature(ns["BasicBlock2"].__init__)
    assert list(block.parameters)[1:] == ["in_channels", "planes", "stride"]
    # the class without a downsample cannot take another stride (cnndsl would add the downsample)
    assert list(inspect.signature(ns["BasicBlock"].__init__).parameters)[1:] == ["in_channels", "planes"]
    assert "fixed: stride=1" in ns["BasicBlock"].__doc__
    forward = src[src.index("class ResNet18"):src.index('if __name__')]
    forward = forward[forward.index("def forward"):]
    for line in forward.strip().splitlines()[1:-1]:
        assert "# (B, " in line, line             # a shape comment on every statement
    assert len(forward.strip().splitlines()) <= 15


def test_a_block_class_built_with_other_arguments_is_the_block_cnndsl_builds():
    """BasicBlock(64, 128, stride=2) of the emitted file equals cnndsl's block instance for those arguments."""
    spec = cnndsl.load(ROOT / "specs" / "resnet18.cnn")
    ns = _load(python_source(cnndsl.analyze(spec), spec=spec))
    ref = cnndsl.build(spec)
    assert list(ns["BasicBlock2"](64, 128, stride=2).state_dict()) == list(ref.layer2[0].state_dict())
    assert list(ns["BasicBlock"](128, 128).state_dict()) == list(ref.layer2[1].state_dict())


NAMES = """
block Unit(c) { conv: conv(c, k=3, p=1)  bn: batchnorm  relu }
network Names(width = 4) {
    input 3x8x8
    stem: conv(width, k=1)
    stage: { Unit(width) x2 }
    blocks: { u: Unit(width)  Unit(2 * width) }
    global_avgpool  flatten  fc: linear(3)
}
"""


def test_module_names_that_are_not_identifiers_go_through_repr():
    """Names like RegNet's ``block1-0`` (not Python identifiers): registered with
    ``add_module(repr(name))`` and read with ``getattr(self, repr(name))`` or by position."""
    analysis = cnndsl.analyze(NAMES)
    g = analysis.graph
    rename = {"stage": "block1-0", "blocks": "trunk output", "conv": "conv.1x1"[:4] + "-x", "u": "1st"}

    def new(path: str) -> str:
        return ".".join(rename.get(p, p) for p in path.split("."))

    for n in g.nodes[1:]:
        n.path = new(n.path)
    g.containers = {new(k): c for k, c in g.containers.items()}
    for c in g.containers.values():
        c.path = new(c.path)
    src, model = _check(analysis, spec=None)
    assert 'self.add_module("block1-0", nn.Sequential(' in src.replace("\n", "").replace("    ", "") or \
        'self.add_module(\n            "block1-0"' in src
    assert 'getattr(self, "block1-0")' in src and 'getattr(self, "trunk output")' in src
    assert 'self.add_module("conv-x"' in src and 'getattr(self, "1st")' in src
    assert dict(model.named_modules())["block1-0.0.conv-x"] is not None


def test_backbones_are_written_with_create_feature_extractor():
    spec = cnndsl.load(ROOT / "specs" / "fpn_resnet18.cnn")
    src = python_source(cnndsl.analyze(spec), spec=spec)
    assert "from torchvision.models.feature_extraction import create_feature_extractor" in src
    assert 'torchvision.models.get_model("resnet18", weights=None)' in src
    assert 'backbone["layer3"]' in src


def test_a_spec_backbone_is_refused_with_a_diagnostic(tmp_path):
    (tmp_path / "inner.cnn").write_text("network Inner { input 3x16x16  c: conv(4, k=3, p=1)  relu }\n")
    outer = tmp_path / "outer.cnn"
    outer.write_text('network Outer { input 3x16x16  body: backbone "inner.cnn"  head: conv(2, k=1) }\n')
    spec = cnndsl.load(outer)
    with pytest.raises(cnndsl.CnnError, match="compile that spec"):
        python_source(cnndsl.analyze(spec), spec=spec)


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_examples(name):
    _check(cnndsl.analyze(EXTRA[name]), spec=cnndsl.parse(EXTRA[name]))


def test_all_ops_reproduces_init_and_freeze():
    analysis = cnndsl.analyze(ALL_OPS)
    src, model = _check(analysis, spec=cnndsl.parse(ALL_OPS))
    assert "for conv in [self.u1.conv, self.u2.conv]:" in src
    assert "nn.init.dirac_(conv.weight[: min(conv.weight.shape[:2])])" in src
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"stem.weight", "u1.conv.weight", "u1.norm.weight"}
    # the emitted initialisation itself (not only loaded weights): dirac passes channels through
    torch.manual_seed(0)
    fresh = type(model)()
    w = fresh.stem.weight
    assert torch.equal(w[:3, :, 1, 0], torch.eye(3)) and torch.count_nonzero(w[:3]) == 3
    assert not fresh.stem.weight.requires_grad and fresh.u1.act.weight.requires_grad


def test_airbench_whiten_marker_and_frozen():
    spec = cnndsl.load(ROOT / "specs" / "airbench94.cnn")
    analysis = cnndsl.analyze(spec)
    ns = _load(python_source(analysis, spec=spec))
    model = _class(ns, analysis)()
    assert model.whiten.cnndsl_init == "whiten"
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad
    assert not model.layer1.norm1.weight.requires_grad and model.layer1.norm1.bias.requires_grad
    wide = _class(ns, analysis)(w1=128)          # dirac init follows the width
    w = wide.layer1.conv2.weight
    assert torch.count_nonzero(w[:, :, 1, 1].diagonal()) == 128


def test_generated_file_runs_standalone(tmp_path):
    """Written to a file and run as a script: the smoke test at its end runs without cnndsl."""
    analysis = cnndsl.analyze(ROOT / "specs" / "simple_cnn.cnn")
    out = run_without_cnndsl(tmp_path / "simple_cnn.py", python_source(analysis))
    assert "620,362 parameters; output (2, 10)" in out.stdout


def run_without_cnndsl(path: Path, source: str) -> subprocess.CompletedProcess:
    """Write ``source`` to ``path`` and run it as a script in a fresh interpreter where importing
    cnndsl fails; the run must succeed."""
    path.write_text(source)
    code = ("import builtins; real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    assert not name.startswith('cnndsl'), name\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            f"import runpy; runpy.run_path({str(path)!r}, run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         cwd=path.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def test_readme_shows_real_emitted_classes():
    """The classes the README shows next to their specs are what --emit python writes today."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### `cnndsl compile SPEC --emit python`"):readme.index("### `cnndsl fmt SPEC")]
    for stem, classes in (("resnet18", ("BasicBlock2", "ResNet18")), ("convnext_tiny", ("CNBlock",)),
                          ("densenet121", ("DenseLayer", "DenseBlock"))):
        spec = cnndsl.load(ROOT / "specs" / f"{stem}.cnn")
        src = python_source(cnndsl.analyze(spec), spec=spec)
        for name in classes:
            start = section.index(f"class {name}(")
            shown = section[start:section.index("\n```", start)].split("\n...")[0].rstrip()
            assert shown in src, name
        if stem == "resnet18":   # and its header
            assert src[:src.index("import torch")].rstrip() in section
