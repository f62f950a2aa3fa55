"""cnndsl.features and the ``features`` / ``filters`` commands.

Ground truth: forward hooks on torchvision's resnet18 (the tutorial's way) with the same weights,
the shapes torch produces, and the values of the layers a container is made of.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl.inspect.taps import Capture, plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resnets(resnet_pair):
    return (*resnet_pair, torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))


def tutorial_hooks(model, names, x):
    """The tutorial's code: register_forward_hook on named modules, run, read what they saw."""
    seen, handles = {}, []
    for name in names:
        module = model.get_submodule(name)
        handles.append(module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.clone())))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def test_features_match_torchvision_hooks(resnets):
    ours, tv, x = resnets
    names = ["conv1", "layer1", "layer1.0", "layer1.0.conv1", "layer2.0.downsample", "layer4", "fc"]
    got = cnndsl.features(ours, x, names)
    want = tutorial_hooks(tv, names, x)
    assert list(got) == names
    for n in names:
        assert got[n].shape == want[n].shape, n
        torch.testing.assert_close(got[n], want[n], atol=1e-5, rtol=1e-4)


def test_features_shapes_are_the_static_shapes(resnets):
    ours, _, _ = resnets
    a = cnndsl.analyze(ROOT / "specs" / "resnet18.cnn")
    x = torch.randn(1, 3, 224, 224)
    from cnndsl.inspect.taps import layer_names

    names = layer_names(a)
    got = cnndsl.features(ours, x, names, analysis=a)
    assert len(got) == len(names) > 80
    for name in names:
        node = a.graph.nodes[0] if name == "input" else next(
            (n for n in a.graph.nodes if n.path == name), None) or a.graph.nodes[a.graph.containers[name].output]
        assert tuple(got[name].shape) == (1, *node.shape), name


def test_implicit_sum_and_input_are_captured(resnets):
    """layer1.0.add has no module: it is read where its consumer receives it."""
    ours, _, x = resnets
    got = cnndsl.features(ours, x, ["input", "maxpool", "layer1.0.bn2", "layer1.0.add", "layer1.0"])
    torch.testing.assert_close(got["input"], x)
    torch.testing.assert_close(got["layer1.0.add"], got["layer1.0.bn2"] + got["maxpool"])
    torch.testing.assert_close(got["layer1.0"], torch.relu(got["layer1.0.add"]))


def test_capture_leaves_the_output_unchanged(resnets):
    """In-place ReLUs downstream must neither corrupt what was captured nor change the result."""
    ours, tv, x = resnets
    with torch.no_grad():
        want = tv(x)
    got = cnndsl.features(ours, x, ["layer1.0.bn2", "layer1.0.add", "fc", "layer3.1.bn2"])
    torch.testing.assert_close(got["fc"], want, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), want, atol=1e-5, rtol=1e-4)
    assert (got["layer1.0.add"] < 0).any(), "captured before the in-place ReLU that follows it"


def test_plain_torch_modules_by_submodule_path(resnets):
    _, tv, x = resnets
    got = cnndsl.features(tv, x, "layer2")
    assert list(got) == ["layer2"] and got["layer2"].shape == (2, 128, 4, 4)
    with pytest.raises(cnndsl.CnnError, match=r"no layer named 'layer9'") as e:
        cnndsl.features(tv, x, ["layer9"])
    assert "did you mean" in str(e.value)


def test_unknown_layer_lists_names_and_suggests(resnets):
    ours, _, x = resnets
    with pytest.raises(cnndsl.CnnError) as e:
        cnndsl.features(ours, x, ["layr1"])
    text = str(e.value)
    assert "ResNet18 has no layer named 'layr1'" in text and "did you mean 'layer1'" in text
    assert "top-level layers: input, conv1, bn1, relu, maxpool, layer1, layer2" in text


def test_container_forward_hooks_fire(resnets):
    """Hooks on containers of a deep-copied network (no analysis to map names to graph nodes)."""
    ours, tv, x = resnets
    model = copy.deepcopy(ours)
    assert cnndsl.api.analysis_of(model) is None
    with torch.no_grad(), Capture(model, plan(model, ["layer1.0"])) as cap:
        out = model(x)
    torch.testing.assert_close(cap.values(out)["layer1.0"], tutorial_hooks(tv, ["layer1.0"], x)["layer1.0"])


# ----------------------------------------------------------------------------- commands


def test_features_command(cli, specs, run_dir, images, tmp_path, picture):
    out, saved = tmp_path / "maps.png", tmp_path / "maps.pt"
    rc, stdout, err = cli("features", str(specs["tiny"]), "--checkpoint", str(run_dir), "--image",
                          str(images["rgb"]), "--layer", "conv1,stage", "--layer", "fc", "-o", str(out),
                          "--save", str(saved), "--dpi", "40")
    assert rc == 0, err
    picture(out, 480, 306)  # 12 in × (0.45 + 3 rows × 2.4 in) at 40 dpi
    assert "is 24×20; resized to cover 16×16 and cropped the centre" in err
    maps = torch.load(saved, weights_only=True)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "input": (1, 3, 16, 16), "conv1": (1, 4, 16, 16), "stage": (1, 4, 16, 16), "fc": (1, 3)}
    assert int(maps["fc"].argmax()) == 1, "the checkpoint's weights were used"


def test_features_of_a_dataset_sample(cli, specs, tmp_path, picture):
    out = tmp_path / "s.png"
    rc, _, err = cli("features", str(specs["tiny"]), "--sample", "2", "--layer", "stage.0", "-o", str(out),
                     "--dpi", "40")
    assert rc == 0, err
    picture(out, 480, 114)
    rc, _, err = cli("features", str(specs["tiny"]), "--sample", "99", "--layer", "conv1", "-o", str(out))
    assert rc == 2 and "--sample 99 is out of range: the val split of 'synthetic' has 8 images" in err


def test_filters_rgb_and_grid(cli, specs, run_dir, tmp_path, picture):
    out = tmp_path / "f.png"
    rc, _, err = cli("filters", str(specs["tiny"]), "--checkpoint", str(run_dir), "-o", str(out), "--dpi", "40")
    assert rc == 0, err
    rgb = picture(out, 400, 260)
    rc, _, err = cli("filters", str(specs["tiny"]), "--layer", "stage.0.conv1", "-o", str(out), "--dpi", "40")
    assert rc == 0, err
    grid = picture(out, 400, 260)
    colour = lambda p: float(abs(p[..., 0] - p[..., 2]).max())  # noqa: E731
    assert colour(rgb) > 0.2 and colour(grid) > 0.2


def test_filters_rejects_a_layer_that_is_not_a_conv(cli, specs, tmp_path):
    rc, _, err = cli("filters", str(specs["tiny"]), "--layer", "bn1", "-o", str(tmp_path / "f.png"))
    assert rc == 2 and "'bn1' is not a convolution in Tiny" in err and "conv1, stage.0.conv1" in err
    rc, _, err = cli("filters", str(specs["tiny"]), "--layer", "conv3", "-o", str(tmp_path / "f.png"))
    assert rc == 2 and "'conv3' does not exist" in err and "did you mean 'conv2' or 'conv1'?" in err
