"""The emitted classes do not lie about their parameters: every constructor argument of every block
class, at another value, builds what cnndsl builds when the spec calls that block with that value
(a small wrapper spec importing the block), for every shipped spec; parameters a class cannot take
are not arguments and its docstring names them. (The network classes' arguments are proven the
same way by tests/test_emit_python.py::test_network_parameters_change_the_model_as_in_cnndsl.)"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import cnndsl  # noqa: E402
from cnndsl.emit.py_parts import python_name  # noqa: E402
from cnndsl.emit.python import python_source  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_emit_python import _load, _same_model  # noqa: E402
from test_emit_python_random import BLOCKS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = [p for p in sorted((ROOT / "specs").glob("*.cnn")) if "backbone" not in p.read_text()]


_IN = "<input channels>"   # the input's size in a joint change, for a class that does not take it


def _values(v):
    """Other values a demanding user might pass (cnndsl may refuse some: a stride the input cannot take)."""
    if isinstance(v, bool):
        return [not v]
    if isinstance(v, int):
        return list(dict.fromkeys([v * 2 if v else 1, v + 1, v + 2, v * 3 if v else 3, v + 3]))
    if isinstance(v, float):
        return [v / 2 if v else 0.5, v + 1.0, v + 0.25]
    return []


def _text(v) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else repr(v)


class _Wrapper:
    """cnndsl's module for one block called with given arguments on an input of a given shape."""

    def __init__(self, tmp: Path, spec_file: str, block: str, args: dict, in_shape: tuple[int, ...]):
        self.tmp, self.file, self.block, self.args, self.in_shape = tmp, Path(spec_file).resolve(), block, args, in_shape
        self.count = 0

    def build(self, args: dict, in_shape: tuple[int, ...]):
        call = ", ".join(f"{k}={_text(v)}" for k, v in args.items())
        text = (f'import "{self.file}"\nnetwork Wrap {{\n    input({", ".join(map(str, in_shape))})\n'
                f"    block: {self.block}({call})\n}}\n")
        self.count += 1
        path = self.tmp / f"wrap{self.count}.cnn"
        path.write_text(text)
        try:
            spec = cnndsl.load(path)
            torch.manual_seed(0)
            return cnndsl.build(spec).block.eval()
        except CnnError:
            return None


def _check_parameter(cls, wrap: _Wrapper, base: dict, spec_names: dict, in_name: str | None, name: str) -> bool:
    """``cls(**base, name=other)`` is cnndsl's block with that argument — changed alone or, where
    the block's ``when`` then gives another structure (``in.channels != planes``), together with
    the arguments of equal value, which keeps the structure the class stands for. False when
    cnndsl refuses every value tried."""
    def cnndsl_block(changes):
        shape = list(wrap.in_shape)
        args = dict(wrap.args)
        for k, v in changes.items():
            if k in (in_name, _IN):
                shape[0] = v
            else:
                args[spec_names[k]] = v
        return wrap.build(args, tuple(shape)), tuple(shape)

    for other in _values(base[name]):
        sizes = {**base, **({_IN: wrap.in_shape[0]} if in_name is None else {})}   # the input's, too
        joint = {k: other for k, v in sizes.items()
                 if type(v) is type(base[name]) and v == base[name] and (k in spec_names or k in (in_name, _IN))}
        failed: Exception | None = None
        for changes in [{name: other}] + ([joint] if len(joint) > 1 else []):
            ref, shape = cnndsl_block(changes)
            if ref is None:
                continue
            try:
                model = cls(**{n: v for n, v in {**base, **changes}.items() if n != _IN}).eval()
                _same_model(ref, model, shape, batch=1)
                return True
            except (AssertionError, RuntimeError, ValueError) as exc:
                failed = failed or exc   # another structure of the block (its when): the joint change must match
        if failed is not None:
            raise failed
    return False


