"""``--emit python`` on random specs: flat random networks (every op the generator knows), and
networks of parameterised blocks whose network parameters become constructor arguments — the same
checks as tests/test_emit_python.py (keys, strict load, equal outputs, fx)."""

from __future__ import annotations

import inspect

import pytest

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")

import cnndsl  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_emit_python import _check, _class, _load, _same_model  # noqa: E402
from test_random_specs import analyze_valid  # noqa: E402
from test_random_specs import specs as random_specs  # noqa: E402


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True, database=None)
@given(random_specs())
def test_random_specs(text):
    _check(analyze_valid(text), spec=cnndsl.parse(text), ruff=False)


# ----------------------------------------------------------------------------- random specs with blocks

BLOCKS = {
    "Plain": "conv(out, k=3, s=s, p=1, bias=false)  batchnorm  relu",
    "Res": ("residual { conv(out, k=3, s=s, p=1, bias=false)  batchnorm  relu  conv(out, k=3, p=1) } "
            "shortcut proj when s != 1 or in.channels != out { conv(out, k=1, s=s) }  relu"),
    "Mix": "concat { conv(out, k=1, s=s) | { conv(out // 2 + 1, k=1)  c: conv(out, k=3, s=s, p=1) } }",
    "Wide": "conv(in.channels * 2, k=1)  relu  conv(out, k=3, s=s, p=1)",
    # main's residual and split ops: copied cnndsl.nn classes, a bare parameter, narrow in forward
    "Scaled": ("conv(out, k=3, s=s, p=1)  residual { dwconv(3, p=1)  layernorm2d  ls: layer_scale(0.5) "
               "stochastic_depth(0.1) }"),
    "Shuffle": "conv(2 * out, k=1, s=s)  { x1, x2: chunk(2)  conv(out, k=1)  concat(x1) }  channel_shuffle(2)",
}


@st.composite
def block_specs(draw):
    """Networks of parameterised blocks called with expressions of the network's parameters."""
    used = draw(st.lists(st.sampled_from(sorted(BLOCKS)), min_size=1, max_size=3, unique=True))
    lines = [f"block {b}(out, s = 1) {{ {BLOCKS[b]} }}" for b in used]
    width, classes = draw(st.integers(2, 6)), draw(st.integers(2, 7))
    body = ["stem: conv(width, k=3, p=1)"]
    size = 16
    for i in range(draw(st.integers(1, 3))):
        b, mult, reps = draw(st.sampled_from(used)), draw(st.sampled_from([1, 2, 3])), draw(st.integers(1, 3))
        down = size >= 8 and draw(st.booleans())
        stride = "2 if j == 0 else 1" if down else "1"
        size = size // 2 if down else size
        body.append(f"stage{i}: {b}(width * {mult}, s={stride}) x{reps} as j")
    body.append("global_avgpool  flatten  fc: linear(num_classes)")
    lines.append(f"network Blocks(width = {width}, num_classes = {classes}) {{\n    input 3x16x16\n    "
                 + "\n    ".join(body) + "\n}")
    return "\n".join(lines) + "\n"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True, database=None)
@given(block_specs())
def test_random_block_specs_and_their_parameters(text):
    """Random blocks: one class per block structure, and each network parameter of the class
    changes the model as cnndsl.build(spec, NAME=value) does."""
    spec = cnndsl.parse(text)
    analysis = cnndsl.analyze(spec)
    src, _ = _check(analysis, spec=spec, ruff=False)
    cls = _class(_load(src), analysis)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert "num_classes" in params and set(params) <= {"width", "num_classes"}, params
    if "width" not in params:  # a value no expression of the parameters explains (out // 2 + 1): fixed
        assert "Fixed when compiled (compile again with -p NAME=VALUE to change): width=" in src
    for name in params:
        value = analysis.graph.params[name] + 3
        torch.manual_seed(0)
        _same_model(cnndsl.build(spec, **{name: value}).eval(), cls(**{name: value}).eval(), analysis.input_shape)
