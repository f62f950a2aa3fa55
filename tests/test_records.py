"""The two light-weight value bases that keep ``cnndsl check`` fast behave like what they replaced:
``cnndsl.record.Record`` like ``@dataclass(frozen=True, slots=True)`` (the expression AST, the
receptive-field rules) and ``cnndsl.node.Node`` like the frozen pydantic models of the IR."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from cnndsl import expr as E
from cnndsl.errors import Span
from cnndsl.ir import Group, Layer, Ref, Repeat, Spec
from cnndsl.ops.base import Window
from cnndsl.record import Record, hidden


class Rec(Record):
    a: int
    b: tuple = (1, 2)
    span: object = hidden()


@dataclasses.dataclass(frozen=True, slots=True)
class Dc:
    a: int
    b: tuple = (1, 2)
    span: object = dataclasses.field(default=None, compare=False, repr=False)


@pytest.mark.parametrize("args,kwargs", [((1,), {}), ((1, (3,)), {}), ((), {"a": 2, "span": 5}),
                                         ((float("nan"),), {}), ((1,), {"b": [1]})])
def test_a_record_behaves_like_the_frozen_dataclass(args, kwargs):
    r, d = Rec(*args, **kwargs), Dc(*args, **kwargs)
    assert repr(r).replace("Rec", "Dc") == repr(d)
    assert (r == Rec(*args, **kwargs)) == (d == Dc(*args, **kwargs))
    assert (r == copy.deepcopy(r)) == (d == copy.deepcopy(d))
    if not isinstance(r.b, list):
        assert hash(r) == hash(d)
        assert (pickle.loads(pickle.dumps(r)) == r) == (pickle.loads(pickle.dumps(d)) == d)
    assert r.__match_args__ == d.__match_args__ and r.__slots__ == d.__slots__
    assert r != d and r.__eq__(d) is NotImplemented
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.a = 3
    with pytest.raises(AttributeError):
        r.other = 3
    for bad_args, bad_kwargs in [((), {}), ((1, 2, 3, 4), {}), ((1,), {"a": 1}), ((1,), {"c": 1})]:
        with pytest.raises(TypeError):
            Dc(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            Rec(*bad_args, **bad_kwargs)


def test_expressions_and_rules_compare_without_spans():
    s = Span("f.cnn", 1, 2, 1, 3)
    assert E.Num(1, span=s) == E.Num(1) and hash(E.Name("x", s)) == hash(E.Name("x"))
    assert E.Num(1) != E.Str("1") and repr(E.BinOp("+", E.Num(1), E.Name("x", s), s)) == (
        "BinOp(op='+', left=Num(value=1), right=Name(id='x'))")
    assert Window((3, 3)) == Window(kernel=(3, 3), stride=(1, 1)) and {Window((3, 3)): 1}[Window((3, 3))] == 1


def test_an_ir_node_keeps_the_pydantic_api_the_code_uses():
    s = Span("f.cnn", 1, 1, 1, 5)
    layer = Layer(op="conv", args=[E.Num(64)], span=s, repeat=Repeat(count=E.Num(2), span=s))
    assert layer.args == (E.Num(64),) and isinstance(layer.args, tuple)            # lists become tuples
    assert layer.model_dump(mode="json") == {"name": None, "repeat": {"count": "2", "index": None}, "when": None,
                                             "kind": "layer", "op": "conv", "args": ["64"], "kwargs": []}
    assert layer == Layer(op="conv", args=(E.Num(64),), repeat=Repeat(count=E.Num(2)))   # spans never compared
    assert Group(body=(layer,)) != Group(body=(layer.model_copy(update={"op": "relu", "args": ()}),))
    assert list(Layer.model_fields)[:4] == ["extent", "name", "repeat", "when"]
    assert Layer.model_fields["kind"].default == "layer" and Layer.model_fields["op"].is_required()
    with pytest.raises(TypeError, match="frozen"):
        layer.op = "relu"
    with pytest.raises(TypeError, match="no field 'colour'"):
        Layer(op="conv", colour=1)
    with pytest.raises(TypeError, match="needs the field 'op'"):
        Layer()
    with pytest.raises(Exception, match="position"):                               # a validator ran
        Ref(path=("0",))
    spec = Spec(path="x.cnn", train={"epochs": 2.5, "lr": float("inf")})
    assert spec.model_dump(mode="json", exclude={"imports"}) == {   # what pydantic dumped (inf: null)
        "blocks": [], "network": None, "train": {"epochs": 2.5, "lr": None}}
    assert pickle.loads(pickle.dumps(layer)) == layer and copy.deepcopy(spec) == spec