def _spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The instance's input with its height and width capped at 32 (the classes do not depend on them)."""
    return shape if len(shape) != 3 else (shape[0], min(shape[1], 32), min(shape[2], 32))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_block_parameters_change_the_block_as_in_cnndsl(path, tmp_path):
    _check_block_classes(path, tmp_path)


def _check_block_classes(path: Path, tmp_path: Path) -> str:
    """Every argument of every block class of ``path``'s emitted file builds cnndsl's block."""
    spec = cnndsl.load(path)
    analysis = cnndsl.analyze(spec)
    blocks: dict = {}
    src = python_source(analysis, spec=spec, blocks=blocks)
    ns = _load(src)
    for class_name, info in blocks.items():
        cls = ns[class_name]
        container = analysis.graph.containers[info.path]
        spec_names = {python_name(k): k for k in container.args}
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert set(params) == set(info.args), (class_name, params, info.args)
        in_name = next((p for p in params if p not in spec_names and p not in info.extras), None)
        # what the class does not take is fixed, and its docstring says so
        for k in spec_names:
            if k not in params:
                assert f"{k}={container.args[spec_names[k]]!r}" in cls.__doc__, (class_name, k)
        for name in params:
            if name in info.extras:
                continue   # a value no parameter explains: passed by the caller, tested by test_specs
            # on the first instance where cnndsl takes another value (a stem's 3 channels take no groups=2)
            assert any(_check_parameter(cls, _wrapper(tmp_path, analysis, one), dict(one.args), spec_names, in_name,
                                        name) for one in (info, *info.others)), \
                f"{class_name}: cnndsl refuses every other value of {name}: the class should not take it"
    return src


def _wrapper(tmp_path: Path, analysis, info) -> _Wrapper:
    """The wrapper calling the block of ``info``'s instance, on its input capped at 32×32 where cnndsl
    takes that."""
    container = analysis.graph.containers[info.path]
    wrap = _Wrapper(tmp_path, container.block.span.file, container.block.name, dict(container.args), info.in_shape)
    for shape in dict.fromkeys([_spatial(info.in_shape), info.in_shape]):
        wrap.in_shape = shape
        if wrap.build(wrap.args, shape) is not None:
            break
    return wrap


def test_densenet_bn_size_and_layers_are_not_ignored(tmp_path):
    """The reproducer: DenseLayer took bn_size and DenseBlock took layers, and both were ignored
    (``nn.Conv2d(in_channels, 128, ...)``, six fixed layers)."""
    path = ROOT / "specs" / "densenet121.cnn"
    spec = cnndsl.load(path)
    ns = _load(python_source(cnndsl.analyze(spec), spec=spec))
    wrap = _Wrapper(tmp_path, str(path), "DenseLayer", {}, (64, 8, 8))
    ref = wrap.build({"growth": 32, "bn_size": 8}, (64, 8, 8))
    _same_model(ref, ns["DenseLayer"](64, 32, bn_size=8).eval(), (64, 8, 8), batch=1)
    block = inspect.signature(ns["DenseBlock"].__init__).parameters
    if "layers" in block:
        args = {"layers": 3, "growth": 32}
        ref = _Wrapper(tmp_path, str(path), "DenseBlock", {}, ()).build(args, (64, 8, 8))
        model = ns["DenseBlock"](**({"in_channels": 64} if "in_channels" in block else {}), **args).eval()
        _same_model(ref, model, (64, 8, 8), batch=1)
    else:
        assert "layers=6" in ns["DenseBlock"].__doc__


# ----------------------------------------------------------------------------- random specs

