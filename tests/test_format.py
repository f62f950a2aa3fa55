"""The formatter (cnndsl.syntax.format) is the inverse of the front ends.

For every shipped spec and for random IR-level specs: ``parse(format_cnn(spec))`` gives back the same
spec (canonical form, and the IR node by node), the same for ``format_yaml`` with the YAML loader,
and formatting is stable: formatting the parse of formatted text reproduces that text.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.canonical import canonical_spec, spec_hash
from cnndsl import expr as E
from cnndsl.ir import (Backbone, BlockDef, From, Group, Init, Kwarg, Layer, Merge, NetworkDef, Parallel, Param,
                       Pattern, Ref, Repeat, Residual, Shortcut, Spec, Split)
from cnndsl.names import is_reserved_module_name
from cnndsl.node import Node
from cnndsl.syntax.format import format_cnn, format_value, format_yaml
from cnndsl.syntax.parse import parse_expr

SPECS = sorted(Path(__file__).resolve().parent.parent.glob("specs/*.[cy]*"))
SPECS = [p for p in SPECS if p.suffix in (".cnn", ".yaml")]

_NOT_COMPARED = ("span", "spans", "input_span", "path", "train_spans", "extent", "trivia")


def struct(x):
    """The IR as nested plain values, spans left out; expressions stay dataclasses (their == skips
    spans), so this compares the AST exactly, not just its canonical text."""
    if isinstance(x, Node):
        return type(x).__name__, {k: struct(getattr(x, k)) for k in type(x).model_fields if k not in _NOT_COMPARED}
    if isinstance(x, tuple):
        return tuple(struct(i) for i in x)
    return x


def roundtrip_cnn(spec: Spec) -> Spec:
    text = format_cnn(spec)
    back = cnndsl.parse(text)
    assert canonical_spec(back) == canonical_spec(spec), text
    assert format_cnn(back) == text, "format_cnn is not stable"
    return back


def roundtrip_yaml(spec: Spec) -> Spec:
    text = format_yaml(spec)
    back = cnndsl.parse(text, format="yaml")
    assert canonical_spec(back) == canonical_spec(spec), text
    assert format_yaml(back) == text, "format_yaml is not stable"
    return back


# ----------------------------------------------------------------------------- shipped specs


def standalone(spec: Spec) -> Spec:
    """A loaded spec without its source facts: formatting writes its imported blocks inline."""
    return spec.model_copy(update={"imports": (), "path": None, "trivia": None})


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_roundtrip_cnn(path):
    spec = standalone(cnndsl.load(path))
    back = roundtrip_cnn(spec)
    assert struct(back)[1]["blocks"] == struct(spec)[1]["blocks"]
    assert struct(back)[1]["network"] == struct(spec)[1]["network"]
    assert back.train == spec.train
    assert spec_hash(back) == spec_hash(spec)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_roundtrip_yaml(path):
    spec = standalone(cnndsl.load(path))
    back = roundtrip_yaml(spec)
    assert struct(back)[1]["network"] == struct(spec)[1]["network"]
    assert back.train == spec.train
    # and across: YAML text → .cnn text is the same as .cnn text of the original
    assert format_cnn(back) == format_cnn(spec)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_formatted_text_loads(path, tmp_path):
    """Formatted next to the original, the text loads (imports and all) as the same spec; with
    ``standalone=True`` it stands alone anywhere (imported blocks written out, no imports)."""
    spec = cnndsl.load(path)
    for write, suffix in ((format_cnn, ".cnn"), (format_yaml, ".yaml")):
        beside = path.parent / f".fmt-test-{path.stem}{suffix}"
        try:
            beside.write_text(write(spec))
            assert canonical_spec(cnndsl.load(beside)) == canonical_spec(spec)
        finally:
            beside.unlink()
        alone = tmp_path / f"out{suffix}"
        alone.write_text(write(spec, standalone=True))
        assert not cnndsl.parse(alone.read_text(), format=suffix[1:]).imports
        assert canonical_spec(cnndsl.load(alone)) == canonical_spec(spec)


LAYOUT = '''block B(c, s = 1) {
    residual { conv(c, k=3, s=s)  batchnorm } shortcut down when s != 1 { conv(c, k=1, s=s) }
    relu
}

network N(w = 8) {
    input 3x32x32
    stem: conv(w, k=3)
    relu
    stage: B(w * 2, s=2 if i == 0 else 1) x2 as i
    mixed: concat { b1: conv(4, k=1) | { maxpool(3, s=1, p=1)  conv(4, k=1) } | }
    gate: multiply { | | global_avgpool  sigmoid }
    up: { upsample(2)  conv(w, 1) } x(n) when not t
    cat: concat(stem, input)
    from mixed
    global_avgpool
    flatten
    linear(10)
    output cat
    freeze "stem.*"
}

train {
    data: synthetic(num_train = 8)
    optimizer: sgd(lr = 0.1)
    augment: [hflip, "not a name", random_crop(4, padding = 2)]
    tags: {a: 1, b: [true, false]}
}
'''


def test_layout():
    """Items the user wrote on one line stay on one line; blank lines between definitions come
    back; a spec with no .cnn layout to keep (read from YAML) gets one item per line."""
    assert format_cnn(cnndsl.parse(LAYOUT)) == LAYOUT
    joined = LAYOUT.replace("stem: conv(w, k=3)\n    relu", "stem: conv(w, k=3)  relu").replace(
        "global_avgpool\n    flatten\n    linear(10)", "global_avgpool  flatten  linear(10)")
    src = joined.replace("\n\n", "\n")
    assert src != joined != LAYOUT
    spec = cnndsl.parse(src)
    assert format_cnn(spec) == joined
    roundtrip_cnn(spec)
    roundtrip_yaml(spec)
    assert format_cnn(cnndsl.parse(format_yaml(spec), format="yaml")) == LAYOUT


def test_long_bodies_break_over_lines():
    body = "  ".join(f"conv({i}, k=3, p=1)" for i in range(6))
    spec = cnndsl.parse(f"network N {{ input 3 features: {{ {body} }} residual {{ {body} }} "
                        f"shortcut {{ {body} }} add {{ {body} | {body} | }} }}")
    text = format_cnn(spec)
    assert "    features: {\n        conv(0, k=3, p=1)\n" in text
    assert "    } shortcut {\n" in text
    assert "    add {\n        conv(0, k=3, p=1)\n" in text and "\n      | conv(0, k=3, p=1)\n" in text
    assert "\n      |\n    }\n" in text
    roundtrip_cnn(spec)
    roundtrip_yaml(spec)


def test_yaml_argument_forms():
    spec = cnndsl.parse('network N { input(3, r) a(1) b([1, 2]) c({k: 1}) d({k: 1}, [2], x=3) e(k=[1]) f '
                        'g: f h(s="same") }')
    text = format_yaml(spec)
    for line in ("- {a: 1}", "- {b: [[1, 2]]}", "- {c: ['{k: 1}']}", "- {d: ['{k: 1}', [2], {x: 3}]}",
                 "- {e: {k: [1]}}", "- f", "- {name: g, f: null}", """- {h: {s: '"same"'}}"""):
        assert line in text, text
    back = roundtrip_yaml(spec)
    assert struct(back)[1]["network"] == struct(spec)[1]["network"]


def test_train_values():
    train = {"s": "a b", "kw": "not", "t": "true", "n": "sgd", "q": 'x"\\y', "i": -3, "f": -0.5, "big": 1e300,
             "call": {"type": "sgd", "args": [1], "lr": 0.1},
             "fn": {"type": "max", "args": [1, 2]},            # max(...) would be evaluated: a mapping
             "noargs": {"type": "adam", "args": []},            # args: [] is not what adam() gives
             "nested": {"type": "x", "y": {"type": "z"}}, "long": [{"k": i, "v": "w" * 10} for i in range(9)]}
    spec = Spec(network=None, train=train)
    back = roundtrip_cnn(spec)
    assert back.train == train
    text = format_cnn(spec)
    assert 'kw: "not"' in text and 't: "true"' in text and "n: sgd\n" in text
    assert "call: sgd(1, lr = 0.1)" in text and "nested: x(y = z())" in text
    assert "fn: {type: max, args: [1, 2]}" in text
    assert "long: [\n        {k: 0," in text
    assert cnndsl.parse(format_yaml(spec), format="yaml").train == train


@pytest.mark.parametrize("bad", [
    Spec(train={"a": None}),
    Spec(train={"a": math.nan}),
    Spec(train={"a": "two\nlines"}),
    Spec(train={"not-a-name": 1}),
    Spec(blocks=(BlockDef(name="B", body=(Layer(op="residual", args=(E.Num(1),)),)),)),  # a keyword as an op
    Spec(blocks=(BlockDef(name="B", body=(Layer(op="x", args=(E.Str("a\nb"),)),)),)),
])
def test_unwritable_values_raise(bad):
    with pytest.raises(ValueError):
        format_cnn(bad)


def test_from_inside_a_group():
    """`from` is allowed in any list of items, in YAML and in .cnn groups alike."""
    text = "network:\n  input: [3, 8, 8]\n  layers:\n    - {name: x, conv: [4, 3]}\n    - group: [{from: x}, relu]\n"
    spec = cnndsl.parse(text, format="yaml")
    assert isinstance(spec.network.body[1].body[0], From)
    roundtrip_yaml(spec)
    assert canonical_spec(cnndsl.parse(format_cnn(spec))) == canonical_spec(spec)


def test_yaml_writes_what_cnn_cannot():
    spec = Spec(train={"a": None, "b": "two\nlines", "not-a-name": [1]})
    assert cnndsl.parse(format_yaml(spec), format="yaml").train == spec.train
    with pytest.raises(ValueError):
        format_yaml(Spec(blocks=(BlockDef(name="B", body=(Layer(op="group", name="g"),)),)))
    spec = Spec(blocks=(BlockDef(name="B", body=(Layer(op="group"),)),))  # a bare name is a layer
    assert cnndsl.parse(format_yaml(spec), format="yaml") == spec


# ----------------------------------------------------------------------------- expressions

TRICKY = [
    "-(a - b) ** 2", "(-a) ** 2", "-a ** 2", "a ** -b", "a ** b ** c", "(a ** b) ** c", "2 ** -1",
    "a if b else c", "(a if b else c) if d else e", "a if (b if c else d) else e", "a if b else c if d else e",
    "(a if b else c) + 1", "not x and y", "not (x and y)", "(not x) == y", "not x == y", "a or b and c",
    "(a or b) and c", "a - (b - c)", "a - b - c", "a / (b * c)", "a // b % c", "-(-a)", "- -a", "+-a",
    "-(not a)", "a < (b < c)", "[a, (b if c else d), -e]",
    "{k: a if b else c, m: [1, 2.5, 1e-05]}", "f(a, k=b or c)", "make_divisible(32 * w, 8)",
    "in.channels * 2 // g", '"s\\\\t\\"r"', "1e+300", "1.5e-07", "a != b or not c",
]


@pytest.mark.parametrize("text", TRICKY)
def test_format_expr_roundtrip(text):
    e = parse_expr(text, "<t>")
    printed = E.format_expr(e)
    assert parse_expr(printed, "<t>") == e, printed
    assert E.format_expr(parse_expr(printed, "<t>")) == printed


def test_format_expr_left_nested_comparison():
    """Comparisons do not chain in the grammar: a comparison operand is parenthesised on both sides."""
    e = parse_expr("(a == b) == c", "<t>")
    assert parse_expr(E.format_expr(e), "<t>") == e


def test_formatter_parenthesises_left_nested_comparisons():
    spec = cnndsl.parse("network N { input 3 conv((a == b) == c) relu when (a < b) != (c >= d) }")
    text = format_cnn(spec)
    assert "conv((a == b) == c)" in text and "when (a < b) != (c >= d)" in text
    roundtrip_cnn(spec)
    roundtrip_yaml(spec)


def test_negative_literals():
    """Negative numbers come only from YAML/the API; written as the unary minus they read back as."""
    spec = cnndsl.parse("network:\n  input: [3]\n  layers:\n    - {pad: [-1, {value: -2.5}]}\n", format="yaml")
    assert spec.network.body[0].args == (E.Num(-1),)
    roundtrip_cnn(spec)
    roundtrip_yaml(spec)
    assert format_value(-2) == "-2"
    net = NetworkDef(name="N", input=(E.Num(3),),
                     body=(Layer(op="f", args=(E.BinOp("**", E.Num(-2), E.Num(2)),)),))
    assert "f((-2) ** 2)" in format_cnn(Spec(network=net))


# ----------------------------------------------------------------------------- random IR


IDENTS = ["a", "b", "c", "w", "width", "stride", "x1", "n_out", "train", "group", "null", "network", "backbone",
          "init"]
OPS = ["conv", "relu", "batchnorm", "linear", "Block", "mul", "xa", "x1a", "train", "null", "import", "init"]
FUNCS = ["min", "max", "f", "make_divisible", "sgd"]
MERGES = ["concat", "add", "multiply"]

names = st.sampled_from(IDENTS)
# quoted names (issue 9): '-', a leading digit, keywords; computed names (templates)
QUOTED_NAMES = ["block1-0", "1x1", "from", "when", "residual", "shortcut", "x3", "a-"]
TEMPLATES = ["d{i + 1}", "s{a}-0", "{w}", "stage{i}_{j * 2}", 'n{"a" if i else "b"}']
module_names = st.sampled_from([n for n in IDENTS if not is_reserved_module_name(n)] + QUOTED_NAMES)
item_names = st.one_of(module_names, st.sampled_from(TEMPLATES))
# keys of mappings (train section, map expressions) may be words the grammar also uses as keywords
keys = st.sampled_from(IDENTS + ["if", "in", "not", "and", "true", "network", "residual", "when", "input"])
text = st.text(st.characters(blacklist_characters="\n\r\x00\x85\u2028\u2029", blacklist_categories=("Cs",)),
               max_size=8)
floats = st.floats(min_value=0, allow_nan=False, allow_infinity=False)


def unique_pairs(values, max_size=3, names=names):
    return st.lists(st.tuples(names, values), max_size=max_size, unique_by=lambda kv: kv[0]).map(tuple)


leaves = st.one_of(
    st.integers(0, 10**6).map(E.Num), floats.map(E.Num), text.map(E.Str), st.booleans().map(E.Bool),
    names.map(E.Name), st.sampled_from(["channels", "height", "features", "shape"]).map(E.InShape),
)


def _compound(children):
    return st.one_of(
        st.builds(E.BinOp, st.sampled_from(list(E._PREC.keys() - {"if", "not", "neg"})), children, children),
        st.builds(E.Unary, st.sampled_from(["-", "+", "not"]), children),
        st.builds(E.IfExp, children, children, children),
        st.builds(E.Call, st.sampled_from(FUNCS), st.lists(children, max_size=3).map(tuple),
                  unique_pairs(children)),
        st.lists(children, max_size=3).map(tuple).map(E.ListExpr),
        unique_pairs(children, names=keys).map(E.MapExpr),
    )


exprs = st.recursive(leaves, _compound, max_leaves=12)
small_exprs = st.recursive(leaves, _compound, max_leaves=4)  # inside items: keeps examples fast


@st.composite
def refs(draw):
    head = draw(st.sampled_from(IDENTS + ["input"]))
    rest = draw(st.lists(st.one_of(names, st.integers(0, 20).map(str), st.sampled_from(QUOTED_NAMES)), max_size=2))
    return Ref(path=(head, *rest))


@st.composite
def meta(draw, allow_repeat=True):
    out = {}
    if draw(st.booleans()):
        out["name"] = draw(item_names)
    if allow_repeat and draw(st.integers(0, 3)) == 0:
        count = draw(st.one_of(st.integers(0, 12).map(E.Num), small_exprs))
        out["repeat"] = Repeat(count=count, index=draw(st.one_of(st.none(), names)))
    if draw(st.integers(0, 3)) == 0:
        out["when"] = draw(small_exprs)
    return out


@st.composite
def layers(draw):
    return Layer(op=draw(st.sampled_from(OPS)), args=tuple(draw(st.lists(small_exprs, max_size=3))),
                 kwargs=tuple(Kwarg(name=k, value=v) for k, v in draw(unique_pairs(small_exprs))), **draw(meta()))


@st.composite
def merges(draw):
    return Merge(merge=draw(st.sampled_from(MERGES)), refs=tuple(draw(st.lists(refs(), min_size=1, max_size=3))),
                 **draw(meta()))


@st.composite
def splits(draw):
    how = draw(st.sampled_from(["chunk", "split"]))
    m = draw(meta(allow_repeat=False))
    m.pop("name", None)
    return Split(names=tuple(draw(st.lists(module_names, min_size=2, max_size=3, unique=True))), how=how,
                 args=tuple(draw(st.lists(small_exprs, min_size=1, max_size=3))), **m)


# backbone options are plain values: names, dotted names, paths, words the grammar uses, any text
bb_words = st.one_of(st.sampled_from(["resnet18", "timm.convnext_tiny", "pre.cnn", "layer3.1.relu_1", "if", "none",
                                      "true", "x3", "backbone", "init", "DEFAULT", "a.in"]), text)
bb_values = st.one_of(st.integers(-10**6, 10**6), floats, st.booleans(), bb_words)


@st.composite
def backbones(draw):
    cut = draw(st.sampled_from(["", "until", "taps"]))  # the default cut, at one node, or at several
    return Backbone(model=draw(bb_words), weights=draw(st.one_of(st.none(), bb_words)), strict=draw(st.booleans()),
                    until=draw(bb_words) if cut == "until" else None,
                    taps=tuple(draw(st.lists(bb_words, min_size=1, max_size=3))) if cut == "taps" else (),
                    args=draw(unique_pairs(bb_values)), **draw(meta(allow_repeat=False)))


def _items(children):
    bodies = st.lists(children, max_size=4).map(tuple)

    @st.composite
    def group(draw):
        return Group(body=draw(bodies), **draw(meta()))

    @st.composite
    def residual(draw):
        sc = None
        if draw(st.booleans()):
            sc = Shortcut(name=draw(st.one_of(st.none(), module_names)), when=draw(st.one_of(st.none(), small_exprs)),
                          body=draw(bodies))
        return Residual(body=draw(bodies), shortcut=sc, **draw(meta()))

    @st.composite
    def parallel(draw):
        branches = draw(st.lists(st.lists(children, max_size=3).map(tuple), min_size=1, max_size=3))
        return Parallel(merge=draw(st.sampled_from(MERGES)), branches=tuple(branches), **draw(meta()))

    return st.one_of(group(), residual(), parallel())


froms = refs().map(lambda r: From(ref=r))
# .cnn has `from` only as a statement of a block/network body; YAML has it anywhere
items = st.recursive(st.one_of(layers(), merges(), backbones(), splits()), _items, max_leaves=8)
yaml_items = st.recursive(st.one_of(layers(), merges(), froms, backbones(), splits()), _items, max_leaves=8)
params = st.lists(st.tuples(names, st.one_of(st.none(), small_exprs)), max_size=3, unique_by=lambda p: p[0]).map(
    lambda ps: tuple(Param(name=n, default=d) for n, d in ps))

plain = st.recursive(
    st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), text,
              st.sampled_from(IDENTS + ["sgd", "true", "not", "in", "max"])),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(keys, kids, max_size=3),
        st.builds(lambda t, a, kw: {"type": t, **({"args": a} if a else {}), **kw},
                  st.sampled_from(["sgd", "max", "random_crop", "not"]), st.lists(kids, max_size=2),
                  st.dictionaries(names, kids, max_size=2)),
    ),
    max_leaves=8,
)


@st.composite
def specs(draw, nested_from=False):
    bodies = st.lists(yaml_items if nested_from else st.one_of(items, froms), max_size=4).map(tuple)
    blocks = tuple(BlockDef(name=n, params=draw(params), body=draw(bodies))
                   for n in draw(st.lists(st.sampled_from(["Block", "B2", "Stage", "import"]), max_size=2,
                                          unique=True)))
    network = None
    if draw(st.booleans()) or not blocks:
        dims = draw(st.one_of(st.lists(st.integers(1, 300).map(E.Num), min_size=1, max_size=3),
                              st.lists(small_exprs, min_size=1, max_size=3)))
        network = NetworkDef(
            name=draw(st.sampled_from(["Net", "N2", "train"])), params=draw(params), input=tuple(dims),
            body=draw(bodies), outputs=tuple(draw(st.lists(refs(), max_size=2))),
            freeze=tuple(Pattern(glob=g) for g in draw(st.lists(text, max_size=2))),
            unfreeze=tuple(Pattern(glob=g) for g in draw(st.lists(text, max_size=1))),
            init=draw(st.one_of(st.none(), st.builds(Init, source=text, strict=st.booleans()))))
    train = draw(st.one_of(st.none(), st.dictionaries(keys, plain, max_size=4)))
    return Spec(blocks=blocks, network=network, train=train)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(specs())
def test_random_specs_roundtrip_cnn(spec):
    back = roundtrip_cnn(spec)
    assert struct(back) == struct(spec)


@SETTINGS
@given(specs(nested_from=True))
def test_random_specs_roundtrip_yaml(spec):
    back = roundtrip_yaml(spec)
    assert struct(back) == struct(spec)


@settings(max_examples=200, deadline=None)
@given(exprs)
def test_random_expressions_roundtrip(e):
    """The formatter's expression printer: text that parses back to the very same AST."""
    spec = Spec(network=NetworkDef(name="N", input=(e,), body=(Layer(op="f", args=(e,), kwargs=(
        Kwarg(name="k", value=e),), when=e),)))
    back = roundtrip_cnn(spec)
    assert back.network.input == (e,) and back.network.body[0].args == (e,)
