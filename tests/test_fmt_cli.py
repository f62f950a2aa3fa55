"""``cnndsl fmt`` and ``cnndsl check`` on files and folders, as people run them.

The shipped specs are formatted (``fmt --check specs/`` passes: CI runs this file), comments and
imports survive formatting and conversion, several files and folders are taken with the worst exit
status, ``--write`` rewrites atomically, and what a syntax cannot hold is reported at its item.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cnndsl
from cnndsl.canonical import canonical_spec, spec_hash
from cnndsl.syntax.format import format_cnn, format_yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SHIPPED = sorted(p for p in SPECS.rglob("*") if p.suffix in (".cnn", ".yaml"))
WRITE = {".cnn": format_cnn, ".yaml": format_yaml}
OTHER = {".cnn": ".yaml", ".yaml": ".cnn"}


def comments(text: str, suffix: str) -> list[str]:
    return sorted(c.text for c in cnndsl.parse(text, format=suffix[1:]).trivia.comments)


def test_shipped_specs_are_formatted(cli):
    rc, _, err = cli("fmt", "--check", str(SPECS))
    assert rc == 0, err
    assert f"{len(SHIPPED)} files already formatted" in err


def test_readme_example_is_formatted():
    """The README's first example (several items per line, aligned comments) is fmt's output."""
    text = (ROOT / "README.md").read_text()
    example = re.search(r"```\n(# specs/simple_cnn.cnn.*?)```", text, re.S).group(1)
    assert "conv1: conv(32, k=3, p=1)   relu   maxpool(2)     # 32x16x16" in example
    assert format_cnn(cnndsl.parse(example)) == example


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SPECS)))
def test_comments_and_imports_survive_conversion(path):
    text = path.read_text()
    spec = cnndsl.parse(text, format=path.suffix[1:], filename=str(path))
    other = WRITE[OTHER[path.suffix]](spec)
    assert comments(other, OTHER[path.suffix]) == comments(text, path.suffix)
    back = cnndsl.parse(other, format=OTHER[path.suffix][1:])
    assert back.imports == spec.imports and canonical_spec(back) == canonical_spec(spec)
    assert spec_hash(back) == spec_hash(spec)
    assert len(back.blocks) == len(spec.blocks)        # imported blocks are not pulled in


def test_check_takes_several_files_and_folders(cli, tmp_path):
    bad = tmp_path / "bad.cnn"
    bad.write_text("network N {\n    input 3x8x8\n    linear(10)\n}\n")
    rc, out, err = cli("check", str(SPECS / "simple_cnn.cnn"), str(bad), str(SPECS / "resnet18.cnn"), "-q")
    assert rc == 2
    assert out.count("ok: ") == 2 and "ResNet18" in out and "SimpleCNN" in out
    assert f"{bad}:3:5: error:" in err
    rc, out, _ = cli("check", str(SPECS), "-q")
    assert rc == 0 and out.count("ok: ") == len(SHIPPED)
    assert f"ok: {SPECS / 'lib' / 'resnet_blocks.cnn'}: library of 2 block(s): BasicBlock, Bottleneck" in out


def _tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    d = tmp_path / "specs"
    (d / "lib").mkdir(parents=True)
    good = d / "simple.cnn"
    good.write_text((SPECS / "simple_cnn.cnn").read_text())
    messy = d / "lib" / "messy.yaml"
    messy.write_text("blocks:\n  B:   # a block\n    layers: [relu,  {conv: [8, {k: 3}]}]\n")
    return d, good, messy


def test_fmt_write_rewrites_in_place(cli, tmp_path):
    d, good, messy = _tree(tmp_path)
    messy.chmod(0o640)
    before = good.stat().st_mtime_ns
    rc, _, err = cli("fmt", "-w", str(d))
    assert rc == 0, err
    assert f"reformatted {messy}" in err and "1 file reformatted, 1 file left unchanged" in err
    assert messy.read_text() == "blocks:\n  B:   # a block\n    layers:\n      - relu\n      - {conv: [8, {k: 3}]}\n"
    assert good.stat().st_mtime_ns == before                      # an unchanged file is not touched
    assert messy.stat().st_mode & 0o777 == 0o640                  # the mode is kept
    assert sorted(p.name for p in d.rglob("*")) == ["lib", "messy.yaml", "simple.cnn"]   # no temp files
    rc, _, err = cli("fmt", "--check", str(d))
    assert rc == 0 and "2 files already formatted" in err


def test_fmt_check_and_diff_on_several_files(cli, tmp_path):
    d, good, messy = _tree(tmp_path)
    broken = d / "broken.cnn"
    broken.write_text("network N {\n    input 3x8x8\n    conv(8,\n}\n")
    rc, out, err = cli("fmt", "--check", str(good), str(messy))
    assert rc == 1 and f"would reformat {messy}" in err and str(good) not in err.replace(str(messy), "")
    rc, out, err = cli("fmt", "--check", str(d))                   # the worst status: the broken file
    assert rc == 2 and f"{broken}:4:1: error:" in err
    assert "1 file would be reformatted, 1 file already formatted, 1 file could not be formatted" in err
    rc, out, _ = cli("fmt", "--diff", str(messy))
    assert rc == 0 and "-    layers: [relu,  {conv" in out and "+      - {conv: [8, {k: 3}]}" in out
    assert "  {conv" in messy.read_text()                          # --diff writes nothing


@pytest.mark.parametrize("argv, message", [
    (["-o", "out.cnn", "a.cnn", "b.cnn"], "-o/--output takes one input file"),
    (["-w", "--to", "yaml", "a.cnn"], "--write rewrites each file in its own syntax"),
    (["--check", "--to", "yaml", "a.cnn"], "--check and --diff compare a file with its own formatting"),
    (["a.cnn", "b.cnn"], "several inputs need --check, --diff or --write"),
])
def test_fmt_refuses_what_it_cannot_do(cli, tmp_path, argv, message):
    for name in ("a.cnn", "b.cnn"):
        (tmp_path / name).write_text((SPECS / "simple_cnn.cnn").read_text())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        rc, _, err = cli("fmt", *argv)
    finally:
        os.chdir(cwd)
    assert rc == 2 and message in err


def test_fmt_reports_an_unwritable_value_at_its_item(cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("network:\n  input: [3, 8, 8]\n  layers:\n    - when\n")  # an op named like a keyword
    rc, _, err = cli("fmt", str(spec), "--to", "cnn")
    assert rc == 2
    assert err.startswith(f"{spec}:4:7: error: cannot write {spec} as cnn: the layer name 'when'")
    assert "hint: the yaml syntax can hold it" in err
    spec.write_text("network:\n  input: [3]\ntrain:\n  epochs: 1\n  note: null\n")
    rc, _, err = cli("fmt", str(spec), "--to", "cnn")
    assert rc == 2 and err.startswith(f"{spec}:5:9: error: cannot write {spec} as cnn: null has no spelling")


def test_fmt_keeps_line_endings_and_reads_stdin(tmp_path):
    text = "network N {\n    input 3x8x8   # in\n    relu\n}\n"
    spec = tmp_path / "crlf.cnn"
    spec.write_bytes(text.replace("\n", "\r\n").encode())
    run = subprocess.run([sys.executable, "-m", "cnndsl", "fmt", "--check", str(spec)], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-m", "cnndsl", "fmt", "-"], input="network N { input 3x8x8 conv(8,k=3) relu }",
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stdout == "network N {\n    input 3x8x8\n    conv(8, k=3)  relu\n}\n"


def test_format_yaml_imports_on_its_own():
    """Issue 7 item 6: importing the YAML writer first raised ImportError (a cycle with format)."""
    for module in ("cnndsl.syntax.format_yaml", "cnndsl.syntax.format_yaml_items", "cnndsl.syntax.format"):
        run = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 0, run.stderr


def test_formatting_section_of_the_language_reference_is_fmt_output():
    text = (ROOT / "docs" / "language.md").read_text()
    section = text[text.index("## 22. Formatting"):].split("\n## 23.")[0]
    blocks = re.findall(r"```(cnn|yaml)\n(.*?)```", section, re.S)
    assert [lang for lang, _ in blocks] == ["cnn", "yaml"]
    for lang, body in blocks:
        assert WRITE["." + lang](cnndsl.parse(body, format=lang)) == body
    (_, cnn), (_, yaml) = blocks
    assert format_yaml(cnndsl.parse(cnn)) == yaml                # the YAML shown is the conversion


def test_imports_are_kept_and_imported_blocks_are_not_written():
    path = SPECS / "resnet18.cnn"
    for spec in (cnndsl.parse(path.read_text()), cnndsl.load(path)):
        text = format_cnn(spec)
        assert '\nimport "lib/resnet_blocks.cnn"\n' in text and "block BasicBlock" not in text
        assert cnndsl.parse(text).imports == spec.imports
        assert "imports: [lib/resnet_blocks.cnn]" in format_yaml(spec)
        assert "blocks:" not in format_yaml(spec)
        assert cnndsl.parse(format_yaml(spec), format="yaml").imports == spec.imports
    text = format_cnn(spec, standalone=True)
    assert "import " not in text and "block BasicBlock" in text


def test_every_item_kind_has_a_writer_in_each_syntax():
    """A new construct adds ``_item_<kind>`` (.cnn) and ``_yitem_<kind>`` (YAML): checked here."""
    import typing

    from cnndsl.ir import Item
    from cnndsl.syntax.format_items import ItemWriter
    from cnndsl.syntax.format_yaml_items import YamlItems

    kinds = [cls.model_fields["kind"].default for cls in typing.get_args(typing.get_args(Item)[0])]
    assert {"layer", "group", "residual", "parallel", "merge", "from"} <= set(kinds)
    for kind in kinds:
        assert callable(getattr(ItemWriter, f"_item_{kind}", None)), kind
        assert callable(getattr(YamlItems, f"_yitem_{kind}", None)), kind


BACKBONES = '''network N(pretrained = false) {
    input 3x64x64
    # where the weights come from
    init "runs/x/best.pt"  (strict=false)   # all but the head
    features: backbone resnet18(weights = DEFAULT, taps = [layer3, layer4], width_per_group = 64, groups = 1) when pretrained  # tapped
    features: backbone "pre.cnn"(num_classes = 10,until="layer3.1") when not pretrained
    backbone()   relu      # a layer called backbone
    from features.layer3
}
'''


def test_backbones_and_init_keep_their_comments():
    """A backbone item is one item (broken over lines when long); ``init`` goes after the other
    network statements with its comments; a layer called ``backbone`` stays a layer."""
    spec = cnndsl.parse(BACKBONES)
    text = format_cnn(spec)
    assert text.split("\n")[2:] == [
        "    features: backbone resnet18(", "        weights = DEFAULT,", "        taps = [layer3, layer4],",
        "        width_per_group = 64,", "        groups = 1,", "    ) when pretrained  # tapped",
        '    features: backbone "pre.cnn"(until = "layer3.1", num_classes = 10) when not pretrained',
        "    backbone()   relu      # a layer called backbone", "    from features.layer3",
        "    # where the weights come from", '    init "runs/x/best.pt" (strict = false)  # all but the head',
        "}", ""]
    yaml_text = format_yaml(spec)
    assert "    - {name: features, backbone: {model: pre.cnn, until: layer3.1, args: {num_classes: 10}}, " \
           "when: not pretrained}\n    - backbone\n    - relu  # a layer called backbone\n" in yaml_text
    assert yaml_text.endswith("  # where the weights come from\n"
                              "  init: {source: runs/x/best.pt, strict: false}  # all but the head\n")
    for out, suffix in ((text, ".cnn"), (yaml_text, ".yaml")):
        back = cnndsl.parse(out, format=suffix[1:])
        assert canonical_spec(back) == canonical_spec(spec) and spec_hash(back) == spec_hash(spec)
        assert comments(out, suffix) == comments(BACKBONES, ".cnn")
        assert WRITE[suffix](back) == out
    one_per_line = text.replace("backbone()   relu      #", "backbone()\n    relu  #")  # no layout in YAML
    assert format_cnn(cnndsl.parse(yaml_text, format="yaml")) == one_per_line
