"""Property: for random valid specs, the statically inferred shape of every node equals the shape torch
produces, and the static parameter count and state_dict shapes equal the built module's.

Hypothesis draws a spec as .cnn text from a small grammar of layers (conv with random
kernel/stride/padding/dilation/groups/bias, dwconv, conv_transpose, pools, norms, activations,
dropout, upsample, residual blocks with projection, concat branches, named stages with skip
connections in and values out, flatten + linear heads) on small inputs. Every layer and container
must run once per forward (forward hooks). The generator tracks shapes so most specs are valid;
specs that cnndsl rejects with a *shape* error are filtered out with ``assume`` (and counted: they
must stay a minority), any other error fails the test.
"""

from __future__ import annotations

import math
import re

import pytest

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cnndsl  # noqa: E402
from test_modules import check_every_module_runs_once  # noqa: E402

ACTS = ["relu", "relu6", "leaky_relu(0.1)", "gelu", "silu", "sigmoid", "tanh", "hardswish", "elu", "mish",
        "prelu", "identity", "softplus"]


def _out(size, k, s, p, d=1, ceil=False):
    span = d * (k - 1) + 1
    num = size + 2 * p - span
    if num < 0:
        return 0
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return o


# ----------------------------------------------------------------------------- map layers
# each returns (text, new shape) or None when it does not apply to the current shape


