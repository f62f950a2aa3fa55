"""``cnndsl export``: every format is read back by its own runtime (onnxruntime, torch.export.load,
torch.jit.load, safetensors + a fresh build) and compared with the PyTorch network at batch sizes
other than the traced one; weights come from checkpoints, run directories or safetensors files;
bad input is a diagnostic with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl.canonical import spec_hash
from cnndsl.export.core import export_network
from cnndsl.export.weights import compare_state, load_safetensors, mismatch_table, save_safetensors

# two outputs, a residual, batchnorm in 2-D and 1-D, a network parameter
TWO_OUT = """\
network TwoOut(num_classes = 5) {
    input 3x12x12
    stem: conv(8, k=3, p=1) batchnorm relu
    res: residual { conv(8, k=3, p=1) batchnorm }
    pool: maxpool(2)
    side: conv(4, k=1)
    from pool
    flatten
    fc: linear(16) batchnorm relu
    head: linear(num_classes)
    output side, head
}
"""


def _spec(tmp_path: Path, text: str = TWO_OUT, name: str = "two_out.cnn") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _trained(spec: Path, seed: int = 7, **params) -> torch.nn.Module:
    """A network with non-default weights and batchnorm statistics (as after training)."""
    torch.manual_seed(seed)
    model = cnndsl.build(cnndsl.load(spec), **params)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, *model.input_shape))
    return model.eval()


def _reload(fmt: str, path: Path, spec: Path):
    """Read an exported file back with the format's own runtime → a function of a batch."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input"]
        assert isinstance(session.get_inputs()[0].shape[0], str)  # a symbolic (dynamic) batch dimension
        assert [o.name for o in session.get_outputs()] == ["side", "head"]
        return lambda x: [torch.from_numpy(y) for y in session.run(None, {"input": x.numpy()})]
    if fmt == "pt2":
        module = torch.export.load(str(path)).module()
        return lambda x: list(module(x))
    if fmt == "torchscript":
        module = torch.jit.load(str(path))
        return lambda x: list(module(x))
    module = load_safetensors(cnndsl.build(cnndsl.load(spec)), path).eval()
    return lambda x: list(module(x))


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript", "safetensors"])
def test_export_round_trip_two_outputs(tmp_path, fmt):
    spec = _spec(tmp_path)
    model = _trained(spec)
    ckpt = tmp_path / "weights.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    out = tmp_path / f"net.{fmt}"
    res = export_network(cnndsl.load(spec), fmt, str(out), checkpoint=ckpt)
    assert res.path == out and out.is_file() and [p.name for p in res.files] == [out.name]
    assert [n for n, _ in res.outputs] == ["side", "head"] and res.outputs[1][1] == (5,)
    assert [b for b, _ in res.verified] == [1, 3]
    run = _reload(fmt, out, spec)
    for batch in (1, 5):
        x = torch.randn(batch, 3, 12, 12)
        with torch.no_grad():
            want = model(x)
        got = run(x)
        assert [tuple(g.shape) for g in got] == [(batch, 4, 6, 6), (batch, 5)]
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
    assert not list(tmp_path.glob(".cnndsl-export-*"))  # the staging folder is gone


def test_export_cli_from_run_dir_uses_its_parameters(tmp_path, cli):
    """A run directory: weights from last.pt, the network parameters the run was trained with."""
    spec = _spec(tmp_path)
    model = _trained(spec, num_classes=3)
    run = tmp_path / "runs" / "two_out" / "t0"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"model": model.state_dict(), "spec_hash": spec_hash(cnndsl.load(spec))}, run / "checkpoints" / "last.pt")
    (run / "data.json").write_text(json.dumps({"params": {"num_classes": 3}}))
    out = tmp_path / "two_out.pt2"
    rc, stdout, err = cli("export", str(spec), "--checkpoint", str(run), "-o", str(out))  # format from the suffix
    assert rc == 0, err
    assert "network parameters recorded with the weights: num_classes=3" in err
    assert f"wrote {out}: pt2" in stdout and "→ 'side' N×4×6×6, 'head' N×3" in stdout
    assert "verified with torch" in stdout
    x = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(torch.export.load(str(out)).module()(x)[1], model(x)[1])


