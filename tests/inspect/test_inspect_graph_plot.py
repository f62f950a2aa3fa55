"""``cnndsl graph`` (DOT, Mermaid, Graphviz when installed, matplotlib otherwise) and ``cnndsl plot``,
the curves ``train`` writes and the confusion image of ``eval``."""

from __future__ import annotations

import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import cnndsl
from cnndsl.inspect import diagram as D, layout

ROOT = Path(__file__).resolve().parents[2]
RESNET = ROOT / "specs" / "resnet18.cnn"


@pytest.fixture(scope="module")
def resnet():
    return cnndsl.analyze(RESNET)


def test_dot_has_every_node_edge_and_cluster(resnet):
    dot = D.to_dot(D.build(resnet))
    g = resnet.graph
    assert len(re.findall(r"^\s+n\d+ \[label=", dot, re.M)) == len(g.nodes)
    edges = {(a, b) for n in g.nodes for a in n.inputs for b in [n.id]}
    assert set(re.findall(r"n(\d+) -> n(\d+);", dot)) == {(str(a), str(b)) for a, b in edges}
    for path in g.containers:
        assert f'subgraph "cluster_{path}"' in dot
    assert dot.count("{") == dot.count("}")
    assert 'label="layer2.0 · BasicBlock"' in dot and "conv(128, 3, stride=2, padding=1, bias=False)" in dot
    assert 'n69 [label="fc\\nlinear(1000)\\n1000"' in dot and "penwidth=2.2" in dot  # the output in bold


def test_depth_collapses_blocks(resnet):
    d = D.build(resnet, depth=1)
    titles = {b.title: b for b in d.boxes}
    assert set(d.clusters) == {"layer1", "layer2", "layer3", "layer4"}
    assert titles["0"].detail == "BasicBlock" and titles["0"].shape in {"64×56×56", "128×28×28", "256×14×14",
                                                                        "512×7×7"}
    assert d.clusters["layer2"].label == "layer2 · 2 × BasicBlock"
    top = D.build(resnet, depth=0)
    assert not top.clusters and [b.title for b in top.boxes][4:9] == ["maxpool", "layer1", "layer2", "layer3",
                                                                       "layer4"]
    assert ("c_layer1", "c_layer2") in top.edges and ("n4", "c_layer1") in top.edges


def test_mermaid_is_well_formed(resnet):
    text = D.to_mermaid(D.build(resnet, depth=2))
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    assert sum(l.strip().startswith("subgraph ") for l in lines) == sum(l.strip() == "end" for l in lines) == 12
    defined = set(re.findall(r"^\s+([nc]_?\w+)\[\"", text, re.M))
    for a, b in re.findall(r"^\s+(\S+) --> (\S+)$", text, re.M):
        assert a in defined and b in defined
    assert '"' not in "".join(re.findall(r'\["(.*)"\]', text))  # labels escape quotes


def test_graph_text_outputs(cli, tmp_path):
    for suffix in (".dot", ".mmd"):
        out = tmp_path / f"net{suffix}"
        rc, _, err = cli("graph", str(RESNET), "--depth", "1", "-o", str(out))
        assert rc == 0, err
        assert out.read_text().startswith("digraph" if suffix == ".dot" else "flowchart")


def test_graph_png_without_graphviz_uses_matplotlib(cli, tmp_path, picture, monkeypatch):
    monkeypatch.setattr(D.shutil, "which", lambda name: None)
    out = tmp_path / "net.png"
    rc, _, err = cli("graph", str(ROOT / "specs" / "inception.cnn"), "--depth", "1", "-o", str(out), "--dpi", "30")
    assert rc == 0, err
    assert "drew net.png with matplotlib" in err and "apt install graphviz" in err
    w, h = layout.size(D.build(cnndsl.analyze(ROOT / "specs" / "inception.cnn"), 1))
    picture(out, int(w * 30), int(h * 30))  # matplotlib truncates to whole pixels
    svg = tmp_path / "net.svg"
    rc, _, err = cli("graph", str(RESNET), "--depth", "1", "-o", str(svg))
    assert rc == 0, err
    root = ET.parse(svg).getroot()
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "layer4 · 2 × BasicBlock" in texts and "64×112×112" in texts


