"""What `check` accepts, torch must run: window geometry, padding modes, in-place rules and float ranges
are checked statically against torch's own preconditions (issue 6, items 9–12)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from pydantic import ValidationError

import cnndsl
from cnndsl.ops import REGISTRY


def net(body: str, shape: str = "3x32x32") -> str:
    return f"network N {{\n  input {shape}\n  {body}\n}}\n"


def refused(text: str, fmt: str | None = None) -> str:
    with pytest.raises(cnndsl.CnnError) as ei:
        cnndsl.analyze(cnndsl.parse(text, format=fmt))
    d = ei.value.diagnostics[0]
    assert d.span is not None and d.span.line >= 1, d  # a file:line:col location
    return d.message + " | " + (d.hint or "")


def train_step(text: str, batch: int = 2) -> torch.Tensor:
    """Build, forward and backward on a batch, as `cnndsl train` would; returns the output."""
    a = cnndsl.analyze(text)
    torch.manual_seed(0)
    model = cnndsl.build(a).train()
    x = torch.randn(batch, *a.input_shape, requires_grad=True)
    out = model(x)
    out.float().square().mean().backward()
    assert tuple(out.shape[1:]) == a.output_shapes[0]
    return out


# ----------------------------------------------------------------------------- item 9: window geometry


def test_huge_stride_is_refused_with_the_numbers():
    """Reproducer: passed check and forward, then segfaulted in backward (s=10000 took 6.4 GB)."""
    msg = refused(net("conv(8, k=1)\n  conv(16, k=3, s=100000, p=1)"))
    assert "stride 100000" in msg and "32 + 2 = 34" in msg and "at most 34" in msg


@pytest.mark.parametrize("layer", [
    "dwconv(3, s=1000, p=1)", "maxpool(2, s=500)", "avgpool(3, s=40, p=1)", "conv(4, k=[1, 3], s=[1, 99], p=[0, 1])",
])
def test_every_window_op_refuses_a_stride_beyond_the_padded_input(layer):
    assert "can start only once" in refused(net(layer))


def test_the_largest_sensible_stride_is_accepted_and_trains():
    out = train_step(net("conv(8, k=3, s=34, p=1)  maxpool(2, s=2, ceil_mode=true)"))
    assert out.shape[1:] == (8, 1, 1)


@pytest.mark.parametrize("layer, words", [
    ("conv(4, k=3, p=3)", "padding 3 along the height is not smaller than the kernel 3"),
    ("conv(4, k=1, p=1)", "padding 1"),
    ("conv(4, k=[3, 1], p=[1, 1])", "along the width"),
    ("conv(4, k=3, d=2, p=5)", "dilation 2, which spans 5"),
    ("dwconv(3, p=4)", "padding 4"),
])
def test_padding_that_only_border_outputs_see_is_refused(layer, words):
    assert words in refused(net(layer))


def test_dilated_taps_that_all_land_in_the_padding_are_refused():
    # kernel 3 with dilation 5 and padding 7 on a 2-pixel map: taps at -7, -2, 3 all miss it
    assert "every tap" in refused(net("conv(4, k=3, d=5, p=7)", "3x2x2"))
    train_step(net("conv(4, k=3, d=24, p=24)", "3x16x16"))  # ASPP-style: the centre tap sees the map


def test_conv_transpose_stride_beyond_its_kernel_is_refused():
    assert "see no input" in refused(net("conv_transpose(4, k=1, s=3)", "3x8x8"))
    assert "see no input" in refused(net("conv_transpose(4, k=2, s=100000)", "3x8x8"))
    train_step(net("conv_transpose(4, k=2, s=2)", "3x8x8"))


def test_small_maps_keep_their_usual_strides():
    """Real networks on small inputs: a stride-2 shortcut on a 1×1 map, pools at the end."""
    train_step(net("conv(8, k=1, s=2)  conv(8, k=3, s=2, p=1)  maxpool(2, ceil_mode=true)", "3x1x1"))
    train_step(net("avgpool(7)", "3x7x7"))


@pytest.mark.parametrize("path", sorted(__import__("glob").glob("specs/*.cnn") + __import__("glob").glob("specs/*.yaml")))
def test_shipped_specs_pass_the_geometry_rules(path):
    cnndsl.analyze(path)


# ----------------------------------------------------------------------------- item 10: padding modes


@pytest.mark.parametrize("layer, shape", [
    ("conv(4, k=3, p=2, padding_mode=reflect)", "3x2x2"),
    ("conv(4, k=3, p=2, padding_mode=circular)", "3x1x1"),
    ("conv(4, k=7, p=3, padding_mode=circular)", "3x2x2"),
    ("conv(4, k=3, p=same, padding_mode=reflect)", "3x1x1"),
])
def test_padding_mode_preconditions_of_torch(layer, shape):
    """Reproducers: these passed check and failed in forward."""
    assert "padding_mode=" in refused(net(layer, shape))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "zeros"])
def test_accepted_exactly_when_torch_runs_for_padding_modes(mode):
    """Ground truth is torch itself: over small maps, kernels and paddings, cnndsl accepts a padded
    conv (stride 1) if and only if torch's forward and backward run — for the non-zero modes, whose
    border holds real pixels; with zeros, accepted ⇒ runs (cnndsl also refuses padding-only borders)."""
    for n, k, p in itertools.product((1, 2, 3), (1, 2, 3), (0, 1, 2, 3, 4)):
        text = net(f"conv(2, k={k}, p={p}, padding_mode={mode})", f"1x{n}x{n}")
        try:
            cnndsl.analyze(text)
            accepted = True
        except cnndsl.CnnError:
            accepted = False
        try:
            m = torch.nn.Conv2d(1, 2, k, padding=p, padding_mode=mode)
            m(torch.randn(2, 1, n, n, requires_grad=True)).sum().backward()
            runs = True
        except RuntimeError:
            runs = False
        assert not accepted or runs, (n, k, p, mode)
        if mode != "zeros":
            assert accepted == runs, (n, k, p, mode)


# ----------------------------------------------------------------------------- item 11: in-place


def test_leaky_relu_with_a_negative_slope_is_not_made_in_place():
    """Reproducer: made in-place, then backward failed (train died with an internal error)."""
    train_step(net("conv(4, k=1)  leaky_relu(-0.1)", "3x8x8"))
    model = cnndsl.build(net("conv(4, k=1)  leaky_relu(-0.1)  conv(4, k=1)  leaky_relu(0.1)", "3x8x8"))
    acts = [m for m in model.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert [m.inplace for m in acts] == [False, True]


def test_emitted_source_follows_the_same_in_place_rule():
    from cnndsl.emit.python import python_source

    src = python_source(cnndsl.analyze(net("conv(4, k=1)  leaky_relu(-0.1)  conv(4, k=1)  leaky_relu(0.1)")))
    assert "nn.LeakyReLU(negative_slope=-0.1))" in src
    assert "nn.LeakyReLU(negative_slope=0.1, inplace=True)" in src


# ----------------------------------------------------------------------------- item 12: float arguments


@pytest.mark.parametrize("layer", ["celu(1e-300)", "elu(1e-300)", "mul(1e300)", "leaky_relu(1e300)",
                                   "batchnorm(eps=1e-300)", "prelu(init=1e300)"])
def test_float_arguments_outside_their_range_are_refused(layer):
    """celu(1e-300) passed check and failed in forward (1/alpha overflows float32)."""
    msg = refused(net(f"conv(4, k=1)  {layer}", "3x8x8"))
    assert "must be" in msg


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_values_from_yaml_are_refused(value):
    """mul(1e999) was accepted and produced non-finite outputs; YAML hands the op an inf directly."""
    text = f"network:\n  name: N\n  input: 3x8x8\n  layers:\n    - mul: {value}\n"
    assert "finite" in refused(text, "yaml") or "must be" in refused(text, "yaml")


def _float_fields():
    for name, cls in sorted(REGISTRY.items()):
        for field, info in cls.model_fields.items():
            if "float" in str(info.annotation):
                yield name, field


@pytest.mark.parametrize("op, field", list(_float_fields()))
def test_every_float_argument_of_every_op_is_finite(op, field):
    cls = REGISTRY[op]
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValidationError):
            cls.schema().model_validate({**_required(cls), field: bad})


def _required(cls) -> dict:
    return {f: 1 for f, info in cls.model_fields.items() if info.is_required()}


@pytest.mark.parametrize("layer", ["celu(1e-6)", "elu(1e6)", "mul(1e4)", "mul(-1e4)", "leaky_relu(-1e4)",
                                   "batchnorm(eps=1e-12)", "groupnorm(2, eps=10.0)", "dropout(1.0)", "prelu(init=-1e4)"])
def test_float_arguments_at_their_limits_train_with_finite_outputs(layer):
    out = train_step(net(f"conv(4, k=1)  {layer}", "3x8x8"))
    assert torch.isfinite(out).all()
