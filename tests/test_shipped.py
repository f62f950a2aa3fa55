"""The specs that ship with cnndsl: built and imported by name, listed by `cnndsl specs` and
`cnndsl ops`, installed by a wheel, and every shipped network resizable through `size`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cnndsl
from cnndsl import library
from cnndsl.files import SPEC_SUFFIXES
from cnndsl.canonical import spec_hash
from cnndsl.cli import main
from cnndsl.errors import CnnError
from cnndsl.expr import Env, evaluate

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = [n for n, p in library.catalog().items() if not library.is_library(p)]


def test_catalog_names_every_shipped_spec_once():
    files = [p for p in (ROOT / "specs").rglob("*") if p.suffix in SPEC_SUFFIXES]
    stems = {p.stem for p in files}
    assert set(library.catalog()) == stems
    cnn = [p.stem for p in files if p.suffix == ".cnn"]
    assert len(cnn) == len(set(cnn)), "two shipped .cnn files share a name"
    assert {"resnet18", "mobilenetv2", "inception", "resnet_blocks", "mobilenet_blocks",
            "inception_blocks"} <= stems
    assert library.specs_dir() == ROOT / "specs"


def _size(spec) -> int:
    params = {p.name: p.default for p in spec.network.params}
    assert "size" in params, f"{spec.network.name} has no 'size' parameter"
    return evaluate(params["size"], Env({}))


@pytest.mark.parametrize("name", NETWORKS)
def test_every_shipped_network_builds_at_a_second_size(name):
    """`size` is the input's height and width; the built module (on the meta device: shapes
    only) produces at the second size exactly the shapes the analysis predicts."""
    import torch

    spec = cnndsl.load(name)
    default = _size(spec)
    assert cnndsl.analyze(spec).input_shape[1:] == (default, default)
    second = default * 2 if default < 128 else 128
    a = cnndsl.analyze(spec, size=second)
    assert a.input_shape[1:] == (second, second)
    with torch.device("meta"):
        model = cnndsl.build(a)
        out = model(torch.empty(2, *a.input_shape))
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in outs] == [(2, *s) for s in a.output_shapes]


def test_resnet18_by_name_at_64_from_python_and_the_command_line(capsys):
    import torch

    assert spec_hash(cnndsl.load("resnet18")) == spec_hash(cnndsl.load(ROOT / "specs" / "resnet18.cnn"))
    model = cnndsl.build("resnet18", size=64, num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    assert cnndsl.analyze("resnet18", size=64).layer("layer4.1.bn2").shape == (512, 2, 2)
    assert main(["check", "resnet18", "--set", "size=64"]) == 0
    assert "ok: resnet18: ResNet18, 69 layers, 11,689,512 params, 149M MACs, output 1000" in capsys.readouterr().out


def test_a_file_shadows_a_shipped_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet18").write_text("network Mine {\n    input 3x8x8\n    conv(4, k=1)\n}\n")
    assert cnndsl.load("resnet18").network.name == "Mine"
    assert main(["check", "resnet19"]) == 2
    err = capsys.readouterr().err
    assert "no such file or shipped spec: resnet19" in err and "did you mean 'resnet18'" in err


def test_import_shipped_libraries_by_name(tmp_path):
    spec = tmp_path / "net.cnn"
    spec.write_text('import "resnet_blocks"\nimport "mobilenet_blocks"\nimport "inception_blocks"\n\n'
                    "network Mixed {\n    input 3x32x32\n    stem: BasicConv2d(16, k=3, p=1)\n"
                    "    res: BasicBlock(32, stride=2)\n    inv: InvertedResidual(32)\n"
                    "    mix: Inception(8, 8, 16, 4, 8, 8)\n}\n")
    a = cnndsl.analyze(spec)
    assert a.output_shapes == [(40, 16, 16)]
    assert "res.downsample.0" in {i.name for i in a.layers}
    bad = tmp_path / "bad.cnn"
    bad.write_text('import "resnet_block"\nnetwork B {\n    input 3x8x8\n    BasicBlock(4)\n}\n')
    with pytest.raises(CnnError) as e:
        cnndsl.load(bad)
    text = e.value.render(color=False)
    assert "bad.cnn:1:1: error: cannot import 'resnet_block': no shipped spec has this name" in text
    assert "did you mean 'resnet_blocks'" in text


def test_specs_command_lists_and_prints(capsys):
    assert main(["specs"]) == 0
    out = capsys.readouterr().out
    for name in library.catalog():
        assert f"  {name} " in out
    assert "ResNet18(num_classes=1000, size=224)" in out
    assert "BasicBlock(planes, stride=1), Bottleneck(planes, stride=1, expansion=4)" in out
    assert main(["specs", "resnet18", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(ROOT / "specs" / "resnet18.cnn")
    assert main(["specs", "resnet18"]) == 0
    assert capsys.readouterr().out == (ROOT / "specs" / "resnet18.cnn").read_text()
    assert main(["specs", "resnt18"]) == 2
    assert "did you mean 'resnet18'" in capsys.readouterr().err
    assert main(["ops"]) == 0
    assert 'resnet_blocks      BasicBlock(planes, stride=1)' in capsys.readouterr().out


def _build_wheel(dest: Path) -> Path:
    """A wheel built from a copy of the source tree (no build isolation: offline)."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "cnndsl", src / "cnndsl", ignore=ignore)
    shutil.copytree(ROOT / "specs", src / "specs", ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dest / "dist"), str(src)], check=True, capture_output=True)
    return next((dest / "dist").glob("cnndsl-*.whl"))


def test_a_wheel_ships_the_specs_and_builds_resnet18_by_name(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {"cnndsl/specs/" + p.relative_to(ROOT / "specs").as_posix()
               for p in (ROOT / "specs").rglob("*") if p.suffix in SPEC_SUFFIXES}
    assert shipped <= names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "mine.cnn").write_text('import "resnet_blocks"\n\nnetwork Mine {\n    input 3x32x32\n'
                                   "    layer1: BasicBlock(8, stride=2)\n}\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    script = ("import cnndsl, sys; from cnndsl.cli import main\n"
              f"assert cnndsl.__file__.startswith({str(target)!r}), cnndsl.__file__\n"
              "codes = [main(['check', 'resnet18', '--set', 'size=64']), main(['check', 'mine.cnn', '-q']),\n"
              "         main(['specs', 'resnet18', '--path'])]\n"
              "print(cnndsl.load('resnet18').network.name, cnndsl.analyze('resnet18', size=64).params)\n"
              "sys.exit(max(codes))\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("ok: resnet18: ResNet18, 69 layers, 11,689,512 params")
    assert lines[1].startswith("ok: mine.cnn: Mine")
    assert lines[2] == str(target / "cnndsl" / "specs" / "resnet18.cnn")
    assert lines[3] == "ResNet18 11689512"


def test_a_missing_import_is_suggested_by_its_shipped_name(tmp_path):
    spec = tmp_path / "t.cnn"
    spec.write_text("network T {\n    input 3x32x32\n    InvertedResidual(16)\n}\n")
    with pytest.raises(CnnError) as e:
        cnndsl.analyze(spec)
    assert 'did you forget `import "mobilenet_blocks"`? it defines block InvertedResidual' in e.value.render(color=False)
