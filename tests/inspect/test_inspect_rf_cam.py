"""``cnndsl rf`` and ``cnndsl cam``: the drawn receptive-field box against the input-gradient
support of the built module, and Grad-CAM against the tutorial's hook-based computation on
torchvision's resnet18."""

from __future__ import annotations


import numpy as np
import pytest
import torch

import cnndsl
from cnndsl.inspect import rf as R
from cnndsl.inspect.cam import grad_cam
from cnndsl.inspect.subject import Subject


RF_NET = """
network RfNet {
    input 1x61x61
    c1: conv(2, k=3, p=1)
    c2: conv(2, k=3, s=2, p=1)
    p1: avgpool(2)
    c3: conv(2, k=3, p=2, d=2)
    c4: conv(2, k=3, s=2)
}
"""


@pytest.fixture(scope="module")
def positive_net():
    """RfNet with every weight positive and no bias: the input gradient of a unit is non-zero exactly
    on the pixels its field reaches."""
    a = cnndsl.analyze(cnndsl.parse(RF_NET))
    model = cnndsl.build(a).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(0.1 if name.endswith("weight") else 0.0)
    return Subject(None, a, model, "positive weights", [0.0], [1.0])


def support(subject: Subject, layer: str, unit: tuple[int, int], x: torch.Tensor) -> np.ndarray:
    return R.effective_rf(subject, layer, unit, x) > 0


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1


@pytest.mark.parametrize("layer", ["c1", "c2", "p1", "c3", "c4"])
def test_box_is_the_gradient_support(positive_net, layer):
    a = positive_net.analysis
    info = a.layer(layer)
    unit = R.centre_unit(info.shape)
    mask = support(positive_net, layer, unit, torch.ones(1, 1, 61, 61))
    assert bbox(mask) == R.pixel_box(info.rf, unit, 61, 61)
    top, left, bottom, right = R.unit_box(info.rf, unit)
    assert (top, left) == bbox(mask)[:2] and (bottom, right) == bbox(mask)[2:], "unclipped centre unit"


def test_corner_unit_support_inside_its_clipped_box(positive_net):
    info = positive_net.analysis.layer("c4")
    r0, c0, r1, c1 = R.pixel_box(info.rf, (0, 0), 61, 61)
    mask = support(positive_net, "c4", (0, 0), torch.ones(1, 1, 61, 61))
    assert mask.any() and not mask[r1:].any() and not mask[:, c1:].any() and (r0, c0) == (0, 0)


def test_drawn_box_matches_gradient_support(positive_net, images):
    """The rectangle the picture shows for the centre unit is where the gradient is."""
    from matplotlib.patches import Rectangle

    nid = next(n.id for n in positive_net.analysis.graph.nodes if n.path == "c3")
    unit = R.centre_unit(positive_net.analysis.layer("c3").shape)
    erf = R.effective_rf(positive_net, "c3", unit, torch.ones(1, 1, 61, 61))
    fig = R.draw(positive_net, "c3", nid, None, erf, "test", dpi=30)
    drawn = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_label().startswith("centre")]
    assert len(drawn) == 1
    x, y, w, h = drawn[0].get_x(), drawn[0].get_y(), drawn[0].get_width(), drawn[0].get_height()
    r0, c0, r1, c1 = bbox(erf > 0)
    assert (y, x, y + h, x + w) == (r0, c0, r1, c1)


def test_effective_field_inside_theoretical_box_with_maxpool_and_relu(specs):
    """Random weights, ReLU, max pooling and a residual path: the support never leaves the box."""
    torch.manual_seed(0)
    a = cnndsl.analyze(cnndsl.load(specs["tiny"]))
    subject = Subject(None, a, cnndsl.build(a).eval(), "random", [0.0] * 3, [1.0] * 3)
    for layer in ("stage.0", "conv2"):
        info = a.layer(a.graph.nodes[a.graph.containers[layer].output].path) if layer in a.graph.containers \
            else a.layer(layer)
        for unit in (R.centre_unit(info.shape), (0, 0)):
            erf = R.effective_rf(subject, layer, unit, torch.randn(4, 3, 16, 16))
            r0, c0, r1, c1 = R.pixel_box(info.rf, unit, 16, 16)
            assert erf.sum() > 0 and erf[r0:r1, c0:c1].sum() == pytest.approx(erf.sum())


def test_rf_command(cli, specs, run_dir, images, tmp_path, picture):
    out = tmp_path / "rf.png"
    rc, _, err = cli("rf", str(specs["tiny"]), "--checkpoint", str(run_dir), "--layer", "stage",
                     "--image", str(images["rgb"]), "--effective", "--samples", "3", "-o", str(out), "--dpi", "40")
    assert rc == 0, err
    picture(out, 520, 220)
    rc, _, err = cli("rf", str(specs["tiny"]), "-o", str(out), "--dpi", "40")  # deepest map, blank canvas
    assert rc == 0, err
    picture(out, 520, 220)


def test_rf_refuses_a_vector_layer(cli, specs, tmp_path):
    rc, _, err = cli("rf", str(specs["tiny"]), "--layer", "fc", "-o", str(tmp_path / "rf.png"))
    assert rc == 2 and "'fc' outputs a vector (3)" in err and "e.g." in err


# ----------------------------------------------------------------------------- Grad-CAM


def tutorial_grad_cam(model, x, layer, target):
    """Grad-CAM the usual way: a forward hook keeps the activation, a tensor hook its gradient."""
    store = {}
    module = model.get_submodule(layer)

    def keep(m, i, o):
        store["act"] = o
        o.register_hook(lambda g: store.__setitem__("grad", g))

    h = module.register_forward_hook(keep)
    model.zero_grad()
    model(x)[0, target].backward()
    h.remove()
    w = store["grad"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((w * store["act"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0]
    return (cam / cam.max()).detach().numpy()


def test_grad_cam_matches_the_hook_computation_on_torchvision(resnet_pair):
    ours, tv = resnet_pair
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    got = grad_cam(ours, x, "layer3", 7)
    want = tutorial_grad_cam(tv, x, "layer3", 7)
    assert got.heatmap.shape == (64, 64) and got.target == 7
    np.testing.assert_allclose(got.heatmap, want, atol=1e-4)
    assert got.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_cam_command(cli, specs, run_dir, images, tmp_path, picture):
    out = tmp_path / "cam.png"
    rc, stdout, err = cli("cam", str(specs["tiny"]), "--checkpoint", str(run_dir), "--image", str(images["rgb"]),
                          "-o", str(out), "--dpi", "40")
    assert rc == 0, err
    assert "class 'dog'" in stdout  # the checkpoint's fc bias favours class 1, named in data.json
    picture(out, 520, 192)
    rc, stdout, err = cli("cam", str(specs["tiny"]), "--checkpoint", str(run_dir), "--image", str(images["rgb"]),
                          "--class", "bird", "--layer", "stage.1", "-o", str(out), "--dpi", "40")
    assert rc == 0 and "class 'bird'" in stdout, err


@pytest.mark.parametrize("target, message", [("7", "--class 7 is out of range: the network has 3 classes"),
                                             ("fish", "--class: unknown class 'fish'")])
def test_cam_bad_class(cli, specs, run_dir, images, tmp_path, target, message):
    rc, _, err = cli("cam", str(specs["tiny"]), "--checkpoint", str(run_dir), "--image", str(images["rgb"]),
                     "--class", target, "-o", str(tmp_path / "c.png"))
    assert rc == 2 and message in err
