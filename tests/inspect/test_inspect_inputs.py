"""What the inspect commands do with bad or unusual input: every problem is a clear message and exit
status 2; a convertible image is converted and the user is told. And the README shows a picture
from every command."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cnndsl.inspect.images import read_for_network

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_layer_lists_valid_names(cli, specs, images, tmp_path):
    rc, _, err = cli("features", str(specs["tiny"]), "--image", str(images["rgb"]), "--layer", "conv1,stagee",
                     "-o", str(tmp_path / "m.png"))
    assert rc == 2
    assert "--layer: Tiny has no layer named 'stagee'" in err and "did you mean 'stage'" in err
    assert "top-level layers: input, conv1, bn1, 2, stage, pool, conv2" in err
    assert "Traceback" not in err and not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("kind, expected", [
    ("corrupt", "cannot read image"), ("missing", "does not exist"), ("directory", "is a directory, not an image")])
def test_unreadable_images(cli, specs, images, tmp_path, kind, expected):
    path = {"corrupt": images["corrupt"], "missing": tmp_path / "nope.png", "directory": tmp_path}[kind]
    rc, _, err = cli("features", str(specs["tiny"]), "--image", str(path), "--layer", "conv1",
                     "-o", str(tmp_path / "m.png"))
    assert rc == 2 and "--image: " in err and expected in err and "Traceback" not in err


@pytest.mark.parametrize("image, spec, note", [
    ("rgb", "gray", "is RGB (3 channels); the network takes 1 channel: converted to grayscale"),
    ("rgba", "gray", "is RGB with alpha (4 channels); the network takes 1 channel: converted to grayscale"),
    ("gray", "tiny", "is grayscale; the network takes 3 channels: converted to RGB"),
])
def test_wrong_channel_count_is_converted_and_said(cli, specs, images, tmp_path, image, spec, note, picture):
    out = tmp_path / "m.png"
    rc, _, err = cli("features", str(specs[spec]), "--image", str(images[image]), "--layer", "conv1", "-o", str(out),
                     "--dpi", "20")
    assert rc == 0, err
    assert f"note: {images[image]} {note}" in err
    picture(out, 240, 57)


def test_read_for_network_converts_and_crops():
    from PIL import Image
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "wide.png"
        arr = np.zeros((10, 30, 3), np.uint8)
        arr[:, 10:20] = 255  # a white band in the middle third
        Image.fromarray(arr).save(path)
        img, notes = read_for_network(path, (1, 10, 10))
    assert img.shape == (10, 10, 1) and img.min() == 255  # the centre crop is the white band
    assert len(notes) == 2 and "cropped the centre" in notes[1]


def test_checkpoint_of_another_network(cli, specs, run_dir, images, tmp_path):
    rc, _, err = cli("features", str(specs["gray"]), "--checkpoint", str(run_dir / "last.pt"),
                     "--image", str(images["gray"]), "--layer", "conv1", "-o", str(tmp_path / "m.png"))
    assert rc == 2
    assert "does not match the model" in err and "mis-shaped: conv1.weight" in err
    assert "different spec" in err


def test_input_is_required_and_output_type_checked(cli, specs, tmp_path):
    rc, _, err = cli("features", str(specs["tiny"]), "--layer", "conv1", "-o", str(tmp_path / "m.png"))
    assert rc == 2 and "give an input: --image IMG or --sample N" in err
    rc, _, err = cli("features", str(specs["tiny"]), "--sample", "0", "--layer", "conv1", "-o", str(tmp_path / "m.txt"))
    assert rc == 2 and "-o: cannot write 'm.txt': unknown file type '.txt'" in err
    rc, _, err = cli("features", str(specs["gray"]), "--sample", "0", "--layer", "conv1", "-o", str(tmp_path / "m.png"))
    assert rc == 2 and "--sample needs the spec's dataset, but the spec has no train section" in err


# ----------------------------------------------------------------------------- README

COMMANDS = ("features", "filters", "rf", "cam", "graph", "plot")


def test_readme_shows_a_picture_from_every_command():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Seeing inside a network")
    section = readme[start:readme.index("\n## ", start + 1)]
    images = re.findall(r"!\[[^\]]*\]\((docs/img/[^)]+)\)", section)
    for command in COMMANDS:
        shown = [p for p in images if Path(p).stem.startswith(command)]
        assert shown, f"no picture from cnndsl {command} in the README"
        assert f"cnndsl {command} " in section, f"no example command line for cnndsl {command}"
    for p in images:
        f = ROOT / p
        assert f.is_file(), p
        assert f.stat().st_size < 150_000, f"{p} is {f.stat().st_size:,} bytes"
    assert "```mermaid\nflowchart TB\n" in section
