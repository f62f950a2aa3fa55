"""The standalone PyTorch source from ``cnndsl.emit.python``: it parses, imports nothing from cnndsl,
and its class has cnndsl's state_dict keys and shapes, loads cnndsl's weights strictly, computes the
same outputs, keeps frozen parameters frozen and traces with torch.fx — for every spec in specs/,
the examples of docs/language.md, a spec using every other op, and random specs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import cnndsl
from cnndsl.emit.python import RUNTIME_NAMES, python_source

ROOT = Path(__file__).resolve().parents[1]
# backbone specs run torchvision's feature extractor, which standalone source does not (yet) write
SPECS = sorted(p for p in (ROOT / "specs").glob("*.cnn") if not cnndsl.analyze(p).graph.backbones)

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

EXTRA = {"clashes": CLASHES, "parallel": PARALLEL, "skips": SKIPS, "two_heads": TWO_HEADS, "all_ops": ALL_OPS}


def _load(source: str, name: str = "generated"):
    """Exec generated source in a fresh namespace (the package itself never executes it)."""
    ns: dict = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102  (the point of the test)
    return ns


def _class(ns: dict, analysis):
    classes = {k for k, v in ns.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == ns["__name__"]}
    # Scope: only where names clash; cnndsl.nn's modules (LayerNorm2d, StochasticDepth...) are copied in
    assert classes <= {analysis.name, "Scope", *RUNTIME_NAMES}, classes
    return ns[analysis.name]


def _norm(v):
    """(2, 2) and 2 configure a 2-D module alike."""
    if isinstance(v, (tuple, list)) and v and len(set(v)) == 1:
        return _norm(v[0])
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _attrs(m) -> dict:
    """A module's configuration: its public plain attributes (kernel_size, eps, inplace, ...)."""
    return {k: _norm(v) for k, v in vars(m).items() if not k.startswith("_") and k != "training"}


def _check(analysis, batch: int = 2):
    """The generated module equals cnndsl's: keys, shapes, strict load, outputs, frozen flags, fx."""
    src = python_source(analysis)
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert all(m == "torch" or m.startswith("torch.") for m in mods), mods
    assert "import cnndsl" not in src and "from cnndsl" not in src
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "cnndsl"]

    torch.manual_seed(0)
    ref = cnndsl.build(analysis).eval()
    cls = _class(_load(src), analysis)
    assert cls.__name__ == analysis.name
    model = cls().eval()

    ref_sd, sd = ref.state_dict(), model.state_dict()
    assert list(sd) == list(ref_sd)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in ref_sd.items()}
    model.load_state_dict(ref_sd, strict=True)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == \
        {n: p.requires_grad for n, p in ref.named_parameters()}
    # every module holding state sits at the same path; only cnndsl's stateless merges may be missing
    ref_mods, mods = dict(ref.named_modules()), dict(model.named_modules())
    for path, m in mods.items():
        if path and not list(m.children()):  # layers, not their containers
            ref_type = type(ref_mods[path])     # cnndsl.nn's classes are copies in the generated file
            assert type(m) is ref_type or (ref_type.__name__ in RUNTIME_NAMES and type(m).__name__ == ref_type.__name__)
            assert _attrs(m) == _attrs(ref_mods[path]), path
    for path, m in ref_mods.items():
        if path not in mods:
            assert not list(m.parameters()) and not list(m.buffers()), path

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *analysis.input_shape, generator=g)
    with torch.no_grad():
        want, got = ref(x), model(x)
        traced = torch.fx.symbolic_trace(model)
        got_fx = traced(x)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    got_fx = got_fx if isinstance(got_fx, tuple) else (got_fx,)
    assert [tuple(o.shape[1:]) for o in got] == analysis.output_shapes
    for w, o, f in zip(want, got, got_fx, strict=True):
        torch.testing.assert_close(o, w, rtol=0, atol=0)
        torch.testing.assert_close(f, w, rtol=0, atol=0)
    return src, model


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_specs(path):
    analysis = cnndsl.analyze(path)
    big = analysis.input_shape[-1] >= 224
    _check(analysis, batch=1 if big else 2)


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_examples(name):
    _check(cnndsl.analyze(EXTRA[name]))


def test_all_ops_reproduces_init_and_freeze():
    analysis = cnndsl.analyze(ALL_OPS)
    src, model = _check(analysis)
    assert "nn.init.kaiming_normal_(self.u1.conv.weight" in src
    assert "nn.init.dirac_(self.stem.weight[:3])" in src
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"stem.weight", "u1.conv.weight", "u1.norm.weight"}
    # the emitted initialisation itself (not only loaded weights): dirac passes channels through
    torch.manual_seed(0)
    fresh = type(model)()
    w = fresh.stem.weight
    assert torch.equal(w[:3, :, 1, 0], torch.eye(3)) and torch.count_nonzero(w[:3]) == 3
    assert not fresh.stem.weight.requires_grad and fresh.u1.act.weight.requires_grad


def test_airbench_whiten_marker_and_frozen():
    analysis = cnndsl.analyze(ROOT / "specs" / "airbench94.cnn")
    ns = _load(python_source(analysis))
    model = _class(ns, analysis)()
    assert model.whiten.cnndsl_init == "whiten"
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad
    assert not model.layer1.norm1.weight.requires_grad and model.layer1.norm1.bias.requires_grad


def test_source_reads_well():
    analysis = cnndsl.analyze(ROOT / "specs" / "resnet18.cnn")
    src = python_source(analysis)
    assert "from specs/resnet18.cnn" in src or "resnet18.cnn" in src
    assert "num_classes=1000" in src and "11,689,512" in src
    assert "class ResNet18(nn.Module):" in src
    assert "self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)" in src
    assert "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)" in src
    assert "layer1_0_add = layer1_0_bn2 + maxpool" in src
    forward = src[src.index("def forward"):src.index('if __name__')]
    for line in forward.strip().splitlines()[:-1]:
        assert "# (B, " in line, line             # a shape comment on every statement
    assert all(len(l) <= 120 for l in src.splitlines())


def test_generated_file_runs_standalone(tmp_path):
    """Written to a file and run as a script: the smoke test at its end runs without cnndsl."""
    analysis = cnndsl.analyze(ROOT / "specs" / "simple_cnn.cnn")
    f = tmp_path / "simple_cnn.py"
    f.write_text(python_source(analysis))
    code = ("import sys, builtins; real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    assert not name.startswith('cnndsl'), name\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            f"import runpy; runpy.run_path({str(f)!r}, run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "620,362 parameters; output (2, 10)" in out.stdout


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from test_random_specs import analyze_valid
from test_random_specs import specs as random_specs


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True, database=None)
@given(random_specs())
def test_random_specs(text):
    _check(analyze_valid(text))
