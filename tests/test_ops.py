"""Every registered op, checked from its ``example`` against ground truth nobody here wrote: its
argument schema, the shapes torch produces, ``sum(p.numel())`` and the state_dict, the receptive
field measured from gradients of the built module, ``--emit python``, and its row in
docs/language.md. A new op without an example fails here; so does one whose rules disagree with
its module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import cnndsl  # noqa: E402
from cnndsl.layout import is_standard, to_standard  # noqa: E402
from cnndsl.ops import REGISTRY  # noqa: E402
from cnndsl.ops.help import describe, markdown  # noqa: E402
from test_emit_python import _check as check_emitted_python  # noqa: E402
from test_receptive_field import check_fields, measured_fields  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"
OPS = sorted(REGISTRY)

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def example_spec(name: str) -> str:
    """A network of the op's example on its example input. For measuring, the output is brought
    back to a C×H×W map a hook can see: a permuted one permuted back, a flattened one reshaped
    back, a bare parameter (``layer_scale``) followed by ``identity``."""
    cls = REGISTRY[name]
    layers, shape = cls.example, cls.example_input
    probe = cnndsl.analyze(f"network Probe {{ input ({', '.join(map(str, shape))})  {layers} }}")
    out, last = probe.output_shapes[0], probe.layers[-1]
    back = to_standard(out)
    if back is not None and not is_standard(out):
        layers += f"  permute({', '.join(map(str, back))})"
    elif len(out) == 1 and len(shape) == 3 and last.rf is not None and not last.rf.global_:
        layers += f"  reshape({', '.join(map(str, shape))})"
    elif last.node.op.bare_parameter:
        layers += "  identity"
    return f"network Example {{\n    input ({', '.join(map(str, shape))})\n    {layers}\n}}\n"


@pytest.mark.parametrize("name", OPS)
def test_every_op_declares_an_example_using_it(name):
    cls = REGISTRY[name]
    assert cls.example, f"op {name} has no example"
    analysis = cnndsl.analyze(example_spec(name))
    assert name in {l.node.kind for l in analysis.layers}
    assert cls.summary and describe(cls)


@pytest.mark.parametrize("name", OPS)
def test_schema_validates_and_refuses_unknown_arguments(name):
    cls = REGISTRY[name]
    schema = cls.schema().model_json_schema()
    assert set(schema.get("properties", {})) == set(cls.model_fields)
    with pytest.raises(cnndsl.CnnError, match="no_such_argument"):
        cnndsl.analyze(f"network N {{ input 8x6x6  {name}(no_such_argument=1) }}")


@pytest.mark.parametrize("name", OPS)
def test_shapes_params_and_state_dict_match_torch(name):
    analysis = cnndsl.analyze(example_spec(name))
    torch.manual_seed(0)
    model = cnndsl.build(analysis).eval()
    seen: dict[str, tuple[int, ...]] = {}
    for info in analysis.layers:
        if info.node.registered and not info.node.op.bare_parameter:
            model.get_submodule(info.name).register_forward_hook(
                lambda m, i, o, n=info.name: seen.__setitem__(n, tuple(o.shape[1:])))
    with torch.no_grad():
        out = model(torch.randn(2, *analysis.input_shape))
    assert tuple(out.shape[1:]) == tuple(analysis.output_shapes[0])
    for info in analysis.layers:
        if info.name in seen:
            assert seen[info.name] == tuple(info.shape), info.name
    assert analysis.params == sum(p.numel() for p in model.parameters())
    assert analysis.state_dict_shapes() == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _spatial(info) -> bool:
    return info.node.registered and not info.node.op.bare_parameter and len(info.shape) == 3 \
        and is_standard(info.shape) and info.rf is not None and not info.rf.lost


def _gradient_reach(model: torch.nn.Module, layer: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Which input pixels the centre unit of ``layer``'s output depends on, in the model as built
    (normalisations keep their statistics): a boolean H×W map."""
    model = model.double().eval()
    x = torch.randn(1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    seen = {}
    hook = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.__setitem__("out", o))
    model(x)
    hook.remove()
    o = seen["out"]
    (g,) = torch.autograd.grad(o[0, :, o.shape[2] // 2, o.shape[3] // 2].sum(), x)
    return g[0].abs().sum(0) > 0


@pytest.mark.parametrize("name", OPS)
def test_receptive_field_matches_the_gradients_of_the_built_module(name):
    """Local fields equal the extent of the input gradient; global ones, and maps given context by
    a normalisation's statistics, depend on the whole input."""
    analysis = cnndsl.analyze(example_spec(name))
    if len(analysis.input_shape) != 3:
        assert all(l.rf is None or l.rf.global_ for l in analysis.layers if len(l.shape) == 3)
        return
    local = [l.name for l in analysis.layers if _spatial(l) and not l.rf.global_]
    whole = [l.name for l in analysis.layers if _spatial(l) and l.rf.global_]
    context = [l.name for l in analysis.layers if _spatial(l) and l.rf.context and not l.rf.global_]
    assert local or whole, "the example has no C×H×W layer to measure"
    if local:
        check_fields(analysis, local, context_from_pools=False)
    h, w = analysis.input_shape[1:]
    for layer, (rows, cols, _) in measured_fields(analysis, whole, cut_global=False).items():
        assert (rows, cols) == ((0, h - 1), (0, w - 1)), layer
    torch.manual_seed(0)
    model = cnndsl.build(analysis)
    for layer in context:
        assert _gradient_reach(model, layer, analysis.input_shape).all(), layer


@pytest.mark.parametrize("name", OPS)
def test_emit_python_reproduces_the_example(name):
    check_emitted_python(cnndsl.analyze(example_spec(name)))


LOST = {
    "reshape to other axes": "reshape(6, 8, 6)",
    "linear along H": "permute(0, 1, 3, 2)  linear(5)",
    "reshape then a conv": "reshape(6, 8, 6)  conv(4, k=3)",
}


@pytest.mark.parametrize("layers", LOST.values(), ids=list(LOST))
def test_ops_that_destroy_spatial_structure_say_so(layers, cli, tmp_path):
    spec = tmp_path / "lost.cnn"
    spec.write_text(f"network Lost {{ input 8x6x6  conv(8, k=3, p=1)  {layers} }}\n")
    analysis = cnndsl.analyze(spec)
    assert analysis.final_rf.lost and analysis.final_rf.text() == "n/a"
    assert analysis.final_rf.as_json()["size"] is None
    rc, out, _ = cli("compile", str(spec), "--summary")
    assert rc == 0 and "receptive field: n/a: spatial structure lost at" in out


def test_flatten_and_reshape_back_keep_the_field():
    """The SE-with-linear pattern: a vector reshaped to the C×1×1 it came from stays global, and a
    map flattened and reshaped back keeps its local field."""
    a = cnndsl.analyze("network N { input 8x6x6  c: conv(8, k=3, p=1)  flatten  back: reshape(8, 6, 6) "
                       "d: conv(8, k=3, p=1) }")
    assert not a.final_rf.lost and a.layer("back").rf.size == (3, 3) and a.layer("d").rf.size == (5, 5)
    check_fields(a, ["c", "d"])


def test_docs_table_is_generated_and_lists_every_op(cli):
    text = DOC.read_text(encoding="utf-8")
    table = markdown()
    assert table in text, "docs/language.md's op table is stale: paste `cnndsl ops --markdown`"
    rows = re.findall(r"^\| `([^|]+)` \|", table, flags=re.M)
    listed = {n.strip("` ") for row in rows for n in row.split(",")}
    assert listed == set(REGISTRY)
    rc, out, _ = cli("ops", "--markdown")
    assert rc == 0 and out.strip() == table
    rc, out, _ = cli("ops")
    assert rc == 0 and all(re.search(rf"\b{re.escape(n)}\b", out) for n in REGISTRY if n not in ("add", "concat", "multiply"))