@st.composite
def loop_specs(draw) -> str:
    """Blocks that repeat a DenseNet-like layer (named by a template, or by position) or a random
    block of tests/test_emit_python_random.py, called with random values."""
    k = draw(st.sampled_from([1, 3, 5]))
    named = draw(st.sampled_from(["layer{i + 1}: ", "unit{2 * i}: ", ""]))
    other = draw(st.sampled_from(sorted(BLOCKS)))
    lines = [f"block Grow(g, k = {k}) {{ concat {{ | conv(g, k=k, p=k // 2)  relu }} }}",
             f"block Rep(n, g) {{ {named}Grow(g) x(n){' as i' if '{' in named else ''} }}",
             f"block {other}(out, s = 1) {{ {BLOCKS[other]} }}",
             # a first repetition of another structure (a stride, a projection), as in EfficientNet
             f"block Stack(n, out, s, rate) {{ {other}(out, s=s if i == 0 else 1) x(n) as i }}"]
    n, width, m = draw(st.integers(1, 4)), draw(st.integers(2, 6)), draw(st.integers(1, 3))
    lines.append(f"network Loops(width = {width}) {{\n    input 3x8x8\n    stem: conv(width, k=1)\n"
                 f"    rep: Rep({n}, width)\n    tail: {other}(width * {m}, s={draw(st.integers(1, 2))})\n"
                 f"    stack: Stack({draw(st.integers(1, 3))}, width * {m + 1}, {draw(st.integers(1, 2))}, 0.5)"
                 f"\n    global_avgpool  flatten  fc: linear(3)\n}}")
    return "\n".join(lines) + "\n"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          derandomize=True, database=None)
@given(loop_specs())
def test_random_blocks_and_loops(tmp_path_factory, text):
    """Random specs: the loop class takes its count and growth, and every block argument builds
    cnndsl's block."""
    path = tmp_path_factory.mktemp("spec") / "loops.cnn"
    path.write_text(text)
    src = _check_block_classes(path, path.parent)
    assert "for i in range(n):" in src, src


def test_loop_texts_are_the_specs_arithmetic_only():
    """A loop's texts are the spec's expressions when they are arithmetic over the block's
    parameters (anything else — a call, text, an unknown name — leaves the repeat unrolled), and
    the first repetition's are folded at index 0."""
    from cnndsl.emit.py_loop import at_index, python_text
    from cnndsl.expr import format_expr
    from cnndsl.syntax.parse import parse_expr

    def text(src, names=("sd", "first", "total", "stride", "i")):
        return python_text(parse_expr(src, "<t>"), set(names))

    assert text("sd * (first + i) / (total - 1)") == "sd * (first + i) / (total - 1)"
    assert text("stride if i == 0 else 1") == "stride if i == 0 else 1"
    for refused in ("max(1, i)", "make_divisible(first)", '"a" + "b"', "true", "other * 2", "in.channels // 2"):
        assert text(refused) is None, refused
    for src, folded in (("stride if i == 0 else 1", "stride"), ("sd * (first + i) / total", "sd * first / total"),
                        ("first + 2 * i", "first"), ("(i + 1) * stride", "stride")):
        assert format_expr(at_index(parse_expr(src, "<t>"), "i", 0)) == folded, src


def test_a_repeat_with_a_call_in_its_count_stays_unrolled():
    """``x(max(n, 1))`` is no Python the loop may write: the repeat is unrolled and n is fixed."""
    text = """
block Unit(c) { conv(c, k=3, p=1)  relu }
block Stack(n, c) { Unit(c) x(max(n, 1)) }
network Net { input 3x8x8  stem: conv(4, k=1)  s: Stack(2, 4)  global_avgpool  flatten  fc: linear(2) }
"""
    spec = cnndsl.parse(text)
    src = python_source(cnndsl.analyze(spec), spec=spec)
    assert "for i in range" not in src and "fixed: n=2" in src


def test_unet_mid_is_the_specs_conditional(tmp_path):
    """DoubleConv(out, mid = 0) writes ``mid if mid > 0 else out`` (it was fixed: the expression's
    keywords were read as parameter names), and the network ``base * 2`` as its spec does."""
    src = _check_block_classes(ROOT / "specs" / "unet.cnn", tmp_path)
    assert "mid if mid > 0 else out," in src and "def __init__(self, in_channels: int, out: int, mid: int = 0)" in src
    assert "self.enc2 = DoubleConv(base, base * 2)" in src      # the network's own expression too
