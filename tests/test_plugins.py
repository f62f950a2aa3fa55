"""Ops defined in Python (cnndsl.plugins): the CBAM op of tests/plugins/cbam_ops.py, enabled by
--plugin, by cnndsl.load(plugins=...) or as an installed package (its dist-info declares the
entry point), checked against torch; and refused, with a hint naming --plugin, when not enabled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cnndsl
from cnndsl import plugins
from cnndsl.cli import main
from cnndsl.errors import CnnError
from cnndsl.ops import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
MODULE = PLUGINS / "cbam_ops.py"
SPEC = """network Att(c = 32) {
    input 3x24x24
    conv(c, k=3, p=1)  relu
    att: cbam(8, k=5)
    global_avgpool  flatten  linear(10)
}
"""


@pytest.fixture
def registry():
    """Restore the op registry afterwards: plugin ops must not leak into other tests."""
    saved, origins = dict(REGISTRY), dict(plugins._ORIGIN)
    yield
    dict.clear(REGISTRY)
    dict.update(REGISTRY, saved)
    plugins._ORIGIN.clear()
    plugins._ORIGIN.update(origins)
    plugins._SCANNED.clear()


def _run(*args: str, plugin_path: bool = False) -> subprocess.CompletedProcess:
    paths = [str(ROOT)] + ([str(PLUGINS)] if plugin_path else [])
    return subprocess.run([sys.executable, "-m", "cnndsl", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"})


def test_a_spec_alone_cannot_enable_a_plugin(tmp_path):
    spec = tmp_path / "att.cnn"
    spec.write_text(SPEC)
    refused = _run("check", str(spec))
    assert refused.returncode == 2
    assert f"{spec}:4:10: error: unknown op or block 'cbam'" in refused.stderr
    assert "hint: an op defined in Python must be enabled: --plugin MODULE" in refused.stderr
    assert "Traceback" not in refused.stderr
    enabled = _run("check", str(spec), "--plugin", str(MODULE))
    assert enabled.returncode == 0, enabled.stderr
    assert enabled.stdout.startswith(f"ok: {spec}: Att, 6 layers, 1,532 params")
    installed = _run("check", str(spec), plugin_path=True)   # the dist-info's entry point, no flag
    assert installed.returncode == 0, installed.stderr
    listed = _run("ops", plugin_path=True)
    assert "cbam               convolutional block attention (channel, then spatial)  " \
           "[plugin: package cbam-ops 0.1]" in listed.stdout


def test_cbam_against_torch(registry):
    import torch

    spec = cnndsl.load(SPEC, plugins=[str(MODULE)])
    a = cnndsl.analyze(spec)
    att = a.layer("att")
    assert att.shape == (32, 24, 24)
    model = cnndsl.build(a)
    assert sum(p.numel() for p in model.att.parameters()) == att.cost.params == 2 * 32 * 4 + 2 * 25
    assert sum(p.numel() for p in model.parameters()) == a.params
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == a.state_dict_shapes()
    x = torch.randn(2, 3, 24, 24, requires_grad=True)
    seen = {}
    model.att.register_forward_hook(lambda m, i, o: seen.setdefault("att", o))
    assert model(x).shape == (2, 10)
    assert tuple(seen["att"].shape[1:]) == att.shape
    # the receptive field: a 5×5 window, plus the whole map through the channel gate ("context")
    assert att.rf is not None and att.rf.context == "att" and att.rf.size == (7, 7)
    seen["att"][0, :, 12, 12].sum().backward()
    assert bool((x.grad[0].abs().sum(0) > 0).all())   # every input position reaches it


def test_plugin_module_by_name_and_cli_errors(registry, monkeypatch, capsys, tmp_path):
    monkeypatch.syspath_prepend(str(PLUGINS))
    assert "cbam" not in REGISTRY and REGISTRY.get("cbam") is not None   # loaded from the dist-info's entry point
    assert "cbam" in REGISTRY
    assert plugins.origin("cbam") == "package cbam-ops 0.1"
    assert plugins.enable(["cbam_ops"]) == []   # the same class again: nothing new, no clash
    assert main(["check", "nosuch.cnn", "--plugin", "no_such_plugin"]) == 2
    err = capsys.readouterr().err
    assert "error: --plugin no_such_plugin: cannot import it: No module named 'no_such_plugin'" in err
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('oops')\n")
    with pytest.raises(CnnError, match=r"plugins .*broken.py: importing it failed: RuntimeError: oops"):
        cnndsl.load(SPEC, plugins=[str(broken)])


def test_register_refuses_clashes_and_non_ops(registry):
    from cnndsl.plugins import Op, register

    class Conv(Op):
        name = "conv"

    with pytest.raises(CnnError, match="plugin op 'conv' .* clashes with a built-in op"):
        register(Conv)
    with pytest.raises(CnnError, match="is not a subclass of cnndsl.plugins.Op"):
        register(dict)

    class Bad(Op):
        name = "my-op"

    with pytest.raises(CnnError, match="op name"):
        register(Bad)
