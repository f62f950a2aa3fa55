"""Property: whatever text comes in, cnndsl either accepts it or raises CnnError — never anything else.

Arbitrary text, random sequences of the grammar's real tokens (to get past the lexer), mutated
valid networks (to get into binding, expansion and shape inference) and random YAML documents are
fed to ``cnndsl.parse`` (both front ends) and, when parsing succeeds, to ``cnndsl.analyze``.
A RecursionError, lark VisitError, KeyError, TypeError, ZeroDivisionError... is a bug.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl import CnnError, Limits

# Small limits keep the analysis of random networks cheap; they are user errors like any other.
LIMITS = Limits(max_layers=300, max_params=50_000_000, max_repeat=50)

_BASE = settings(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                        HealthCheck.data_too_large])


def fuzz(n: int) -> settings:
    """Bounded, reproducible example counts (derandomized: the same inputs on every run)."""
    return settings(_BASE, max_examples=n)


def run(text: str, fmt: str) -> None:
    """Parse then analyze; only CnnError may escape."""
    try:
        spec = cnndsl.parse(text, format=fmt, filename=f"fuzz.{fmt}")
    except CnnError as exc:
        _check_rendered(exc)
        return
    try:
        cnndsl.analyze(spec, limits=LIMITS)
    except CnnError as exc:
        _check_rendered(exc)


def _check_rendered(exc: CnnError) -> None:
    text = exc.render()  # rendering must not fail either (odd spans, tabs, long lines)
    assert "error" in text and exc.diagnostics


# ----------------------------------------------------------------------------- arbitrary text


@fuzz(500)
@given(st.text())
def test_arbitrary_text_cnn(text):
    run(text, "cnn")


@fuzz(500)
@given(st.text())
def test_arbitrary_text_yaml(text):
    run(text, "yaml")


# ----------------------------------------------------------------------------- grammar tokens

KEYWORDS = ["network", "block", "import", "train", "input", "output", "freeze", "unfreeze", "from",
            "residual", "shortcut", "when", "as", "concat", "add", "multiply", "in", "if", "else",
            "and", "or", "not", "true", "false", "x"]
PUNCT = ["{", "}", "(", ")", "[", "]", ",", ":", "=", ".", "|", "+", "-", "*", "/", "//", "%", "**",
         "==", "!=", "<", "<=", ">", ">="]
NAMES = ["N", "B", "A", "c", "i", "k", "s", "p", "conv", "relu", "linear", "flatten", "maxpool",
         "batchnorm", "dropout", "global_avgpool", "upsample", "dwconv", "channels", "height", "same",
         "max", "min", "int", "make_divisible", "sqrt", "num_classes", "layer1", "x1"]
LITERALS = ["0", "1", "2", "3", "8", "64", "1000", "5000", "0.5", "1.5", "1e9", "3x32x32", "1x8x8",
            "x2", "x(2)", "x0", '"a"', '"*.weight"', "# c\n", "\n"]
TOKEN = st.sampled_from(KEYWORDS + PUNCT + NAMES + LITERALS)


@fuzz(400)
@given(st.lists(TOKEN, max_size=40), st.sampled_from([" ", "\n", ""]))
def test_token_sequences(tokens, sep):
    run(sep.join(tokens), "cnn")


@fuzz(300)
@given(st.lists(TOKEN, max_size=30))
def test_token_sequences_inside_a_network(tokens):
    """The network header is right, so the random part lands in bodies, arguments and expressions."""
    run("network N(c = 8, n = 2) {\n  input 3x16x16\n  " + " ".join(tokens) + "\n}\n", "cnn")


# ----------------------------------------------------------------------------- near-valid networks

INT = st.sampled_from([-1, 0, 1, 2, 3, 4, 7, 16, 33, 1000])
VALUE = st.one_of(INT, st.sampled_from(["0.5", "1.5", "-0.1", "c", "c * 2", "c // 0", "c / 3", "n",
                                        "in.channels", "in.width", "in.features", "same", "zeros",
                                        "[2, 3]", "[0, 1]", "[]", "true", "\"s\"", "undefined",
                                        "2 ** 70", "1e308 * 10", "max()", "make_divisible(c, 3)",
                                        "sqrt(-1)", "(-8) ** 0.5", "int(\"x\")", "[1] < [2]",
                                        "c if n > 1 else 0", "{a: 1}"]))
OPS = ["conv", "dwconv", "conv_transpose", "linear", "maxpool", "avgpool", "adaptive_avgpool",
       "batchnorm", "groupnorm", "layernorm", "dropout", "relu", "leaky_relu", "flatten",
       "global_avgpool", "upsample", "softmax", "identity", "mul", "B", "A", "nosuchop"]
KW = ["k", "s", "p", "d", "g", "out", "kernel", "groups", "dims", "size", "scale", "mode", "bias",
      "c", "stride", "zz"]


@st.composite
def call(draw):
    op = draw(st.sampled_from(OPS))
    args = [str(draw(VALUE)) for _ in range(draw(st.integers(0, 2)))]
    kwargs = [f"{draw(st.sampled_from(KW))}={draw(VALUE)}" for _ in range(draw(st.integers(0, 2)))]
    text = op + (f"({', '.join(args + kwargs)})" if args or kwargs or draw(st.booleans()) else "")
    if draw(st.integers(0, 5)) == 0:
        text = f"{draw(st.sampled_from(['a', 'b', 'c1']))}: " + text
    if draw(st.integers(0, 6)) == 0:
        text += f" x{draw(st.sampled_from(['2', '(n)', '(0)', '(c)', '3 as i']))}"
    if draw(st.integers(0, 8)) == 0:
        text += " when in.channels > 4"
    return text


@st.composite
def body(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 9)) if depth < 2 else 0
        if kind <= 5:
            parts.append(draw(call()))
        elif kind == 6:
            parts.append("{ " + draw(body(depth + 1)) + " }" + draw(st.sampled_from(["", " x2", " x(n)"])))
        elif kind == 7:
            parts.append("residual { " + draw(body(depth + 1)) + " }"
                         + draw(st.sampled_from(["", " shortcut { conv(c, k=1) }",
                                                 " shortcut proj when in.channels != c { conv(c, k=1) }"])))
        elif kind == 8:
            parts.append(draw(st.sampled_from(["concat", "add"])) + " { " + draw(body(depth + 1)) + " | "
                         + draw(body(depth + 1)) + " }")
        else:
            parts.append(draw(st.sampled_from(["concat(a)", "add(a, b)", "concat(input)", "from a",
                                               "multiply(c1)", "concat(a.b)"])))
    return "\n  ".join(parts)


@st.composite
def network(draw):
    shape = draw(st.sampled_from(["3x16x16", "1x8x8", "16", "3x1x1", "(c, 8, 8)", "(0, 4, 4)"]))
    blocks = draw(st.sampled_from([
        "",
        "block B(c, s = 1) { conv(c, k=3, s=s, p=1) relu }\n",
        "block B(c) { A(c) }\nblock A(c) { B(c) }\n",
        "block B(c = in.channels) { residual { conv(c, k=3, p=1) } }\n",
    ]))
    return f"{blocks}network N(c = 8, n = 2) {{\n  input {shape}\n  {draw(body())}\n}}\n"


@fuzz(400)
@given(network())
def test_near_valid_networks(text):
    run(text, "cnn")


@fuzz(150)
@given(network(), st.data())
def test_near_valid_networks_with_damage(text, data):
    """Delete, duplicate or swap a character of a near-valid network."""
    i = data.draw(st.integers(0, max(0, len(text) - 1)))
    how = data.draw(st.sampled_from(["delete", "dup", "insert"]))
    if how == "delete":
        text = text[:i] + text[i + 1:]
    elif how == "dup":
        text = text[:i] + text[i:i + 1] * 2 + text[i + 1:]
    else:
        text = text[:i] + data.draw(st.sampled_from(PUNCT + ["\t", "\x00", "é", '"', "#"])) + text[i:]
    run(text, "cnn")


# ----------------------------------------------------------------------------- YAML documents

YAML_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True),
                        st.sampled_from(["conv", "relu", "flatten", "3x32x32", "c * 2", "8 *", "in.channels",
                                         "concat", "same", "x", "[", "{a: 1}", "linear", "N"]))
YAML_KEYS = st.sampled_from(["network", "blocks", "imports", "train", "name", "params", "input", "layers",
                             "outputs", "conv", "relu", "linear", "out", "k", "p", "repeat", "as", "when",
                             "residual", "shortcut", "parallel", "merge", "group", "from", "concat",
                             "flatten", "B", "nosuch"])
YAML_DOC = st.recursive(YAML_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(YAML_KEYS, inner, max_size=4)), max_leaves=25)


@fuzz(300)
@given(YAML_DOC)
def test_random_yaml_documents(doc):
    run(yaml.safe_dump(doc), "yaml")


@fuzz(300)
@given(st.dictionaries(st.sampled_from(["name", "params", "input", "layers", "outputs", "nosuch"]),
                       YAML_DOC, max_size=5))
def test_random_yaml_networks(net):
    net.setdefault("input", [3, 8, 8])
    run(yaml.safe_dump({"network": net}), "yaml")


# ----------------------------------------------------------------------------- known crashes

# Found by the properties above (they were internal errors once); each must be a CnnError now.
KNOWN_EXPR_CRASHES = [
    "make_divisible(c, 0)",   # ZeroDivisionError from _make_divisible (not caught by _call)
    '[1] < ["a"]',            # TypeError: '<' between int and str (lists compared element-wise)
    "{a: 1} < {a: 2}",        # TypeError: '<' between dict and dict
]


@pytest.mark.parametrize("expr", KNOWN_EXPR_CRASHES + ["(-8) ** 0.5"])
def test_former_expression_crashes_are_user_errors(expr):
    with pytest.raises(cnndsl.CnnError):
        cnndsl.analyze(cnndsl.parse(f"network N(c = 8) {{\n  input 3x8x8\n  conv({expr}, k=1)\n}}\n"))