def test_export_without_checkpoint_says_weights_are_random(tmp_path, cli, monkeypatch):
    spec = _spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = cli("export", str(spec), "--format", "safetensors")
    assert rc == 0, err
    assert "no --checkpoint: the weights are randomly initialised (seed 0)" in err
    from safetensors import safe_open

    with safe_open(str(tmp_path / "two_out.safetensors"), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(cnndsl.build(cnndsl.load(spec)).state_dict())
    assert meta["network"] == "TwoOut" and json.loads(meta["params"]) == {"num_classes": 5}
    assert meta["weights"] == "random-init" and meta["spec"] == "two_out.cnn"


def test_safetensors_weights_carry_their_parameters(tmp_path):
    """Export from a .safetensors file: its recorded parameters build the matching network."""
    spec = _spec(tmp_path)
    model = _trained(spec, num_classes=2)
    weights = tmp_path / "w.safetensors"
    save_safetensors(model, weights, {"params": json.dumps({"num_classes": 2})})
    res = export_network(cnndsl.load(spec), "torchscript", str(tmp_path / "m.torchscript"), checkpoint=weights)
    assert res.outputs[1][1] == (2,)


def test_mismatch_table_names_each_key():
    rows = compare_state({"a.weight": (4, 3), "a.bias": (4,), "b.weight": (2, 2)},
                         {"a.weight": (4, 5), "a.bias": (4,), "c.weight": (1,)})
    assert [(r.kind, r.key) for r in rows] == [("missing", "b.weight"), ("shape", "a.weight"),
                                               ("unexpected", "c.weight")]
    table = mismatch_table(rows).splitlines()
    assert table[0].split() == ["key", "model", "weights"]
    assert table[2].split() == ["shape", "a.weight", "4×3", "4×5"]


def test_load_safetensors_is_strict(tmp_path):
    spec = _spec(tmp_path)
    small = tmp_path / "small.safetensors"
    save_safetensors(cnndsl.build(cnndsl.load(spec), num_classes=3), small)
    with pytest.raises(cnndsl.CnnError) as exc:
        load_safetensors(cnndsl.build(cnndsl.load(spec)), small)
    text = exc.value.render()
    assert "do not match the network (2 mis-shaped)" in text
    assert "head.weight" in text and "5×16" in text and "3×16" in text
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(cnndsl.CnnError, match="cannot read safetensors file"):
        load_safetensors(cnndsl.build(cnndsl.load(spec)), corrupt)


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("corrupt", "cannot load checkpoint"),
    ("other-network", "do not match the network (2 mis-shaped)"),
])
def test_bad_checkpoint_is_a_diagnostic(tmp_path, cli, case, message):
    spec = _spec(tmp_path)
    ckpt = tmp_path / "c.pt"
    if case == "corrupt":
        ckpt.write_bytes(b"PK\x03\x04 truncated")
    elif case == "other-network":
        torch.save(cnndsl.build(cnndsl.load(spec), num_classes=7).state_dict(), ckpt)
    rc, stdout, err = cli("export", str(spec), "--format", "pt2", "--checkpoint", str(ckpt),
                          "-o", str(tmp_path / "x.pt2"))
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.pt2").exists()


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx", "-o", "{tmp}"], "is a directory"),
    (["-o", "{tmp}/nowhere/x.onnx"], "the folder '{tmp}/nowhere' does not exist"),
    (["--format", "pt2", "-o", "{tmp}/x.onnx"], "has the suffix of the onnx format, but --format is pt2"),
    (["-o", "{tmp}/x.bin"], "--format is required"),
])
def test_output_path_problems(tmp_path, cli, args, message):
    spec = _spec(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc, stdout, err = cli("export", str(spec), *args)
    assert rc == 2 and message.replace("{tmp}", str(tmp_path)) in err and "Traceback" not in err


def test_onnx_unsupported_op_names_layer_op_and_format(tmp_path, cli):
    """Adaptive max pooling to a size that does not divide the input has no ONNX equivalent."""
    spec = _spec(tmp_path, "network Bad {\n    input 4x12x12\n    c: conv(4, k=1)\n    s: {\n        relu\n"
                           "        pool: adaptive_maxpool(5)\n    }\n    flatten\n    fc: linear(3)\n}\n", "bad.cnn")
    out = tmp_path / "bad.onnx"
    rc, stdout, err = cli("export", str(spec), "-o", str(out))
    assert rc == 2 and "Traceback" not in err
    assert (f"{spec}:6:15: error: cannot export to onnx: layer 's.pool' (adaptive_maxpool(5)) uses "
            "aten.adaptive_max_pool2d, which the ONNX exporter cannot express") in err
    assert "hint: this layer exports as pt2 and torchscript" in err
    assert not out.exists() and not list(tmp_path.glob(".cnndsl-export-*"))


def test_exporter_failure_found_by_probing_layers(tmp_path, monkeypatch):
    """An exporter error that names no op: the layers are exported one by one to find the culprit."""
    from torch import nn

    from cnndsl.ops import REGISTRY

    class DataDependent(nn.Module):  # branching on a tensor's value: torch.export refuses it
        def forward(self, x):
            return x if x.sum() > 0 else -x

    monkeypatch.setattr(REGISTRY["tanh"], "build", lambda self, ins, out: DataDependent())
    spec = _spec(tmp_path, "network N {\n    input 2x4x4\n    a: conv(2, k=1)\n    odd: tanh\n    relu\n}\n", "n.cnn")
    with pytest.raises(cnndsl.CnnError) as exc:
        export_network(cnndsl.load(spec), "pt2", str(tmp_path / "n.pt2"))
    d = exc.value.diagnostics[0]
    assert d.message == "cannot export to pt2: the torch.export exporter fails on layer 'odd' (tanh())"
    assert (d.span.line, d.span.col) == (4, 10) and "torchscript" in d.hint
