"""The invariant of issue 6, as a property over random specs with extreme argument values:

    check accepts ⇒ build, forward and backward on a batch of 2 succeed with finite outputs and
    gradients (on networks small enough to run), and the static shapes equal the real ones.

The layers are drawn with strides, kernels, paddings, dilations and float arguments from both ends
of their ranges (1, 2, huge; 0, tiny, the documented limits, beyond them), so most specs are
refused — that is the point: every refusal must be a CnnError, every acceptance must train.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cnndsl  # noqa: E402
from test_fuzz_harness import fuzz  # noqa: E402  (bench/fuzz.py: the forward/backward ground truth)
from test_random_specs import MAP_LAYERS, skip_stage  # noqa: E402

INTS = st.sampled_from([0, 1, 2, 3, 5, 7, 16, 33, 100, 1000, 100_000])
SMALL = st.sampled_from([0, 1, 2, 3])
FLOATS = st.sampled_from(["0.0", "1e-300", "1e-12", "1e-6", "0.5", "-0.1", "1.0", "10.0", "1e4", "-1e4",
                          "1e6", "1e300", "-1e300"])


def _pair(draw, values):
    a = draw(values)
    return str(a) if draw(st.booleans()) else f"[{a}, {draw(values)}]"


def extreme_window(draw, c, h, w):
    kind = draw(st.sampled_from(["conv", "dwconv", "conv_transpose", "maxpool", "avgpool"]))
    k = _pair(draw, st.one_of(SMALL, INTS).filter(lambda v: v >= 1))
    s, p, d = _pair(draw, INTS.filter(bool)), _pair(draw, st.one_of(SMALL, INTS)), _pair(draw, st.one_of(SMALL, INTS))
    if draw(st.integers(0, 3)) == 0:
        p = draw(st.sampled_from(["same", "valid"]))
    args = {"conv": [str(draw(st.integers(1, 4))), f"k={k}"], "dwconv": [f"k={k}"],
            "conv_transpose": [str(draw(st.integers(1, 4))), f"k={k}"], "maxpool": [k], "avgpool": [k]}[kind]
    args += [f"s={s}", f"p={p}"]
    if kind != "avgpool":
        args.append(f"d={d}")
    if kind in ("conv", "dwconv") and draw(st.booleans()):
        args.append(f"padding_mode={draw(st.sampled_from(['zeros', 'reflect', 'replicate', 'circular']))}")
    if kind in ("maxpool", "avgpool"):
        args.append(f"ceil_mode={draw(st.sampled_from(['true', 'false']))}")
    if kind == "conv_transpose":
        args.append(f"output_padding={draw(SMALL)}")
    return f"{kind}({', '.join(args)})", None


def extreme_float(draw, c, h, w):
    v = draw(FLOATS)
    return draw(st.sampled_from([f"leaky_relu({v})", f"elu({v})", f"celu({v})", f"mul({v})",
                                 f"prelu(init={v})", f"batchnorm(eps={v})", f"groupnorm(1, eps={v})",
                                 f"layernorm(eps={v})", f"instancenorm(eps={v})", f"dropout({v})",
                                 f"batchnorm(momentum={v})"])), None


def extreme_resample(draw, c, h, w):
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"]))
    if draw(st.booleans()):
        return f"upsample({_pair(draw, INTS)}, mode={mode})", None
    return f"{draw(st.sampled_from(['adaptive_avgpool', 'adaptive_maxpool']))}({_pair(draw, INTS)})", None


EXTREME = [extreme_window, extreme_window, extreme_float, extreme_resample]
# a skip stage needs the named values seen so far; these specs have none
PLAIN_LAYERS = [layer for layer in MAP_LAYERS if layer is not skip_stage]


@st.composite
def extreme_specs(draw):
    c, h, w = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3, 8, 17])), draw(st.sampled_from([1, 2, 5, 16]))
    items, shape = [], (c, h, w)
    for _ in range(draw(st.integers(1, 5))):
        layer = draw(st.sampled_from(EXTREME + PLAIN_LAYERS))
        got = layer(draw, *shape) if layer in EXTREME else (layer(draw, *shape) if min(shape[1:]) >= 1 else None)
        if got is None:
            continue
        text, new = got
        items.append(text)
        if new is not None:
            shape = new
    if draw(st.booleans()):
        items.append(f"flatten linear({draw(st.integers(1, 5))})")
    return f"network X {{\n  input {c}x{h}x{w}\n  " + "\n  ".join(items or ["identity"]) + "\n}\n"


RUNNABLE = 200_000  # activation elements per sample above which a network is only analysed


def check_invariant(text: str) -> str:
    """'refused', 'large' or 'trained'; raises AssertionError when the invariant breaks."""
    try:
        a = cnndsl.analyze(text, limits=cnndsl.Limits(max_params=2_000_000))
    except cnndsl.CnnError as exc:
        assert exc.diagnostics and exc.render()
        return "refused"
    if sum(math.prod(info.shape) for info in a.layers) > RUNNABLE:
        return "large"
    (out,), seen, finite = fuzz.forward_backward(a)
    assert tuple(out.shape[1:]) == a.output_shapes[0], text
    assert all(seen[i.name] == tuple(i.shape) for i in a.layers if i.node.registered), text
    assert finite, text   # the output and every gradient
    return "trained"


COUNTS: dict[str, int] = {}


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(extreme_specs())
def test_check_accepts_implies_it_trains(text):
    outcome = check_invariant(text)
    COUNTS[outcome] = COUNTS.get(outcome, 0) + 1


def test_the_extreme_generator_reaches_training():
    """Keep the property honest: a fair share of the extreme specs is accepted and trained."""
    if not COUNTS:
        test_check_accepts_implies_it_trains()
    assert COUNTS.get("trained", 0) >= 30 and COUNTS.get("refused", 0) >= 30, COUNTS


@pytest.mark.parametrize("text", [
    "network X {\n  input 3x32x32\n  conv(8, k=1)\n  conv(16, k=3, s=100000, p=1)\n}\n",
    "network X {\n  input 3x2x2\n  conv(4, k=3, p=2, padding_mode=reflect)\n}\n",
    "network X {\n  input 3x8x8\n  conv(4, k=1)  leaky_relu(-0.1)\n}\n",
    "network X {\n  input 3x8x8\n  celu(1e-300)\n}\n",
])
def test_issue_reproducers_keep_the_invariant(text):
    assert check_invariant(text) in ("refused", "trained")