def test_graph_uses_graphviz_when_dot_is_installed(cli, tmp_path, monkeypatch):
    seen = {}

    class Source:
        def __init__(self, text, graph_attr=None):
            seen["dot"] = text

        def pipe(self, format):
            seen["format"] = format
            return b"<svg>from graphviz</svg>"

    fake = types.SimpleNamespace(Source=Source, ExecutableNotFound=RuntimeError)
    monkeypatch.setitem(sys.modules, "graphviz", fake)
    monkeypatch.setattr(D.shutil, "which", lambda name: "/usr/bin/dot" if name == "dot" else None)
    out = tmp_path / "net.svg"
    rc, _, err = cli("graph", str(RESNET), "-o", str(out))
    assert rc == 0 and "matplotlib" not in err
    assert out.read_bytes() == b"<svg>from graphviz</svg>" and seen["format"] == "svg"
    assert seen["dot"] == D.to_dot(D.build(cnndsl.analyze(RESNET)))


def test_graph_says_what_to_install(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(D.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    rc, _, err = cli("graph", str(RESNET), "-o", str(tmp_path / "net.png"))
    assert rc == 2
    assert "neither Graphviz's `dot` program nor matplotlib is installed" in err
    assert "apt install graphviz" in err and "pip install 'cnndsl[viz]'" in err and "-o net.mmd" in err
    rc, _, err = cli("graph", str(RESNET), "-o", str(tmp_path / "net.mmd"))
    assert rc == 0, err


def test_graph_rejects_unknown_suffix(cli, tmp_path):
    rc, _, err = cli("graph", str(RESNET), "-o", str(tmp_path / "net.gif"))
    assert rc == 2 and "unknown file type '.gif'" in err and ".mmd" in err


# ----------------------------------------------------------------------------- plot, train, eval


def test_plot_overlays_runs(cli, run_dir, other_run, tmp_path, picture):
    out = tmp_path / "curves.png"
    rc, stdout, err = cli("plot", str(run_dir), str(other_run), "-o", str(out), "--dpi", "40")
    assert rc == 0, err
    picture(out, 560, 172)
    from cnndsl.inspect.curves import read_metrics

    assert [r["epoch"] for r in read_metrics(other_run)] == [1, 2, 3, 4, 5, 6]


def test_plot_reads_csv_and_keeps_the_last_record_of_an_epoch(tmp_path, run_dir):
    from cnndsl.inspect.curves import read_metrics

    d = tmp_path / "csvrun"
    d.mkdir()
    (d / "metrics.csv").write_text((run_dir / "metrics.csv").read_text())
    assert [r["epoch"] for r in read_metrics(d)] == [1, 2, 3, 4]
    (d / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 2.0}\n{"epoch": 1, "train_loss": 1.0}\n')
    assert read_metrics(d) == [{"epoch": 1.0, "train_loss": 1.0}]


def test_plot_bad_run_directories(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = cli("plot", str(empty), "-o", str(tmp_path / "c.png"))
    assert rc == 2 and "has no metrics.jsonl or metrics.csv" in err and "cnndsl train" in err
    rc, _, err = cli("plot", str(tmp_path / "nowhere"), "-o", str(tmp_path / "c.png"))
    assert rc == 2 and "does not exist" in err
    (empty / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, oops\n')
    rc, _, err = cli("plot", str(empty), "-o", str(tmp_path / "c.png"))
    assert rc == 2 and "metrics.jsonl:2: not a JSON record" in err


@pytest.mark.slow
def test_train_writes_curves_and_eval_draws_the_confusion_matrix(cli, specs, tmp_path, picture):
    run = tmp_path / "run"
    rc, _, err = cli("train", str(specs["tiny"]), "--run-dir", str(run), "--quiet")
    assert rc == 0, err
    picture(run / "curves.png", 1400, 430)
    out = tmp_path / "confusion.png"
    rc, stdout, err = cli("eval", str(specs["tiny"]), "--checkpoint", str(run), "--confusion-image", str(out))
    assert rc == 0, err
    assert "accuracy" in stdout and f"wrote {out}" in err
    picture(out, 700, 640)


# ----------------------------------------------------------------------------- without matplotlib


@pytest.mark.parametrize("argv", [
    ["features", "{tiny}", "--image", "{img}", "--layer", "conv1"], ["filters", "{tiny}"],
    ["rf", "{tiny}"], ["cam", "{tiny}", "--image", "{img}"], ["plot", "{run}"],
    ["eval", "{tiny}", "--checkpoint", "{run}", "--confusion-image", "c.png"]])
def test_commands_say_what_to_install_without_matplotlib(cli, specs, images, run_dir, monkeypatch, argv):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = [a.format(tiny=specs["tiny"], img=images["rgb"], run=run_dir) for a in argv]
    rc, _, err = cli(*argv)
    assert rc == 2, err
    assert "matplotlib, which is not installed" in err and "pip install 'cnndsl[viz]'" in err


def test_training_without_matplotlib_writes_no_curves(run_dir, monkeypatch, tmp_path):
    from cnndsl.inspect.curves import write_run_curves

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert write_run_curves(run_dir) is None