def conv(draw, c, h, w):
    g = draw(st.sampled_from([d for d in (1, 2, 3, 4) if c % d == 0]))
    out = g * draw(st.integers(1, max(1, 8 // g)))
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    if s == 1 and draw(st.booleans()):
        pad, p = "same", None
        oh, ow = h, w
    else:
        p = draw(st.integers(0, k // 2 + 1))
        pad = p if draw(st.booleans()) else f"[{p}, {draw(st.integers(0, k))}]"
        pw = p if isinstance(pad, int) else int(pad.split(",")[1].strip(" ]"))
        oh, ow = _out(h, k, s, p, d), _out(w, k, s, pw, d)
    if min(oh, ow) < 1:
        return None
    args = [f"{out}", f"k={k}", f"s={s}", f"p={pad}", f"d={d}", f"g={g}", f"bias={'true' if bias else 'false'}"]
    if draw(st.booleans()):
        args.append(f"padding_mode={draw(st.sampled_from(['zeros', 'reflect', 'replicate', 'circular']))}")
        if ("reflect" in args[-1] or "circular" in args[-1]) and pad != "same" and max(p, pw) >= min(h, w):
            args.pop()        # torch needs padding < input size for these modes
        elif pad == "same" and "reflect" in args[-1] and d * (k - 1) >= min(h, w):
            args.pop()
    return f"conv({', '.join(args)})", (out, oh, ow)


def dwconv(draw, c, h, w):
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, k // 2))
    m = draw(st.integers(1, 2))
    oh, ow = _out(h, k, s, p), _out(w, k, s, p)
    if min(oh, ow) < 1:
        return None
    return f"dwconv({k}, s={s}, p={p}, multiplier={m})", (c * m, oh, ow)


def conv_transpose(draw, c, h, w):
    if h > 16 or w > 16:
        return None
    g = draw(st.sampled_from([d for d in (1, 2) if c % d == 0]))
    out = g * draw(st.integers(1, 4))
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 2))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, 1))
    op = draw(st.integers(0, max(s, d) - 1))
    oh, ow = ((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n in (h, w))
    if min(oh, ow) < 1:
        return None
    return f"conv_transpose({out}, k={k}, s={s}, p={p}, output_padding={op}, d={d}, g={g})", (out, oh, ow)


def pool(draw, c, h, w):
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    k = draw(st.integers(1, 3))
    s = draw(st.sampled_from([None, 1, 2, 3]))
    p = draw(st.integers(0, k // 2))
    ceil = draw(st.booleans())
    d = draw(st.integers(1, 2)) if kind == "maxpool" else 1
    ss = s or k
    oh, ow = _out(h, k, ss, p, d, ceil), _out(w, k, ss, p, d, ceil)
    if min(oh, ow) < 1:
        return None
    args = [str(k)] + ([f"s={s}"] if s else []) + [f"p={p}", f"ceil_mode={'true' if ceil else 'false'}"]
    if kind == "maxpool":
        args.append(f"d={d}")
    return f"{kind}({', '.join(args)})", (c, oh, ow)


def adaptive(draw, c, h, w):
    kind = draw(st.sampled_from(["adaptive_avgpool", "adaptive_maxpool"]))
    oh, ow = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    arg = f"{oh}" if oh == ow else f"[{oh}, {ow}]"
    return f"{kind}({arg})", (c, oh, ow)


def norm(draw, c, h, w):
    kind = draw(st.sampled_from(["batchnorm", "groupnorm", "instancenorm", "layernorm", "bn_noaffine"]))
    if kind == "groupnorm":
        return f"groupnorm({draw(st.sampled_from([g for g in (1, 2, 3, 4) if c % g == 0]))})", (c, h, w)
    if kind == "instancenorm":
        return f"instancenorm(affine={draw(st.sampled_from(['true', 'false']))})", (c, h, w)
    if kind == "layernorm":
        return f"layernorm(dims={draw(st.integers(1, 3))})", (c, h, w)
    if kind == "bn_noaffine":
        return "batchnorm(affine=false, momentum=0.2)", (c, h, w)
    return "batchnorm", (c, h, w)


def act(draw, c, h, w):
    return draw(st.sampled_from(ACTS + ["dropout(0.3)", "dropout2d(0.2)", "mul(0.5)"])), (c, h, w)


def upsample(draw, c, h, w):
    if h * w > 256:
        return None
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"]))
    if draw(st.booleans()):
        s = draw(st.integers(1, 2))
        return f"upsample({s}, mode={mode})", (c, h * s, w * s)
    oh, ow = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    return f"upsample(size=[{oh}, {ow}], mode={mode})", (c, oh, ow)


def residual(draw, c, h, w):
    out = draw(st.integers(1, 8))
    s = draw(st.integers(1, 2))
    oh, ow = _out(h, 3, s, 1), _out(w, 3, s, 1)
    main = f"conv({out}, k=3, s={s}, p=1, bias=false) batchnorm relu conv({out}, k=3, p=1, bias=false) batchnorm"
    if s == 1 and out == c and draw(st.booleans()):
        short = ""
    else:
        short = (f" shortcut proj when {s} != 1 or in.channels != {out} "
                 f"{{ conv({out}, k=1, s={s}, bias=false) batchnorm }}")
    name = draw(st.sampled_from(["", "blk: "]))
    return f"{name}residual {{ {main} }}{short} relu", (out, oh, ow)


def branches(draw, c, h, w):
    n = draw(st.integers(2, 3))
    parts, total = [], 0
    for _ in range(n):
        kind = draw(st.sampled_from(["conv", "pool", "empty", "chain"]))
        if kind == "conv":
            o, k = draw(st.integers(1, 4)), draw(st.sampled_from([1, 3, 5]))
            parts.append(f"conv({o}, k={k}, p=same) relu")
            total += o
        elif kind == "pool":
            parts.append("maxpool(3, s=1, p=1)")
            total += c
        elif kind == "chain":
            o = draw(st.integers(1, 4))
            parts.append(f"conv({o}, k=1) batchnorm relu conv({o}, k=3, p=1)")
            total += o
        else:
            parts.append("")
            total += c
    if not any(parts):               # covered by test_named_parallel_of_identities_builds
        parts[0] = "relu"
    merge = draw(st.sampled_from(["concat", "add"])) if len(set(parts)) == 1 and "pool" not in parts[0] else "concat"
    if merge == "add":
        total = total // n
    name = draw(st.sampled_from(["", "mix: "]))
    return f"{name}{merge} {{ {' | '.join(parts)} }}", (total, h, w)


def skip_stage(draw, c, h, w, named, i):
    """A named stage reading an earlier named value (a skip connection into it) whose first layer is
    also read after it (a value leaving it): its forward takes two inputs and returns two values."""
    refs = sorted(n for n, s in named.items() if len(s) == 3 and s[1:] == (h, w))
    if not refs:
        return None
    ref, o = draw(st.sampled_from(refs)), draw(st.integers(1, 6))
    text = f"st{i}: {{ conv({o}, k=3, p=1)  relu  concat({ref}) }}  concat(st{i}.0)"
    return text, (o + named[ref][0] + o, h, w)


MAP_LAYERS = [conv, conv, dwconv, conv_transpose, pool, adaptive, norm, act, act, upsample, residual, branches,
              branches, skip_stage]


# ----------------------------------------------------------------------------- the spec strategy


@st.composite
def specs(draw):
    c, h, w = draw(st.integers(1, 8)), draw(st.integers(8, 32)), draw(st.integers(8, 32))
    items, shape = [], (c, h, w)
    named = {"input": shape}                # names a later skip_stage may read, with their shapes
    for i in range(draw(st.integers(1, 7))):
        layer = draw(st.sampled_from(MAP_LAYERS))
        got = layer(draw, *shape, named, i) if layer is skip_stage else layer(draw, *shape)
        if got is None:
            continue
        text, new = got
        text = text.replace("shortcut proj ", f"shortcut proj{i} ").replace("blk: ", f"blk{i}: ")
        text = text.replace("mix: ", f"mix{i}: ")
        if math.prod(new) > 20_000:
            continue
        if draw(st.integers(0, 4)) == 0 and not text.startswith(("residual", "concat", "add", "blk", "mix", "st")):
            text = f"l{i}: {text}"
        if re.match(r"(l|blk|mix)\d+: ", text):
            named[text.split(":")[0]] = new
        items.append(text)
        shape = new
    head = draw(st.sampled_from(["none", "global", "flatten", "flatten_mlp"]))
    if head == "global":
        items.append(f"{draw(st.sampled_from(['global_avgpool', 'global_maxpool']))} flatten "
                     f"fc: linear({draw(st.integers(1, 10))})")
    elif head == "flatten":
        items.append(f"flatten linear({draw(st.integers(1, 10))}, bias={draw(st.sampled_from(['true', 'false']))})")
    elif head == "flatten_mlp":
        items.append(f"flatten linear({draw(st.integers(2, 16))}) batchnorm {draw(st.sampled_from(ACTS))} "
                     f"dropout(0.5) layernorm linear({draw(st.integers(1, 10))})")
    if not items:
        items.append("identity")
    body = "\n    ".join(items)
    return f"network Random {{\n    input {c}x{h}x{w}\n    {body}\n}}\n"


def _is_shape_error(exc: cnndsl.CnnError) -> bool:
    d = exc.diagnostics[0]
    return any(" produces " in note for _, note in d.notes)


def analyze_valid(text: str):
    """The analysis of a generated spec; specs that cnndsl rejects for their shapes are skipped
    (hypothesis.assume), any other error fails the test."""
    try:
        return cnndsl.analyze(text)
    except cnndsl.CnnError as exc:
        if not _is_shape_error(exc):
            raise
        assume(False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True, database=None)
@given(specs())
def test_static_shapes_and_params_match_torch(text):
    analysis = analyze_valid(text)
    torch.manual_seed(0)
    model = cnndsl.build(analysis).eval()
    x = torch.randn(2, *analysis.input_shape)
    # every layer and container runs once per forward with its static shape; containers alone agree
    check_every_module_runs_once(analysis, model, x)
    with torch.no_grad():
        out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape[1:]) for o in outs] == analysis.output_shapes, text
    assert analysis.params == sum(p.numel() for p in model.parameters()), text
    sd = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sd == {k: tuple(v) for k, v in analysis.state_dict_shapes().items()}, text


def test_named_parallel_of_identities_builds():
    text = "network R { input 2x8x8  mix: concat { | } }"
    analysis = cnndsl.analyze(text)
    model = cnndsl.build(analysis)
    assert tuple(model(torch.randn(2, 2, 8, 8)).shape[1:]) == analysis.output_shapes[0] == (4, 8, 8)


def test_most_generated_specs_are_valid():
    """The shape filter (assume) must not hide most of the examples: count them, analysis only."""
    counts = {"valid": 0, "shape_errors": 0}

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(specs())
    def count(text):
        try:
            cnndsl.analyze(text)
            counts["valid"] += 1
        except cnndsl.CnnError as exc:
            if not _is_shape_error(exc):
                raise
            counts["shape_errors"] += 1

    count()
    assert counts["valid"] >= 0.7 * (counts["valid"] + counts["shape_errors"]), counts
