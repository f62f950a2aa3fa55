"""Properties of the formatter on generated specs, with comments and hand layout mixed in.

For a random spec written out, then rearranged the way people write (items joined on one line,
indentation changed) and sprinkled with comments (own-line, trailing, blank lines):

- ``format(parse(t))`` reads back to the same spec (canonical form);
- formatting is idempotent: ``format(parse(format(t))) == format(t)``;
- every comment survives, in the same syntax and across syntaxes (the same multiset of texts).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.canonical import canonical_spec
from cnndsl.syntax.format import format_cnn, format_yaml
from test_format import specs

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WRITE = {"cnn": format_cnn, "yaml": format_yaml}
OTHER = {"cnn": "yaml", "yaml": "cnn"}
# comment texts: printable in both syntaxes, with the characters that could confuse a scanner
words = st.text(st.sampled_from("ab #'\"{}[]|:,x9é×→"), max_size=8).map(str.strip)


def comments_of(text: str, syntax: str) -> list[str]:
    return sorted(c.text for c in cnndsl.parse(text, format=syntax).trivia.comments)


def rearrange(draw, text: str, syntax: str) -> tuple[str, list[str]]:
    """``text`` with lines joined (.cnn), indentation changed (.cnn) and comments added."""
    lines = text.rstrip("\n").split("\n")
    if syntax == "cnn":
        for _ in range(draw(st.integers(0, 4))):
            if len(lines) < 2:
                break
            i = draw(st.integers(0, len(lines) - 2))
            lines[i:i + 2] = [lines[i] + draw(st.sampled_from([" ", "  ", "   "])) + lines[i + 1].lstrip()]
        lines = [l.lstrip() if draw(st.integers(0, 5)) == 0 else l for l in lines]
    out, added = [], []
    for i, line in enumerate(lines):
        if draw(st.integers(0, 6)) == 0:
            out.append("")
        if draw(st.integers(0, 4)) == 0:
            text = f"# o{i} " + draw(words)
            out.append(" " * draw(st.sampled_from([0, 2, 4, 6, 8])) + text)
            added.append(text.rstrip())
        if draw(st.integers(0, 3)) == 0:
            text = f"# t{i} " + draw(words)
            line += " " * draw(st.integers(1, 6)) + text
            added.append(text.rstrip())
        out.append(line)
    if draw(st.booleans()):
        out.append("# the end")
        added.append("# the end")
    return "\n".join(out) + "\n", added


def check(spec, syntax: str, data) -> None:
    text, added = rearrange(data.draw, WRITE[syntax](spec), syntax)
    parsed = cnndsl.parse(text, format=syntax)
    assert canonical_spec(parsed) == canonical_spec(spec), text
    assert comments_of(text, syntax) == sorted(added), text
    once = WRITE[syntax](parsed)
    assert canonical_spec(cnndsl.parse(once, format=syntax)) == canonical_spec(spec), once
    assert comments_of(once, syntax) == sorted(added), f"{text}\n----\n{once}"
    assert WRITE[syntax](cnndsl.parse(once, format=syntax)) == once, f"{text}\n----\n{once}"
    try:
        other = WRITE[OTHER[syntax]](parsed)
    except ValueError:
        return  # a value the other syntax cannot hold (tested in test_format.py)
    assert canonical_spec(cnndsl.parse(other, format=OTHER[syntax])) == canonical_spec(spec), other
    assert comments_of(other, OTHER[syntax]) == sorted(added), f"{text}\n----\n{other}"


@SETTINGS
@given(specs(), st.data())
def test_cnn_with_comments_and_layout(spec, data):
    check(spec, "cnn", data)


@SETTINGS
@given(specs(nested_from=True), st.data())
def test_yaml_with_comments(spec, data):
    check(spec, "yaml", data)


@pytest.mark.parametrize("syntax", ["cnn", "yaml"])
def test_shipped_specs_with_comments_everywhere(syntax):
    """Every line of every shipped spec gets a trailing comment and a comment above it."""
    from pathlib import Path

    for path in sorted(Path(__file__).resolve().parent.parent.glob(f"specs/**/*.{syntax}")):
        lines = path.read_text().rstrip("\n").split("\n")
        text = "\n".join(f"# above {i}\n{l}  # after {i}" if l.strip() else l for i, l in enumerate(lines)) + "\n"
        spec = cnndsl.parse(text, format=syntax)
        once = WRITE[syntax](spec)
        assert comments_of(once, syntax) == comments_of(text, syntax), path
        assert WRITE[syntax](cnndsl.parse(once, format=syntax)) == once, path
        assert canonical_spec(cnndsl.parse(once, format=syntax)) == canonical_spec(spec), path
        other = WRITE[OTHER[syntax]](spec)
        assert comments_of(other, OTHER[syntax]) == comments_of(text, syntax), path


# ----------------------------------------------------------------------------- every output reads back

# identifiers of any length (a YAML key over 1,024 characters needs the explicit `? key` form)
idents = st.one_of(st.sampled_from(["a", "B", "x_1"]), st.integers(1, 1500).map(lambda n: "n" + "x" * n))
anything = st.text(max_size=12)  # any code point: controls, NUL, line breaks, lone surrogates, '#', quotes


@st.composite
def strange_specs(draw):
    """Specs whose strings (arguments, globs, import paths, train keys and values, a backbone's model
    and options, the init source) hold anything."""
    from cnndsl import expr as E
    from cnndsl.ir import Backbone, BlockDef, Import, Init, Kwarg, Layer, NetworkDef, Param, Pattern, Spec

    block = BlockDef(name=draw(idents), params=(Param(name=draw(idents)),),
                     body=(Layer(op=draw(idents), name=draw(idents), args=(E.Str(draw(anything)),),
                                 kwargs=(Kwarg(name=draw(idents), value=E.Str(draw(anything))),)),))
    backbone = Backbone(model=draw(anything), weights=draw(anything), taps=tuple(draw(st.lists(anything, max_size=2))),
                        args=((draw(idents), draw(anything)),))
    net = NetworkDef(name=draw(idents), input=(E.Num(3),), body=(Layer(op=block.name), backbone),
                     freeze=tuple(Pattern(glob=g) for g in draw(st.lists(anything, max_size=2))),
                     init=Init(source=draw(anything)))
    train = draw(st.dictionaries(st.one_of(idents, anything), st.one_of(anything, st.lists(anything, max_size=2)),
                                 max_size=3))
    imports = tuple(Import(path=p) for p in draw(st.lists(anything, max_size=2)))
    return Spec(imports=imports, blocks=(block,), network=net, train=train)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strange_specs())
def test_every_output_reads_back(spec):
    """What a writer writes reads back as the same spec; what it cannot write it refuses with a
    ValueError (then cnndsl fmt reports it), never text that reads back differently or not at all."""
    for syntax, write in WRITE.items():
        try:
            text = write(spec)
        except ValueError as exc:
            assert str(exc)
            continue
        back = cnndsl.parse(text, format=syntax)
        assert canonical_spec(back) == canonical_spec(spec), text
        assert [i.path for i in back.imports] == [i.path for i in spec.imports]
        assert [p.glob for p in back.network.freeze] == [p.glob for p in spec.network.freeze]
        assert back.network.body[1] == spec.network.body[1] and back.network.init == spec.network.init


def test_long_keys_read_back():
    """Issue 6 item 22: format_yaml wrote keys over 1,024 characters that PyYAML cannot read."""
    from cnndsl.ir import BlockDef, Layer, Spec

    long = "k" * 1100
    spec = Spec(blocks=(BlockDef(name="B" + long, body=(Layer(op="relu"),)),),
                train={long: 1, "nested": {long: [1, {long: "x"}]}})
    text = format_yaml(spec)
    assert f"  ? B{long}\n  :\n" in text and f"  ? {long}\n  : 1\n" in text
    back = cnndsl.parse(text, format="yaml")
    assert canonical_spec(back) == canonical_spec(spec) and back.train == spec.train
