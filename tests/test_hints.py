"""Hints that point the right way (issue 7, item 3), and `cnndsl ops NAME`."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("arg, fix", [("bias=False", "bias=false"), ("bias=True", "bias=true")])
def test_python_booleans_get_the_cnn_spelling(cli, tmp_path, arg, fix):
    path = _write(tmp_path / "b.cnn", f"network N {{\n    input 3x8x8\n    conv(4, k=3, {arg})\n}}\n")
    rc, _, err = cli("check", path)
    assert rc == 2 and f"{path}:3:" in err
    assert f"hint: write {fix}" in err and "declare it as a parameter" not in err


USES_BLOCK = "network N {\n    input 3x32x32\n    BasicBlock(64)\n}\n"


def test_a_block_in_a_file_not_imported(cli, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "mine.cnn").write_text("block BasicBlock(c) {\n    conv(c, k=3, p=1) relu\n}\n")
    path = _write(tmp_path / "net.cnn", USES_BLOCK)
    rc, _, err = cli("check", path)
    assert rc == 2 and f"{path}:3:5: error: unknown op or block 'BasicBlock'" in err
    assert 'hint: did you forget `import "lib/mine.cnn"`? it defines block BasicBlock' in err
    (tmp_path / "net.cnn").write_text('import "lib/mine.cnn"\n' + USES_BLOCK)  # the hint's fix works
    assert cli("check", path)[0] == 0


def test_a_block_in_a_yaml_library_or_a_shipped_spec(cli, tmp_path):
    (tmp_path / "blocks.yaml").write_text("blocks:\n  - name: Tiny\n    params: [c]\n    layers:\n      - relu\n")
    rc, _, err = cli("check", _write(tmp_path / "n.cnn", USES_BLOCK.replace("BasicBlock(64)", "Tiny(4)")))
    assert rc == 2 and 'did you forget `import "blocks.yaml"`?' in err
    rc, _, err = cli("check", _write(tmp_path / "m.cnn", USES_BLOCK.replace("BasicBlock", "InvertedResidual")))
    assert rc == 2 and "mobilenet_blocks" in err and "did you forget `import" in err  # shipped with cnndsl


def test_an_unknown_name_found_nowhere_keeps_did_you_mean(cli, tmp_path):
    rc, _, err = cli("check", _write(tmp_path / "t.cnn", USES_BLOCK.replace("BasicBlock(64)", "cnov(4, k=3)")))
    assert rc == 2 and "did you mean 'conv'" in err and "import" not in err


@pytest.mark.parametrize("text, line", [
    ("network:\n  name: N\n  input: 3x8x8\n   layers:\n    - relu\n", 4),
    ("network:\n  name: N\n  input: 3x8x8\n  layers:\n    - relu\n    - conv: {out: 4, k: 3}\n   - relu\n", 7),
    ("network:\n  name: N\n  input: 3x8x8\n  layers: [relu]\ntrain:\n  data: mnist5k\n epochs: 3\n", 7),
])
def test_misindented_yaml_says_indentation(cli, tmp_path, text, line):
    path = _write(tmp_path / "s.yaml", text)
    rc, _, err = cli("check", path)
    assert rc == 2 and f"{path}:{line}:" in err
    assert f"hint: indentation: line {line} starts at column" in err


def test_ops_shows_one_op(cli):
    rc, out, _ = cli("ops", "conv")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "conv — 2-D convolution (nn.Conv2d)"
    row = {l.split()[0]: l for l in lines if l.startswith("  ") and len(l.split()) > 1}
    assert "int ≥ 1" in row["out"] and "required" in row["out"] and "output channels" in row["out"]
    assert "(k) #2" in row["kernel"] and "[h, w]" in row["kernel"]
    assert "= 1" in row["stride"] and "(s)" in row["stride"]
    assert "one of zeros, reflect, replicate, circular" in row["padding_mode"] and "= zeros" in row["padding_mode"]
    assert "= true" in row["bias"]
    assert "  conv(64, k=3, s=1, p=1)" in lines  # an example
    rc, out, _ = cli("ops", "dropout")
    assert "number in [0.0, 1.0]" in out and "dropout(0.5)" in out


def test_ops_unknown_name_and_the_full_list(cli):
    rc, _, err = cli("ops", "cnov")
    assert rc == 2 and "unknown op 'cnov'" in err and "did you mean 'conv'" in err
    rc, out, _ = cli("ops")
    assert rc == 0 and "conv               2-D convolution" in out and "linear" in out
