"""The ``cnndsl`` command line: commands, output formats, exit codes and what it imports.

Most tests call ``cnndsl.cli.main`` in-process (fast); a few run a real subprocess where only a
subprocess can tell (exit status of the program, tracebacks printed by Python, sys.modules).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnndsl.canonical import canonical_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

SIMPLE = str(SPECS / "simple_cnn.cnn")
SIMPLE_LAYERS = ["conv1", "conv2", "conv3", "fc1", "fc2"]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnndsl", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


# ----------------------------------------------------------------------------- check


def test_check_ok(cli):
    rc, out, err = cli("check", SIMPLE)
    assert rc == 0
    assert out.startswith("ok")
    assert "SimpleCNN" in out and "620,362 params" in out and "output 10" in out


def test_check_quiet_hides_warnings(cli):
    rc, out, err = cli("check", SIMPLE, "-q")
    assert rc == 0 and "warning" not in err


def test_check_yaml_twin(cli):
    rc, out, _ = cli("check", str(SPECS / "simple_cnn.yaml"))
    assert rc == 0 and "620,362 params" in out


# ----------------------------------------------------------------------------- compile --summary


def test_compile_summary_text(cli):
    rc, out, _ = cli("compile", SIMPLE, "--summary")
    assert rc == 0
    for name in SIMPLE_LAYERS:
        assert name in out
    assert "620,362" in out
    assert "params: 620,362 (trainable 620,362, frozen 0)" in out


def test_compile_summary_json(cli):
    rc, out, err = cli("compile", SIMPLE, "--format", "json")
    assert rc == 0
    data = json.loads(out)  # nothing but the JSON on stdout (warnings are folded in)
    assert {"network", "input", "layers", "totals", "warnings"} <= set(data)
    assert data["network"] == "SimpleCNN" and data["input"] == [3, 32, 32]
    assert data["totals"]["params"] == 620_362
    assert [l["name"] for l in data["layers"] if not l["name"].isdigit()] == SIMPLE_LAYERS
    for layer in data["layers"]:
        assert {"name", "op", "output_shape", "params", "macs", "rf"} <= set(layer)
        assert {"size", "stride", "start"} <= set(layer["rf"])
    assert sum(l["params"] for l in data["layers"]) == 620_362
    assert data["layers"][-1]["output_shape"] == [10]
    assert isinstance(data["warnings"], list)


def test_compile_summary_markdown(cli):
    rc, out, _ = cli("compile", SIMPLE, "--format", "markdown")
    assert rc == 0
    assert out.startswith("### SimpleCNN")
    assert "| name | op | output | params |" in out
    assert "| `fc2` | linear | 10 | 2,570 |" in out
    assert "620,362" in out


def test_compile_builds_and_prints_the_module(cli):
    rc, out, _ = cli("compile", SIMPLE)
    assert rc == 0
    assert "(conv1): Conv2d(3, 32, kernel_size=(3, 3)" in out
    assert "SimpleCNN: 620,362 parameters" in out


def test_compile_graph_prints_one_line_per_node(cli):
    rc, out, _ = cli("compile", str(SPECS / "resnet18.cnn"), "--graph")
    assert rc == 0
    assert "%layer1.0.conv1 : 64×56×56 = conv(64, 3, padding=1, bias=False)(%maxpool)" in out
    assert "%layer2.0.add : 128×28×28 = add()(%layer2.0.bn2, %layer2.0.downsample.1)" in out
    assert out.rstrip().endswith("return %fc")


def test_compile_torchinfo_cross_checks_the_counts(cli):
    rc, out, _ = cli("compile", SIMPLE, "--torchinfo")
    assert rc == 0
    assert "Total params: 620,362" in out                      # torchinfo's own table
    assert "cross-check: cnndsl counts 620,362 parameters, torchinfo 620,362 — match" in out


def test_set_changes_the_output_shape(cli):
    rc, out, _ = cli("compile", SIMPLE, "--format", "json", "--set", "num_classes=5")
    assert rc == 0
    data = json.loads(out)
    assert data["layers"][-1]["output_shape"] == [5]
    assert data["totals"]["params"] == 620_362 - 5 * 257
    rc, out, _ = cli("check", SIMPLE, "--set", "num_classes=5")
    assert rc == 0 and "output 5" in out


@pytest.mark.parametrize("args, fragment", [
    (["--set", "num_clases=5"], "did you mean 'num_classes'"),
    (["--set", "num_classes"], "--set expects NAME=VALUE"),
    (["--set", "num_classes=("], "unexpected end of file"),
    (["--set", "num_classes=0"], "must be ≥ 1"),
    (["--max-params", "1000"], "parameter budget"),
])
def test_bad_command_line_values_exit_2(cli, args, fragment):
    rc, out, err = cli("check", SIMPLE, *args)
    assert rc == 2 and fragment in err and "Traceback" not in err
    assert "hint:" in err


def test_ops_lists_the_ops(cli):
    rc, out, _ = cli("ops")
    assert rc == 0 and "conv" in out and "linear" in out


# ----------------------------------------------------------------------------- real processes


def test_user_error_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.cnn"
    bad.write_text("network N {\n    input 3x8x8\n    conv(8 k=3)\n}\n")
    r = run_cli("check", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{bad}:3:12: error: unexpected name 'k'" in r.stderr
    assert "^" in r.stderr and "hint:" in r.stderr
    assert r.stdout == ""


def test_yaml_error_and_missing_file_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("network:\n  input: 3x8x8\n  input: 3x8x8\n")
    r = run_cli("check", str(bad))
    assert r.returncode == 2 and "duplicate key" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("check", str(tmp_path / "missing.cnn"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_debug_shows_a_traceback_for_a_user_error(tmp_path):
    bad = tmp_path / "bad.cnn"
    bad.write_text("network N {\n    input 3x8x8\n    rellu\n}\n")
    r = run_cli("check", str(bad), "--debug")
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "CnnError" in r.stderr and "rellu" in r.stderr


NO_TORCH = ("import sys, cnndsl.cli\n"
            "try:\n"
            "    cnndsl.cli.main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
            "print('no torch')\n")


@pytest.mark.parametrize("argv", [["--help"], ["check", "specs/simple_cnn.cnn"], ["check", "specs/simple_cnn.yaml"],
                                  ["compile", "specs/simple_cnn.cnn", "--summary"]],
                         ids=["help", "check", "check-yaml", "compile-summary"])
def test_commands_that_do_not_import_torch(argv):
    r = subprocess.run([sys.executable, "-c", NO_TORCH.format(argv=argv)], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "no torch" in r.stdout


# ----------------------------------------------------------------------------- emit / fmt


def test_compile_emit_python_writes_standalone_source(cli, tmp_path):
    out = tmp_path / "model.py"
    rc, _, err = cli("compile", str(SPECS / "resnet18.cnn"), "--emit", "python", "-o", str(out))
    assert rc == 0 and "wrote" in err
    text = out.read_text()
    assert "class ResNet18(nn.Module)" in text
    assert "import cnndsl" not in text and "from cnndsl" not in text      # standalone: torch only
    compile(text, str(out), "exec")          # valid Python


def test_fmt_converts_between_syntaxes(cli, tmp_path):
    rc, out, _ = cli("fmt", str(SPECS / "simple_cnn.yaml"), "--to", "cnn")
    assert rc == 0 and "\nnetwork SimpleCNN(num_classes = 10, size = 32) {\n" in out
    assert out.startswith("# the tutorial's SimpleCNN")           # comments are carried across
    converted = tmp_path / "simple.cnn"
    converted.write_text(out)
    import cnndsl

    assert canonical_spec(cnndsl.load(converted)) == canonical_spec(cnndsl.load(SPECS / "simple_cnn.cnn"))
    rc, _, err = cli("fmt", str(converted), "--check")
    assert rc == 0 and "1 file already formatted" in err


def test_fmt_check_reports_unformatted_files(cli, tmp_path):
    spec = tmp_path / "spec.cnn"
    spec.write_text(Path(SIMPLE).read_text().replace("conv(32, k=3, p=1)", "conv(32,k=3,p=1)"))
    rc, _, err = cli("fmt", str(spec), "--check")
    assert rc == 1 and f"would reformat {spec}" in err and "1 file would be reformatted" in err


def test_train_honours_the_parameter_budget(cli):
    rc, _, err = cli("train", str(SPECS / "mnist5k.cnn"), "--max-params", "100", "--device", "cpu")
    assert rc == 2 and "parameter budget" in err and "the budget is 100" in err
